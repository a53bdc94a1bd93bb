"""Sanctions: warning, suspension, removal, reinstatement (protocols/commons.md §1, §3.4, §3.6).

A sanction is judged by its causal past; an effective suspension or removal is strong
(:meth:`.view.View.excluding`)."""

from __future__ import annotations

from ...dagcbor import CID
from ...entry import Entry
from ..positions import Meta
from ..records import State, seen, status_seen
from .common import alone, member_key, settled, standing, text_field
from .devices import devices_of
from .registry import Kind
from .view import APPLIED, Rejected, View

SANCTION_ACTIONS = ("warning", "suspend", "remove", "reinstate")

def _sanction(v: View, s: State, e: Entry, m: Meta) -> str:
    """Whether a sanction takes effect is judged, for its target as for its author, by what
    its causal past holds: the target's status is the one the sanction's author saw (their
    own entries outside its causal past — a leave, a join and the admission completing it —
    do not count, neither to shield them nor to make them a member).  Only a sanction that
    takes effect excludes anything (strong removal); a rejected one changes nothing."""
    settled(v, s, standing(v, s, e.author, m, s.rules["sanctions"]["roles"]), e, m)
    target = member_key(e.body)
    action = e.body.get("action")
    if action not in SANCTION_ACTIONS:
        raise Rejected(f"Its 'action' must be one of {', '.join(SANCTION_ACTIONS)}.")
    reason = text_field(e.body, "reason", required=True)
    if action in ("remove", "reinstate"):
        alone(s, "removal" if action == "remove" else "reinstatement")
    member = s.members.get(target)
    if member is None:
        raise Rejected("The member it names is not a member.")
    if target == e.author and action in ("suspend", "remove"):
        raise Rejected("A member cannot suspend or remove themselves (use leave).")
    seen_status = status_seen(member, v.seen_seq(target, m))
    if seen_status is None:
        raise Rejected("The member it names is not a member in its causal past.")
    if action == "reinstate":
        if seen_status != "suspended" or member.status != "suspended":
            raise Rejected("Only a suspended member can be reinstated.")
        s.members[target] = member._replace(status="active", view=seen(member.view, 0, "active"))
        s.lifted[target] = e.id
        for device in devices_of(s, target):  # its devices' suspensions are lifted with it
            s.lifted[device] = e.id
    else:
        if seen_status in ("removed", "left") or (seen_status == "suspended" and action != "remove"):
            raise Rejected(f"The member is already {seen_status}.")
        if action == "warning":
            member = member._replace(warnings=member.warnings + 1)
        else:
            if v.is_void(e.id, target):
                raise Rejected("It could take effect only through entries of its target that it would "
                                "exclude (outside its causal past), so it has none.")
            # Excludes the target's entries outside its causal past; if one was applied
            # before this position (a leave, a rejoin), this raises _Conflict and the fold
            # replays from there with the exclusion in force.
            # The member's devices bound here are excluded with it: a removed member's device
            # cannot backdate around the removal either.  (A device bound later is bound by an
            # entry of theirs outside this one's causal past, which is excluded.)
            devices = list(devices_of(s, target))
            for key in (target, *devices):
                v.excluding(key, e.id, m, action == "suspend")
            status = "suspended" if action == "suspend" else "removed"
            member = member._replace(status=status, view=seen(member.view, 0, status))
            for key in (target, *devices):
                s.lifted.pop(key, None)
            if action == "remove":
                member = member._replace(roles=(), grants=())
        s.members[target] = member
    s.sanctions.append({"id": e.id, "member": target, "action": action, "reason": reason, "by": e.author})
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "sanction": Kind(_sanction),
}


def decided(v: View, s: State, target: bytes, action: str, reason: str, record: CID, by: bytes, decider: Entry,
            m: Meta) -> bool:
    """Carry out a removal or reinstatement a decision adopted, at the position of the entry
    that decided it (``decider``: the vote that carried it, or the entry that closed it at
    its deadline), judged like a sanction written there (§3.6): the target's status as that
    entry had seen it.  False if it is no longer possible (the decision then lapses).  A
    removal is strong, as a sanction's: it excludes the member's entries outside the deciding
    entry's causal past."""
    member = s.members.get(target)
    if member is None:
        return False
    seen_status = status_seen(member, v.seen_seq(target, m))
    if action == "reinstate":
        if seen_status != "suspended" or member.status != "suspended":
            return False
        s.members[target] = member._replace(status="active", view=seen(member.view, 0, "active"))
        s.lifted[target] = decider.id
    else:
        if seen_status in (None, "removed", "left") or v.is_void(decider.id, target):
            return False
        # Strong removal exactly as a sanction's (§3.4): the member's entries (and their
        # devices') outside the deciding entry's causal past are excluded, wherever they sort.
        # A decision that could take effect only through such entries is void: it lapses.
        devices = list(devices_of(s, target))
        for key in (target, *devices):
            v.excluding(key, decider.id, m, False)
        s.members[target] = member._replace(status="removed", roles=(), grants=(),
                                            view=seen(member.view, 0, "removed"))
        for key in (target, *devices):
            s.lifted.pop(key, None)
    s.sanctions.append({"id": record, "member": target, "action": action, "reason": reason, "by": by})
    return True
