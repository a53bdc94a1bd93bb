"""Shared capacity (protocols/commons.md §1.1): a rivalrous resource's capacity per period
for the whole commons (a forest's annual cut, a workshop's seats) besides the quota per
member, and cancelling a booking — examples, then the property: no period's use ever
exceeds the capacity, on any node, in any delivery order."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from p2pcommons.state import APPLIED, REJECTED
from tests.support.decisions import T0, Town
from tests.test_state_histories import prop_settings
from tests.test_state_pools import incremental_matches

SEATS = {"name": "Workshop seats", "rivalrous": True, "quota": 2, "capacity": 8, "unit": "seats"}
CUT = {"name": "Timber", "rivalrous": True, "capacity": 300, "period": 31_536_000, "unit": "m3"}


def _resource(town: Town, spec: dict[str, Any]) -> Any:
    entry = town.write(0, "resource_add", spec, T0 + 10)
    for i in range(1, town.n):
        town.sync(i, 0)
    return entry


def _status(town: Town, entry: Any) -> tuple[str, str]:
    outcome = town.fold().outcome(entry.id)
    assert outcome is not None
    return outcome.status, outcome.reason


def test_eight_seats_are_never_nine_and_a_cancelled_seat_can_be_booked_again() -> None:
    town = Town(stewards=6, authors=6)
    seats = _resource(town, SEATS)
    bookings = [town.write(i, "resource_use", {"resource": seats.id, "amount": 2}, T0 + 100 + i) for i in range(5)]
    state = town.fold()
    statuses = [state.outcome(b.id).status for b in bookings]  # type: ignore[union-attr]
    assert statuses.count(APPLIED) == 4 and statuses.count(REJECTED) == 1
    late = bookings[statuses.index(REJECTED)]
    assert state.outcome(late.id).reason == ("It exceeds the capacity of Workshop seats (8 + 2 > 8 seats per "  # type: ignore[union-attr]
                                             "period for the whole commons).")
    assert state.canonical["resources"][str(seats.id)]["capacity"] == 8
    first = bookings[statuses.index(APPLIED)]
    author = next(i for i in range(5) if town.logs[i] and town.logs[i][-1].id == first.id)
    for i in range(6):
        town.sync(i, author)
    stranger = town.write(5, "resource_cancel", {"use": first.id}, T0 + 200)
    assert _status(town, stranger) == (REJECTED, "Only the member who used a resource may cancel that use.")
    cancel = town.write(author, "resource_cancel", {"use": first.id}, T0 + 210)
    assert _status(town, cancel) == (APPLIED, "")
    again = town.write(author, "resource_cancel", {"use": first.id}, T0 + 220)
    assert _status(town, again)[0] == REJECTED
    town.sync(5, author)
    rebook = town.write(5, "resource_use", {"resource": seats.id, "amount": 2}, T0 + 300)
    assert _status(town, rebook) == (APPLIED, "")
    used = town.fold().canonical["resources"][str(seats.id)]["used"]["0"]
    assert sum(used.values()) == 8 and town.member_hex(author) not in used


def test_four_loggers_cannot_cut_400_under_a_300_plan() -> None:
    town = Town(stewards=4, authors=4)
    timber = _resource(town, CUT)
    cuts = [town.write(i, "resource_use", {"resource": timber.id, "amount": 100}, T0 + 100 + i) for i in range(4)]
    state = town.fold()
    assert sorted(state.outcome(c.id).status for c in cuts) == [APPLIED] * 3 + [REJECTED]  # type: ignore[union-attr]
    # next year the plan is whole again
    next_year = T0 + 31_536_000_000 * 2
    later = town.write(3, "resource_use", {"resource": timber.id, "amount": 300}, next_year)
    assert _status(town, later) == (APPLIED, "")


def test_a_capacity_needs_a_rivalrous_resource() -> None:
    town = Town(stewards=1, authors=1)
    bad = town.write(0, "resource_add", {"name": "Designs", "capacity": 5}, T0 + 10)
    assert _status(town, bad) == (REJECTED, "Only a rivalrous resource has a capacity.")


@st.composite
def bookings(draw: Any) -> Town:
    """Six members booking and cancelling seats, seeing each other's entries now and then."""
    town = Town(stewards=6, authors=6)
    seats = _resource(town, {**SEATS, "quota": 4})
    mine: list[list[Any]] = [[] for _ in range(6)]
    steps = draw(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["book", "book", "cancel", "sync"]),
                                    st.integers(1, 3), st.integers(0, 5)), min_size=10, max_size=30))
    for n, (who, what, amount, other) in enumerate(steps):
        time = T0 + 100 + n
        if what == "sync":
            town.sync(who, other)
        elif what == "book":
            mine[who].append(town.write(who, "resource_use", {"resource": seats.id, "amount": amount}, time))
        elif mine[who]:
            town.write(who, "resource_cancel", {"use": mine[who][amount % len(mine[who])].id}, time)
    return town


@prop_settings(300)
@given(bookings(), st.integers(0, 2**32))
def test_capacity_is_never_exceeded_on_any_node_in_any_delivery_order(town: Town, seed: int) -> None:
    rng = random.Random(seed)
    full = town.fold()
    refused = sum(1 for e in town.entries if "capacity" in full.outcome(e.id).reason)  # type: ignore[union-attr]
    event(f"bookings refused for capacity: {min(refused, 3)}{'+' if refused >= 3 else ''}")
    for _ in range(3):
        order = list(town.entries)
        rng.shuffle(order)
        assert town.fold(order).state_hash == full.state_hash
        held = town.fold(order[: rng.randint(1, len(order))]).canonical
        for resource in held.get("resources", {}).values():
            for period in resource["used"].values():
                assert sum(period.values()) <= resource["capacity"]
                assert all(0 < n <= resource["quota"] for n in period.values())


@prop_settings(100)
@given(bookings(), st.integers(0, 2**32))
def test_an_incremental_fold_and_its_checkpoint_agree_with_a_fresh_fold(town: Town, seed: int) -> None:
    incremental_matches(town, seed)
