"""The eviction front kept as entries come (p2pcommons/state/front.py) is the one a walk over
every key that holds stability finds (``Folder._front_walk``, the definition), at every run
of an evicting fold: random histories (joins, admissions, removals, suspensions, devices,
retirement rules, forks, late entries, strangers writing while members fall silent) in random
arrival orders."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.state import Folder
from p2pcommons.state.fold import MemoryArchive
from p2pcommons.state.front import FrontIndex
from p2pcommons.state.handlers.devices import holds_stability, stability_holders
from p2pcommons.state.records import Device, Devices, Member, Members, State
from tests.test_state_histories import ACTIONS, build, prop_settings

# Founders and members act first; then strangers (actors 6 and 7), so members fall silent.
_STRANGER_ACTIONS = st.lists(
    st.tuples(st.integers(6, 7), st.integers(0, 100), st.integers(0, 1000)), max_size=30)


@prop_settings(400)
@given(actions=ACTIONS, suffix=_STRANGER_ACTIONS, seed=st.integers(0, 2**32 - 1),
       retire=st.sampled_from([None, None, 2, 4, 9]))
def test_the_kept_front_is_the_walked_one_at_every_run(
        actions: list[tuple[int, int, int]], suffix: list[tuple[int, int, int]], seed: int, retire: int | None) -> None:
    """(``retire``: members retire after that many clock ticks without an entry.)"""
    history = build(actions + suffix, rules=None if retire is None else {"retire": {"after": retire}})
    rng = random.Random(seed)
    arrival = list(history.entries)
    if rng.random() < 0.3:
        rng.shuffle(arrival)
    else:  # mostly in order, some late
        for _ in range(rng.randrange(4)):
            if len(arrival) > 2:
                arrival.append(arrival.pop(rng.randrange(1, len(arrival))))
    folder = Folder(history.commons, snapshot_every=rng.choice([1, 2, 3, 8]), archive=MemoryArchive())
    folder.silent_after = rng.choice([1, 2, 3, 5, 8])
    kept = 0
    for entry in arrival:
        folder.add(entry)
        if rng.random() < 0.6:
            folder.run()
            kept += _check(folder)
    folder.run()
    kept += _check(folder)
    event(f"answers from the index: {'some' if kept else 'none'}")


def _check(folder: Folder) -> int:
    """Assert the two agree now; 1 if the index answered."""
    kept = folder.state is not None and folder.max_clock > folder.silent_after and not folder.fork_seq
    assert folder._front() == folder._front_walk()
    return int(kept)


def test_a_parked_stranger_counts_once_admitted() -> None:
    """An author set aside as holding no stability comes back when the members table changes
    (an admission writes it), though their latest entry did not change."""
    index = FrontIndex({b"s": b"e1", b"m": b"e2"}, {b"e1": 10, b"e2": 20}.__getitem__)
    members: Any = Members()
    devices: Any = Devices()
    holders = {b"m"}
    assert index.front({b"s": b"e1", b"m": b"e2"}, 5, 0, 30, (members, devices), holders.__contains__) == (20, b"e2")
    holders.add(b"s")
    # Nothing changed in the tables: the stranger stays set aside (the fold's tables are
    # what decide; a set changed behind them is not noticed).
    assert index.front({b"s": b"e1", b"m": b"e2"}, 5, 0, 30, (members, devices), holders.__contains__) == (20, b"e2")
    members[b"s"] = object()  # (an admission)
    assert index.front({b"s": b"e1", b"m": b"e2"}, 5, 0, 30, (members, devices), holders.__contains__) == (10, b"e1")


def test_the_index_holds_one_parked_entry_per_author() -> None:
    """A stranger writing on is set aside once per author, not once per entry."""
    latest: dict[bytes, bytes] = {b"m": b"m1"}
    clocks = {b"m1": 1}
    index = FrontIndex(latest, clocks.__getitem__)
    members: Any = Members()
    devices: Any = Devices()
    for i in range(2, 200):
        eid = b"s%d" % i
        clocks[eid] = i
        latest[b"s"] = eid
        index.moved(i, eid, b"s")
        latest[b"m"] = b"m%d" % i  # the member writes too, after the stranger
        clocks[latest[b"m"]] = i + 1
        index.moved(i + 1, latest[b"m"], b"m")
        assert index.front(latest, 1, 0, i + 1, (members, devices), {b"m"}.__contains__) == (i + 1, latest[b"m"])
    assert len(list(index)) <= 4


_KEYS = [bytes([i]) * 32 for i in range(6)]
_SINCE = CID.of(b"since")


@given(members=st.dictionaries(st.sampled_from(_KEYS), st.sampled_from(["active", "suspended", "removed", "left"])),
       devices=st.dictionaries(st.sampled_from(_KEYS), st.tuples(st.sampled_from(_KEYS), st.booleans(), st.booleans())))
def test_holds_stability_asks_one_key_what_stability_holders_lists(
        members: dict[bytes, str], devices: dict[bytes, tuple[bytes, bool, bool]]) -> None:
    """Any members and devices tables (own keys revoked, devices bound or revoked, members of
    any status, a key both a member and another member's device): the keys for which
    ``holds_stability`` is true are the keys ``stability_holders`` lists."""
    state = State()
    for key, status in members.items():
        state.members[key] = Member("m", (), (), status, _SINCE, 0)
    for key, (member, bound, revoked) in devices.items():
        state.devices[key] = Device(member, _SINCE if bound else None, _SINCE if revoked else None)
    listed = set(stability_holders(state))
    asked = {key for key in _KEYS if holds_stability(state.members, state.devices, key)}
    assert asked == listed


def test_strangers_writing_on_stay_parked_only_while_recent() -> None:
    """Strangers (no stability) writing one entry each while the tables never change: what
    the index holds stays bounded by the recent ones, not by every stranger ever seen."""
    latest: dict[bytes, bytes] = {}
    index = FrontIndex(latest, {}.__getitem__)
    members: Any = Members()
    devices: Any = Devices()
    for clock in range(1, 5000):
        author, eid = b"a%d" % clock, b"e%d" % clock
        latest[author] = eid
        index.moved(clock, eid, author)
        assert index.front(latest, clock - 50, 0, clock, (members, devices), lambda _: False) is None
    assert len(list(index)) < 300
