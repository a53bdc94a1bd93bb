"""The value equation as data (protocols/commons.md §9): its rules, the review cap, role
weights, time decay and credit along references — examples, then properties."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from p2pcommons.entry import Entry
from p2pcommons.state import APPLIED, REJECTED
from p2pcommons.state import rules as rules_mod
from p2pcommons.state.equation import DAY_MS, decay, equation_id, weigh
from tests.support.decisions import T0, Town
from tests.test_state_histories import prop_settings
from tests.test_state_pools import incremental_matches


def test_an_equation_setting_under_values_is_refused_not_taken_as_a_contribution_kind() -> None:
    """Regression (#16): ``values.decay = 10`` was silently taken as the weight of a
    contribution kind named "decay"."""
    for text in ("values.decay=10", "values.half_life=30", "values.review_cap=50"):
        with pytest.raises(rules_mod.InvalidRules, match="equation"):
            rules_mod.parse_assignment(text)
    with pytest.raises(rules_mod.InvalidRules, match="equation"):
        rules_mod.rules_from_toml({"values": {"decay": 10}})
    assert rules_mod.parse_assignment("values.code=150") == ("values.code", 150)


# --- examples ------------------------------------------------------------------------------

EQ = {"equation": {"review_cap": 50, "reference_share": {"num": 1, "den": 5}, "half_life": 30},
      "role_weights": {"lead": 200}, "roles": {"custom": ["lead"]}}


def _status(town: Town, entry: Entry) -> tuple[str, str]:
    outcome = town.fold().outcome(entry.id)
    assert outcome is not None
    return outcome.status, outcome.reason


def _accepted(town: Town, author: int, title: str, value: int, time: int, refs: list[Entry] | None = None,
              reviewed: int | None = None) -> Entry:
    """``author`` contributes (referencing ``refs``), founder 0 (or 1 for 0's own) accepts."""
    body: dict[str, Any] = {"title": title, "value": value}
    if refs:
        body["refs"] = [r.id for r in refs]
    work = town.write(author, "contribution", body, time)
    reviewer = 1 if author == 0 else 0
    town.sync(reviewer, author)
    review: dict[str, Any] = {"contribution": work.id, "verdict": "accept"}
    if reviewed is not None:
        review["value"] = reviewed
    town.write(reviewer, "review", review, time + 1)
    for i in range(town.n):
        town.sync(i, reviewer)
    return work


def test_a_review_cannot_move_the_claimed_value_beyond_the_cap() -> None:
    town = Town(stewards=2, rules=EQ)
    town.sync(1, 0)
    work = town.write(1, "contribution", {"title": "firmware", "value": 100}, T0 + 10)
    town.sync(0, 1)
    over = town.write(0, "review", {"contribution": work.id, "verdict": "accept", "value": 100_000}, T0 + 20)
    assert _status(town, over) == (REJECTED, "Its value 100000 moves the claimed value 100 by more than "
                                             "equation.review_cap (50%) allows: it must be between 50 and 150.")
    ok = town.write(0, "review", {"contribution": work.id, "verdict": "accept", "value": 150}, T0 + 30)
    state = town.fold()
    assert state.outcome(ok.id).status == APPLIED  # type: ignore[union-attr]
    assert state.canonical["contributions"][str(work.id)]["value"] == 150


def test_a_derivative_passes_its_share_to_the_original_and_the_distribution_records_the_equation() -> None:
    rules = {"equation": {"reference_share": {"num": 1, "den": 4}}}
    town = Town(stewards=3, rules=rules)
    town.sync(1, 0)
    original = _accepted(town, 1, "seed drill", 100, T0 + 10)
    derivative = _accepted(town, 2, "seed drill, wider", 100, T0 + 100, refs=[original])
    dist = town.write(0, "distribution", {"amount": 1000}, T0 + 200)
    state = town.fold()
    assert state.outcome(dist.id).status == APPLIED  # type: ignore[union-attr]
    d = state.canonical["distributions"][-1]
    assert d["shares"] == {town.member_hex(1): 625, town.member_hex(2): 375}
    assert d["equation"] == equation_id(state.rules)
    assert state.canonical["contributions"][str(derivative.id)]["refs"] == [str(original.id)]
    why = state.explain(town.key(1))
    (line,) = why["contributions"]
    assert line["credit_in"] == [{"contribution": str(derivative.id), "amount": 25}] and line["final"] == 125
    assert why["total"] == 125 and why["commons_total"] == 200 and why["paid_to_date"] == 625
    (paid,) = why["distributions"]
    assert paid["share"] == 625 and paid["equation"] == d["equation"]


def test_a_reference_must_be_a_contribution_in_the_causal_past() -> None:
    town = Town(stewards=3)
    town.sync(1, 0)
    unseen = town.write(2, "contribution", {"title": "not seen by 1"}, T0 + 10)
    bad = town.write(1, "contribution", {"title": "derivative", "refs": [unseen.id]}, T0 + 20)
    assert _status(town, bad) == (REJECTED, f"Its 'refs' names {unseen.id}, which is not a contribution in its "
                                            "causal past.")
    town.sync(1, 2)
    vote = town.write(2, "rule_proposal", {"changes": {"values.code": 150}}, T0 + 30)
    town.sync(1, 2)
    not_work = town.write(1, "contribution", {"title": "derivative", "refs": [vote.id]}, T0 + 40)
    assert _status(town, not_work)[0] == REJECTED
    twice = town.write(1, "contribution", {"title": "derivative", "refs": [unseen.id, unseen.id]}, T0 + 50)
    assert _status(town, twice) == (REJECTED, f"Its 'refs' names {unseen.id} twice.")
    ok = town.write(1, "contribution", {"title": "derivative", "refs": [unseen.id]}, T0 + 60)
    assert _status(town, ok) == (APPLIED, "")


def test_role_weights_and_decay_by_trusted_time() -> None:
    rules = {"equation": {"half_life": 10}, "role_weights": {"lead": 300}, "roles": {"custom": ["lead"]}}
    town = Town(stewards=3, rules=rules)
    town.write(0, "role", {"member": town.key(2), "role": "lead"}, T0 + 5)
    for i in range(town.n):
        town.sync(i, 0)
    _accepted(town, 1, "old work", 80, T0 + 10)
    _accepted(town, 2, "lead work", 80, T0 + 20)  # (10 ms younger: still 120 after decay)
    day = 86_400_000
    dist = town.write(0, "distribution", {"amount": 100}, T0 + 10 + 10 * day)  # one half-life later
    state = town.fold()
    assert state.outcome(dist.id).status == APPLIED  # type: ignore[union-attr]
    assert state.canonical["distributions"][-1]["shares"] == {town.member_hex(1): 25, town.member_hex(2): 75}
    why = state.explain(town.key(2), T0 + 10 + 10 * day)
    (line,) = why["contributions"]
    assert (line["role"], line["role_weight"], line["weighted"], line["after_decay"]) == ("lead", 300, 240, 120)


def test_a_payer_is_never_credited_as_a_contributor_for_paying() -> None:
    town = Town(stewards=3, rules={"pools": {"fund": "EUR"}, **EQ})
    town.sync(1, 0)
    _accepted(town, 1, "design", 10, T0 + 10)
    town.write(0, "pay", {"pool": "fund", "amount": 2000, "source": "payback", "payer": "Acme"}, T0 + 50)
    town.write(2, "pay", {"pool": "fund", "amount": 500, "source": "payback"}, T0 + 60)  # a member pays
    town.sync(0, 2)
    town.write(0, "distribution", {"amount": 2500, "pool": "fund"}, T0 + 70)
    state = town.fold()
    assert state.canonical["distributions"][-1]["shares"] == {town.member_hex(1): 2500}
    assert state.explain(town.key(2))["total"] == 0 and state.canonical["pools"]["fund"]["balance"] == 0


def test_a_recipient_acknowledges_their_share_once() -> None:
    town = Town(stewards=3)
    town.sync(1, 0)
    _accepted(town, 1, "design", 10, T0 + 10)
    dist = town.write(0, "distribution", {"amount": 30}, T0 + 50)
    early = town.write(1, "receipt", {"distribution": dist.id}, T0 + 55)  # 1 has not seen it yet
    assert _status(town, early) == (REJECTED, "Its 'distribution' names an entry outside its causal past.")
    town.sync(1, 0)
    town.sync(2, 0)
    ack = town.write(1, "receipt", {"distribution": dist.id, "note": "thanks"}, T0 + 60)
    again = town.write(1, "receipt", {"distribution": dist.id}, T0 + 70)
    stranger = town.write(2, "receipt", {"distribution": dist.id}, T0 + 80)
    state = town.fold()
    assert state.outcome(ack.id).status == APPLIED  # type: ignore[union-attr]
    assert _status(town, again) == (REJECTED, "Its author already acknowledged that distribution.")
    assert _status(town, stranger) == (REJECTED, "Its author has no share in that distribution.")
    assert state.canonical["distributions"][-1]["acknowledged"] == [town.member_hex(1)]
    (row,) = state.ledger()
    assert (row["paid"], row["acknowledged"]) == (30, 30)
    assert state.explain(town.key(1))["distributions"][0]["acknowledged"] is True


# --- properties ----------------------------------------------------------------------------

ACTORS = 3
STEP_MS = 7 * 3_600_000  # seven hours between steps: decay over a few days shows


@st.composite
def works(draw: Any) -> tuple[Town, int]:
    """A commons with a random value equation and random contributions referencing what
    their authors have seen, reviews (some adjusting the value), role grants, distributions
    and receipts by three founders who see each other's entries only now and then."""
    equation: dict[str, Any] = {}
    if draw(st.booleans()):
        equation["review_cap"] = draw(st.integers(0, 150))
    if draw(st.booleans()):
        equation["half_life"] = draw(st.integers(1, 3))
    num = draw(st.integers(1, 9))
    equation["reference_share"] = {"num": num, "den": 10}
    rules: dict[str, Any] = {"equation": equation, "roles": {"custom": ["lead"]}}
    if draw(st.booleans()):
        rules["role_weights"] = {"lead": draw(st.integers(1, 400)), "member": draw(st.integers(1, 200))}
    town = Town(stewards=ACTORS, rules=rules)
    seed = _accepted(town, 1, "seed", draw(st.integers(1, 100)), T0 + 10)  # something to distribute from the start
    works: list[tuple[Entry, int]] = [(seed, 1)]  # (contribution, its author)
    distributions: list[tuple[Entry, int]] = []
    reviewed = {seed.id.raw}
    kinds = ["review", "distribute", "contribute", "review", "receipt", "contribute", "review", "lead", "sync",
             "distribute"]
    steps = draw(st.lists(st.tuples(st.sampled_from(kinds),
                                     st.integers(0, ACTORS - 1), st.integers(0, ACTORS - 1), st.integers(1, 300),
                                     st.integers(0, 2**16)), min_size=6, max_size=30))
    for n, (what, who, other, value, pick) in enumerate(steps):
        time = T0 + 100 + n * STEP_MS
        if what == "review":
            town.sync(who, other)  # (a reviewer looks at what another has seen first)
        known = [w for w, a in works if town.know[who][a] >= w.seq]
        # (no self-review; mostly what nobody reviewed yet)
        others = [w for w, a in works if town.know[who][a] >= w.seq and a != who
                  and (w.id.raw not in reviewed or pick % 4 == 0)]
        if what == "sync":
            town.sync(who, other)
        elif what == "contribute":
            refs = [w for i, w in enumerate(known) if pick >> i & 1][:4]
            body: dict[str, Any] = {"title": f"work {n}", "value": value}
            if refs:
                body["refs"] = [w.id for w in refs]
            works.append((town.write(who, "contribution", body, time), who))
        elif what == "review" and others:
            target = others[pick % len(others)]
            reviewed.add(target.id.raw)
            body = {"contribution": target.id, "verdict": "accept" if value % 7 else "reject"}
            if value % 3 == 0:
                body["value"] = value * (pick % 4)
            town.write(who, "review", body, time)
        elif what == "distribute":
            distributions.append((town.write(who, "distribution", {"amount": 1 + value * pick}, time), who))
        elif what == "lead":
            town.write(who, "role", {"member": town.key(other), "role": "lead"}, time)
        elif what == "receipt":
            mine = [d for d, a in distributions if town.know[who][a] >= d.seq]
            if mine:
                town.write(who, "receipt", {"distribution": mine[pick % len(mine)].id}, time)
    for i in range(ACTORS):  # at the end, founder 0 has seen everything and distributes
        town.sync(0, i)
    town.write(0, "distribution", {"amount": draw(st.integers(1, 2**53))}, T0 + 100 + len(steps) * STEP_MS)
    return town, draw(st.integers(0, 2**32))


@prop_settings(300)
@given(works())
def test_credit_along_references_is_deterministic_in_any_delivery_order_and_shares_sum_exactly(
        case: tuple[Town, int]) -> None:
    town, seed = case
    rng = random.Random(seed)
    full = town.fold()
    flows = sum(len(c.get("refs", ())) for c in full.canonical["contributions"].values())
    event(f"references: {min(flows, 3)}{'+' if flows >= 3 else ''}")
    event(f"distributions: {min(len(full.canonical['distributions']), 2)}")
    lines, _ = weigh(full._folder.state, full.latest_time())
    event(f"credit passed along references: {any(line.credit_out for line in lines.values())}")
    for d in full.canonical["distributions"]:
        assert sum(d["shares"].values()) == d["amount"]
        assert d["equation"] == equation_id(full.rules)
    at = full.latest_time()
    explained = {i: full.explain(town.key(i), at) for i in range(ACTORS)}
    _conserved(full, at)
    for _ in range(3):
        order = list(town.entries)
        rng.shuffle(order)
        other = town.fold(order)
        assert other.state_hash == full.state_hash  # the same shares, refs and receipts on every node
        assert {i: other.explain(town.key(i), at) for i in range(ACTORS)} == explained
    incremental_matches(town, seed)  # and a checkpoint gives back refs, equation ids and receipts


def _conserved(state: Any, at: int) -> None:
    """Credit along references moves value, never creates or loses it: the finals sum to the
    values after decay, none is negative, and the members' weights are the finals' sums."""
    folder = state._folder
    lines, weights = weigh(folder.state, at)
    assert sum(line.final for line in lines.values()) == sum(line.own for line in lines.values())
    assert all(line.final >= 0 and line.own <= line.weighted for line in lines.values())
    assert sum(weights.values()) == sum(line.final for line in lines.values())
    for line in lines.values():
        assert sum(n for _, n in line.credit_out) <= line.own + sum(n for _, n in line.credit_in)


@prop_settings(200)
@given(works())
def test_no_accepted_value_is_further_from_the_claim_than_the_review_cap(case: tuple[Town, int]) -> None:
    town, _ = case
    state = town.fold()
    cap = state.rules["equation"].get("review_cap")
    accepted = [c for c in state.canonical["contributions"].values() if c["status"] == "accepted"]
    event(f"capped: {cap is not None}, accepted: {min(len(accepted), 2)}")
    for c in accepted:
        if cap is not None:
            assert abs(c["value"] - c["claimed"]) <= c["claimed"] * cap // 100


@prop_settings(300)
@given(st.integers(0, 2**53), st.integers(0, 2**53), st.integers(0, 2**40), st.integers(1, 10_000))
def test_decay_is_integer_exact_and_never_grows(value: int, age: int, later: int, half_life: int) -> None:
    h = half_life * DAY_MS
    now = decay(value, age, half_life)
    assert 0 <= decay(value, age + later, half_life) <= now <= value
    k = age // h
    if k < 64:  # halved at every half-life, rounded to the nearest (half up)
        assert decay(value, k * h, half_life) == (value + (1 << k >> 1)) >> k
    assert decay(value, age, half_life) == now  # a pure function of integers: the same on every node


@prop_settings(300)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.lists(st.integers(0, 40), max_size=4)),
                min_size=1, max_size=40),
       st.integers(0, 9), st.integers(1, 10), st.randoms(use_true_random=False))
