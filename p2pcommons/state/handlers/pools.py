"""The treasury (protocols/commons.md §8): pools with balances, payments in, spends out.

A pool is declared by the rules (``pools.<name> = "<unit>"``), so creating one is a rule
change decided like any other.  Money moves only through entries, each recorded as a flow
with the balance after it (an open book anyone holding the commons can audit):

* ``pay`` — an inflow that says who paid and why (dues, a grant, a CopyFair payback…).  It
  never touches the contribution ledger: paying is not contributing.
* ``spend`` — an outflow to a named member, by a treasury role-holder alone unless the rules
  say ``decide.spend`` (then only a ``proposal`` with act ``spend`` moves it, §2.2).
* a ``distribution`` naming a ``pool`` draws its amount from it (§3.6).

No outflow ever exceeds the balance at its position in fold order: concurrent outflows are
ordered by the fold (§3.2) and the one that would overdraw is rejected with the numbers —
so no pool is negative at any position, on any node, whatever the delivery order.
"""

from __future__ import annotations

from typing import Any

from ...dagcbor import CID
from ...entry import Entry
from .. import rules as rules_mod
from ..positions import Meta
from ..records import State, hexkey
from .common import MAX_TOTAL, alone, amount_field, member_key, standing, text_field
from .registry import Kind
from .view import APPLIED, Rejected, View

SOURCES = ("dues", "grant", "payback", "donation", "other")


def pool_field(s: State, body: dict[str, Any]) -> str | None:
    """The pool a body names (None if it names none); it must be declared by the rules."""
    name = body.get("pool")
    if name is None:
        return None
    declared = rules_mod.pools(s.rules)
    if type(name) is not str or name not in declared:
        shown = name if type(name) is str and len(name) <= 64 else "it names"
        raise Rejected(f"There is no pool '{shown}' in the rules (pools.<name> declares one).")
    return name


def required_pool(s: State, body: dict[str, Any]) -> str | None:
    """The pool an outflow draws from: required when the rules declare pools; None (today's
    meaning, nothing drawn) only in a commons whose rules declare none."""
    name = pool_field(s, body)
    if name is None and rules_mod.pools(s.rules):
        raise Rejected("The rules declare pools: it must name the pool it draws from.")
    return name


def check_draw(s: State, name: str, amount: int) -> None:
    """Refuse an outflow that would take the pool below zero, with the numbers."""
    balance = s.pools.get(name, 0)
    if amount > balance:
        unit = rules_mod.pools(s.rules)[name]
        raise Rejected(f"It would overdraw the pool {name}: it holds {balance} {unit}, and {amount} {unit} "
                       f"would leave {balance - amount}.")


def move(s: State, entry_id: CID, name: str, flow: str, amount: int, party: str, why: str) -> None:
    """Record a movement (checked by the caller) and the balance after it."""
    balance = s.pools.get(name, 0) + (amount if flow == "in" else -amount)
    s.pools[name] = balance
    s.flows.append({"id": entry_id, "pool": name, "flow": flow, "amount": amount, "party": party, "why": why,
                    "balance": balance})


def draw(s: State, entry_id: CID, name: str, amount: int, party: str, why: str) -> None:
    check_draw(s, name, amount)
    move(s, entry_id, name, "out", amount, party, why)


def _pay(v: View, s: State, e: Entry, m: Meta) -> str:
    """A payment into a pool.  Any active member records their own; a treasury role-holder
    also records others' (a grant, a company's payback: ``payer`` names them)."""
    payer = e.body.get("payer")
    standing(v, s, e.author, m, None if payer is None else rules_mod.treasury_roles(s.rules))
    name = pool_field(s, e.body)
    if name is None:
        raise Rejected("It lacks the 'pool' field.")
    amount = amount_field(e.body, "amount", positive=True)
    source = e.body.get("source", "dues")
    if source not in SOURCES:
        raise Rejected(f"Its 'source' must be one of {', '.join(SOURCES)}.")
    party = hexkey(e.author) if payer is None else text_field(e.body, "payer", required=True)
    balance = s.pools.get(name, 0) + amount
    if balance > MAX_TOTAL:
        raise Rejected(f"It would bring the pool {name} to {balance}, above the bound {MAX_TOTAL}.")
    move(s, e.id, name, "in", amount, party, source)
    return APPLIED


def _spend(v: View, s: State, e: Entry, m: Meta) -> str:
    """A payout from a pool to a named member, by a treasury role-holder alone (§8)."""
    standing(v, s, e.author, m, rules_mod.treasury_roles(s.rules))
    alone(s, "spend")
    name, amount, member, reason = spend_fields(s, e.body)
    draw(s, e.id, name, amount, hexkey(member), reason)
    return APPLIED


def spend_fields(s: State, body: dict[str, Any]) -> tuple[str, int, bytes, str]:
    """``(pool, amount, member, reason)`` of a spend (an entry's body or a proposal's action)."""
    name = pool_field(s, body)
    if name is None:
        raise Rejected("It lacks the 'pool' field.")
    amount = amount_field(body, "amount", positive=True)
    member = member_key(body)
    reason = text_field(body, "reason", required=True)
    recipient = s.members.get(member)
    if recipient is None or recipient.status != "active":
        raise Rejected("The member it pays is not an active member.")
    return name, amount, member, reason


# Kinds of this family: handler, and whether later entries may name such an entry.
KINDS: dict[str, Kind] = {
    "pay": Kind(_pay),
    "spend": Kind(_spend),
}
