"""Membership: join, admission, leave, role (protocols/commons.md §1, §3.5, §3.6).

A newcomer's join is recorded pending and takes effect at the position of the admission
that completes it (stable prefix: an outsider's entry has no effect of its own)."""

from __future__ import annotations

from ...entry import Entry
from ..positions import Meta
from ..records import Join, Member, State, seen
from .common import member_key, ref, standing, text_field
from .registry import Kind
from .view import APPLIED, PENDING, Rejected, View


def _join(v: View, s: State, e: Entry, m: Meta) -> str:
    member = s.members.get(e.author)
    if member is not None and member.status == "active":
        raise Rejected("Its author is already a member.")
    if member is not None and member.status in ("removed", "suspended"):
        raise Rejected(f"Its author was {member.status} and cannot rejoin.")
    s.joins[e.id] = Join(e.author, text_field(e.body, "name"), ())
    return PENDING


def _admission(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["membership"]["admitters"])
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
    del s.joins[join_id]
    for other, pending in list(s.joins.items()):
        if pending.author == join.author:
            del s.joins[other]
    existing = s.members.get(join.author)
    if existing is not None and existing.status == "active":
        return APPLIED
    # Warnings belong to the member identity: leaving and rejoining does not clear them.
    warnings, view = (0, ()) if existing is None else (existing.warnings, existing.view)
    join_seq = v.seq_of(join_id)
    s.members[join.author] = Member(join.name, ("member",), (), "active", e.id, warnings,
                                    seen(view, join_seq, "active"))
    return APPLIED


def _leave(v: View, s: State, e: Entry, m: Meta) -> str:
    member = standing(v, s, e.author, m, None)
    s.members[e.author] = member._replace(status="left", roles=(), grants=(), view=seen(member.view, e.seq, "left"))
    return APPLIED


def _role(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["roles"]["roles"])
    target = member_key(e.body)
    role = e.body.get("role")
    action = e.body.get("action", "grant")
    if role not in ("reviewer", "steward"):
        raise Rejected("Its 'role' must be reviewer or steward.")
    if action not in ("grant", "revoke"):
        raise Rejected("Its 'action' must be grant or revoke.")
    member = s.members.get(target)
    if member is None or member.status != "active":
        raise Rejected("The member it names is not an active member.")
    grants = dict(member.grants)
    if action == "grant":
        grants[role] = e.id
    else:
        grants.pop(role, None)
    roles = tuple(sorted({"member", *grants}))
    s.members[target] = member._replace(roles=roles, grants=tuple(sorted(grants.items())))
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "join": Kind(_join, named=True),
    "admission": Kind(_admission, named=True),
    "leave": Kind(_leave, named=False),
    "role": Kind(_role, named=True),
}
