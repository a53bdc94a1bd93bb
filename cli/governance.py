"""Commands on the commons state: membership, review, rules, resources, ledger, sanctions.

Every write goes through :func:`p2pcommons.author.append` (so it is signed, checked like a
received entry and durable before we report it) and then reports the entry's outcome in the
fold, so a script learns at once whether the entry took effect and why not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .app import (
    MAX_AMOUNT,
    ForceOption,
    HomeOption,
    JsonOption,
    ambiguous,
    app,
    command,
    emit,
    home_of,
    human_time,
    id_matches,
    identity_of,
    open_store,
    resolve_commons,
    short_id,
)

CommonsOption = Annotated[str | None, typer.Option("--commons", "-c", help="Commons id, prefix or name.")]

rules_app = typer.Typer(help="Show and change the commons' rules (changes pass by vote).", no_args_is_help=True)
resource_app = typer.Typer(help="Shared resources: add them, use them, list them.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(resource_app, name="resource")


# --- helpers ------------------------------------------------------------------------------


def _author_text(raw: bytes) -> str:
    from p2pcommons.identity import author_id_text

    return author_id_text(raw)


def _hex_author(text: str) -> str:
    return _author_text(bytes.fromhex(text))


def _state(store: Any, commons: Any) -> Any:
    from p2pcommons.state.engine import current_state

    return current_state(store, commons)


def _notify(home: Path | None) -> None:
    """Tell a running daemon (if any) that the store changed, so peers hear within a second."""
    try:
        from p2pcommons.node.notify import notify_daemon
    except ImportError:
        return
    notify_daemon(home_of(home))


def _outcome_json(outcome: Any) -> dict[str, Any]:
    return {
        "id": str(outcome.id),
        "kind": outcome.kind,
        "author": _author_text(outcome.author),
        "seq": outcome.seq,
        "status": outcome.status,
        "reason": outcome.reason,
        "stable": outcome.stable,
        "held_back_by": [_author_text(a) for a in outcome.holders],
        "missing": [str(m) for m in outcome.missing],
    }


def _write(
    home: Path | None,
    commons_text: str | None,
    kind: str,
    body: dict[str, Any],
    as_json: bool,
    *,
    extra_deps: list[Any] | None = None,
    build: Any = None,
    force: bool = False,
) -> dict[str, Any]:
    """Append one entry of ``kind`` and print its id and outcome.  ``build(store, commons,
    state)`` may compute the body and extra deps from the current state."""
    from p2pcommons.author import append

    identity = identity_of(home)
    with open_store(home) as store:
        commons = resolve_commons(store, commons_text)
        if build is not None:
            body, extra_deps = build(store, commons, _state(store, commons))
        entry = append(store, identity.signer, commons, kind, body, extra_deps=extra_deps, force=force)
        outcome = _state(store, commons).outcome(entry.id)
    _notify(home)
    data = {
        "id": str(entry.id),
        "commons": str(commons),
        "seq": entry.seq,
        "kind": kind,
        "outcome": _outcome_json(outcome) if outcome else None,
    }
    human = str(entry.id)
    if outcome is not None and outcome.status == "rejected":
        human += f"\n  no effect: {outcome.reason}"
    elif outcome is not None and outcome.status == "pending":
        human += f"\n  pending: {outcome.reason}"
    emit(data, as_json, human)
    return data


def _resolve_member(state: Any, text: str) -> bytes:
    """A member by author id (z6Mk…), hex key, exact name, or unique prefix of the id, of
    its short form (the id without ``z6Mk``) or of the hex key."""
    from p2pcommons.errors import NotFound

    members = state.members
    candidates = []
    for hex_key, info in members.items():
        raw = bytes.fromhex(hex_key)
        if text in (hex_key, _author_text(raw), info.get("name")) and text:
            return raw
        if id_matches(hex_key, text) or id_matches(_author_text(raw), text):
            candidates.append(raw)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise NotFound(f"No member '{text}' in this commons.")
    raise ambiguous(text, len(candidates), "members")


def _entry_of_kind(home: Path | None, text: str, kind: str, label: str) -> tuple[Any, str]:
    """The entry an id or prefix names, and its commons, refusing entries of another kind."""
    from p2pcommons.errors import UsageError

    with open_store(home, reader=True) as store:
        target = _resolve_entry_in(store, text)
        found = store.get(target)
        if found is None or found.kind != kind:
            raise UsageError(f"Entry {target} is not {label}.")
        return target, str(found.commons_id)


def _resolve_entry_in(store: Any, text: str) -> Any:
    from .app import resolve_entry

    return resolve_entry(store, text)


# --- reading --------------------------------------------------------------------------------


@command("state")
def state_cmd(
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    full: Annotated[bool, typer.Option("--full", help="Fold the newest entries first (--json always lists every "
                                       "proposal; people get a summary with counts).")] = False,
) -> None:
    """Print the commons state: its hash, members, rules in force, contributions, stability."""
    from .hot import state

    state(commons=commons, home=home, as_json=as_json, full=full)


@command("members")
def members_cmd(commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List members with their roles and status."""
    from .hot import members

    members(commons=commons, home=home, as_json=as_json)