def test_credit_flows_transitively_terminates_and_does_not_depend_on_the_order_held(
        works: list[tuple[int, int, list[int]]], num: int, den_extra: int, rnd: random.Random) -> None:
    """Long chains and diamonds of derivatives (each referencing earlier ones): every
    contribution is taken once, the finals sum exactly to the values, an original receives
    from every derivative that references it, and the result does not depend on the order in
    which the state happens to hold its contributions."""
    from p2pcommons.dagcbor import CID
    from p2pcommons.state.records import Contribution, State

    state = State()
    state.rules = {**state.rules, "equation": {"reference_share": {"num": num, "den": num + den_extra}}}
    ids = [CID.of(b"work %d" % i) for i in range(len(works))]
    items = []
    for i, (value, author, refs) in enumerate(works):
        earlier = tuple(sorted({ids[r % i] for r in refs} if i else set(), key=lambda c: c.raw))
        items.append((ids[i], Contribution(bytes([author]) * 32, f"w{i}", "work", "", value, "accepted", (), (),
                                           value, False, earlier)))
    state.contributions = dict(items)
    lines, weights = weigh(state, 0)
    rnd.shuffle(items)
    state.contributions = dict(items)
    assert weigh(state, 0) == (lines, weights)
    assert sum(line.final for line in lines.values()) == sum(v for v, _, _ in works)
    for cid, line in lines.items():
        given_out = sum(n for _, n in line.credit_out)
        total = line.own + sum(n for _, n in line.credit_in)
        refs = state.contributions[cid].refs
        assert given_out == (total * num // (num + den_extra) if refs else 0)
        assert line.final == total - given_out
        for target, n in line.credit_out:
            assert (cid, n) in lines[target].credit_in
    event(f"credit passed on through a chain of 3 or more: {any(x.credit_in and x.credit_out for x in lines.values())}")


def test_a_decided_distribution_weighs_at_its_deciding_entry_and_is_acknowledged_by_its_proposal() -> None:
    rules = {**EQ, "decide": {"distribution": True}}
    town = Town(stewards=2, rules=rules)
    town.sync(1, 0)
    _accepted(town, 1, "design", 10, T0 + 10)
    proposal = town.write(0, "proposal", {"action": {"act": "distribution", "amount": 90}}, T0 + 50)
    town.sync(1, 0)
    town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 60)
    ack = town.write(1, "receipt", {"distribution": proposal.id}, T0 + 70)
    state = town.fold()
    assert state.canonical["proposals"][str(proposal.id)]["status"] == "adopted"
    d = state.canonical["distributions"][-1]
    assert d["id"] == str(proposal.id) and d["shares"] == {town.member_hex(1): 90}
    assert d["equation"] == equation_id(state.rules) and d["acknowledged"] == [town.member_hex(1)]
    assert state.outcome(ack.id).status == APPLIED  # type: ignore[union-attr]


@prop_settings(200)
@given(st.integers(0, 10**6), st.integers(0, 10**7), st.integers(0, 300))
def test_one_review_moves_a_claim_by_at_most_the_cap(claimed: int, adjusted: int, cap: int) -> None:
    """Whatever a reviewer writes, the accepted value is within ``claimed · cap // 100`` of
    the claim; a review beyond it is refused and the contribution stays pending."""
    town = Town(stewards=2, rules={"equation": {"review_cap": cap}})
    town.sync(1, 0)
    work = town.write(1, "contribution", {"title": "w", "value": claimed}, T0 + 10)
    town.sync(0, 1)
    review = town.write(0, "review", {"contribution": work.id, "verdict": "accept", "value": adjusted}, T0 + 20)
    state = town.fold()
    record = state.canonical["contributions"][str(work.id)]
    within = abs(adjusted - claimed) <= claimed * cap // 100
    event(f"within the cap: {within}")
    assert state.outcome(review.id).status == (APPLIED if within else REJECTED)  # type: ignore[union-attr]
    assert (record["status"], record["value"]) == (("accepted", adjusted) if within else ("pending", 0))
