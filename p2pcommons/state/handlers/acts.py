"""Governed acts a decision may carry (protocols/commons.md §2.2): admission, removal,
reinstatement, role grant and revocation (community roles included), a distribution by the
ledger, a new shared resource (a budget line, say), a spend from a pool (§8), and the appeal
of a review (the decided contribution is re-opened for review, its value taken back from the
ledger).

A proposal's action is checked when proposed (so a proposal nobody could carry out never
opens) and carried out at the position of the entry that decides it — judged there again,
since the world may have moved: if the act is no longer possible the decision *lapses*.
The action is kept as canonical text (ids as CID text, keys as hex), so it enters the state
hash as it is.
"""

from __future__ import annotations

from typing import Any

from ...dagcbor import CID, link
from ...entry import Entry
from ..positions import Meta
from ..records import Resource, State, status_seen
from .common import amount_field, member_key, resource_spec, text_field
from .devices import bindable, device_key, member_of, recover
from .distributions import equation_shares, record
from .membership import admit, change_role, role_field
from .pools import draw, required_pool, spend_fields
from .resources import changed
from .sanctions import decided
from .view import Rejected, View

# Act in a proposal's action -> the rules' name for it (decide.*, electorate.*, ...).
ACTS = {"admission": "admission", "removal": "removal", "reinstatement": "reinstatement", "grant": "role",
        "revoke": "role", "distribution": "distribution", "resource": "resource", "spend": "spend",
        "appeal": "appeal", "resource_change": "resource", "recovery": "recovery"}


def act_of(action: dict[str, Any] | None) -> str:
    """The rules' name for what a proposal decides ("rules" for a rule change)."""
    return "rules" if action is None else ACTS[action["act"]]


def parse(v: View, s: State, e: Entry, m: Meta) -> dict[str, Any]:
    """A proposal's action, checked against the state at its position, as canonical text."""
    action = e.body.get("action")
    if type(action) is not dict or action.get("act") not in ACTS:
        raise Rejected(f"Its 'action' must be a map whose 'act' is one of {', '.join(ACTS)}.")
    act = action["act"]
    if act == "admission":
        try:
            join_id = link(action.get("join"))
        except Exception:
            raise Rejected("Its action's 'join' is not an entry id.") from None
        if not v.in_past(join_id, m) or v.kind_of(join_id) != "join":
            raise Rejected("Its action's 'join' must name a join in its causal past.")
        if join_id not in s.joins:
            raise Rejected("The join it proposes to admit is not pending.")
        return {"act": act, "join": str(join_id)}
    if act == "appeal":
        try:
            work = link(action.get("contribution"))
        except Exception:
            raise Rejected("Its action's 'contribution' is not an entry id.") from None
        if not v.in_past(work, m) or v.kind_of(work) != "contribution":
            raise Rejected("Its action's 'contribution' must name a contribution in its causal past.")
        contribution = s.contributions.get(work)
        if contribution is None or contribution.status == "pending":
            raise Rejected("Only a decided (accepted or rejected) contribution can be appealed.")
        return {"act": act, "contribution": str(work), "reason": text_field(action, "reason", required=True)}
    if act == "distribution":
        parsed: dict[str, Any] = {"act": act, "amount": amount_field(action, "amount", positive=True),
                                  "currency": text_field(action, "currency", default="units")}
        pool = required_pool(s, action)
        if pool is not None:  # only when used: an action without a pool is kept as before (§8)
            parsed["pool"] = pool
        return parsed
    if act == "spend":
        name, amount, payee, reason = spend_fields(s, action)
        return {"act": act, "pool": name, "amount": amount, "member": payee.hex(), "reason": reason}
    if act == "resource":
        spec = resource_spec(action.get("resource"))
        resource: dict[str, Any] = {"act": act, "name": spec.name, "rivalrous": spec.rivalrous, "quota": spec.quota,
                                    "period": spec.period, "unit": spec.unit}
        if spec.capacity:  # only when used (§1.1): an action without one is kept as before
            resource["capacity"] = spec.capacity
        return resource
    if act == "resource_change":
        return {"act": act, **changed(v, s, action, m)[2]}
    target = member_key(action)
    member = s.members.get(target)
    if act == "recovery":
        key = device_key(action)
        if member is None or member.status != "active":
            raise Rejected("The member it recovers is not an active member.")
        bindable(s, key)
        return {"act": act, "member": target.hex(), "device": key.hex()}
    if act in ("removal", "reinstatement"):
        reason = text_field(action, "reason", required=True)
        if member is None:
            raise Rejected("The member it names is not a member.")
        # Judged, as a sanction's target is (§3.6), by the status its causal past shows: the
        # member's own entries outside it (a leave, say) neither shield them nor count.
        seen_status = status_seen(member, v.seen_seq(target, m))
        if act == "removal" and (target == e.author or seen_status not in ("active", "suspended")):
            raise Rejected("It can remove only another active or suspended member.")
        if act == "reinstatement" and (seen_status != "suspended" or member.status != "suspended"):
            raise Rejected("Only a suspended member can be reinstated.")
        return {"act": act, "member": target.hex(), "reason": reason}
    role = role_field(s, action)
    if member is None or member.status != "active":
        raise Rejected("The member it names is not an active member.")
    return {"act": act, "member": target.hex(), "role": role}