@command("status")
def status_cmd(
    entry: Annotated[str, typer.Argument(help="Entry id or unique prefix.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what one entry did: applied, rejected (why), pending or waiting; stable or not."""
    from p2pcommons.errors import NotFound

    with open_store(home, reader=True) as store:
        eid = _resolve_entry_in(store, entry)
        found = store.get(eid)
        if found is None:
            raise NotFound(f"No entry '{entry}' on this node.")
        state = _state(store, found.commons_id)
        outcome = state.outcome(eid)
    if outcome is None:
        raise NotFound(f"Entry {eid} does not belong to a commons this node folds.")
    data = _outcome_json(outcome)
    shown = data["status"]
    if found.kind in ("rule_proposal", "proposal") and outcome.status == "applied":
        # The entry took effect as a proposal; what matters is whether it is decided.
        decision = next((d for d in state.decisions() if d["id"] == str(eid)), None)
        if decision is not None:
            data["decision"] = decision["status"]
            shown = decision["status"] if decision["status"] == "open" else f"applied, {decision['status']}"
    member = state.member_of(outcome.author)
    data["member"] = _author_text(member)  # the member a device's entry speaks for (else its author)
    human = f"{short_id(data['id'])}  {data['kind']}  {shown}" + (f": {data['reason']}" if data["reason"] else "")
    if member != outcome.author:
        human += f"\n  by a device of member {short_id(data['member'])}"
    fork = state.forked_at(outcome.author)
    if fork is not None:
        human += (f"\n  its author's key forked at seq {fork}: that key's entries from there have no effect "
                  "(the member carries on from another device: p2pc device add)")
    holders = ", ".join(short_id(a) for a in data["held_back_by"])
    human += "\n  " + ("stable" if data["stable"] else f"tentative (held back by {holders})")
    emit(data, as_json, human)


@command("ledger")
def ledger_cmd(
    explain: Annotated[
        str | None,
        typer.Option("--explain", "-e", metavar="MEMBER",
                     help="Why this member gets what they get: each contribution through the value equation."),
    ] = None,
    at: Annotated[
        int | None,
        typer.Option("--at", min=0, help="With --explain: weigh as a distribution at this time (ms since the "
                                         "epoch; default: the latest entry's, the same on every node)."),
    ] = None,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per contributor: accepted contributions, their value, share of the total, paid to date."""
    from p2pcommons.web import data as views

    if explain is not None:
        _explain(explain, at, commons, home, as_json)
        return
    with open_store(home, reader=True) as store:
        data = views.ledger(store, resolve_commons(store, commons))
    rows = data["ledger"]

    def human() -> None:
        if not rows:
            print("No accepted contributions yet.")
        for row in rows:
            name = f" ({row['name']})" if row["name"] else ""
            print(
                f"{short_id(row['author'])}{name}  {row['accepted_count']} accepted  value {row['value']}  "
                f"share {row['share_percent']:.2f}%  paid to date {row['paid_to_date']}"
            )

    emit(data, as_json, human)


def _shown(value: Any) -> str:
    """A rule's value as written in a charter: a fraction as num/den."""
    return f"{value['num']}/{value['den']}" if isinstance(value, dict) else str(value)


def _explain(member: str, at: int | None, commons: str | None, home: Path | None, as_json: bool) -> None:
    from p2pcommons.web import data as views

    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        key = _resolve_member(_state(store, cid), member)
        data = views.explain(store, cid, key, at)

    def human() -> None:
        name = f" ({data['name']})" if data["name"] else ""
        equation = data["equation"]
        print(f"{short_id(data['member'])}{name} at {human_time(data['at'])}")
        print(f"  equation {equation['id']}" + ("" if equation["applies"] else " (kind weights only)"))
        for key in ("equation", "role_weights"):
            if key in equation:
                print("    " + key + ": " + ", ".join(f"{k} = {_shown(v)}" for k, v in sorted(equation[key].items())))
        for c in data["contributions"]:
            ins = sum(x["amount"] for x in c["credit_in"])
            outs = sum(x["amount"] for x in c["credit_out"])
            role = f" x {c['role_weight']}% ({c['role']})" if c["role"] else ""
            print(f"  {short_id(c['id'])} {c['title']!r} [{c['kind']}] claimed {c['claimed']}, accepted "
                  f"{c['value']}{role} = {c['weighted']}, after decay {c['after_decay']}, +{ins} from derivatives, "
                  f"-{outs} to references = {c['final']}")
        print(f"  total {data['total']} of {data['commons_total']} ({data['share_bp'] / 100:.2f}%)")
        print(f"  paid to date {data['paid_to_date']} in {len(data['distributions'])} distribution(s)")

    emit(data, as_json, human)


@command("contributions")
def contributions_cmd(
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="Only pending, accepted or rejected contributions.")
    ] = None,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="List the first N, oldest first "
                                              "(default 100; with --json every one unless --limit is "
                                              "given); the output says how many more there are.")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="List every one (a big commons has hundreds of "
                                           "thousands).")] = False,
) -> None:
    """List contributions with their review status, reviews and value (for reviewers' queues)."""
    from .hot import contributions

    contributions(status=status, commons=commons, home=home, as_json=as_json, limit=limit, all_rows=all_rows)


