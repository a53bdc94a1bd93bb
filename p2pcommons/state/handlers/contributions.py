"""Contributions and their review (protocols/commons.md §1, §3.6, §3.7).

An outsider's contribution (when the rules let anyone contribute) is pending until reviewed."""

from __future__ import annotations

from typing import Any

from ...dagcbor import CID, link
from ...entry import Entry
from ..positions import Meta
from ..records import Contribution, State
from .common import MAX_TOTAL, amount_field, named, ref, standing, text_field
from .devices import member_of
from .registry import Kind
from .view import APPLIED, PENDING, Rejected, View


def _contribution(v: View, s: State, e: Entry, m: Meta) -> str:
    body = e.body
    title = text_field(body, "title", required=True)
    kind = text_field(body, "kind", default="work")
    claimed = amount_field(body, "value", default=1)
    ref = text_field(body, "ref")
    outside = False
    try:
        standing(v, s, e.author, m, None)
    except Rejected:
        if s.rules["contribution"]["policy"] != "anyone":
            raise
        outside = True
    refs = _refs(v, s, e, m)
    # (The entry's own id: never held by the state before it, so not searched for.)
    s.contributions.insert(e.id, Contribution(e.author, title, kind, ref, claimed, "pending", (), (), 0, outside,
                                              refs, e.time))
    return PENDING if outside else APPLIED


MAX_REFS = 16  # contributions one contribution may reference (§9)


def _refs(v: View, s: State, e: Entry, m: Meta) -> tuple[CID, ...]:
    """The body's ``refs``: checked links to earlier contributions (§9), each in the entry's
    causal past and recorded in the state (one the fold rejected is no contribution)."""
    raw: Any = e.body.get("refs")
    if raw is None:
        return ()
    if type(raw) is not list or not 1 <= len(raw) <= MAX_REFS:
        raise Rejected(f"Its 'refs' must be a list of 1 to {MAX_REFS} contribution ids.")
    found: list[CID] = []
    for value in raw:
        try:
            target = link(value)
        except Exception:
            raise Rejected("Its 'refs' holds something that is not an entry id.") from None
        if target in found:
            raise Rejected(f"Its 'refs' names {target} twice.")
        if not v.in_past(target, m) or v.kind_of(target) != "contribution" or target not in s.contributions:
            raise Rejected(f"Its 'refs' names {target}, which is not a contribution in its causal past.")
        found.append(target)
    return tuple(sorted(found, key=lambda c: c.raw))


def _capped(s: State, claimed: int, adjusted: int) -> None:
    """Refuse a review's value that moves the claimed value by more than
    ``equation.review_cap`` percent of it (§9)."""
    cap = (s.rules.get("equation") or {}).get("review_cap")
    if cap is None:
        return
    room = claimed * cap // 100
    if abs(adjusted - claimed) > room:
        raise Rejected(f"Its value {adjusted} moves the claimed value {claimed} by more than equation.review_cap "
                       f"({cap}%) allows: it must be between {max(0, claimed - room)} and {claimed + room}.")


def _review(v: View, s: State, e: Entry, m: Meta) -> str:
    policy = s.rules["review"]
    standing(v, s, e.author, m, policy["roles"])
    # (A record in the table is a contribution's: its kind is then not looked up.)
    linked, found = named(s.contributions, e, "contribution")
    contribution: Contribution | None = found
    target = ref(v, e, m, "contribution", "contribution", known=contribution is not None, linked=linked)
    if contribution is None:
        raise Rejected("The contribution it reviews had no effect (it was rejected).")
    if contribution.status != "pending":
        raise Rejected(f"The contribution was already {contribution.status}.")
    # (A contribution its author's key wrote before being bound as a device counts as the member's.)
    contributor = member_of(s, contribution.author)
    if contributor == e.author and not policy["self_review"]:
        raise Rejected("The rules do not let a member review their own contribution.")
    if e.author in contribution.accepts or e.author in contribution.rejects:
        raise Rejected("Its author already reviewed this contribution.")
    verdict = e.body.get("verdict")
    if verdict not in ("accept", "reject"):
        raise Rejected("Its 'verdict' must be accept or reject.")
    text_field(e.body, "comment")
    if verdict == "accept":
        adjusted = amount_field(e.body, "value", default=contribution.claimed)
        _capped(s, contribution.claimed, adjusted)
        accepts = (*contribution.accepts, e.author)
        if len(accepts) < policy["accepts"]:
            contribution = contribution._replace(accepts=accepts)
        else:
            weights = s.rules["values"]
            weight = weights.get(contribution.kind, weights.get("default", 100))
            value = adjusted * weight // 100
            if value > MAX_TOTAL:
                raise Rejected(f"Accepting it would give the contribution a value of {value}, above the bound "
                                f"{MAX_TOTAL}.")
            if s.ledger_total + value > MAX_TOTAL:
                raise Rejected(f"Accepting it would bring the ledger's total value to {s.ledger_total + value}, "
                                f"above the bound {MAX_TOTAL}.")
            contribution = contribution._replace(accepts=accepts, status="accepted", value=value)
            count, total = s.ledger.get(contributor, (0, 0))
            s.ledger[contributor] = (count + 1, total + value)
            s.ledger_total += value
    else:
        contribution = contribution._replace(rejects=(*contribution.rejects, e.author))
        if len(contribution.rejects) >= policy["rejects"]:
            contribution = contribution._replace(status="rejected")
    s.contributions.overwrite(target, contribution)  # (held: read above)
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "contribution": Kind(_contribution),
    "review": Kind(_review),
}
