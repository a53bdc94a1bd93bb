"""Devices: a member is not a key (protocols/commons.md §1.2, §3.8).

A member identity authorizes device keys with ``device`` entries; each device signs its own
log with its own key, and its entries count as the member's: every handler sees such an
entry with the member as its author (:func:`speaking_for`), so roles, votes (one member, one
vote, whatever the number of devices), quotas, the ledger and shares are per member.  A
revoked device is strongly removed (its entries outside the revocation's causal past have
no effect, however backdated), like a removed member; a device whose log forks loses its
entries from the fork point (the replayer's fork penalty, per key), and the member carries
on from another device.  A commons where nobody binds a device keeps its state hash: the
``devices`` table is hashed only when it is not empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ...entry import Entry
from ..positions import Meta
from ..records import Device, Member, State
from ..rules import recovery_policy
from .common import alone, member_key, standing
from .registry import Kind
from .view import APPLIED, Rejected, View

DEVICE_ACTIONS = ("add", "revoke", "recover")
# Acts of the member identity itself, not of a device: they change how the member's own log
# is judged (protocols/commons.md §3.6), so only the member's own key writes them.
IDENTITY_KINDS = ("join", "leave")


def member_of(state: State, author: bytes) -> bytes:
    """The member an author key speaks for: its member if it is a bound device, else itself."""
    device = state.devices.get(author)
    return author if device is None else device.member


def devices_of(state: State, member: bytes) -> Iterator[bytes]:
    """The member's bound device keys (revoked or not; not the member's own key)."""
    for key, device in state.devices.items():
        if device.member == member and key != member:
            yield key


def holds_stability(members: Mapping[bytes, Member], devices: Mapping[bytes, Device], author: bytes) -> bool:
    """Whether ``author`` is one of :func:`stability_holders`, asked of one key (the
    replayer's eviction front asks it of the few latest entries it looks at: :mod:`..front`)."""
    return _holds_as_member(members, devices, author) or _holds_as_device(members, devices, author)


def stability_holders(state: State) -> Iterator[bytes]:
    """The keys whose next entries may still take effect for an active or suspended member:
    the member's own key (unless revoked) and each of its active devices.  Their latest
    entries define stability (§4); the replayer drops forked and retired ones.  (Exactly the
    keys for which :func:`holds_stability` is true; a key both a member and a device may
    come twice.)"""
    members, devices = state.members, state.devices
    for author in members:
        if _holds_as_member(members, devices, author):
            yield author
    for key in devices:
        if _holds_as_device(members, devices, key):
            yield key


def _holds_as_member(members: Mapping[bytes, Member], devices: Mapping[bytes, Device], author: bytes) -> bool:
    """An active or suspended member's own key, unless revoked."""
    member = members.get(author)
    if member is None or member.status not in ("active", "suspended"):
        return False
    own = devices.get(author)
    return own is None or own.revocation is None


def _holds_as_device(members: Mapping[bytes, Member], devices: Mapping[bytes, Device], key: bytes) -> bool:
    """An active device bound to an active or suspended member."""
    device = devices.get(key)
    if device is None or device.revocation is not None or key == device.member:
        return False
    owner = members.get(device.member)
    return owner is not None and owner.status in ("active", "suspended")


def as_author(entry: Entry, author: bytes) -> Entry:
    """The same entry (same id, body, position) with ``author`` as its author, for handlers."""
    clone = Entry.__new__(Entry)
    for name in Entry.__slots__:
        setattr(clone, name, getattr(entry, name))
    clone.author = author
    return clone


def speaking_for(v: View, s: State, e: Entry, m: Meta) -> Entry:
    """The entry as every handler judges it: a bound device's entry with its member as its
    author (the same entry otherwise).  The binding must be in the entry's causal past (an
    entry written before the device was bound has no effect)."""
    device = s.devices.get(e.author)
    if device is None or device.binding is None:
        return e
    if not v.in_past(device.binding, m):
        raise Rejected("Its device's binding to its member is not in its causal past "
                       "(written before the device was bound).")
    if e.kind in IDENTITY_KINDS:
        raise Rejected(f"A device cannot {e.kind}; its member's own key writes that.")
    return as_author(e, device.member)


def device_key(body: dict[str, object]) -> bytes:
    value = body.get("device")
    if type(value) is not bytes or len(value) != 32:
        raise Rejected("Its 'device' must be a 32-byte key.")
    return value


def bindable(s: State, key: bytes) -> None:
    """Refuse a key that cannot be bound to a member (a member's, a device's, a joiner's)."""
    if key in s.members:
        raise Rejected("The key it binds is a member's key.")
    if key in s.devices:
        raise Rejected("The key it binds is already bound to a member (or was, and was revoked).")
    if any(join.author == key for join in s.joins.values()):
        raise Rejected("The key it binds has a pending join.")


def _recover(v: View, s: State, e: Entry, m: Meta, key: bytes) -> str:
    """One approval of binding ``key`` to a member who lost every device (§1.3): by a member
    holding a role the rules name (``recovery.roles``, default steward); the key is bound at
    the approval that makes ``yes * den > eligible * num`` (``recovery.threshold``, default
    a majority), eligible being the active members holding such a role, the member being
    recovered excepted."""
    roles, threshold = recovery_policy(s.rules)
    standing(v, s, e.author, m, roles)
    alone(s, "recovery")
    target = member_key(e.body)
    member = s.members.get(target)
    if member is None or member.status != "active":
        raise Rejected("The member it recovers is not an active member.")
    if target == e.author:
        raise Rejected("A member cannot recover themselves (bind a device from one of their keys instead).")
    bindable(s, key)
    approvals = s.recoveries.get((target, key), ())
    if e.author in approvals:
        raise Rejected("Its author already approved this recovery.")
    approvals = (*approvals, e.author)
    eligible = sum(1 for author, x in s.members.items() if author != target and x.status == "active"
                   and any(role in x.roles for role in roles))
    if len(approvals) * threshold["den"] > eligible * threshold["num"]:
        recover(s, target, key, e)
    else:
        s.recoveries[(target, key)] = approvals
    return APPLIED


def recover(s: State, target: bytes, key: bytes, by: Entry) -> bool:
    """Bind ``key`` to ``target`` at the entry ``by`` (the approval that completed a recovery,
    or the entry that decided one, §2.2): the device's entries must have it in their causal
    past.  Pending approvals for the member or the key are dropped.  False (a decision then
    lapses) if the member is no longer active or the key no longer bindable."""
    member = s.members.get(target)
    if member is None or member.status != "active":
        return False
    try:
        bindable(s, key)
    except Rejected:
        return False
    for pending in [k for k in s.recoveries if k[0] == target or k[1] == key]:
        del s.recoveries[pending]
    s.devices[key] = Device(target, by.id, None)
    return True


def _device(v: View, s: State, e: Entry, m: Meta) -> str:
    """Bind a key to the author's member, or revoke one of the member's keys (a device, or
    the member's own key).  Written by the member's own key or any of its active devices
    (``e.author`` is already the member here: :func:`speaking_for`).  ``recover``: another
    member's approval of binding a key to a member who lost every device (§1.3)."""
    key = device_key(e.body)
    action = e.body.get("action", "add")
    if action not in DEVICE_ACTIONS:
        raise Rejected("Its 'action' must be add, revoke or recover.")
    if action == "recover":
        return _recover(v, s, e, m, key)
    standing(v, s, e.author, m, None)
    known = s.devices.get(key)
    if action == "add":
        bindable(s, key)
        s.devices[key] = Device(e.author, e.id, None)
        return APPLIED
    if key == e.author:  # the member's own key, retired as a device
        if known is not None:
            raise Rejected("The member's own key is already revoked.")
    elif known is None or known.member != e.author:
        raise Rejected("The key it revokes is not a device of its author's member.")
    elif known.revocation is not None:
        raise Rejected("The device it revokes is already revoked.")
    elif known.binding is not None and not v.in_past(known.binding, m):
        raise Rejected("The device's binding is not in its causal past.")
    if v.is_void(e.id, key):
        raise Rejected("It could take effect only through entries of the device it would exclude "
                       "(outside its causal past), so it has none.")
    # Strong removal: the device's entries outside this entry's causal past have no effect,
    # wherever they sort (an excluded entry already applied makes the fold replay).
    v.excluding(key, e.id, m, False)
    s.devices[key] = Device(e.author, None if known is None else known.binding, e.id)
    return APPLIED


# Kinds of this family: handler, and whether later entries may name such an entry (a device's
# entries check that its binding is in their causal past: the replayer keeps its position).
KINDS: dict[str, Kind] = {
    "device": Kind(_device),
}