# --- membership -------------------------------------------------------------------------------


@command("join")
def join_cmd(
    commons: Annotated[str, typer.Argument(help="Commons id, prefix or name — or an invite code (p2pc1…).")],
    name: Annotated[str, typer.Option("--name", "-n", help="How you want to be known.")] = "",
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> Any:
    """Ask to join a commons this node holds (import its bundle first), or use an invite code."""
    if commons.startswith("p2pc1"):
        from p2pcommons.cli.network import join_via_invite  # type: ignore[import-not-found,unused-ignore]

        return join_via_invite(code=commons, home=home, as_json=as_json, name=name)
    body: dict[str, Any] = {"name": name} if name else {}
    _write(home, commons, "join", body, as_json, force=force)


@command("admit")
def admit_cmd(
    joins: Annotated[
        list[str] | None, typer.Argument(help="Join entries to admit (default: every pending join).")
    ] = None,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Admit pending joins (member nodes do this automatically for open commons)."""
    from p2pcommons.author import admit_once
    from p2pcommons.errors import UsageError

    identity = identity_of(home)
    written = []
    with open_store(home) as store:
        cid = resolve_commons(store, commons)
        state = _state(store, cid)
        pending = state.pending_joins()
        if joins:
            targets = [_resolve_entry_in(store, j) for j in joins]
            for t in targets:
                if t not in pending:
                    raise UsageError(f"Entry {t} is not a pending join.")
        else:
            targets = sorted(
                (c for c, j in pending.items() if identity.public_key not in j.approvals), key=lambda c: c.raw
            )
        for target in targets:
            entry = admit_once(store, identity.signer, cid, target, force=force)
            if entry is None:  # this member admitted it already (it is still pending)
                continue
            outcome = _state(store, cid).outcome(entry.id)
            written.append(
                {"id": str(entry.id), "join": str(target), "outcome": _outcome_json(outcome) if outcome else None}
            )
    if written:
        _notify(home)
    emit(
        {"commons": str(cid), "admissions": written},
        as_json,
        "\n".join(f"{short_id(w['id'])} admits {short_id(w['join'])}" for w in written)
        or "No pending joins to admit.",
    )


@command("leave")
def leave_cmd(
    commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False
) -> None:
    """Leave the commons (your past contributions stay in the ledger).

    The last steward is warned and refused without --force: after them nobody holds the
    role, and the members decide by majority what stewards decided (§2.3)."""
    if not force:
        from p2pcommons.errors import RuleRefusal

        me = identity_of(home).signer.public_key
        with open_store(home, reader=True) as store:
            state = _state(store, resolve_commons(store, commons))
            stewards = [a for a in state.active_members() if state.has_role(a, "steward")]
        if stewards == [me]:
            raise RuleRefusal("You are the last steward: once you leave, nobody holds the steward role and the "
                              "members decide by majority what stewards decided; grant the role to someone first, "
                              "or pass --force to leave anyway.")
    _write(home, commons, "leave", {}, as_json, force=force)


@command("role")
def role_cmd(
    member: Annotated[str, typer.Argument(help="Member (author id, prefix or name).")],
    action: Annotated[str, typer.Argument(help="grant or revoke")],
    role: Annotated[str, typer.Argument(help="reviewer, steward or a role in roles.custom")],
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Grant or revoke a role (by the roles the rules allow, stewards by default)."""
    from p2pcommons.errors import UsageError

    if action not in ("grant", "revoke") or not role:
        raise UsageError("Use: p2pc role MEMBER grant|revoke ROLE (reviewer, steward or one in roles.custom).")

    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], None]:
        return {"member": _resolve_member(state, member), "action": action, "role": role}, None

    _write(home, commons, "role", {}, as_json, build=build, force=force)


