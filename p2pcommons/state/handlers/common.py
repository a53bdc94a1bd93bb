"""Checks every family of handlers shares: standing, references, field validation."""

from __future__ import annotations

from typing import Any

from ...dagcbor import CID, link
from ...entry import Entry
from .. import rules as rules_mod
from ..positions import Meta
from ..records import Member, Resource, State
from .view import Rejected, View

MAX_TEXT = 1000
MAX_AMOUNT = 2**53  # every amount or value in a body (also refused at decode: entry.MAX_AMOUNT)
# Bounded arithmetic (protocols/commons.md §3.7): every sum the fold keeps stays at or below
# MAX_TOTAL; the entry that would take one above it is rejected with the numbers.  Why: the
# state must stay computable (and encodable: DAG-CBOR integers end at 2**64 - 1) on every
# node, whatever one member writes.
MAX_TOTAL = 2**53


def standing(view: View, state: State, author: bytes, meta: Meta, roles: list[str] | None) -> Member:
    """The author's membership (and one of ``roles``), checked against the state at this
    position *and* the entry's causal past: the grant must be something it had seen."""
    member = state.members.get(author)
    if member is None:
        raise Rejected("Its author is not a member of the commons.")
    if member.status != "active":
        raise Rejected(f"Its author's membership is {member.status}.")
    if not view.in_past(member.since, meta):
        raise Rejected("Its author's admission is not in its causal past (written before being admitted).")
    if roles and "member" not in roles:
        held = False
        for role, grant in member.grants:  # (asked for most entries: a loop, no list or generator)
            if role in roles:
                if view.in_past(grant, meta):
                    return member
                held = True
        if not held:
            raise Rejected(f"Its author lacks the role needed ({' or '.join(roles)}).")
        raise Rejected("Its author's role was granted outside its causal past.")
    return member


def settled(view: View, state: State, member: Member, entry: Entry, meta: Meta) -> None:
    """Refuse a newcomer's governing entry (a vote; a proposal, whose author's implicit yes
    is a vote; a sanction; a role change; a vouch) until they are settled (§2.5): dated at
    least ``membership.probation`` seconds after their admission, or vouched for by
    ``membership.vouches`` members (vouches in the entry's causal past, by members active
    here) — whichever comes first when the rules ask for both.  Probation is judged by
    trusted time (§2.4): the entry cannot be dated before its admission, which is in its
    causal past, and no node takes it before its date comes within the skew.
    Founders (admitted by the genesis) are always settled."""
    membership = state.rules["membership"]
    seconds, needed = membership.get("probation", 0), membership.get("vouches", 0)
    if (not seconds and not needed) or member.since == view.commons:
        return
    until = view.time_of(member.since) + seconds * 1000
    if seconds and entry.time >= until:
        return
    if needed:
        have = sum(1 for voucher, vouch in state.vouches.get(entry.author, ())
                   if view.in_past(vouch, meta) and voucher in state.members
                   and state.members[voucher].status == "active")
        if have >= needed or have >= settled_others(view, state, entry.author, entry.time):
            return
        raise Rejected(f"Its author has {have} of the {needed} vouches a newcomer needs (membership.vouches)"
                       + (f" and is on probation until {until}" if seconds else "")
                       + ": a newcomer does not vote, propose, sanction, grant roles or vouch before then.")
    raise Rejected(f"Its author is on probation until {until} (membership.probation): a newcomer does not "
                   "vote, propose, sanction or grant roles before then.")


def _vouches(state: State, author: bytes) -> int:
    return sum(1 for voucher, _ in state.vouches.get(author, ())
               if voucher in state.members and state.members[voucher].status == "active")


def settled_others(view: View, state: State, author: bytes, now: int) -> int:
    """How many active members other than ``author`` are settled at time ``now`` (founders,
    past probation, or vouched for: by the state here).  A newcomer needs no more vouches
    than that (§2.3, §2.5): when nobody settled is left to vouch, the commons does not freeze."""
    membership = state.rules["membership"]
    seconds, needed = membership.get("probation", 0), membership.get("vouches", 0)
    return sum(1 for key, member in state.members.items()
               if key != author and member.status == "active" and (
                   member.since == view.commons or (seconds and view.time_of(member.since) + seconds * 1000 <= now)
                   or _vouches(state, key) >= needed))


