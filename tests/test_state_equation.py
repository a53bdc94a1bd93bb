"""The value equation as data (protocols/commons.md §9): its rules, the review cap, role
weights, time decay and credit along references — examples, then properties."""

from __future__ import annotations

from typing import Any

import pytest

from p2pcommons.entry import Entry
from p2pcommons.state import APPLIED, REJECTED
from p2pcommons.state import rules as rules_mod
from p2pcommons.state.equation import equation_id
from tests.support.decisions import T0, Town


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
