"""Rule proposals and votes (protocols/commons.md §1, §2, §3.6): rules change only through the rules in force."""

from __future__ import annotations

from ...entry import Entry
from .. import rules as rules_mod
from ..positions import Meta
from ..records import Proposal, State
from ..rules import InvalidRules
from .common import ref, standing, text_field
from .registry import Kind
from .view import APPLIED, Rejected, View


def _eligible(s: State, roles: list[str]) -> int:
    return sum(1 for member in s.members.values() if member.status == "active"
               and any(r in member.roles for r in roles))


def _tally(s: State, proposal: Proposal) -> Proposal:
    policy = s.rules["rule_change"]
    threshold = policy["threshold"]
    eligible = _eligible(s, policy["roles"])
    num, den = threshold["num"], threshold["den"]
    if len(proposal.yes) * den > eligible * num:
        try:
            s.rules = rules_mod.apply_changes(s.rules, proposal.changes)
        except InvalidRules:  # validated when proposed; kept for robustness
            return proposal._replace(status="rejected")
        return proposal._replace(status="adopted")
    if (eligible - len(proposal.no)) * den <= eligible * num:
        return proposal._replace(status="rejected")
    return proposal


def _rule_proposal(v: View, s: State, e: Entry, m: Meta) -> str:
    policy = s.rules["rule_change"]
    standing(v, s, e.author, m, None)
    changes = e.body.get("changes")
    if type(changes) is not dict:
        raise Rejected("Its 'changes' must be a map of rule names to values.")
    try:
        rules_mod.apply_changes(s.rules, changes)
    except InvalidRules as error:
        raise Rejected(f"Its rule change is invalid: {error}") from None
    proposal = Proposal(e.author, text_field(e.body, "title"), changes, (), (), "open")
    member = s.members[e.author]
    if any(r in member.roles for r in policy["roles"]):
        # Proposing counts as the proposer's yes vote.
        proposal = proposal._replace(yes=(e.author,))
        s.votes[(e.id, e.author)] = True
    s.proposals[e.id] = _tally(s, proposal)
    return APPLIED


def _vote(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["rule_change"]["roles"])
    target = ref(v, e, m, "proposal", "rule_proposal")
    proposal = s.proposals.get(target)
    if proposal is None:
        raise Rejected("The proposal it votes on had no effect (it was rejected).")
    if proposal.status != "open":
        raise Rejected(f"The proposal is already {proposal.status}.")
    choice = e.body.get("choice")
    if choice not in ("yes", "no"):
        raise Rejected("Its 'choice' must be yes or no.")
    if (target, e.author) in s.votes:
        raise Rejected("Its author already voted on this proposal.")
    s.votes[(target, e.author)] = choice == "yes"
    if choice == "yes":
        proposal = proposal._replace(yes=(*proposal.yes, e.author))
    else:
        proposal = proposal._replace(no=(*proposal.no, e.author))
    s.proposals[target] = _tally(s, proposal)
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "rule_proposal": Kind(_rule_proposal, named=True),
    "vote": Kind(_vote, named=False),
}