@command("sanction")
def sanction_cmd(
    member: Annotated[str, typer.Argument(help="Member (author id, prefix or name).")],
    action: Annotated[str, typer.Argument(help="warning, suspend, remove or reinstate")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the commons).")],
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Apply a graduated sanction: warning, suspension, removal (or reinstate a suspension)."""
    from p2pcommons.errors import UsageError
    from p2pcommons.state.fold import SANCTION_ACTIONS

    if action not in SANCTION_ACTIONS:
        raise UsageError(f"The sanction must be one of {', '.join(SANCTION_ACTIONS)}.")

    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], None]:
        return {"member": _resolve_member(state, member), "action": action, "reason": reason}, None

    _write(home, commons, "sanction", {}, as_json, build=build, force=force)


@command("vouch")
def vouch_cmd(
    member: Annotated[str, typer.Argument(help="The newcomer you vouch for (author id, prefix or name).")],
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Vouch for a newcomer: with membership.vouches = N, they vote, propose, sanction and
    grant roles once N settled members have vouched for them."""

    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], None]:
        return {"member": _resolve_member(state, member)}, None

    _write(home, commons, "vouch", {}, as_json, build=build, force=force)


# --- review -----------------------------------------------------------------------------------


@command("review")
def review_cmd(
    entry: Annotated[str, typer.Argument(help="The contribution (entry id or prefix).")],
    verdict: Annotated[str, typer.Argument(help="accept or reject")],
    value: Annotated[
        int | None, typer.Option("--value", "-v", help="Adjusted value (whole units).", min=0, max=MAX_AMOUNT)
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", "-m", help="A comment for the contributor.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Accept or reject a contribution (post-hoc review by the roles the rules name)."""
    from p2pcommons.errors import UsageError

    if verdict not in ("accept", "reject"):
        raise UsageError("The verdict must be accept or reject.")
    target, commons = _entry_of_kind(home, entry, "contribution", "a contribution")
    body: dict[str, Any] = {"contribution": target, "verdict": verdict}
    if value is not None:
        body["value"] = value
    if comment:
        body["comment"] = comment
    _write(home, commons, "review", body, as_json, extra_deps=[target], force=force)


# --- rules --------------------------------------------------------------------------------------


@command("show", app=rules_app)
def rules_show(commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print the rules in force."""
    from p2pcommons.state.rules import flatten

    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        rules = _state(store, cid).rules

    def human() -> None:
        for key, value in sorted(flatten(rules).items()):
            if isinstance(value, dict):
                value = f"{value['num']}/{value['den']}"
            elif isinstance(value, list):
                value = ",".join(value)
            print(f"{key} = {value}")

    emit({"commons": str(cid), "rules": rules}, as_json, human)


@command("propose", app=rules_app)
def rules_propose(
    assignments: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="A change, key=value (repeatable).")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Changes as a TOML file.", exists=True)] = None,
    title: Annotated[str, typer.Option("--title", "-t", help="What the change is for.")] = "",
    deadline: Annotated[int | None, typer.Option(
        "--deadline", min=1, max=10**9, help="Seconds from now until the vote closes (default: the rules' "
        "decisions.deadline; none if unset).")] = None,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Propose a rule change; it applies once the votes reach the threshold in force."""
    import tomllib

    from p2pcommons.errors import UsageError
    from p2pcommons.state.rules import _check_value, _kind_of, flatten, parse_assignment

    changes: dict[str, Any] = {}
    if file is not None:
        try:
            doc = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"Cannot read rules from {file} ({exc}).") from None
        for key, value in flatten(doc).items():
            changes[key] = _check_value(key, _kind_of(key), value)
    for text in assignments or []:
        key, value = parse_assignment(text)
        changes[key] = value
    if not changes:
        raise UsageError("Give at least one change with --set key=value or --file rules.toml.")
    body: dict[str, Any] = {"changes": changes}
    if title:
        body["title"] = title
    if deadline is not None:
        import time

        body["deadline"] = int(time.time() * 1000) + deadline * 1000
    _write(home, commons, "rule_proposal", body, as_json, force=force)


@command("vote", app=rules_app)
def rules_vote(
    proposal: Annotated[str, typer.Argument(help="The rule proposal (entry id or prefix).")],
    choice: Annotated[str, typer.Argument(help="yes, no or abstain")],
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Vote on a rule proposal (the same as p2pc vote)."""
    from p2pcommons.errors import UsageError

    if choice not in ("yes", "no", "abstain"):
        raise UsageError("The vote must be yes, no or abstain.")
    target, commons = _entry_of_kind(home, proposal, "rule_proposal", "a rule proposal")
    _write(home, commons, "vote", {"proposal": target, "choice": choice}, as_json, extra_deps=[target], force=force)


# --- resources and distribution -----------------------------------------------------------------


@command("add", app=resource_app)
def resource_add(
    name: Annotated[str, typer.Argument(help="The resource's name.")],
    rivalrous: Annotated[
        bool, typer.Option("--rivalrous/--non-rivalrous", help="Rivalrous resources have a quota per period.")
    ] = False,
    quota: Annotated[
        int, typer.Option("--quota", help="Per member per period (rivalrous only).", min=0, max=MAX_AMOUNT)
    ] = 0,
    period: Annotated[
        int, typer.Option("--period", help="Quota period in seconds (0: no reset).", min=0, max=MAX_AMOUNT)
    ] = 0,
    unit: Annotated[str, typer.Option("--unit", help="Unit of use (e.g. m3, hours).")] = "unit",
    capacity: Annotated[
        int, typer.Option("--capacity", help="For the whole commons per period (rivalrous only; 0: none): a "
                          "forest's annual cut, a workshop's seats.", min=0, max=MAX_AMOUNT)
    ] = 0,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Add a shared resource (stewards, by default)."""
    body: dict[str, Any] = {"name": name, "rivalrous": rivalrous, "quota": quota, "period": period, "unit": unit}
    if capacity:
        body["capacity"] = capacity
    _write(home, commons, "resource_add", body, as_json, force=force)


@command("use", app=resource_app)
def resource_use(
    resource: Annotated[str, typer.Argument(help="The resource (entry id, prefix or name).")],
    amount: Annotated[int, typer.Argument(help="How much (whole units).", min=1, max=MAX_AMOUNT)],
    note: Annotated[str | None, typer.Option("--note", help="What for.")] = None,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Record use of a resource (refused without effect over a rivalrous quota)."""
    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], list[Any]]:
        target = _resource_id(state, resource)
        body: dict[str, Any] = {"resource": target, "amount": amount}
        if note:
            body["note"] = note
        deps = [target] if store.has(target) else []
        return body, deps

    _write(home, commons, "resource_use", {}, as_json, build=build, force=force)


def _resource_id(state: Any, resource: str) -> Any:
    """A resource of the commons by entry id, prefix or name."""
    from p2pcommons.errors import NotFound

    resources = state.resources()
    matches = [c for c, r in resources.items() if r.name == resource or str(c) == resource]
    if not matches:
        matches = [c for c in resources if id_matches(str(c), resource)]
    if not matches:
        raise NotFound(f"No resource '{resource}' in this commons.")
    if len(matches) > 1:
        raise ambiguous(resource, len(matches), "resources")
    return matches[0]


def _change_resource(resource: str, changes: dict[str, Any], propose: bool, title: str, deadline: int | None,
                     commons: str | None, home: Path | None, as_json: bool, force: bool) -> None:
    """A resource change or close: directly (``resource_change``) or, with ``propose``, as a
    proposal (``{act: "resource_change"}``) — which the rules require when ``decide.resource``."""
    import time

    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], list[Any]]:
        target = _resource_id(state, resource)
        deps = [target] if store.has(target) else []
        if not propose:
            return {"resource": target, **changes}, deps
        body: dict[str, Any] = {"action": {"act": "resource_change", "resource": target, **changes}}
        if title:
            body["title"] = title
        if deadline is not None:
            body["deadline"] = int(time.time() * 1000) + deadline * 1000
        return body, deps

    _write(home, commons, "proposal" if propose else "resource_change", {}, as_json, build=build, force=force)


