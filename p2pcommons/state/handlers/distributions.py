"""Benefit distributions (protocols/commons.md §1, §3.6): shares computed from the contribution ledger."""

from __future__ import annotations

from ...dagcbor import CID
from ...entry import Entry
from .. import rules as rules_mod
from ..positions import Meta
from ..records import State
from .common import alone, amount_field, standing, text_field
from .pools import check_draw, move, required_pool
from .registry import Kind
from .view import APPLIED, Rejected, View


def _distribution(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["distribution"]["roles"])
    alone(s, "distribution")
    amount = amount_field(e.body, "amount", positive=True)
    currency = text_field(e.body, "currency", default="units")
    pool = required_pool(s, e.body)
    shares = compute_shares(s.ledger, amount)
    if not shares:
        raise Rejected("There are no accepted contributions to share among.")
    record(s, e.id, amount, currency, pool, shares)
    return APPLIED


def record(s: State, entry_id: CID, amount: int, currency: str, pool: str | None, shares: dict[bytes, int]) -> None:
    """Append a distribution; with a pool (§8), draw its amount from it (refused, with the
    numbers, if that would overdraw it) and take the pool's unit as its currency."""
    d = {"id": entry_id, "amount": amount, "currency": currency, "shares": shares}
    if pool is not None:
        check_draw(s, pool, amount)
        d["currency"] = rules_mod.pools(s.rules)[pool]
        d["pool"] = pool
        move(s, entry_id, pool, "out", amount, "", "distribution")
    s.distributions.append(d)


def compute_shares(ledger: dict[bytes, tuple[int, int]], amount: int) -> dict[bytes, int]:
    """Split ``amount`` in proportion to accepted value: floor shares, then the remainder one
    unit at a time by largest remainder (ties by author key), so the shares sum exactly."""
    total = sum(value for _, value in ledger.values())
    if total <= 0:
        return {}
    shares = {}
    remainders = []
    for author in sorted(ledger):
        value = ledger[author][1]
        shares[author] = amount * value // total
        remainders.append((-(amount * value % total), author))
    left = amount - sum(shares.values())
    for _, author in sorted(remainders)[:left]:
        shares[author] += 1
    return {a: v for a, v in shares.items() if v}


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "distribution": Kind(_distribution, named=False),
}
