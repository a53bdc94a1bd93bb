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


def _query(home: Path | None, commons: str | None, what: str, status: str | None = None, *,
           full: bool = False, limit: int | None = None, exact: bool = False) -> dict[str, Any]:
    """The ``--json`` data of ``p2pc <what>``: from the commons' query tables when they hold
    every stored entry (:mod:`p2pcommons.tables`: no fold loaded), else from the running
    daemon's live fold, else folded here (resuming from the checkpoint) and persisted, which
    brings the tables up to date for the next command.  ``full``: ``state --full`` (the
    proposals too: the daemon or the fold); ``limit``: the first contributions only;
    ``exact``: not a summary whose hash misses local entries no fold has taken yet."""
    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        if not full:
            from p2pcommons import tables

            current = tables.read(store, cid)
            if exact and current is not None and current.summary.get("unfolded_count"):
                current = None
            if current is not None:
                if what == "state":
                    return current.summary
                if what == "members":
                    return {"commons": str(cid), "members": current.members()}
                rows = current.contributions(status, limit)
                total = current.contribution_count(status)
                return {"commons": str(cid), "contributions": rows, "total_count": total,
                        "more_count": total - len(rows)}
        reply = ask_daemon(home, {"cmd": "query", "what": what, "commons": str(cid), "status": status,
                                  "full": full, "limit": limit}, fallback=True)
        if reply is not None:
            data = dict(reply["data"])
        else:
            from p2pcommons.state.engine import current_state
            from p2pcommons.web import data as views

            current_state(store, cid, persist=True)  # (the tables, for the next command)
            if what == "state":
                data = views.state(store, cid, full=full)
            elif what == "members":
                data = views.members(store, cid)
            else:
                data = views.contributions(store, cid, status=status)
        if what == "state" and not full:
            data.pop("proposals", None)  # (a daemon from before --full sends them)
        if what == "contributions":
            rows = data["contributions"]
            total = len(rows) if "total_count" not in data else int(data["total_count"])
            data["contributions"] = rows if limit is None else rows[:limit]
            data["total_count"] = total
            data["more_count"] = total - len(data["contributions"])
        return data


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
        entry = None
        if not refs and not force:  # decided by the query tables when they can: no fold loaded
            from p2pcommons import tables

            entry = tables.contribute(store, identity.signer, cid, body)
        if entry is None:
            from p2pcommons.author import append

            entry = append(store, identity.signer, cid, "contribution", body, force=force, extra_deps=refs)
    after_local_write(home)
    emit({"id": str(entry.id), "commons": str(cid), "seq": entry.seq}, as_json, str(entry.id))


def state(*, commons: str | None, home: Path | None, as_json: bool, full: bool = False) -> None:
    """Print the commons state (``p2pc state``): a summary with counts; ``full``
    (``--full``) folds the newest entries first.  With ``--json`` every proposal too, always
    from the fold itself (the daemon's, or folded here).
    With ``--json`` the state hash is always that of every stored entry (scripts compare
    it between nodes): when this home wrote contributions no fold has taken yet, they are
    folded first; people get the summary at once, the hash with a note."""
    # With --json the proposals stay in (scripts read them: docs/json.md keeps version 1's
    # keys); the summary without them is what people see, and what makes the command fast.
    data = _query(home, commons, "state", full=full or as_json, exact=as_json)

    def human() -> None:
        stable = data["stable"]
        c = data["contribution_counts"]
        print(f"commons     {short_id(data['commons'])}  {data['name']}")
        unfolded = data.get("unfolded_count", 0)
        print(f"state hash  {data['state_hash']}" + (
            f"  (before the newest {unfolded} local entr{'y' if unfolded == 1 else 'ies'}, not folded yet: "
            "p2pc state --full folds them)" if unfolded else ""))
        print(
            f"entries     {data['entry_count']} ({stable['stable_entry_count']} stable, "
            f"{stable['tentative_entry_count']} tentative, {data['waiting_count']} waiting)"
        )
        print(f"members     {data['member_count']}  (pending joins: {data['pending_join_count']})")
        print(f"contrib.    {c['accepted']} accepted, {c['pending']} pending, {c['rejected']} rejected")
        p = data.get("proposal_counts") or {}
        if p:
            print("proposals   " + ", ".join(f"{n} {status}" for status, n in sorted(p.items())))
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


DEFAULT_LIMIT = 100  # contributions listed unless --limit or --all says otherwise


def contributions(*, status: str | None, commons: str | None, home: Path | None, as_json: bool,
                  limit: int | None = None, all_rows: bool = False) -> None:
    """List contributions with their review status (``p2pc contributions``), oldest first:
    the first ``limit`` (default :data:`DEFAULT_LIMIT`; with ``--json`` every one unless
    ``--limit`` is given), or every one with ``all_rows``."""
    from p2pcommons.errors import UsageError

    if status is not None and status not in CONTRIBUTION_STATUSES:
        raise UsageError(f"--status must be pending, accepted or rejected, not '{status}'.")
    if all_rows and limit is not None:
        raise UsageError("Give --limit or --all, not both.")
    # A page by default for people; with --json every row unless --limit says otherwise, so a
    # script that read the whole list before does not silently get the first page only.
    page = None if all_rows or (as_json and limit is None) else limit or DEFAULT_LIMIT
    data = _query(home, commons, "contributions", status, limit=page)
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
        if data["more_count"]:
            print(f"… {data['more_count']} more (of {data['total_count']}): --limit N lists more, --all every one.")

    emit(data, as_json, human)
