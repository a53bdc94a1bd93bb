"""The pipelined hand-off of received groups (issue 18): a real ingest child, real SQLite.

A sync session hands group k+1 to the ingest process while group k is stored; the child
commits k without an fsync and syncs the store's log in another thread before replying,
while it stores k+1.  What must hold: replies only after the log is synced, in order;
groups stored in the order they were handed over, also when the child dies with groups in
hand (they are stored again in the daemon, after a sync of the log); and the result the
same as storing the groups one after the other.
"""

from __future__ import annotations

import io
import queue
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import trio
from hypothesis import HealthCheck, given, settings

from p2pcommons.dagcbor import CID
from p2pcommons.node.handoff import Handoff, Outcome, StoredGroup
from p2pcommons.node.ingest_process import IngestProcess
from p2pcommons.node.ingest_worker import IngestWorkerFailed, ingest_scoped, reply_when_durable, sync_log
from p2pcommons.store import Store

from .test_node_ingest_process import _history, _store_with


def _replies(data: bytes) -> list[tuple[Any, ...]]:
    import pickle

    out, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        out.append(pickle.loads(data[at + 4:at + 4 + size]))
        at += 4 + size
    return out


class _Recorder(io.BytesIO):
    """The reply pipe, noting each reply's place among the log syncs."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def write(self, data: Any) -> int:
        self.events.append("reply")
        return super().write(data)


def test_a_reply_leaves_only_after_the_log_is_synced() -> None:
    events: list[str] = []
    replies = _Recorder(events)
    outgoing: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
    for reply in [("ok", 1), ("error", "StoreError", "disk full"), ("ok", 2), None]:
        outgoing.put(reply)
    reply_when_durable(lambda: events.append("sync"), replies, outgoing)
    # an error reply stores nothing: no sync, but it still waits its turn
    assert events == ["sync", "reply", "reply", "sync", "reply"]
    assert [r[:2] for r in _replies(replies.getvalue())] == [("ok", 1), ("error", "StoreError"), ("ok", 2)]


def test_a_failed_log_sync_confirms_nothing_after_it() -> None:
    events: list[str] = []
    replies = _Recorder(events)
    outgoing: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
    for reply in [("ok", 1), ("ok", 2), ("ok", 3), None]:
        outgoing.put(reply)
    syncs = iter([None, OSError("EIO")])

    def sync() -> None:
        events.append("sync")
        failure = next(syncs)
        if failure is not None:
            raise failure

    reply_when_durable(sync, replies, outgoing, on_failure=lambda: events.append("exit"))
    assert events == ["sync", "reply", "sync", "exit"]
    assert [r[1] for r in _replies(replies.getvalue())] == [1]


def test_sync_log_of_a_store_without_a_log_is_a_no_op(tmp_path: Path) -> None:
    sync_log(tmp_path / "nothing.sqlite")  # no -wal file: nothing to make durable


def test_groups_in_flight_are_stored_in_order(tmp_path: Path) -> None:
    """Three groups handed over before any reply is read, each continuing the chains of the
    one before: all stored, the replies each group's own, in order."""
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(900)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path))

    async def main() -> list[int]:
        try:
            raws = [e.raw for e in entries]
            requests = [await child.submit(genesis.id, raws[i:i + 300]) for i in range(0, 900, 300)]
            assert child.in_flight == 3
            added = [(await child.result(r))[0].added_count for r in requests]
            assert child.in_flight == 0
            return added
        finally:
            await child.aclose()

    assert trio.run(main) == [300, 300, 300]
    with Store(path) as store:
        assert store.count(genesis.id) == 901


def _handoff(path: Path, store: Store, child: IngestProcess, synced: list[int], *, small: int) -> Handoff:
    async def store_here(commons: CID, entries: list[bytes]) -> Outcome:
        return await trio.to_thread.run_sync(ingest_scoped, store, commons, entries)

    async def sync() -> None:
        await trio.to_thread.run_sync(sync_log, str(path))
        synced.append(1)

    return Handoff(store_here, process=child, sync_log=sync, use_process=lambda n: n >= small)


def test_a_child_killed_with_groups_in_hand_loses_nothing(tmp_path: Path) -> None:
    """The child dies with two groups in hand: both are stored again in the daemon, in
    order, each after a sync of the log (the child may have committed one unsynced), and
    the group handed over meanwhile waits for them (not to the new child, which could
    store it first: its chains continue theirs)."""
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(1200)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path))
    synced: list[int] = []
    raws = [e.raw for e in entries]

    async def main() -> list[Outcome]:
        with Store(path) as store:
            handoff = _handoff(path, store, child, synced, small=1)
            try:
                first = await handoff.hand_over(genesis.id, raws[:300])
                acknowledged = [await first.report()]
                second = await handoff.hand_over(genesis.id, raws[300:600])
                third = await handoff.hand_over(genesis.id, raws[600:900])
                assert child._proc is not None
                child._proc.kill()
                outcomes = [await second.report()]
                # the child is known dead: the next group is kept for the store thread until
                # the failed one before it is stored again
                fourth = await handoff.hand_over(genesis.id, raws[900:])
                outcomes += [await third.report(), await fourth.report()]
                return acknowledged + outcomes
            finally:
                await child.aclose()

    outcomes = trio.run(main)
    assert all(not report.rejected for report, _ in outcomes)
    assert [r.added_count + r.duplicates for r, _ in outcomes] == [300, 300, 300, 300]
    assert len(synced) >= 2  # the two groups stored again (and maybe the fourth)
    with Store(path) as store:
        assert store.count(genesis.id) == 1201


