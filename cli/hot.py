"""The hot commands' work, without typer: ``contribute``, ``state``, ``members`` and
``contributions``.

Scripts and dashboards run these most (a contribution per commit, a status line per prompt),
so they must start fast (issue 18: ``p2pc contribute`` < 0.15 s).  The typer commands in
:mod:`.local` and :mod:`.governance` declare their options and call these functions; the lean
entry point (:mod:`.fast`) parses the same options itself and calls them directly, so neither
typer, click nor pydantic is imported on that path.  Only :mod:`.plumbing` is used here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plumbing import emit, home_of, human_time, identity_of, open_store, resolve_commons, resolve_entry, short_id

CONTRIBUTION_STATUSES = ("pending", "accepted", "rejected")


def ask_daemon(home: Path | None, request: dict[str, Any], *, fallback: bool) -> dict[str, Any] | None:
    """The running daemon's reply to a ``query`` or ``append`` (protocols/control.md §4), or
    None when no daemon runs for this home — then the command does the work itself.

    A daemon answers from its live fold, which it keeps up to date anyway; a process on its
    own must first load the fold's checkpoint, O(state): seconds at a million entries.
    ``fallback``: also None when the daemon cannot answer (an older daemon that does not
    know the command, a reply too large for the socket, a timeout) — for reads only: a write
    whose reply was lost may have been stored, so its error is raised instead."""
    home_path = home_of(home)
    if not home_path.control_socket.exists():
        return None
    from p2pcommons.errors import DaemonNotRunning, NetworkError, UsageError
    from p2pcommons.node.notify import request as send
    from p2pcommons.protocols.control import MAX_QUERY_REPLY

    try:
        return send(home_path, request, timeout=60.0, max_reply=MAX_QUERY_REPLY)
    except DaemonNotRunning:
        return None
    except UsageError as exc:
        if str(exc).startswith("Unknown control command"):
            return None  # a daemon from before these commands
        raise
    except NetworkError:
        if fallback:
            return None
        raise


def after_local_write(home: Path | None) -> None:
    """Tell a running daemon (if any) that the store changed, so peers hear within a second."""
    home_path = home_of(home)
    if not home_path.control_socket.exists():
        return  # no daemon: nothing to tell, and the control client is not imported
    try:
        from p2pcommons.node.notify import notify_daemon
    except ImportError:  # pragma: no cover - the node package is always installed
        return
    notify_daemon(home_path)


def _query(home: Path | None, commons: str | None, what: str, status: str | None = None) -> dict[str, Any]:
    """The ``--json`` data of ``p2pc <what>``: from the running daemon's live fold if one
    runs, else folded here (resuming from the checkpoint)."""
    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        reply = ask_daemon(home, {"cmd": "query", "what": what, "commons": str(cid), "status": status},
                           fallback=True)
        if reply is not None:
            return dict(reply["data"])
        from p2pcommons.web import data as views

        if what == "state":
            return views.state(store, cid)
        if what == "members":
            return views.members(store, cid)
        return views.contributions(store, cid, status=status)


def contribute(*, title: str, commons: str | None, kind: str, value: int, ref: str | None,
               derives_from: list[str] | None, home: Path | None, as_json: bool, force: bool) -> None:
    """Record a contribution; print its id (``p2pc contribute``)."""
    from p2pcommons.errors import UsageError

    identity = identity_of(home)
    body: dict[str, Any] = {"title": title, "kind": kind, "value": value}
    if ref:
        body["ref"] = ref
    with open_store(home) as store:
        cid = resolve_commons(store, commons)
        refs = []
        for text in derives_from or ():
            target = resolve_entry(store, text)
            found = store.get(target)
            if found is None or found.kind != "contribution" or found.commons_id != cid:
                raise UsageError(f"Entry {target} is not a contribution of this commons.")
            if target not in refs:
                refs.append(target)
        if refs:
            body["refs"] = refs
        reply = ask_daemon(home, {"cmd": "append", "author": identity.public_key.hex(), "commons": str(cid),
                                  "kind": "contribution", "body": {**body, "refs": [str(r) for r in refs]}
                                  if refs else body, "force": force}, fallback=False)
        if reply is not None:
            emit({"id": reply["id"], "commons": reply["commons"], "seq": reply["seq"]}, as_json, str(reply["id"]))
            return
        from p2pcommons.author import append

        entry = append(store, identity.signer, cid, "contribution", body, force=force, extra_deps=refs)
    after_local_write(home)
    emit({"id": str(entry.id), "commons": str(cid), "seq": entry.seq}, as_json, str(entry.id))


def state(*, commons: str | None, home: Path | None, as_json: bool) -> None:
    """Print the commons state (``p2pc state``)."""
    data = _query(home, commons, "state")

    def human() -> None:
        stable = data["stable"]
        c = data["contribution_counts"]
        print(f"commons     {short_id(data['commons'])}  {data['name']}")
        print(f"state hash  {data['state_hash']}")
        print(
            f"entries     {data['entry_count']} ({stable['stable_entry_count']} stable, "
            f"{stable['tentative_entry_count']} tentative, {data['waiting_count']} waiting)"
        )
        print(f"members     {data['member_count']}  (pending joins: {data['pending_join_count']})")
        print(f"contrib.    {c['accepted']} accepted, {c['pending']} pending, {c['rejected']} rejected")
        r = data["rules"]
        if not data["valid"] or not r:
            print("rules       none: the commons' genesis is missing or invalid")
            return
        t = r["rule_change"]["threshold"]
        print(
            f"rules       membership {r['membership']['policy']}, contributions from {r['contribution']['policy']}, "
            f"{r['review']['accepts']} accept(s) by {','.join(r['review']['roles'])}, rule changes by "
            f"{','.join(r['rule_change']['roles'])} > {t['num']}/{t['den']}"
        )
        if stable["held_back_by"]:
            print("stability held back by " + ", ".join(short_id(a) for a in stable["held_back_by"]))

    emit(data, as_json, human)


def members(*, commons: str | None, home: Path | None, as_json: bool) -> None:
    """List members with their roles, status and keys (``p2pc members``)."""
    data = _query(home, commons, "members")
    rows = data["members"]

    def human() -> None:
        for row in rows:
            name = f" ({row['name']})" if row["name"] else ""
            print(f"{short_id(row['author'])}{name}  {row['status']}  {','.join(row['roles'])}")
            for key in row["keys"]:
                if key["own"] and key["status"] == "active" and len(row["keys"]) == 1:
                    continue  # the plain case: one key, the member's own
                what = "own key" if key["own"] else "device"
                if key["status"] == "forked":
                    print(f"  {what} {short_id(key['author'])}  FORKED at seq {key['forked_at']}: its entries from "
                          "there have no effect; continue from another device (p2pc device add)")
                else:
                    print(f"  {what} {short_id(key['author'])}  {key['status']}")

    emit(data, as_json, human)


def contributions(*, status: str | None, commons: str | None, home: Path | None, as_json: bool) -> None:
    """List contributions with their review status (``p2pc contributions``)."""
    from p2pcommons.errors import UsageError

    if status is not None and status not in CONTRIBUTION_STATUSES:
        raise UsageError(f"--status must be pending, accepted or rejected, not '{status}'.")
    data = _query(home, commons, "contributions", status)
    rows = data["contributions"]

    def human() -> None:
        if not rows:
            print("No contributions" + (f" with status {status}." if status else " yet."))
        for row in rows:
            outside = "  (by a non-member)" if row["outside"] else ""
            print(
                f"{short_id(row['id'])}  {human_time(row['time'])}  {row['status']:<8}  {row['title']}  "
                f"[{row['kind']}, claimed {row['claimed']}, value {row['value']}]{outside}"
            )

    emit(data, as_json, human)
