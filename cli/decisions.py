"""Commands for collective decisions: list and show proposals, propose governed acts, vote,
withdraw, and the inbox of what waits for me (protocols/commons.md §2.1–§2.3).

Reading commands print what the fold decided (``CommonsState.decisions``), never a tally
of their own, so the CLI cannot disagree with the state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .app import ForceOption, HomeOption, JsonOption, app, command, emit, identity_of, open_store, resolve_commons
from .governance import CommonsOption, _hex_author, _resolve_entry_in, _resolve_member, _state, _write

proposal_app = typer.Typer(help="Collective decisions: show one, propose an act, withdraw.", no_args_is_help=True)
app.add_typer(proposal_app, name="proposal")

PROPOSAL_KINDS = ("rule_proposal", "proposal")
DeadlineOption = Annotated[int | None, typer.Option(
    "--deadline", min=1, max=10**9, help="Seconds from now until the vote closes (default: the rules' "
    "decisions.deadline; none if unset).")]


def _decisions(home: Path | None, commons: str | None) -> tuple[str, Any, list[dict[str, Any]]]:
    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        state = _state(store, cid)
        return str(cid), state, state.decisions()


def _readable(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A decision with members as author ids (and their names, when known): the same rows
    as ``p2pc proposals --json`` and the dashboard's API (p2pcommons/web/data.py)."""
    from p2pcommons.web.data import decision

    return decision(row, names)


def _what(row: dict[str, Any]) -> str:
    if row["act"] == "rules":
        return "rules: " + ", ".join(f"{k}={v}" for k, v in sorted(row["changes"].items()))
    action = row["action"]
    if row["act"] == "distribution":
        source = f" from {action['pool']}" if "pool" in action else ""
        return f"distribution of {action['amount']} {action['currency']}{source} by the ledger"
    if row["act"] == "spend":
        return f"spend {action['amount']} from {action['pool']} to {action['member']} ({action['reason']})"
    if row["act"] == "resource":
        return f"resource {action['name']} ({action['quota']} {action['unit']} per member per period)"
    if row["act"] == "resource_change":
        changes = ", ".join("close" if k == "close" else f"{k} {v}" for k, v in sorted(action.items())
                            if k not in ("act", "resource"))
        return f"change resource {action['resource']} ({changes})"
    if row["act"] == "recovery":
        return f"recovery of {action['member']} with the key {action['device']}"
    target = action.get("member") or action.get("join")
    extra = action.get("role") or action.get("reason") or ""
    return f"{row['act']} {target}" + (f" ({extra})" if extra else "")


def _deadline_text(ms: int | None) -> str:
    if not ms:
        return "none"
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _find(rows: list[dict[str, Any]], cid: str) -> dict[str, Any]:
    from p2pcommons.errors import NotFound

    for row in rows:
        if row["id"] == cid:
            return row
    raise NotFound(f"Entry {cid} is not a proposal that took effect in this commons.")


def _resolve_proposal(home: Path | None, text: str) -> tuple[Any, str]:
    """A proposal entry (rule change or act) and its commons."""
    from p2pcommons.errors import UsageError

    with open_store(home, reader=True) as store:
        target = _resolve_entry_in(store, text)
        found = store.get(target)
        if found is None or found.kind not in PROPOSAL_KINDS:
            raise UsageError(f"Entry {target} is not a proposal.")
        return target, str(found.commons_id)


