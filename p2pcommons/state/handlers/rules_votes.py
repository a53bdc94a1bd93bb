"""Rule proposals and votes (protocols/commons.md §1, §2, §2.1, §3.6): rules change only through the rules in force.

A proposal without a deadline is decided as it always was: by a fraction of the whole
electorate, whenever the votes settle it.  One with a deadline also ends: it is decided
early only when the votes already settle it, and otherwise at its deadline, by the votes
the entry that closes it had seen (:mod:`.decisions`).
"""

from __future__ import annotations

from ...dagcbor import CID
from ...entry import MAX_TIME, Entry
from .. import rules as rules_mod
from ..positions import Meta
from ..records import Proposal, State
from ..rules import InvalidRules
from .common import ref, standing, text_field
from .registry import Kind
from .view import APPLIED, Rejected, View

CHOICES = {"yes": True, "no": False, "abstain": None}


def _eligible(s: State, roles: list[str]) -> int:
    return sum(1 for member in s.members.values() if member.status == "active"
               and any(r in member.roles for r in roles))


def _adopt(s: State, proposal: Proposal) -> Proposal:
    try:
        s.rules = rules_mod.apply_changes(s.rules, proposal.changes)
    except InvalidRules:  # validated when proposed; kept for robustness
        return proposal._replace(status="rejected")
    return proposal._replace(status="adopted")


def _quorum_met(s: State, voted: int, eligible: int) -> bool:
    quorum = rules_mod.decision_policy(s.rules)[1]
    return voted * quorum["den"] >= eligible * quorum["num"]


def tally(s: State, proposal: Proposal) -> Proposal:
    """The proposal after a vote, with the rules in force at this position (E: the
    electorate; Y, N, A: yes, no and abstain so far; threshold num/den)."""
    policy = s.rules["rule_change"]
    threshold = policy["threshold"]
    eligible = _eligible(s, policy["roles"])
    num, den = threshold["num"], threshold["den"]
    yes, no, abstain = len(proposal.yes), len(proposal.no), len(proposal.abstain)
    if not proposal.deadline:
        # No end: a fraction of the whole electorate decides (an abstention weighs as a no).
        if yes * den > eligible * num:
            return _adopt(s, proposal)
        if (eligible - no - abstain) * den <= eligible * num:
            return proposal._replace(status="rejected")
        return proposal
    # With a deadline: early only when settled.  Adopted once yes is above the threshold of
    # the whole electorate (and the quorum is met); rejected once even every remaining voter
    # saying yes would not carry the threshold of the votes cast.
    if yes * den > eligible * num and _quorum_met(s, yes + no + abstain, eligible):
        return _adopt(s, proposal)
    if (eligible - no - abstain) * den <= (eligible - abstain) * num:
        return proposal._replace(status="rejected")
    return proposal


def close(v: View, s: State, target: CID, proposal: Proposal, closer: Entry, meta: Meta) -> Proposal:
    """Decide a proposal at its deadline, at the position of the entry that closes it: only
    the votes in that entry's causal past count; adopted when the quorum is met and yes is
    above the threshold of the yes and no votes, else rejected."""
    ballots = s.ballots

    def counted(voters: tuple[bytes, ...]) -> tuple[bytes, ...]:
        return tuple(a for a in voters if (cast := ballots.get((target, a))) is not None
                     and v.in_past(cast, meta))

    yes, no, abstain = counted(proposal.yes), counted(proposal.no), counted(proposal.abstain)
    proposal = proposal._replace(yes=yes, no=no, abstain=abstain, closed=closer.id)
    policy = s.rules["rule_change"]
    threshold = policy["threshold"]
    eligible = _eligible(s, policy["roles"])
    if _quorum_met(s, len(yes) + len(no) + len(abstain), eligible) and \
            len(yes) * threshold["den"] > (len(yes) + len(no)) * threshold["num"]:
        return _adopt(s, proposal)
    return proposal._replace(status="rejected")


def _deadline(e: Entry, s: State) -> int:
    value = e.body.get("deadline")
    if value is None:
        seconds = rules_mod.decision_policy(s.rules)[0]
        return min(e.time + seconds * 1000, MAX_TIME - 1) if seconds else 0
    if type(value) is not int or not e.time < value < MAX_TIME:
        raise Rejected("Its 'deadline' must be a time (ms) after its own.")
    return value


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
    deadline = _deadline(e, s)
    proposal = Proposal(e.author, text_field(e.body, "title"), changes, (), (), "open", (), deadline, e.time)
    member = s.members[e.author]
    if any(r in member.roles for r in policy["roles"]):
        # Proposing counts as the proposer's yes vote.
        proposal = proposal._replace(yes=(e.author,))
        s.votes[(e.id, e.author)] = True
        if deadline:
            s.ballots[(e.id, e.author)] = e.id
    proposal = tally(s, proposal)
    s.proposals[e.id] = proposal
    if proposal.status == "open" and deadline:
        s.due[e.id] = deadline
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
    if choice not in CHOICES:
        raise Rejected("Its 'choice' must be yes, no or abstain.")
    if (target, e.author) in s.votes:
        raise Rejected("Its author already voted on this proposal.")
    if proposal.deadline and e.time < proposal.time:
        raise Rejected("It is dated before the proposal it votes on.")
    s.votes[(target, e.author)] = CHOICES[choice]
    if proposal.deadline:
        s.ballots[(target, e.author)] = e.id
    if choice == "yes":
        proposal = proposal._replace(yes=(*proposal.yes, e.author))
    elif choice == "no":
        proposal = proposal._replace(no=(*proposal.no, e.author))
    else:
        proposal = proposal._replace(abstain=(*proposal.abstain, e.author))
    proposal = tally(s, proposal)
    s.proposals[target] = proposal
    if proposal.status != "open":
        s.due.pop(target, None)
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "rule_proposal": Kind(_rule_proposal, named=True),
    "vote": Kind(_vote, named=False),
}