def vouched(state: State, author: bytes, settled: int) -> bool:
    """Has ``author`` the vouches ``membership.vouches`` asks for, by members active here (the
    electorate's count, §2.5: no causal past to judge by), capped at ``settled``: how many
    active members are settled (:func:`settled_others` of someone unsettled, computed once)."""
    needed = state.rules["membership"].get("vouches", 0)
    if not needed:
        return False
    have = _vouches(state, author)
    return have >= needed or have >= settled


def alone(state: State, act: str) -> None:
    """Refuse a role-holder's direct act when the rules require a decision for it (§2.2)."""
    if rules_mod.act_policy(state.rules, act)[0]:
        raise Rejected(f"The rules require a decision for this act (decide.{act}): propose it instead.")


def ref(view: View, entry: Entry, meta: Meta, field: str, kind: str | tuple[str, ...], *,
        known: bool = False, linked: CID | None = None) -> CID:
    """A link field that must name an entry of ``kind`` in this entry's causal past.
    ``known``: the caller found what it names in a table whose keys are all entries of
    ``kind`` (a review's contribution, a vote's proposal), so its kind is not looked up (in
    an evicting fold, a read of the store).  ``linked``: the
    field's link as the caller already read it (:func:`named`), not read again."""
    target = linked
    if target is None:
        try:
            target = link(entry.body.get(field))
        except Exception:
            raise Rejected(f"Its '{field}' is not an entry id.") from None
    if not view.in_past(target, meta):
        raise Rejected(f"Its '{field}' names an entry outside its causal past.")
    if known:
        return target
    kinds = (kind,) if isinstance(kind, str) else kind
    found = view.kind_of(target)
    if found not in kinds:
        raise Rejected(f"Its '{field}' names a {found}, not a {' or '.join(kinds)}.")
    return target


def named(table: Any, entry: Entry, field: str) -> tuple[CID | None, Any]:
    """The link in ``entry``'s ``field`` (None if it is none) and the record ``table`` holds
    under it (None if none): a review's contribution, a vote's proposal.  The link is checked
    by :func:`ref`, which is handed it (``linked``) rather than reading it again."""
    try:
        target = link(entry.body.get(field))
    except Exception:
        return None, None
    return target, table.get(target)


def text_field(body: dict[str, Any], field: str, *, required: bool = False, default: str = "") -> str:
    value = body.get(field)
    if value is None:
        if required:
            raise Rejected(f"It lacks the '{field}' field.")
        return default
    if type(value) is not str or len(value) > MAX_TEXT:
        raise Rejected(f"Its '{field}' must be text of at most {MAX_TEXT} characters.")
    return value


def amount_field(body: dict[str, Any], field: str, *, default: int | None = None, positive: bool = False) -> int:
    value = body.get(field, default)
    if type(value) is not int or not (1 if positive else 0) <= value <= MAX_AMOUNT:
        raise Rejected(f"Its '{field}' must be a {'positive' if positive else 'non-negative'} integer.")
    return value


def member_key(body: dict[str, Any]) -> bytes:
    value = body.get("member")
    if type(value) is not bytes or len(value) != 32:
        raise Rejected("Its 'member' must be a 32-byte author key.")
    return value


def resource_spec(spec: Any) -> Resource:
    if type(spec) is not dict:
        raise Rejected("A resource must be a map.")
    name = text_field(spec, "name", required=True)
    rivalrous = spec.get("rivalrous", False)
    if type(rivalrous) is not bool:
        raise Rejected("A resource's 'rivalrous' must be true or false.")
    quota = amount_field(spec, "quota", default=0)
    period = amount_field(spec, "period", default=0)
    capacity = amount_field(spec, "capacity", default=0)
    if capacity and not rivalrous:
        raise Rejected("Only a rivalrous resource has a capacity.")
    if rivalrous and quota == 0 and capacity == 0:
        raise Rejected("A rivalrous resource needs a positive quota.")
    return Resource(name, rivalrous, quota, period, text_field(spec, "unit", default="unit"), capacity)
