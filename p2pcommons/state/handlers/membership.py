"""Membership: join, admission, leave, role (protocols/commons.md §1, §3.5, §3.6).

A newcomer's join is recorded pending and takes effect at the position of the admission
that completes it (stable prefix: an outsider's entry has no effect of its own)."""

from __future__ import annotations

from typing import Any

from ...dagcbor import CID
from ...entry import Entry
from ..positions import Meta
from ..records import Join, Member, State, seen
from ..rules import seat_electorate
from .common import alone, member_key, ref, settled, standing, text_field
from .registry import Kind
from .view import APPLIED, PENDING, Rejected, View


def _join(v: View, s: State, e: Entry, m: Meta) -> str:
    member = s.members.get(e.author)
    if member is not None and member.status == "active":
        raise Rejected("Its author is already a member.")
    if member is not None and member.status in ("removed", "suspended"):
        raise Rejected(f"Its author was {member.status} and cannot rejoin.")
    join = Join(e.author, text_field(e.body, "name"), ())
    if e.id not in s.joins:
        s.join_authors[e.author] = s.join_authors.get(e.author, 0) + 1
    s.joins[e.id] = join
    return PENDING


def _admission(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["membership"]["admitters"])
    alone(s, "admission")
    join_id = ref(v, e, m, "join", "join")
    join = s.joins.get(join_id)
    if join is None:
        raise Rejected("The join it admits is not pending (already admitted, or rejected).")
    if e.author in join.approvals:
        raise Rejected("Its author already approved this join.")
    if join.author in s.devices:
        raise Rejected("The join's author is a device bound to a member.")
    join = join._replace(approvals=(*join.approvals, e.author))
    policy = s.rules["membership"]
    needed = policy["approvals"] if policy["policy"] == "approval" else 1
    if len(join.approvals) < needed:
        s.joins[join_id] = join
        return APPLIED
    admit(v, s, join_id, join, e.id)
    return APPLIED


def admit(v: View, s: State, join_id: CID, join: Join, since: CID) -> None:
    """Complete a pending join: its author becomes an active member from the entry ``since``
    (the last admission, or the entry at whose position a decision admitted them)."""
    del s.joins[join_id]
    if s.join_authors.pop(join.author, 1) > 1:  # (rare: the author joined more than once)
        for other, pending in list(s.joins.items()):
            if pending.author == join.author:
                del s.joins[other]
    existing = s.members.get(join.author)
    if existing is not None and existing.status == "active":
        return
    # Warnings belong to the member identity: leaving and rejoining does not clear them.
    warnings, view = (0, ()) if existing is None else (existing.warnings, existing.view)
    join_seq = v.seq_of(join_id)
    s.members[join.author] = Member(join.name, ("member",), (), "active", since, warnings,
                                    seen(view, join_seq, "active"))


def _leave(v: View, s: State, e: Entry, m: Meta) -> str:
    member = standing(v, s, e.author, m, None)
    s.members[e.author] = member._replace(status="left", roles=(), grants=(), view=seen(member.view, e.seq, "left"))
    return APPLIED


def _role(v: View, s: State, e: Entry, m: Meta) -> str:
    settled(v, s, standing(v, s, e.author, m, s.rules["roles"]["roles"]), e, m)
    alone(s, "role")
    target = member_key(e.body)
    role = role_field(s, e.body)
    action = e.body.get("action", "grant")
    if action not in ("grant", "revoke"):
        raise Rejected("Its 'action' must be grant or revoke.")
    if seat_electorate(s.rules, role) is not None:
        raise Rejected(f"The seat {role} is elected by its class (seats.{role}): propose it instead.")
    change_role(s, target, role, action == "grant", e.id)
    return APPLIED


def role_field(s: State, body: dict[str, Any]) -> str:
    """A grantable role: reviewer, steward, or one the community declared (roles.custom)."""
    role = body.get("role")
    custom = s.rules["roles"].get("custom", [])
    if role not in ("reviewer", "steward", *custom):
        raise Rejected(f"Its 'role' must be {' or '.join(('reviewer', 'steward', *custom))}.")
    return str(role)


def change_role(s: State, target: bytes, role: str, grant: bool, by: CID) -> None:
    """Grant (recording the granting entry, for causal checks) or revoke a role."""
    member = s.members.get(target)
    if member is None or member.status != "active":
        raise Rejected("The member it names is not an active member.")
    grants = dict(member.grants)
    if grant:
        grants[role] = by
    else:
        grants.pop(role, None)
    roles = tuple(sorted({"member", *grants}))
    s.members[target] = member._replace(roles=roles, grants=tuple(sorted(grants.items())))



def _vouch(v: View, s: State, e: Entry, m: Meta) -> str:
    """A settled member vouches for a newcomer (§2.5): with ``membership.vouches`` = N, a
    newcomer governs once N members active at their entry's position have vouched for them
    in its causal past.  Why: in an open commons, keys are free; a member's word is not."""
    settled(v, s, standing(v, s, e.author, m, None), e, m)
    target = member_key(e.body)
    if target == e.author:
        raise Rejected("A member cannot vouch for themselves.")
    member = s.members.get(target)
    if member is None or member.status != "active":
        raise Rejected("The member it vouches for is not an active member.")
    if not v.in_past(member.since, m):
        raise Rejected("The admission of the member it vouches for is not in its causal past.")
    given = s.vouches.get(target, ())
    if any(voucher == e.author for voucher, _ in given):
        raise Rejected("Its author already vouched for this member.")
    s.vouches[target] = (*given, (e.author, e.id))
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "join": Kind(_join),
    "admission": Kind(_admission),
    "leave": Kind(_leave),
    "role": Kind(_role),
    "vouch": Kind(_vouch),  # (a newcomer's later entries check it is in their causal past)
}