@command("proposals")
def proposals_cmd(
    only_open: Annotated[bool, typer.Option("--open", help="Only proposals still undecided.")] = False,
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the commons' proposals (rule changes and acts) with their status and tally."""
    from p2pcommons.web import data as views

    with open_store(home, reader=True) as store:
        data = views.proposals(store, resolve_commons(store, commons), only_open=only_open)
    shown = data["proposals"]

    def human() -> None:
        if not shown:
            print("No open proposals." if only_open else "No proposals.")
        for r in shown:
            t = r["tally"]
            title = f"  \"{r['title']}\"" if r["title"] else ""
            print(f"{r['id']}  {r['status']:<9} {t['yes']} yes {t['no']} no {t['abstain']} abstain  "
                  f"deadline {_deadline_text(r['deadline'])}  {_what(r)}{title}")

    emit(data, as_json, human)


@command("show", app=proposal_app)
def proposal_show(
    proposal: Annotated[str, typer.Argument(help="The proposal (entry id or prefix).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one proposal: what it decides, votes by whom, tally, quorum, deadline, outcome."""
    target, commons = _resolve_proposal(home, proposal)
    _, state, rows = _decisions(home, commons)
    row = _readable(_find(rows, str(target)), {k: m["name"] for k, m in state.members.items()})

    def human() -> None:
        t, e, th, q = row["tally"], row["electorate"], row["threshold"], row["quorum"]
        print(f"proposal    {row['id']}" + (f"  \"{row['title']}\"" if row["title"] else ""))
        print(f"by          {row['author']}")
        print(f"decides     {_what(row)}")
        print(f"status      {row['status']}" + (f" (closed at the deadline by {row['closed_by']})"
                                                  if row["closed_by"] else ""))
        print(f"deadline    {_deadline_text(row['deadline'])}")
        print(f"electorate  {e['size']} ({', '.join(e['roles'])}); passes with yes > {th['num']}/{th['den']}"
              f"{' of the electorate' if not row['deadline'] else ' of yes+no at the deadline'}; "
              f"quorum {q['num']}/{q['den']}")
        print(f"tally       {t['yes']} yes, {t['no']} no, {t['abstain']} abstain")
        for side in ("yes", "no", "abstain"):
            for who in row[side]:
                name = row["names"].get(who, "")
                print(f"  {side:<7} {who}" + (f" ({name})" if name else ""))

    emit(row, as_json, human)


@command("inbox")
def inbox_cmd(commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """What waits for me: open proposals I may vote on and have not, and contributions I may review."""
    me = identity_of(home).signer.public_key
    cid, state, rows = _decisions(home, commons)
    mine = me.hex()
    member = state.member_info(me)
    roles = set(member.roles) if member is not None and member.status == "active" else set()
    names = {k: m["name"] for k, m in state.members.items()}
    votes = []
    for row in rows:
        voted = mine in row["yes"] or mine in row["no"] or mine in row["abstain"]
        named = (row["action"] or {}).get("member") == mine
        if row["status"] == "open" and not voted and not named and roles & set(row["electorate"]["roles"]):
            votes.append(_readable(row, names))
    review = state.rules.get("review", {})
    reviews = []
    if roles & set(review.get("roles", [])):
        for c, x in sorted(state.canonical.get("contributions", {}).items()):
            if x["status"] == "pending" and mine not in x["accepts"] + x["rejects"] and \
                    (x["author"] != mine or review.get("self_review")):
                reviews.append({"id": c, "author": _hex_author(x["author"]), "title": x["title"], "kind": x["kind"]})

    def human() -> None:
        if not votes and not reviews:
            print("Nothing waits for you.")
        for r in votes:
            print(f"vote    {r['id']}  {_what(r)}  deadline {_deadline_text(r['deadline'])}")
        for c in reviews:
            print(f"review  {c['id']}  {c['title']} ({c['kind']}) by {c['author']}")

    emit({"commons": cid, "votes": votes, "reviews": reviews}, as_json, human)


def _propose(home: Path | None, commons: str | None, action: dict[str, Any], title: str, deadline: int | None,
             as_json: bool, force: bool, resolve: str | None = None, extra: Any = None) -> None:
    import time

    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], list[Any] | None]:
        body: dict[str, Any] = {"action": dict(action)}
        if resolve is not None:
            body["action"]["member"] = _resolve_member(state, resolve)
        if title:
            body["title"] = title
        if deadline is not None:
            body["deadline"] = int(time.time() * 1000) + deadline * 1000
        return body, extra

    _write(home, commons, "proposal", {}, as_json, build=build, force=force)


TitleOption = Annotated[str, typer.Option("--title", "-t", help="What the decision is for.")]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the commons).")]
MemberArgument = Annotated[str, typer.Argument(help="Member (author id, prefix or name).")]


@command("admit", app=proposal_app)
def propose_admit(
    join: Annotated[str, typer.Argument(help="The pending join (entry id or prefix).")],
    title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
    home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Propose admitting a newcomer (decided by the admission electorate)."""
    with open_store(home, reader=True) as store:
        target = _resolve_entry_in(store, join)
    _propose(home, commons, {"act": "admission", "join": target}, title, deadline, as_json, force, extra=[target])


@command("remove", app=proposal_app)
def propose_remove(member: MemberArgument, reason: ReasonOption, title: TitleOption = "",
                   deadline: DeadlineOption = None, commons: CommonsOption = None, home: HomeOption = None,
                   as_json: JsonOption = False, force: ForceOption = False) -> None:
    """Propose removing a member."""
    _propose(home, commons, {"act": "removal", "reason": reason}, title, deadline, as_json, force, member)


@command("reinstate", app=proposal_app)
def propose_reinstate(member: MemberArgument, reason: ReasonOption, title: TitleOption = "",
                      deadline: DeadlineOption = None, commons: CommonsOption = None, home: HomeOption = None,
                      as_json: JsonOption = False, force: ForceOption = False) -> None:
    """Propose reinstating a suspended member."""
    _propose(home, commons, {"act": "reinstatement", "reason": reason}, title, deadline, as_json, force, member)


@command("grant", app=proposal_app)
def propose_grant(member: MemberArgument, role: Annotated[str, typer.Argument(help="The role.")],
                  title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
                  home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False) -> None:
    """Propose granting a role (reviewer, steward, or one in roles.custom)."""
    _propose(home, commons, {"act": "grant", "role": role}, title, deadline, as_json, force, member)


@command("revoke", app=proposal_app)
def propose_revoke(member: MemberArgument, role: Annotated[str, typer.Argument(help="The role.")],
                   title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
                   home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False) -> None:
    """Propose revoking a role."""
    _propose(home, commons, {"act": "revoke", "role": role}, title, deadline, as_json, force, member)


@command("appeal", app=proposal_app)
def propose_appeal(
    contribution: Annotated[str, typer.Argument(help="The reviewed contribution (entry id or prefix).")],
    reason: ReasonOption, title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
    home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Appeal a review: if adopted, the contribution is open for review again (an accepted
    one's value leaves the ledger until it is accepted anew)."""
    with open_store(home, reader=True) as store:
        target = _resolve_entry_in(store, contribution)
    _propose(home, commons, {"act": "appeal", "contribution": target, "reason": reason}, title, deadline, as_json,
             force, extra=[target])


@command("distribute", app=proposal_app)
def propose_distribute(amount: Annotated[int, typer.Argument(min=1, max=2**53, help="The amount to share.")],
                       currency: Annotated[str, typer.Option("--currency", help="Its unit.")] = "units",
                       pool: Annotated[str | None, typer.Option("--pool", help="The pool it is paid from.")] = None,
                       title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
                       home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False) -> None:
    """Propose distributing an amount by the contribution ledger (from a pool, if given)."""
    action: dict[str, Any] = {"act": "distribution", "amount": amount, "currency": currency}
    if pool is not None:
        action["pool"] = pool
    _propose(home, commons, action, title, deadline, as_json, force)


@command("resource", app=proposal_app)
def propose_resource(
    name: Annotated[str, typer.Argument(help="The resource's name (a budget line, say).")],
    quota: Annotated[int, typer.Option("--quota", min=1, max=2**53, help="Per member per period.")],
    period: Annotated[int, typer.Option("--period", min=0, max=2**53, help="Seconds; 0 = for ever.")] = 0,
    unit: Annotated[str, typer.Option("--unit", help="Its unit.")] = "unit",
    title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
    home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Propose a new rivalrous shared resource (a budget line with a quota per member)."""
    spec = {"name": name, "rivalrous": True, "quota": quota, "period": period, "unit": unit}
    _propose(home, commons, {"act": "resource", "resource": spec}, title, deadline, as_json, force)


@command("recover", app=proposal_app)
def propose_recover(
    member: Annotated[str, typer.Argument(help="The member who lost every device (author id, prefix or name).")],
    code: Annotated[str, typer.Argument(help="The link code `p2pc device add` printed on their new machine.")],
    title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
    home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Propose binding a new key to a member who lost every device (when the rules say decide.recovery)."""
    from .devices import parse_code

    _propose(home, commons, {"act": "recovery", "device": parse_code(code)}, title, deadline, as_json, force, member)


@command("withdraw", app=proposal_app)
def proposal_withdraw(
    proposal: Annotated[str, typer.Argument(help="Your open proposal (entry id or prefix).")],
    home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Withdraw your own open proposal."""
    target, commons = _resolve_proposal(home, proposal)
    _write(home, commons, "withdraw", {"proposal": target}, as_json, extra_deps=[target], force=force)


@command("vote")
def vote_cmd(
    proposal: Annotated[str, typer.Argument(help="The proposal (entry id or prefix).")],
    choice: Annotated[str, typer.Argument(help="yes, no or abstain")],
    home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Vote on a proposal (a rule change or an act): yes, no or abstain."""
    from p2pcommons.errors import UsageError

    if choice not in ("yes", "no", "abstain"):
        raise UsageError("The vote must be yes, no or abstain.")
    target, commons = _resolve_proposal(home, proposal)
    _write(home, commons, "vote", {"proposal": target, "choice": choice}, as_json, extra_deps=[target], force=force)
