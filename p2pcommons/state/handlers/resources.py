"""Resources and their use (protocols/commons.md §1.1, §3.6, §3.7): rivalrous ones have quotas
per period; a resource's quota, capacity or period can be changed, and it can be closed, by a
steward alone or by a decision, as the rules say (``decide.resource``)."""

from __future__ import annotations

from typing import Any

from ...dagcbor import CID, link
from ...entry import Entry
from ..positions import Meta
from ..records import Resource, State
from .common import MAX_TOTAL, alone, amount_field, ref, resource_spec, standing
from .registry import Kind
from .view import APPLIED, Rejected, View


def _resource_add(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["resources"]["roles"])
    alone(s, "resource")
    s.resources[e.id] = resource_spec(e.body)
    return APPLIED


def _known(v: View, s: State, body: dict[str, Any], m: Meta, verb: str, unknown: str) -> tuple[CID, Resource]:
    """The resource an entry's ``resource`` field names: known in the state at this position
    and, if an entry added it, in the entry's causal past (the genesis's resources always are).
    ``verb`` and ``unknown`` complete the rejections' sentences."""
    try:
        target = link(body.get("resource"))
    except Exception:
        raise Rejected("Its 'resource' is not an entry id.") from None
    resource = s.resources.get(target)
    if resource is None:
        raise Rejected(f"The resource it {verb} is not known{unknown}.")
    # (Whether it is an entry first: a genesis resource's id is none, and is then not looked
    # up twice; an entry's is, and must be in the causal past.)
    if target != v.commons and v.is_entry(target) and not v.in_past(target, m):
        raise Rejected(f"The resource it {verb} was added outside its causal past.")
    return target, resource


def _resource_use(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["resources"]["use_roles"])
    target, resource = _known(v, s, e.body, m, "uses", " (not added, or outside its causal past)")
    if resource.closed:
        raise Rejected(f"The resource {resource.name} is closed: it takes no new uses.")
    amount = amount_field(e.body, "amount", positive=True)
    period = e.time // (resource.period * 1000) if resource.period else 0
    key = (target, period, e.author)
    used = s.usage.get(key, 0)
    if resource.rivalrous and resource.quota and used + amount > resource.quota:
        raise Rejected(f"It exceeds the quota of {resource.name} ({used} + {amount} > {resource.quota} "
                        f"{resource.unit} per period).")
    lifetime = (target, e.author)
    total = s.totals.get(lifetime, 0) + amount
    if total > MAX_TOTAL:
        raise Rejected(f"It would bring its author's use of {resource.name} to {total} {resource.unit}, above the "
                        f"bound {MAX_TOTAL}.")
    if resource.capacity:
        taken = s.booked.get((target, period), 0)
        if taken + amount > resource.capacity:
            raise Rejected(f"It exceeds the capacity of {resource.name} ({taken} + {amount} > {resource.capacity} "
                           f"{resource.unit} per period for the whole commons).")
        s.booked[(target, period)] = taken + amount
    if resource.rivalrous:
        s.bookings.insert(e.id, (target, period, e.author, amount))  # (the entry's own id: new to the state)
    s.usage[key] = used + amount
    s.totals[lifetime] = total
    return APPLIED


def _resource_cancel(v: View, s: State, e: Entry, m: Meta) -> str:
    """Cancel one's own use of a rivalrous resource (a booked seat): what it took is free
    again for its period, for the member's quota and the commons' capacity (§1.1)."""
    standing(v, s, e.author, m, s.rules["resources"]["use_roles"])
    use = ref(v, e, m, "use", "resource_use")
    booking = s.bookings.get(use)
    if booking is None:
        raise Rejected("The use it cancels had no effect, was already cancelled, or was of a non-rivalrous resource.")
    target, period, author, amount = booking
    if author != e.author:
        raise Rejected("Only the member who used a resource may cancel that use.")
    del s.bookings[use]
    key = (target, period, author)
    left = s.usage[key] - amount
    if left:
        s.usage[key] = left
    else:
        del s.usage[key]
    s.totals[(target, author)] -= amount
    if (target, period) in s.booked:
        s.booked[(target, period)] -= amount
    return APPLIED


CHANGES = ("quota", "capacity", "period", "close")


def changed(v: View, s: State, body: dict[str, Any], m: Meta) -> tuple[CID, Resource, dict[str, Any]]:
    """A change of a resource (§1.1), checked against the state at this position: ``(id, the
    resource as changed, the change as canonical text)``.  The resource must be known, in
    the causal past (if an entry), and open; the changed resource valid as a new one would
    be; a period changes only while the resource is unused (its uses are counted per period
    index, which a new length would re-map)."""
    target, resource = _known(v, s, body, m, "changes", "")
    if resource.closed:
        raise Rejected(f"The resource {resource.name} is closed already.")
    if not any(field in body for field in CHANGES):
        raise Rejected(f"It changes nothing: give one of {', '.join(CHANGES)}.")
    text: dict[str, Any] = {"resource": str(target)}
    close = body.get("close", False)
    if type(close) is not bool:
        raise Rejected("Its 'close' must be true or false.")
    if close:
        text["close"] = True
    spec = resource._asdict()
    for field in ("quota", "capacity", "period"):
        if field in body:
            spec[field] = text[field] = amount_field(body, field)
    if spec["period"] != resource.period and any(key[0] == target for key in s.totals):
        raise Rejected(f"The period of {resource.name} can change only while it is unused.")
    new = resource_spec({name: value for name, value in spec.items() if name != "closed"})._replace(closed=close)
    return target, new, text


def _resource_change(v: View, s: State, e: Entry, m: Meta) -> str:
    """A role-holder changes a resource's quota, capacity or period, or closes it (§1.1)."""
    standing(v, s, e.author, m, s.rules["resources"]["roles"])
    alone(s, "resource")
    target, resource, _ = changed(v, s, e.body, m)
    s.resources[target] = resource
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "resource_add": Kind(_resource_add),
    "resource_use": Kind(_resource_use),
    "resource_cancel": Kind(_resource_cancel),
    "resource_change": Kind(_resource_change),
}
