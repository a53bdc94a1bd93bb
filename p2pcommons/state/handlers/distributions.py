"""Benefit distributions (protocols/commons.md §1, §3.6): shares computed from the contribution ledger."""

from __future__ import annotations

from typing import Any

from ...dagcbor import CID
from ...entry import Entry
from .. import equation as eq
from .. import rules as rules_mod
from ..compact import Shares, share
from ..positions import Meta
from ..records import State
from .common import alone, amount_field, ref, standing, text_field
from .pools import check_draw, move, required_pool
from .registry import Kind
from .view import APPLIED, Rejected, View


def _distribution(v: View, s: State, e: Entry, m: Meta) -> str:
    standing(v, s, e.author, m, s.rules["distribution"]["roles"])
    alone(s, "distribution")
    amount = amount_field(e.body, "amount", positive=True)
    currency = text_field(e.body, "currency", default="units")
    pool = required_pool(s, e.body)
    shares = equation_shares(v, s, amount, e.time)
    if not shares:
        raise Rejected("There are no accepted contributions to share among.")
    record(s, e.id, amount, currency, pool, shares)
    return APPLIED


def equation_shares(v: View, s: State, amount: int, at: int) -> dict[bytes, int]:
    """The shares of a distribution at time ``at`` (ms): ``amount`` split by the members'
    weights under the value equation (§9; without one, the ledger's values, §3.6)."""
    if not eq.has_equation(s.rules):
        return compute_shares(s.ledger, amount)
    _, weights = eq.weigh(s, at)
    return compute_shares({member: (0, weight) for member, weight in weights.items()}, amount)


def record(s: State, entry_id: CID, amount: int, currency: str, pool: str | None, shares: dict[bytes, int]) -> None:
    """Append a distribution; with a pool (§8), draw its amount from it (refused, with the
    numbers, if that would overdraw it) and take the pool's unit as its currency.  When the
    rules set a value equation, record its hash (§9)."""
    # (Shares: the amounts packed over a roster shared by distributions to the same members.)
    d: dict[str, Any] = {"id": entry_id, "amount": amount, "currency": share(currency), "shares": Shares(shares)}
    if eq.has_equation(s.rules):
        d["equation"] = eq.equation_id(s.rules)
    if pool is not None:
        check_draw(s, pool, amount)
        d["currency"] = rules_mod.pools(s.rules)[pool]
        d["pool"] = pool
        move(s, entry_id, pool, "out", amount, "", "distribution")
    s.distributions.append(d)


def compute_shares(ledger: dict[bytes, tuple[int, int]], amount: int) -> dict[bytes, int]:
    """Split ``amount`` in proportion to accepted value: floor shares, then the remainder one
    unit at a time by largest remainder (ties by author key), so the shares sum exactly."""
    authors = sorted(ledger)
    values = [ledger[author][1] for author in authors]  # (in key order)
    total = sum(values)
    if total <= 0:
        return {}
    scaled = [amount * value for value in values]
    shares = [x // total for x in scaled]
    left = amount - sum(shares)
    if left:
        # By largest remainder, ties by author key: a stable sort, descending, of the
        # authors' indexes (their key order) by remainder.
        rests = [x % total for x in scaled]
        for i in sorted(range(len(rests)), key=rests.__getitem__, reverse=True)[:left]:
            shares[i] += 1
    return {author: value for author, value in zip(authors, shares, strict=True) if value}


def _receipt(v: View, s: State, e: Entry, m: Meta) -> str:
    """A recipient acknowledges their share of a distribution (§9): it names the
    distribution (its entry, or the proposal that decided it), in its causal past."""
    standing(v, s, e.author, m, None)
    target = ref(v, e, m, "distribution", ("distribution", "proposal"))
    text_field(e.body, "note")
    for i, d in enumerate(s.distributions):
        if d["id"] == target:
            if e.author not in d["shares"]:
                raise Rejected("Its author has no share in that distribution.")
            acknowledged = d.get("acknowledged", ())
            if e.author in acknowledged:
                raise Rejected("Its author already acknowledged that distribution.")
            # (replaced, never mutated: snapshots share the list's items)
            s.distributions[i] = {**d, "acknowledged": tuple(sorted((*acknowledged, e.author)))}
            return APPLIED
    raise Rejected("The distribution it acknowledges had no effect.")


# Kinds of this family: handler, and whether later entries may name such an entry (a record
# in the state points at it: the replayer keeps its position when it evicts the entry).
KINDS: dict[str, Kind] = {
    "distribution": Kind(_distribution),
    "receipt": Kind(_receipt),
}
