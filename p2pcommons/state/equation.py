"""The value equation (protocols/commons.md §9): from accepted contributions to each
member's weight in a distribution — role weights, time decay, credit along references.

Pure integer arithmetic on the state and entry times, so every node computes the same
numbers.  The distribution handler and ``p2pc ledger --explain`` call the same function
(:func:`weigh`), so an explanation is the computation itself, not a description of it.

Order of operations for one accepted contribution ``c`` (value ``v``: the claimed or
reviewed value times its kind's weight, fixed at acceptance, §3.6):

1. ``weighted = v · role_weight // 100`` — the highest ``role_weights.<role>`` among the
   roles its contributor holds at the distribution's position (100 if none is weighted);
2. ``own = decay(weighted, age)`` with ``age = max(0, t_distribution − t_c)`` (entry times,
   trusted by §2.4) and ``equation.half_life`` ``H`` days: ``own = (weighted · (2h − r) +
   h · 2^k) // (2h · 2^k)`` where ``h = H·86 400 000`` ms, ``k = age // h``, ``r = age % h``
   (0 from ``k ≥ 64``) — halved at every half-life, linear in between, rounded to the
   nearest unit (half up);
3. credit along references: contributions are taken derivatives-first (Kahn's order over
   the accepted ones, ties by id bytes); each passes ``out = total · num // den`` of its
   ``total = own + received`` (``equation.reference_share``) to the accepted contributions
   it references, ``out // n`` each and one more unit to the first ``out % n`` of them by
   id bytes, and keeps ``total − out``.  So the finals sum exactly to the sum of ``own``.
"""

from __future__ import annotations

import heapq
from typing import Any, NamedTuple

from ..dagcbor import CID, encode
from .records import State

DAY_MS = 86_400_000
_MAX_HALVINGS = 64  # beyond, every value (≤ 2⁵³) has decayed to 0


class Line(NamedTuple):
    """One accepted contribution's way through the equation."""

    id: CID
    member: bytes
    value: int  # as accepted (claimed or reviewed, times its kind's weight)
    role: str  # the role whose weight applied ("" when none is weighted)
    role_weight: int
    weighted: int
    age_ms: int
    own: int  # after decay
    credit_in: tuple[tuple[CID, int], ...]  # (derivative, amount) received
    credit_out: tuple[tuple[CID, int], ...]  # (referenced, amount) passed on
    final: int


def equation(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules' value-equation part: kind weights, and the equation's settings and role
    weights when the rules set them."""
    doc: dict[str, Any] = {"values": rules.get("values", {})}
    for section in ("equation", "role_weights"):
        if rules.get(section):
            doc[section] = rules[section]
    return doc


def has_equation(rules: dict[str, Any]) -> bool:
    """Do the rules set anything of the equation beyond kind weights?  Only then does a
    distribution record the equation's hash (so older states hash as before)."""
    return bool(rules.get("equation") or rules.get("role_weights"))


def equation_id(rules: dict[str, Any]) -> str:
    """The equation's hash: the CID (DAG-CBOR, SHA-256) of :func:`equation`, as text."""
    return str(CID.of(encode(equation(rules))))


def decay(value: int, age_ms: int, half_life_days: int) -> int:
    """``value`` after ``age_ms`` with a half-life of ``half_life_days`` (0: no decay)."""
    if not half_life_days or age_ms <= 0:
        return value
    h = half_life_days * DAY_MS
    k, r = divmod(age_ms, h)
    if k >= _MAX_HALVINGS:
        return 0
    return (value * (2 * h - r) + (h << k)) // ((2 * h) << k)  # (rounded to the nearest, half up)


def role_weight(rules: dict[str, Any], roles: tuple[str, ...]) -> tuple[str, int]:
    """The highest weight among ``roles`` that ``role_weights`` sets (ties: the role name
    first in code-point order), or ``("", 100)``."""
    weights = rules.get("role_weights") or {}
    best = ("", 100)
    found = False
    for role in sorted(roles):
        if role in weights and (not found or weights[role] > best[1]):
            best, found = (role, weights[role]), True
    return best


def weigh(s: State, at: int) -> tuple[dict[CID, Line], dict[bytes, int]]:
    """Every accepted contribution's line and each member's weight for a distribution at
    time ``at`` (ms).  Without equation settings the members' weights are the ledger's
    values, exactly as before (§3.6)."""
    from .handlers.devices import member_of  # (here: the handlers import this module)

    rules = s.rules
    settings = rules.get("equation") or {}
    half_life = settings.get("half_life", 0)
    share = settings.get("reference_share")
    accepted = {cid: c for cid, c in s.contributions.items() if c.status == "accepted"}
    own: dict[CID, int] = {}
    partial: dict[CID, tuple[bytes, str, int, int, int]] = {}
    for cid, c in accepted.items():
        member = member_of(s, c.author)
        record = s.members.get(member)
        role, weight = role_weight(rules, record.roles if record is not None else ())
        weighted = c.value * weight // 100
        age = max(0, at - c.time) if half_life else 0
        own[cid] = decay(weighted, age, half_life)
        partial[cid] = (member, role, weight, weighted, age)
    received: dict[CID, list[tuple[CID, int]]] = {cid: [] for cid in accepted}
    passed: dict[CID, list[tuple[CID, int]]] = {cid: [] for cid in accepted}
    final = dict(own)
    if share is not None and share["num"]:
        _credit(accepted, own, share, final, received, passed)
    lines = {}
    for cid in accepted:
        member, role, weight, weighted, age = partial[cid]
        lines[cid] = Line(cid, member, accepted[cid].value, role, weight, weighted, age, own[cid],
                          tuple(received[cid]), tuple(passed[cid]), final[cid])
    if not has_equation(rules):
        return lines, {a: value for a, (_, value) in s.ledger.items()}
    members: dict[bytes, int] = {}
    for line in lines.values():
        members[line.member] = members.get(line.member, 0) + line.final
    return lines, members


def _credit(accepted: dict[CID, Any], own: dict[CID, int], share: dict[str, int], final: dict[CID, int],
            received: dict[CID, list[tuple[CID, int]]], passed: dict[CID, list[tuple[CID, int]]]) -> None:
    """Pass credit derivatives-first.  References point into the causal past, so there is
    no cycle; the loop still ends by construction: each contribution is taken at most once
    (one that a cycle kept from being taken simply keeps what it has)."""
    targets = {cid: sorted({r for r in c.refs if r in accepted and r != cid}, key=lambda x: x.raw)
               for cid, c in accepted.items()}
    waiting = dict.fromkeys(accepted, 0)  # accepted derivatives not yet taken, per contribution
    for refs in targets.values():
        for r in refs:
            waiting[r] += 1
    ready = [cid.raw for cid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    by_raw = {cid.raw: cid for cid in accepted}
    inbound = dict.fromkeys(accepted, 0)
    for _ in range(len(accepted)):
        if not ready:
            break
        cid = by_raw[heapq.heappop(ready)]
        total = own[cid] + inbound[cid]
        refs = targets[cid]
        out = total * share["num"] // share["den"] if refs else 0
        each, extra = divmod(out, len(refs)) if refs else (0, 0)
        for i, r in enumerate(refs):
            amount = each + (1 if i < extra else 0)
            inbound[r] += amount
            if amount:
                received[r].append((cid, amount))
                passed[cid].append((r, amount))
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r.raw)
        final[cid] = total - out
    for cid in accepted:  # (only a cycle could leave one untaken: it keeps its own and what it got)
        if waiting[cid] > 0:
            final[cid] = own[cid] + inbound[cid]
