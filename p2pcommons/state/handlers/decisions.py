"""Decisions that end (protocols/commons.md §2.1): closing at the deadline, and withdrawal.

The fold is a pure function of the entries held, so "the deadline has passed" cannot be the
receiving node's clock: it is an entry's.  A proposal with a deadline D is **closed** at the
position of the first entry, in fold order, that (a) is by an author in good standing there
(an active member whose admission is in its causal past), (b) is dated after D, (c) has
the proposal in its causal past, and (d) is not by the member the proposal's act names.
It is decided there, before that entry's own checks, by the votes *in the closing entry's
causal past* (:func:`.rules_votes.close`).  So a vote
written by anyone who had seen the closing entry never counts, whatever its date (it also
sorts after it); a vote dated after D is refused; and once the closing entry is stable
(§4) nothing can change the outcome.  Why through every handler: the closing entry may be
of any kind, and the replayer must not know what a kind means.
"""

from __future__ import annotations

from ...dagcbor import CID
from ...entry import Entry
from ..positions import Meta
from ..records import State
from .common import ref, standing
from .registry import Kind
from .rules_votes import close
from .view import APPLIED, Rejected, View


def settle(v: View, s: State, e: Entry, m: Meta) -> None:
    """Close every open proposal whose deadline this entry closes (see the module), in
    ascending (deadline, id) order."""
    if not s.due:
        return
    due = sorted((deadline, target.raw, target) for target, deadline in s.due.items() if deadline < e.time)
    if not due:
        return
    try:
        standing(v, s, e.author, m, None)
    except Rejected:
        return
    for _, _, target in due:
        proposal = s.proposals[target]
        if not v.in_past(target, m) or about(proposal.action, e.author):
            continue
        s.proposals[target] = close(v, s, target, proposal, e, m)
        del s.due[target]


def about(action: dict[str, object] | None, author: bytes) -> bool:
    """Does this action name ``author`` (who then neither closes nor votes on it)?"""
    return action is not None and action.get("member") == author.hex()


def _withdraw(v: View, s: State, e: Entry, m: Meta) -> str:
    """The proposer withdraws an open proposal: it ends, with no effect."""
    standing(v, s, e.author, m, None)
    target: CID = ref(v, e, m, "proposal", ("rule_proposal", "proposal"))
    proposal = s.proposals.get(target)
    if proposal is None:
        raise Rejected("The proposal it withdraws had no effect (it was rejected).")
    if proposal.author != e.author:
        raise Rejected("Only the proposer may withdraw a proposal.")
    if proposal.status != "open":
        raise Rejected(f"The proposal is already {proposal.status}.")
    s.proposals[target] = proposal._replace(status="withdrawn")
    s.due.pop(target, None)
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "withdraw": Kind(_withdraw),
}
