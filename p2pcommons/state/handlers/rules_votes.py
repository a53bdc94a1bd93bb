"""Proposals and votes (protocols/commons.md §1, §2, §2.1, §2.2, §3.6): rules change, and
governed acts are decided, only through the rules in force.

A proposal is a rule change (``rule_proposal``) or carries a governed act (``proposal``,
:mod:`.acts`); each act has its electorate, threshold and quorum in the rules.  A proposal
without a deadline is decided as rule changes always were: by a fraction of the whole
electorate, whenever the votes settle it.  One with a deadline also ends: it is decided
early only when the votes already settle it, and otherwise at its deadline, by the votes
the entry that closes it had seen (:mod:`.decisions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...dagcbor import CID
from ...entry import MAX_TIME, Entry
from .. import rules as rules_mod
from ..positions import Meta
from ..records import Member, Proposal, State
from ..rules import InvalidRules
from . import acts
from .common import named, ref, settled, settled_others, standing, text_field, vouched
from .registry import Kind
from .view import APPLIED, Rejected, View

CHOICES = {"yes": True, "no": False, "abstain": None}
PROPOSAL_KINDS = ("rule_proposal", "proposal")


FALLBACK_ROLES = ["member"]
FALLBACK_THRESHOLD = {"num": 1, "den": 2}


def policy(s: State, proposal: Proposal) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """``(electorate roles, threshold, quorum)`` of a proposal, by the rules in force here.

    A seat's grant or revocation is decided by the seat's class (``seats.<role>``, §2.5).
    A commons never freezes (§2.3): when no active member holds a role of the electorate,
    the active members decide, by majority (the act's quorum still applies)."""
    _, electorate, threshold, quorum = rules_mod.act_policy(s.rules, acts.act_of(proposal.action))
    action = proposal.action
    if action is not None and action["act"] in ("grant", "revoke"):
        # A seat (§2.5) is elected by its class: the workers' seat by the workers.
        electorate = rules_mod.seat_electorate(s.rules, action["role"]) or electorate
    if not _anyone(s, electorate):
        return FALLBACK_ROLES, FALLBACK_THRESHOLD, quorum
    return electorate, threshold, quorum


def _holds(roles: list[str]) -> Callable[[Member], bool]:
    """Does an active member hold one of ``roles``?  (Asked of every member, for every vote
    and proposal: one membership test for the usual one-role electorate.)"""
    if len(roles) == 1:
        role = roles[0]
        return lambda member: member.status == "active" and role in member.roles
    wanted = frozenset(roles)
    return lambda member: member.status == "active" and not wanted.isdisjoint(member.roles)


def _anyone(s: State, roles: list[str]) -> bool:
    """``eligible(s, roles) > 0``, stopping at the first."""
    return any(map(_holds(roles), s.members.values()))


def eligible(s: State, roles: list[str], v: View | None = None, now: int = 0) -> int:
    """How many active members hold one of ``roles`` (the electorate's size).  Given the
    view and the deciding entry's time, newcomers not settled there (on probation, or not
    yet vouched for, §2.5) are not counted: they cannot vote, so counting them would let
    throwaway keys block a decision."""
    membership = s.rules["membership"]
    seconds = membership.get("probation", 0)
    needed = membership.get("vouches", 0)
    if v is None or (not seconds and not needed):  # (the usual case: a count, asked at every tally)
        key = tuple(roles)
        counts: dict[tuple[str, ...], int] | None = getattr(s.members, "counts", None)  # (records.Members)
        if counts is not None and key in counts:
            return counts[key]
        if len(roles) == 1:
            role = roles[0]
            count = sum(1 for member in s.members.values() if member.status == "active" and role in member.roles)
        else:
            count = sum(map(_holds(roles), s.members.values()))
        if counts is not None:
            counts[key] = count
        return count
    if len(roles) == 1:
        role = roles[0]
        voters = [(key, member) for key, member in s.members.items()
                  if member.status == "active" and role in member.roles]
    else:
        wanted = frozenset(roles)
        voters = [(key, member) for key, member in s.members.items()
                  if member.status == "active" and not wanted.isdisjoint(member.roles)]
    settled = settled_others(v, s, b"", now) if needed else 0
    return sum(1 for key, member in voters
               if member.since == v.commons or (seconds and v.time_of(member.since) + seconds * 1000 <= now)
               or vouched(s, key, settled))


def _adopt(v: View, s: State, target: CID, proposal: Proposal, decider: Entry, m: Meta) -> Proposal:
    """Carry out an adopted proposal at the deciding entry's position."""
    if proposal.action is not None:
        done = acts.carry_out(v, s, target, proposal.author, proposal.action, decider, m)
        return proposal._replace(status="adopted" if done else "lapsed")
    try:
        s.rules = rules_mod.apply_changes(s.rules, proposal.changes)
    except InvalidRules:  # validated when proposed; kept for robustness
        return proposal._replace(status="rejected")
    return proposal._replace(status="adopted")


def tally(v: View, s: State, target: CID, proposal: Proposal, decider: Entry, m: Meta) -> Proposal:
    """The proposal after a vote (or its proposal), with the rules and the electorate E in
    force at this position (Y, N, A: yes, no and abstain so far; threshold num/den)."""
    roles, threshold, quorum = policy(s, proposal)
    size = eligible(s, roles, v, decider.time)
    num, den = threshold["num"], threshold["den"]
    yes, no, abstain = len(proposal.yes), len(proposal.no), len(proposal.abstain)
    quorate = (yes + no + abstain) * quorum["den"] >= size * quorum["num"]
    if yes * den > size * num and quorate:
        return _adopt(v, s, target, proposal, decider, m)
    if not proposal.deadline:
        # No end: a fraction of the whole electorate decides (an abstention weighs as a no).
        if (size - no - abstain) * den <= size * num:
            return proposal._replace(status="rejected")
        return proposal
    # With a deadline: rejected early once even every remaining voter saying yes would not
    # carry the threshold of the votes cast.
    if (size - no - abstain) * den <= (size - abstain) * num:
        return proposal._replace(status="rejected")
    return proposal


def close(v: View, s: State, target: CID, proposal: Proposal, closer: Entry, meta: Meta) -> Proposal:
    """Decide a proposal at its deadline, at the position of the entry that closes it: only
    the votes in that entry's causal past count; adopted when the quorum is met and yes is
    above the threshold of the yes and no votes, else rejected."""
    ballots = s.ballots

    def counted(voters: tuple[bytes, ...]) -> tuple[bytes, ...]:
        return tuple(a for a in voters if (cast := ballots.get((target, a))) is not None and v.in_past(cast, meta))

    yes, no, abstain = counted(proposal.yes), counted(proposal.no), counted(proposal.abstain)
    proposal = proposal._replace(yes=yes, no=no, abstain=abstain, closed=closer.id)
    roles, threshold, quorum = policy(s, proposal)
    size = eligible(s, roles, v, closer.time)
    if (len(yes) + len(no) + len(abstain)) * quorum["den"] >= size * quorum["num"] and \
            len(yes) * threshold["den"] > (len(yes) + len(no)) * threshold["num"]:
        return _adopt(v, s, target, proposal, closer, meta)
    return proposal._replace(status="rejected")


def _deadline(e: Entry, s: State) -> int:
    value = e.body.get("deadline")
    if value is None:
        seconds = rules_mod.decision_policy(s.rules)[0]
        return min(e.time + seconds * 1000, MAX_TIME - 1) if seconds else 0
    if type(value) is not int or not e.time < value < MAX_TIME:
        raise Rejected("Its 'deadline' must be a time (ms) after its own.")
    return value


def _open(v: View, s: State, e: Entry, m: Meta, proposal: Proposal) -> str:
    """Record a new proposal: the proposer's yes if they may vote, then the first tally."""
    roles = policy(s, proposal)[0]
    member = s.members[e.author]
    named = proposal.action is not None and proposal.action.get("member") == e.author.hex()
    if any(r in member.roles for r in roles) and not named:
        # Proposing counts as the proposer's yes vote (not on an act about themselves).
        proposal = proposal._replace(yes=(e.author,))
        s.votes.insert((e.id, e.author), True)  # (a proposal being opened: no vote on it yet)
        if proposal.deadline:
            s.ballots[(e.id, e.author)] = e.id
    proposal = tally(v, s, e.id, proposal, e, m)
    s.proposals.insert(e.id, proposal)  # (the entry's own id: new to the state)
    if proposal.status == "open" and proposal.deadline:
        s.due[e.id] = proposal.deadline
    return APPLIED


def _never_freezes(s: State, changes: dict[str, object], new: dict[str, Any]) -> None:
    """Refuse a membership change after which nobody could be admitted by admissions
    (§2.3): under ``approval``, more approvals than active members who may admit."""
    if not any(type(k) is str and k.startswith("membership.") for k in changes):
        return
    membership = new["membership"]
    admitters = eligible(s, membership["admitters"])
    if membership["policy"] == "approval" and membership["approvals"] > admitters:
        raise Rejected(f"It would make admission impossible: membership.approvals would be "
                       f"{membership['approvals']}, but only {admitters} active members may admit.")


def _rule_proposal(v: View, s: State, e: Entry, m: Meta) -> str:
    settled(v, s, standing(v, s, e.author, m, None), e, m)
    changes = e.body.get("changes")
    if type(changes) is not dict:
        raise Rejected("Its 'changes' must be a map of rule names to values.")
    try:
        new = rules_mod.apply_changes(s.rules, changes)
    except InvalidRules as error:
        raise Rejected(f"Its rule change is invalid: {error}") from None
    _never_freezes(s, changes, new)
    proposal = Proposal(e.author, text_field(e.body, "title"), changes, (), (), "open", (), _deadline(e, s), e.time)
    return _open(v, s, e, m, proposal)


def _proposal(v: View, s: State, e: Entry, m: Meta) -> str:
    """A proposal of a governed act (§2.2): any active member past probation may propose one."""
    settled(v, s, standing(v, s, e.author, m, None), e, m)
    action = acts.parse(v, s, e, m)
    proposal = Proposal(e.author, text_field(e.body, "title"), {}, (), (), "open", (), _deadline(e, s), e.time,
                        None, action)
    return _open(v, s, e, m, proposal)


def _vote(v: View, s: State, e: Entry, m: Meta) -> str:
    linked, found = named(s.proposals, e, "proposal")
    proposal: Proposal | None = found  # (the record ``ref`` below checks the link of)
    # Who may vote on what it names (rule-change voters if it names no proposal).
    voters = s.rules["rule_change"]["roles"] if proposal is None else policy(s, proposal)[0]
    settled(v, s, standing(v, s, e.author, m, voters), e, m)
    # (A record in the table is a proposal's: its kind is then not looked up.)
    target = ref(v, e, m, "proposal", PROPOSAL_KINDS, known=proposal is not None, linked=linked)
    if proposal is None:
        raise Rejected("The proposal it votes on had no effect (it was rejected).")
    if proposal.status != "open":
        raise Rejected(f"The proposal is already {proposal.status}.")
    choice = e.body.get("choice")
    if choice not in CHOICES:
        raise Rejected("Its 'choice' must be yes, no or abstain.")
    if (target, e.author) in s.votes:
        raise Rejected("Its author already voted on this proposal.")
    if proposal.action is not None and proposal.action.get("member") == e.author.hex():
        raise Rejected("The member a proposal names does not vote on it.")
    if proposal.deadline and e.time < proposal.time:
        raise Rejected("It is dated before the proposal it votes on.")
    s.votes.insert((target, e.author), CHOICES[choice])  # (absent: looked up above)
    if proposal.deadline:
        s.ballots[(target, e.author)] = e.id
    if choice == "yes":
        proposal = proposal._replace(yes=(*proposal.yes, e.author))
    elif choice == "no":
        proposal = proposal._replace(no=(*proposal.no, e.author))
    else:
        proposal = proposal._replace(abstain=(*proposal.abstain, e.author))
    proposal = tally(v, s, target, proposal, e, m)
    s.proposals.overwrite(target, proposal)  # (held: read above)
    if proposal.status != "open":
        s.due.pop(target, None)
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "rule_proposal": Kind(_rule_proposal),
    "proposal": Kind(_proposal),
    "vote": Kind(_vote),
}