ProposeOption = Annotated[bool, typer.Option("--propose", help="Propose it for a decision (required when the rules "
                                                                "say decide.resource) instead of doing it directly.")]
ProposalTitleOption = Annotated[str, typer.Option("--title", "-t", help="With --propose: what the decision is for.")]
ProposalDeadlineOption = Annotated[int | None, typer.Option(
    "--deadline", min=1, max=10**9, help="With --propose: seconds from now until the vote closes (default: the "
    "rules' decisions.deadline).")]


@command("change", app=resource_app)
def resource_change(
    resource: Annotated[str, typer.Argument(help="The resource (entry id, prefix or name).")],
    quota: Annotated[int | None, typer.Option("--quota", help="New quota per member per period.", min=0,
                                              max=MAX_AMOUNT)] = None,
    capacity: Annotated[int | None, typer.Option("--capacity", help="New capacity for the whole commons per "
                                                 "period (0: none).", min=0, max=MAX_AMOUNT)] = None,
    period: Annotated[int | None, typer.Option("--period", help="New period in seconds (only while unused).",
                                               min=0, max=MAX_AMOUNT)] = None,
    propose: ProposeOption = False, title: ProposalTitleOption = "", deadline: ProposalDeadlineOption = None,
    commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Change a resource's quota, capacity or period (stewards, by default), or propose it with --propose."""
    from p2pcommons.errors import UsageError

    changes = {k: v for k, v in (("quota", quota), ("capacity", capacity), ("period", period)) if v is not None}
    if not changes:
        raise UsageError("Give at least one of --quota, --capacity or --period.")
    _change_resource(resource, changes, propose, title, deadline, commons, home, as_json, force)


@command("close", app=resource_app)
def resource_close(
    resource: Annotated[str, typer.Argument(help="The resource (entry id, prefix or name).")],
    propose: ProposeOption = False, title: ProposalTitleOption = "", deadline: ProposalDeadlineOption = None,
    commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Close a resource: it takes no new uses (stewards, by default), or propose it with --propose."""
    _change_resource(resource, {"close": True}, propose, title, deadline, commons, home, as_json, force)


def _my_key(home: Path | None) -> bytes | None:
    """This home's author key for showing what is left to me, without ever prompting (a
    listing must not ask for a passphrase): None if the key is locked."""
    import os

    from p2pcommons.errors import P2PCError
    from p2pcommons.home import PASSPHRASE_ENV
    from p2pcommons.identity import load_identity

    try:
        key: bytes = load_identity(home_of(home), os.environ.get(PASSPHRASE_ENV)).public_key
    except (P2PCError, ValueError, OSError):
        return None
    return key


@command("cancel", app=resource_app)
def resource_cancel(
    use: Annotated[str, typer.Argument(help="Your use (booking) to cancel: entry id or prefix.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Cancel your own use of a rivalrous resource (a booked seat): it is free again this period."""
    target, commons = _entry_of_kind(home, use, "resource_use", "a resource use")
    _write(home, commons, "resource_cancel", {"use": target}, as_json, extra_deps=[target], force=force)


@command("list", app=resource_app)
def resource_list(commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List resources with their quotas, use so far, and what is left this period."""
    from p2pcommons.web import data as views

    with open_store(home, reader=True) as store:
        data = views.resources(store, resolve_commons(store, commons), _my_key(home))
    rows = data["resources"]

    def human() -> None:
        if not rows:
            print("No resources.")
        for row in rows:
            kind = f"rivalrous, quota {row['quota']} {row['unit']}" if row["rivalrous"] else "non-rivalrous"
            if row["closed"]:
                kind += ", closed"
            if row["capacity"]:
                kind += f", capacity {row['capacity']} {row['unit']}"
            left = row["left_this_period"]
            parts = [f"{n} {row['unit']} for you" if k == "mine" else f"{n} {row['unit']} for the commons"
                     for k, n in left.items() if n is not None]
            tail = f"; left this period: {', '.join(parts)}" if parts else ""
            used = sum(row["used"].values())
            print(f"{short_id(row['id'])}  {row['name']}  ({kind})  used {used} {row['unit']}{tail}")

    emit(data, as_json, human)


@command("distribute")
def distribute_cmd(
    amount: Annotated[int, typer.Argument(help="The amount to share (whole units).", min=1, max=MAX_AMOUNT)],
    currency: Annotated[str, typer.Option("--currency", help="Currency or unit of the amount.")] = "units",
    pool: Annotated[str | None, typer.Option("--pool", help="The pool it is paid from (required when the rules "
                                             "declare pools; its unit is the currency).")] = None,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Share an amount among contributors in proportion to their accepted value (from a pool,
    which it cannot overdraw, when the commons has pools)."""
    body: dict[str, Any] = {"amount": amount, "currency": currency}
    if pool is not None:
        body["pool"] = pool
    _write(home, commons, "distribution", body, as_json, force=force)


@command("receipt")
def receipt_cmd(
    distribution: Annotated[
        str, typer.Argument(help="The distribution (its entry id or prefix, or the proposal that decided it).")
    ],
    note: Annotated[str | None, typer.Option("--note", "-m", help="A note to the commons.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Acknowledge that you received your share of a distribution (shown in the ledger)."""
    from p2pcommons.errors import UsageError

    with open_store(home, reader=True) as store:
        target = _resolve_entry_in(store, distribution)
        found = store.get(target)
        if found is None or found.kind not in ("distribution", "proposal"):
            raise UsageError(f"Entry {target} is not a distribution (nor the proposal that decided one).")
        commons = str(found.commons_id)
    body: dict[str, Any] = {"distribution": target}
    if note:
        body["note"] = note
    _write(home, commons, "receipt", body, as_json, extra_deps=[target], force=force)
