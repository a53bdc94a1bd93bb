"""The treasury (protocols/commons.md §8): pools with balances, payments in, spends and
distributions out — examples, then properties: no pool is ever negative, on any node, in
any delivery order; every node computes the same balances; shares sum exactly."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from p2pcommons.state import APPLIED, REJECTED
from p2pcommons.state.handlers.distributions import compute_shares
from tests.support.decisions import T0, Town
from tests.test_state_histories import prop_settings

POOLS = {"pools": {"fund": "EUR", "tools": "hours"}}


def _outcome(town: Town, entry: Any) -> tuple[str, str]:
    outcome = town.fold().outcome(entry.id)
    assert outcome is not None
    return outcome.status, outcome.reason


def _with_ledger(town: Town, time: int) -> None:
    """Founder 1 contributes and founder 0 accepts it, so distributions have someone to pay."""
    town.sync(1, 0)
    work = town.write(1, "contribution", {"title": "seed bank", "value": 10}, time)
    town.sync(0, 1)
    town.write(0, "review", {"contribution": work.id, "verdict": "accept"}, time + 1)
    for i in range(1, town.n):
        town.sync(i, 0)


def test_payments_in_say_who_paid_and_why_and_never_credit_the_payer() -> None:
    town = Town(stewards=2, rules=POOLS)
    dues = town.write(1, "pay", {"pool": "fund", "amount": 200, "source": "dues"}, T0 + 100)
    town.sync(0, 1)
    payback = town.write(0, "pay", {"pool": "fund", "amount": 2000, "source": "payback", "payer": "Acme Tools Ltd"},
                         T0 + 200)
    state = town.fold()
    assert state.outcome(dues.id).status == APPLIED  # type: ignore[union-attr]
    assert state.outcome(payback.id).status == APPLIED  # type: ignore[union-attr]
    assert state.canonical["pools"] == {"fund": {"unit": "EUR", "balance": 2200},
                                        "tools": {"unit": "hours", "balance": 0}}
    assert [(f["flow"], f["amount"], f["party"], f["why"], f["balance"]) for f in state.canonical["flows"]] == [
        ("in", 200, town.member_hex(1), "dues", 200), ("in", 2000, "Acme Tools Ltd", "payback", 2200)]
    assert state.canonical["ledger"] == {}  # paying is not contributing


def test_only_a_treasury_role_records_what_someone_else_paid() -> None:
    town = Town(stewards=1, authors=3, rules=POOLS)
    town.sync(2, 0)
    join = town.write(2, "join", {"name": "newcomer"}, T0 + 50)
    town.sync(0, 2)
    town.write(0, "admission", {"join": join.id}, T0 + 60)
    town.sync(2, 0)
    claim = town.write(2, "pay", {"pool": "fund", "amount": 5, "payer": "Big Grant Foundation"}, T0 + 100)
    assert _outcome(town, claim) == (REJECTED, "Its author lacks the role needed (steward).")
    unknown = town.write(2, "pay", {"pool": "bank", "amount": 5}, T0 + 110)
    assert _outcome(town, unknown) == (REJECTED, "There is no pool 'bank' in the rules (pools.<name> declares one).")
    source = town.write(2, "pay", {"pool": "fund", "amount": 5, "source": "bribe"}, T0 + 120)
    assert _outcome(town, source) == (REJECTED, "Its 'source' must be one of dues, grant, payback, donation, other.")


def test_a_spend_never_overdraws_and_says_the_numbers() -> None:
    town = Town(stewards=2, rules=POOLS)
    town.write(0, "pay", {"pool": "fund", "amount": 200}, T0 + 100)
    over = town.write(0, "spend", {"pool": "fund", "amount": 1500, "member": town.key(1), "reason": "sick leave"},
                      T0 + 200)
    assert _outcome(town, over) == (REJECTED, "It would overdraw the pool fund: it holds 200 EUR, and 1500 EUR "
                                              "would leave -1300.")
    ok = town.write(0, "spend", {"pool": "fund", "amount": 150, "member": town.key(1), "reason": "sick leave"},
                    T0 + 300)
    state = town.fold()
    assert state.outcome(ok.id).status == APPLIED  # type: ignore[union-attr]
    assert state.canonical["pools"]["fund"]["balance"] == 50
    assert state.canonical["flows"][-1] == {"id": str(ok.id), "pool": "fund", "flow": "out", "amount": 150,
                                            "party": town.member_hex(1), "why": "sick leave", "balance": 50}
    assert state.canonical["ledger"] == {}  # a payout is not a contribution either


def test_concurrent_spends_one_is_rejected_in_every_delivery_order() -> None:
    town = Town(stewards=3, rules=POOLS)
    town.write(0, "pay", {"pool": "fund", "amount": 200}, T0 + 100)
    town.sync(1, 0)
    town.sync(2, 0)
    a = town.write(1, "spend", {"pool": "fund", "amount": 150, "member": town.key(0), "reason": "roof"}, T0 + 200)
    b = town.write(2, "spend", {"pool": "fund", "amount": 150, "member": town.key(0), "reason": "van"}, T0 + 200)
    hashes = set()
    for seed in range(6):
        order = list(town.entries)
        random.Random(seed).shuffle(order)
        state = town.fold(order)
        hashes.add(state.state_hash)
        statuses = sorted(state.outcome(x.id).status for x in (a, b))  # type: ignore[union-attr]
        assert statuses == [APPLIED, REJECTED]
        assert state.canonical["pools"]["fund"]["balance"] == 50
    assert len(hashes) == 1


def test_a_distribution_draws_from_a_pool_when_the_rules_declare_pools() -> None:
    town = Town(stewards=2, rules=POOLS)
    _with_ledger(town, T0 + 50)
    bare = town.write(0, "distribution", {"amount": 1_000_000}, T0 + 100)
    assert _outcome(town, bare) == (REJECTED, "The rules declare pools: it must name the pool it draws from.")
    over = town.write(0, "distribution", {"amount": 1_000_000, "pool": "fund"}, T0 + 110)
    assert _outcome(town, over) == (REJECTED, "It would overdraw the pool fund: it holds 0 EUR, and 1000000 EUR "
                                              "would leave -1000000.")
    town.write(0, "pay", {"pool": "fund", "amount": 300, "source": "grant", "payer": "City"}, T0 + 120)
    paid = town.write(0, "distribution", {"amount": 300, "pool": "fund", "currency": "ignored"}, T0 + 130)
    state = town.fold()
    assert state.outcome(paid.id).status == APPLIED  # type: ignore[union-attr]
    assert state.canonical["distributions"] == [{"id": str(paid.id), "amount": 300, "currency": "EUR",
                                                 "shares": {town.member_hex(1): 300}, "pool": "fund"}]
    assert state.canonical["pools"]["fund"]["balance"] == 0


def test_a_commons_without_pools_distributes_as_before() -> None:
    town = Town(stewards=2)
    _with_ledger(town, T0 + 50)
    entry = town.write(0, "distribution", {"amount": 100}, T0 + 100)
    state = town.fold()
    assert state.outcome(entry.id).status == APPLIED  # type: ignore[union-attr]
    assert "pools" not in state.canonical and "flows" not in state.canonical
    assert "pool" not in state.canonical["distributions"][0]


def test_a_solidarity_claim_is_decided_and_lapses_if_it_would_overdraw() -> None:
    rules = {**POOLS, "decide": {"spend": True}, "electorate": {"spend": ["member"]}}
    town = Town(stewards=3, rules=rules)
    town.write(0, "pay", {"pool": "fund", "amount": 200}, T0 + 100)
    direct = town.write(0, "spend", {"pool": "fund", "amount": 10, "member": town.key(1), "reason": "x"}, T0 + 150)
    assert _outcome(town, direct) == (REJECTED, "The rules require a decision for this act (decide.spend): "
                                                "propose it instead.")
    town.sync(1, 0)
    claim = town.write(1, "proposal", {"action": {"act": "spend", "pool": "fund", "amount": 120,
                                                  "member": town.key(1), "reason": "sick leave"}}, T0 + 200)
    town.sync(0, 1)
    town.sync(2, 1)
    big = town.write(2, "proposal", {"action": {"act": "spend", "pool": "fund", "amount": 150,
                                                "member": town.key(0), "reason": "flood"}}, T0 + 210)
    town.sync(0, 2)
    own = town.write(1, "vote", {"proposal": claim.id, "choice": "yes"}, T0 + 250)
    assert _outcome(town, own) == (REJECTED, "The member a proposal names does not vote on it.")
    town.write(0, "vote", {"proposal": claim.id, "choice": "yes"}, T0 + 300)
    state = town.fold()
    doc = state.canonical["proposals"][str(claim.id)]
    assert doc["status"] == "open"  # 1 of the 2 who may vote on it: not more than half
    town.sync(2, 0)
    town.write(2, "vote", {"proposal": claim.id, "choice": "yes"}, T0 + 400)
    town.write(2, "vote", {"proposal": big.id, "choice": "yes"}, T0 + 410)
    town.sync(1, 2)
    town.write(1, "vote", {"proposal": big.id, "choice": "yes"}, T0 + 420)
    state = town.fold()
    assert state.canonical["proposals"][str(claim.id)]["status"] == "adopted"
    assert state.canonical["proposals"][str(big.id)]["status"] == "lapsed"  # 80 left, 150 asked
    assert state.canonical["pools"]["fund"]["balance"] == 80
    assert state.canonical["flows"][-1]["party"] == town.member_hex(1)


def test_a_pool_is_declared_by_a_rule_change_and_its_unit_cannot_change() -> None:
    town = Town(stewards=1)
    create = town.write(0, "rule_proposal", {"changes": {"pools.solidarity": "EUR"}}, T0 + 100)
    assert town.fold().canonical["proposals"][str(create.id)]["status"] == "adopted"
    change = town.write(0, "rule_proposal", {"changes": {"pools.solidarity": "USD"}}, T0 + 200)
    assert _outcome(town, change)[0] == REJECTED
    assert "a pool's unit cannot change" in _outcome(town, change)[1]
    assert town.fold().canonical["pools"] == {"solidarity": {"unit": "EUR", "balance": 0}}


# --- properties --------------------------------------------------------------------------

ACTORS = 3  # founders 0..2: stewards, so each may pay, spend and distribute


@st.composite
def treasuries(draw: Any) -> tuple[Town, int]:
    """A commons with two pools and random movements by three treasurers who see each other's
    entries only now and then, so outflows are often concurrent."""
    town = Town(stewards=ACTORS, rules=POOLS)
    _with_ledger(town, T0 + 10)
    steps = draw(st.lists(st.tuples(st.integers(0, ACTORS - 1), st.sampled_from(["pay", "spend", "distribution",
                                                                                 "sync"]),
                                     st.sampled_from(["fund", "tools"]), st.integers(1, 400),
                                     st.integers(0, ACTORS - 1)), min_size=1, max_size=24))
    for n, (who, what, pool, amount, other) in enumerate(steps):
        time = T0 + 100 + n
        if what == "sync":
            town.sync(who, other)
        elif what == "pay":
            town.write(who, "pay", {"pool": pool, "amount": amount}, time)
        elif what == "spend":
            town.write(who, "spend", {"pool": pool, "amount": amount, "member": town.key(other), "reason": "r"},
                       time)
        else:
            town.write(who, "distribution", {"amount": amount, "pool": pool}, time)
    return town, draw(st.integers(0, 2**32))


def _check_books(canonical: dict[str, Any]) -> None:
    """Every balance after every movement is ≥ 0, and each pool's balance is its flows' sum."""
    running: dict[str, int] = {}
    for flow in canonical.get("flows", []):
        delta = flow["amount"] if flow["flow"] == "in" else -flow["amount"]
        running[flow["pool"]] = running.get(flow["pool"], 0) + delta
        assert flow["balance"] == running[flow["pool"]] >= 0
    for name, pool in canonical.get("pools", {}).items():
        assert pool["balance"] == running.get(name, 0) >= 0
    for d in canonical.get("distributions", []):
        assert sum(d["shares"].values()) == d["amount"]


@prop_settings(300)
@given(treasuries())
def test_no_pool_is_ever_negative_on_any_node_in_any_delivery_order(case: tuple[Town, int]) -> None:
    town, seed = case
    rng = random.Random(seed)
    full = town.fold()
    _check_books(full.canonical)
    rejected = sum(1 for e in town.entries
                   if full.outcome(e.id).reason.startswith("It would overdraw"))  # type: ignore[union-attr]
    event(f"overdrafts refused: {min(rejected, 3)}{'+' if rejected >= 3 else ''}")
    for _ in range(3):
        order = list(town.entries)
        rng.shuffle(order)
        assert town.fold(order).state_hash == full.state_hash  # every node, any delivery order
        held = order[: rng.randint(1, len(order))]  # a node that holds only some of them
        _check_books(town.fold(held).canonical)


@prop_settings(300)
@given(st.dictionaries(st.binary(min_size=32, max_size=32), st.tuples(st.integers(1, 5), st.integers(0, 2**40)),
                       max_size=12),
       st.integers(1, 2**53))
def test_shares_sum_exactly_to_the_amount(ledger: dict[bytes, tuple[int, int]], amount: int) -> None:
    shares = compute_shares(ledger, amount)
    if sum(v for _, v in ledger.values()) == 0:
        assert shares == {}
        return
    assert sum(shares.values()) == amount
    assert all(v > 0 and a in ledger for a, v in shares.items())


def shares_by_definition(ledger: dict[bytes, tuple[int, int]], amount: int) -> dict[bytes, int]:
    """protocols/commons.md §3.6, step by step: floor shares in proportion to value, then
    the remainder one unit each by largest remainder, ties by author key; zero shares left out."""
    authors = sorted(ledger)
    values = [ledger[author][1] for author in authors]
    total = sum(values)
    if total <= 0:
        return {}
    shares = [amount * value // total for value in values]
    rests = [amount * value % total for value in values]
    by_rest = sorted(range(len(authors)), key=lambda i: (-rests[i], authors[i]))
    for i in by_rest[:amount - sum(shares)]:
        shares[i] += 1
    return {author: value for author, value in zip(authors, shares, strict=True) if value}


@prop_settings(300)
@given(st.dictionaries(st.binary(min_size=1, max_size=32),
                       st.tuples(st.integers(0, 5), st.one_of(st.integers(0, 4), st.integers(0, 2**40))),
                       max_size=40),
       st.one_of(st.integers(1, 50), st.integers(1, 2**53)))
def test_shares_are_the_definitions_in_key_order(ledger: dict[bytes, tuple[int, int]], amount: int) -> None:
    """The same shares, in the same (key) order, as the definition — values of 0, ties and
    remainders of every size included."""
    shares = compute_shares(ledger, amount)
    expected = shares_by_definition(ledger, amount)
    assert shares == expected
    assert list(shares) == list(expected)


def incremental_matches(town: Town, seed: int) -> None:
    """Entries delivered one at a time in a random order (late ones replay from snapshots)
    give the fresh fold's state, and a checkpoint of the state gives back every field (the
    pools, flows, bookings and capacity tables included)."""
    from p2pcommons.state import Folder
    from p2pcommons.state.checkpoint import _dump_state, _load_state
    from p2pcommons.state.records import State, canonical_state

    expected = town.fold().canonical
    folder = Folder(town.genesis.id, snapshot_every=1)
    order = list(town.entries)
    random.Random(seed).shuffle(order)
    for entry in order:
        folder.add(entry)
        folder.run()
    state = folder.state
    assert state is not None
    got = canonical_state(state)
    assert all(got[k] == expected[k] for k in got)
    loaded = _load_state(_dump_state(state))
    for name in State.__slots__:
        assert getattr(loaded, name) == getattr(state, name), name


@prop_settings(100)
@given(treasuries())
def test_an_incremental_fold_and_its_checkpoint_agree_with_a_fresh_fold(case: tuple[Town, int]) -> None:
    incremental_matches(*case)