def test_a_session_that_leaves_a_group_in_hand_stops_the_child(tmp_path: Path) -> None:
    """No one will read that group's reply: left in the pipe, it would be read as the
    next group's.  The child is stopped; the next group starts a new one."""
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(60)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path))
    synced: list[int] = []
    raws = [e.raw for e in entries]

    async def main() -> Outcome:
        with Store(path) as store:
            handoff = _handoff(path, store, child, synced, small=1)
            try:
                left: StoredGroup = await handoff.hand_over(genesis.id, raws[:30])
                await left.discard()
                assert not child.running and child.in_flight == 0
                again = await handoff.hand_over(genesis.id, raws[:30])
                rest = await handoff.hand_over(genesis.id, raws[30:])
                first = await again.report()  # (reports are taken in hand-over order)
                await rest.report()
                return first
            finally:
                await child.aclose()

    report, _ = trio.run(main)
    assert not report.rejected
    assert child.starts == 2
    with Store(path) as store:
        assert store.count(genesis.id) == 61


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          max_examples=max(5, settings().max_examples // 5))
@given(data=st.data())
def test_pipelined_groups_store_what_serial_groups_store(tmp_path_factory: pytest.TempPathFactory,
                                                         data: st.DataObject) -> None:
    """Random cuts of a history into groups (small ones to the store thread, larger ones
    to the child), handed over two at a time as a session does, with the child killed at
    random moments: the store ends with the same entries as storing the same groups one by
    one in order, nothing refused; without kills the reports match group by group."""
    n = data.draw(st.integers(20, 240), label="entries")
    genesis, entries = _history(n)
    raws = [e.raw for e in entries]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=8), label="cuts")))
    groups = [raws[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    if data.draw(st.booleans(), label="duplicates"):  # a group delivered twice (a probe, a retry)
        at = data.draw(st.integers(0, len(groups) - 1))
        groups.insert(at + 1, groups[at])
    kills = set(data.draw(st.lists(st.integers(0, len(groups) - 1), max_size=2), label="kill before"))
    small = data.draw(st.sampled_from([1, 16, 64]), label="smallest group for the child")
    root = tmp_path_factory.mktemp("handoff")
    serial, pipelined = root / "serial.sqlite", root / "pipelined.sqlite"
    for path in (serial, pipelined):
        _store_with(path, genesis.raw)
    with Store(serial) as store:
        expected = [ingest_scoped(store, genesis.id, g) for g in groups]
    child = IngestProcess(str(pipelined))
    synced: list[int] = []

    async def main() -> list[Outcome]:
        outcomes: list[Outcome] = []
        with Store(pipelined) as store:
            handoff = _handoff(pipelined, store, child, synced, small=small)
            handed: list[StoredGroup] = []
            try:
                for i, group in enumerate(groups):
                    if i in kills and child._proc is not None:
                        child._proc.kill()
                    if len(handed) == 2:  # the session's PIPELINE_DEPTH
                        outcomes.append(await handed.pop(0).report())
                    handed.append(await handoff.hand_over(genesis.id, group))
                for stored in handed:
                    outcomes.append(await stored.report())
            finally:
                await child.aclose()
        return outcomes

    outcomes = trio.run(main)
    assert all(not r.rejected for r, _ in outcomes)
    with Store(serial) as a, Store(pipelined) as b:
        assert set(a.in_order(genesis.id)) == set(b.in_order(genesis.id))
        assert a.count(genesis.id) == b.count(genesis.id) == n + 1
    if not kills:
        assert [(r.added_count, r.duplicates, r.declined, new) for r, new in outcomes] == \
            [(r.added_count, r.duplicates, r.declined, new) for r, new in expected]


def test_a_child_started_after_one_died_is_not_killed_for_its_requests(tmp_path: Path) -> None:
    """A session's transfer announcement starts a child (prewarm) after the last one died
    with a group in hand: that group fails (it is stored again by its session), and the
    new child, which never had it, is left running."""
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(30)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path))

    async def main() -> tuple[bool, int]:
        try:
            request = await child.submit(genesis.id, [e.raw for e in entries])
            assert child._proc is not None
            child._proc.kill()
            await child._proc.wait()
            await child.prewarm()
            with pytest.raises(IngestWorkerFailed):
                await child.result(request)
            return child.running, child.starts
        finally:
            await child.aclose()

    assert trio.run(main) == (True, 2)