def carry_out(v: View, s: State, proposal_id: CID, author: bytes, action: dict[str, Any], decider: Entry,
              m: Meta) -> bool:
    """Carry out an adopted action at the deciding entry's position; False if it lapsed."""
    act = action["act"]
    if act == "admission":
        join_id = CID.parse(action["join"])
        join = s.joins.get(join_id)
        if join is None:
            return False
        admit(v, s, join_id, join, decider.id)
        return True
    if act == "distribution":
        shares = equation_shares(v, s, action["amount"], decider.time)
        try:
            if not shares:
                raise Rejected("no ledger")
            record(s, proposal_id, action["amount"], action["currency"], required_pool(s, action), shares)
        except Rejected:  # an empty ledger, or it would overdraw its pool: it lapses (§8)
            return False
        return True
    if act == "spend":
        try:
            name, amount, payee, reason = spend_fields(s, {**action, "member": bytes.fromhex(action["member"])})
            draw(s, proposal_id, name, amount, payee.hex(), reason)
        except Rejected:  # the member left, or it would overdraw the pool: it lapses (§8)
            return False
        return True
    if act == "appeal":
        return reopen(s, CID.parse(action["contribution"]))
    if act == "resource":
        # The resource's id is the proposal's: a use names the proposal (in its causal past).
        s.resources[proposal_id] = Resource(action["name"], action["rivalrous"], action["quota"], action["period"],
                                            action["unit"], action.get("capacity", 0))
        return True
    if act == "resource_change":
        changes = {**action, "resource": CID.parse(action["resource"])}
        try:
            resource_id, resource, _ = changed(v, s, changes, m)
        except Rejected:  # closed meanwhile, or a period change of a resource used meanwhile: it lapses
            return False
        s.resources[resource_id] = resource
        return True
    target = bytes.fromhex(action["member"])
    if act == "recovery":
        return recover(s, target, bytes.fromhex(action["device"]), decider)
    if act in ("removal", "reinstatement"):
        return decided(v, s, target, "remove" if act == "removal" else "reinstate", action["reason"], proposal_id,
                       author, decider, m)
    try:
        change_role(s, target, role_field(s, action), act == "grant", decider.id)
    except Rejected:
        return False
    return True


def reopen(s: State, target: CID) -> bool:
    """An adopted appeal: the decided contribution is pending again with no reviews (every
    reviewer may review it anew), and an accepted one's value leaves the ledger.  False
    (the appeal lapses) if it is pending again already."""
    contribution = s.contributions.get(target)
    if contribution is None or contribution.status == "pending":
        return False
    if contribution.status == "accepted":
        # Acceptance credited the member the key spoke for then (a key may contribute before
        # it is bound as someone's device); a line that cannot hold the value was not it.
        credited = member_of(s, contribution.author)
        if s.ledger.get(credited, (0, -1))[1] < contribution.value:
            credited = contribution.author
        count, total = s.ledger[credited]
        if count <= 1:
            del s.ledger[credited]
        else:
            s.ledger[credited] = (count - 1, total - contribution.value)
        s.ledger_total -= contribution.value
    s.contributions[target] = contribution._replace(status="pending", accepts=(), rejects=(), value=0)
    return True
