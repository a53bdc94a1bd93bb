"""The snapshots a bulk fold takes (``Folder._planned``): only those it keeps.

A run with many positions pending knows where it ends: without eviction it takes a
logarithmically spaced set (no copy thinned away at once, a late entry's replay bounded
relative to its distance back); with eviction, the snapshot at the eviction front (the next
eviction's base).  Results never depend on it: each test also checks the state hash.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from p2pcommons.entry import sign_entry
from p2pcommons.state import Folder, fold
from p2pcommons.state.archiving import MemoryArchive
from p2pcommons.state.fold import EVICT_EVERY, MAX_SNAPSHOTS, PLAN_SPACING
from tests.test_state_histories import SIGNERS, History


def _long_history(n: int) -> History:
    history = History()
    for i in range(n):
        history.write(i % 2, "contribution", {"title": f"c{i}", "value": 1})
    return history


def _counting(folder: Folder) -> dict[str, int]:
    """Count the snapshots taken and the positions applied (instance attributes: no patching
    of the class)."""
    counts = {"snapshots": 0, "applied": 0}
    snapshot, apply = folder._snapshot, folder._apply

    def counted_snapshot(key: Any) -> None:
        counts["snapshots"] += 1
        snapshot(key)

    def counted_apply(key: Any) -> None:
        counts["applied"] += 1
        apply(key)

    folder._snapshot = counted_snapshot  # type: ignore[method-assign]
    folder._apply = counted_apply  # type: ignore[method-assign]
    return counts


def test_a_bulk_fold_takes_only_the_snapshots_it_keeps_and_a_late_entry_replays_a_bounded_span() -> None:
    """A bulk fold of 1,500 entries with a snapshot due every 8 positions took ~190 snapshots
    and thinned all but 12 away (a State.copy each); planned, it takes no more than it keeps,
    logarithmically spaced: the newest near the end, and a late entry ``d`` positions back
    replays at most ``(1 + PLAN_SPACING) d`` plus an interval."""
    history = _long_history(1500)
    folder = Folder(history.commons, snapshot_every=8)
    counts = _counting(folder)
    for entry in history.entries:
        folder.add(entry)
    folder.run()
    assert counts["snapshots"] <= MAX_SNAPSHOTS + 1, counts
    assert len(folder.snap_keys) - 1 == counts["snapshots"] - max(0, counts["snapshots"] - MAX_SNAPSHOTS)
    order = folder.order
    back = [len(order) - order.index(key) for key in folder.snap_keys[1:]]
    assert back == sorted(back, reverse=True)
    assert back[-1] <= 8 + 16  # the newest: within an interval (checked every 16) of the end
    gaps = [a - b for a, b in pairwise(back)]
    assert gaps[0] > 2 * gaps[-1]  # (the spacing grows going back)
    assert back[0] > len(order) // 3  # the oldest far back: a late entry there does not refold all

    ids = {entry.id.raw: entry.id for entry in history.entries}
    for k, distance in enumerate((40, 300, 900)):
        anchor = order[len(order) - distance]
        late = sign_entry(SIGNERS[3 + k], commons=history.commons, seq=1, prev=None, kind="contribution",
                          body={"title": f"late {distance}", "value": 1}, deps=[ids[anchor[1]]], timestamp=5)
        counts["applied"] = 0
        folder.add(late)
        state = folder.result()
        history.entries.append(late)
        interval = max(8, folder.state.size() // 32) if folder.state is not None else 8
        assert counts["applied"] <= (1 + PLAN_SPACING) * (distance + 1) + interval + 16, (distance, counts)
        assert state.state_hash == fold(history.entries).state_hash


def test_an_evicting_bulk_run_snapshots_at_the_eviction_front() -> None:
    """An evicting fold applied in runs of 512 positions took a snapshot every due interval
    and archived at each; planned, it takes about one per run, at the eviction front, and
    still archives everything final (the window left is within an interval)."""
    history = _long_history(3000)
    archive = MemoryArchive()
    folder = Folder(history.commons, snapshot_every=8, archive=archive)
    folder.silent_after = 64
    counts = _counting(folder)
    runs = 0
    for i, entry in enumerate(history.entries, 1):
        folder.add(entry)
        if i % 512 == 0:
            folder.run()
            runs += 1
    state = folder.result()
    runs += 1
    assert counts["snapshots"] <= 2 * runs + len(history.entries) // EVICT_EVERY + 8, counts
    assert folder.evicted >= len(history.entries) - 600, folder.evicted
    assert state.state_hash == fold(history.entries).state_hash
