"""Eviction of the archived prefix (p2pcommons/state/fold.py, ``Folder(archive=…)``): the same
state hash and outcomes as a fold that holds everything, and memory that does not grow with
the number of entries beyond the state."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.state import Folder, fold
from p2pcommons.state.fold import MemoryArchive
from tests.test_state_histories import ACTIONS, build, prop_settings


@prop_settings(400)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1))
def test_evicting_fold_equals_holding_fold(actions: list[tuple[int, int, int]], seed: int) -> None:
    """Any arrival order (late entries, forks, removals, retired members included), with
    eviction after every snapshot: same hash, same outcome (status, reason, stability) per
    entry as a fold from scratch that holds everything."""
    history = build(actions)
    reference = fold(history.entries)
    rng = random.Random(seed)
    arrival = list(history.entries)
    if rng.random() < 0.5:
        rng.shuffle(arrival)
    else:  # mostly in order, a few late
        for _ in range(3):
            if len(arrival) > 2:
                arrival.append(arrival.pop(rng.randrange(1, len(arrival))))
    folder = Folder(history.commons, snapshot_every=rng.choice([1, 2, 3, 8]), archive=MemoryArchive())
    for entry in arrival:
        folder.add(entry)
        if rng.random() < 0.7:
            folder.run()
    result = folder.result()
    assert result.state_hash == reference.state_hash
    assert result.entry_count == reference.entry_count
    for entry in history.entries:
        assert result.outcome(entry.id) == reference.outcome(entry.id), entry
    assert result.stable_summary() == reference.stable_summary()
    assert sorted(o.id.raw for o in result.outcomes()) == sorted(o.id.raw for o in reference.outcomes())
