"""The sans-I/O decisions of p2pcommons/node/reach.py: what AutoNAT verdicts mean, which
relay to hold a slot on and when, and the ``[network]`` relay keys of config.toml."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.errors import UsageError
from p2pcommons.node.reach import (
    BACKOFF_MAX,
    BACKOFF_MIN,
    PRIVATE,
    PUBLIC,
    UNKNOWN,
    RelaySettings,
    Reservation,
    ReservationPlanner,
    Verdict,
    connection_kind,
    describe,
    reachability,
)

RELAY = "12D3KooWRelay"
OTHER = "12D3KooWOther"


def test_reachability_follows_the_recent_majority() -> None:
    now = 1000.0
    assert reachability({}, now) == UNKNOWN
    assert reachability({"s1": Verdict(True, now)}, now) == PUBLIC
    assert reachability({"s1": Verdict(False, now)}, now) == PRIVATE
    assert reachability({"s1": Verdict(True, now), "s2": Verdict(False, now)}, now) == UNKNOWN
    assert reachability({"s1": Verdict(True, now - 10_000), "s2": Verdict(False, now)}, now) == PRIVATE


@given(st.dictionaries(st.text(min_size=1, max_size=4), st.tuples(st.booleans(), st.floats(0, 2000)), max_size=8))
def test_reachability_is_the_majority_of_fresh_verdicts(raw: dict[str, tuple[bool, float]]) -> None:
    now, max_age = 2000.0, 600.0
    verdicts = {k: Verdict(ok, at) for k, (ok, at) in raw.items()}
    fresh = [ok for ok, at in raw.values() if now - at <= max_age]
    result = reachability(verdicts, now, max_age=max_age)
    if fresh.count(True) > fresh.count(False):
        assert result == PUBLIC
    elif fresh.count(False) > fresh.count(True):
        assert result == PRIVATE
    else:
        assert result == UNKNOWN


def test_a_node_not_known_public_reserves_on_the_first_candidate() -> None:
    planner = ReservationPlanner()
    for reach in (PRIVATE, UNKNOWN):
        action = planner.plan(reach, [RELAY, OTHER], {RELAY, OTHER}, 0.0)
        assert (action.kind, action.relay) == ("reserve", RELAY)
    assert planner.plan(PUBLIC, [RELAY], {RELAY}, 0.0).kind == "wait"
    assert planner.plan(PRIVATE, [], set(), 0.0).kind == "wait"


def test_refresh_near_the_end_drop_when_public_or_gone() -> None:
    planner = ReservationPlanner()
    planner.granted(Reservation(RELAY, (f"/ip4/10.0.0.1/tcp/1/p2p/{RELAY}",), expires=1000.0, granted=0.0))
    assert planner.plan(PRIVATE, [RELAY], {RELAY}, 500.0).kind == "wait"
    assert planner.plan(PRIVATE, [RELAY], {RELAY}, 850.0).kind == "refresh"
    assert planner.plan(PRIVATE, [RELAY], set(), 500.0).kind == "drop"       # relay disconnected
    assert planner.plan(PUBLIC, [RELAY], {RELAY}, 500.0).kind == "drop"      # no longer needed
    assert planner.plan(PRIVATE, [RELAY], {RELAY}, 1000.0).kind == "drop"    # expired
    planner.dropped()
    assert planner.plan(PRIVATE, [RELAY], {RELAY}, 1000.0).kind == "reserve"


def test_a_refusing_relay_is_left_alone_for_a_doubling_bounded_backoff() -> None:
    planner = ReservationPlanner()
    now = 0.0
    delays = []
    for _ in range(12):
        planner.failed(RELAY, now)
        until, delay = planner.backoff[RELAY]
        delays.append(delay)
        assert planner.plan(PRIVATE, [RELAY, OTHER], {RELAY, OTHER}, now).relay == OTHER
        assert planner.plan(PRIVATE, [RELAY], {RELAY}, now).kind == "wait"
        now = until
        assert planner.plan(PRIVATE, [RELAY], {RELAY}, now).relay == RELAY
    assert delays == sorted(delays) and delays[-1] == BACKOFF_MAX
    planner.granted(Reservation(RELAY, (), 10_000.0, now))
    assert RELAY not in planner.backoff


def test_the_backoff_table_stays_bounded() -> None:
    planner = ReservationPlanner()
    for i in range(1000):
        planner.failed(f"relay{i}", float(i))
    assert len(planner.backoff) <= 256


def test_circuit_addresses_and_descriptions() -> None:
    res = Reservation(RELAY, (f"/ip4/10.0.0.1/tcp/4001/p2p/{RELAY}",), 100.0, 0.0)
    assert res.circuit_addrs("12D3KooWMe") == [f"/ip4/10.0.0.1/tcp/4001/p2p/{RELAY}/p2p-circuit/p2p/12D3KooWMe"]
    assert connection_kind([f"/p2p/{RELAY}/p2p-circuit/p2p/x"]) == "relayed"
    assert connection_kind(["/ip4/10.0.0.1/tcp/4001"]) == "direct"
    assert "through relay" in describe(PRIVATE, res, False)
    assert describe(PRIVATE, None, False).startswith("behind NAT, no relay")
    assert describe(PUBLIC, None, True).startswith("public")


def test_relay_settings_from_config() -> None:
    assert RelaySettings.from_config({}) == RelaySettings()
    settings = RelaySettings.from_config({
        "relay_service": True, "relays": [f"/ip4/10.0.0.1/tcp/4001/p2p/{RELAY}"],
        "relay_max_reservations": 4, "relay_circuit_seconds": 120, "relay_circuit_bytes": 1 << 20,
    })
    assert settings.relay_service and settings.max_reservations == 4 and settings.circuit_seconds == 120
    for bad in ({"relay_service": "yes"}, {"relays": ["/ip4/10.0.0.1/tcp/1"]}, {"relays": "x"},
                {"relay_max_reservations": 0}, {"relay_circuit_bytes": 1.5}):
        with pytest.raises(UsageError):
            RelaySettings.from_config(bad)


_EVENT = st.one_of(
    st.tuples(st.just("plan"), st.sampled_from([PUBLIC, PRIVATE, UNKNOWN]),
              st.lists(st.sampled_from(["r1", "r2", "r3"]), unique=True), st.sets(st.sampled_from(["r1", "r2", "r3"]))),
    st.tuples(st.just("tick"), st.floats(0, 400)),
)


@given(st.lists(_EVENT, max_size=60))
def test_the_planner_never_reserves_when_public_nor_on_a_relay_in_backoff(events: list[tuple[Any, ...]]) -> None:
    """Random histories of plans, grants, refusals and time: one slot at most, none wanted
    by a public node, no attempt on a relay still backing off, backoff within bounds."""
    planner = ReservationPlanner()
    now = 0.0
    for i, event in enumerate(events):
        if event[0] == "tick":
            now += event[1]
            continue
        _, reach, candidates, connected = event
        action = planner.plan(reach, candidates, connected, now)
        if action.kind in ("reserve", "refresh"):
            assert reach != PUBLIC
            assert planner.backoff.get(action.relay, (0.0, 0.0))[0] <= now
            assert action.kind == "refresh" or planner.current is None
            if i % 3 == 0:
                planner.failed(action.relay, now)
                assert BACKOFF_MIN / 2 < planner.backoff[action.relay][1] <= BACKOFF_MAX
            else:
                planner.granted(Reservation(action.relay, (), now + 300.0, now))
        elif action.kind == "drop":
            assert planner.current is not None and action.relay == planner.current.relay
            planner.dropped()
        else:
            assert action.kind == "wait"
            if planner.current is None and reach != PUBLIC:
                assert all(planner.backoff.get(c, (0.0, 0.0))[0] > now for c in candidates)
