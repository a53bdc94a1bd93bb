"""The store-backed engine: incremental = full across deliveries, duplicates, late entries and
process restarts (a RuleBasedStateMachine), and verify_state."""

from __future__ import annotations

import importlib
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from p2pcommons.entry import Entry
from p2pcommons.state import Folder, fold
from p2pcommons.state.engine import StateMismatch, cached_head, current_state, forget, rebuild, verify_state
from p2pcommons.store import Store
from tests.test_state_histories import ACTIONS, build, examples, prop_settings

engine = importlib.import_module("p2pcommons.state.engine")


class EngineMachine(RuleBasedStateMachine):
    """Deliver a random history's entries to a store in random batches; after each step the
    engine's state must equal a fold from scratch of what the store holds."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="p2pc-engine-"))
        self.store = Store(self.dir / "store.sqlite")
        # Durability is not what this machine tests; fsyncs would dominate its run time.
        self.store._db.execute("PRAGMA synchronous=OFF")
        self.pending: list[Entry] = []
        self.held: list[Entry] = []
        self.commons = None

    @initialize(actions=ACTIONS, seed=st.integers(0, 2**32 - 1))
    def setup(self, actions: list[tuple[int, int, int]], seed: int) -> None:
        history = build(actions)
        self.commons = history.commons
        self.pending = list(history.entries[1:])
        random.Random(seed).shuffle(self.pending)
        self.store.insert([history.genesis])
        self.held = [history.genesis]

    @rule(n=st.integers(1, 6))
    def deliver(self, n: int) -> None:
        batch, self.pending = self.pending[:n], self.pending[n:]
        # Forks: the store keeps both siblings as evidence.
        self.store.insert(batch)
        self.held.extend(batch)

    @rule(k=st.integers(0, 5))
    def duplicate(self, k: int) -> None:
        if self.held:
            self.store.insert([self.held[k % len(self.held)]])

    @rule()
    def restart(self) -> None:
        """A new process: the live state is gone, the store (and its cache) remain."""
        forget(self.store)

    @invariant()
    def matches_full_fold(self) -> None:
        if self.commons is None:
            return
        state = current_state(self.store, self.commons, persist=True)
        reference = fold(self.held, self.commons)
        assert state.state_hash == reference.state_hash
        head = cached_head(self.store, self.commons)
        assert head is not None and head["state_hash"] == state.state_hash
        # Entries missing a parent wait in the store, never in the fold (one commons here:
        # every parent the store holds is offered first), and read as waiting.
        live = engine._live[engine._key(self.store, self.commons)]
        assert not live.folder.waiting
        assert state.waiting_count == reference.waiting_count
        for entry in self.held:
            expected = reference.outcome(entry.id)
            if expected is not None and expected.status == "waiting":
                assert state.outcome(entry.id) == expected

    def teardown(self) -> None:
        if self.commons is not None:
            assert verify_state(self.store, self.commons) == fold(self.held, self.commons).state_hash
            forget(self.store)
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


EngineMachine.TestCase.settings = EngineMachine.TestCase.settings.__class__(
    max_examples=examples(100), stateful_step_count=25, deadline=None)
TestEngine = pytest.mark.timeout(3600)(EngineMachine.TestCase)  # long under P2PC_HYPOTHESIS_PROFILE=soak


def test_verify_state_detects_a_corrupt_cache(tmp_path: Path) -> None:
    history = build([(0, 3, 1), (2, 1, 0), (0, 0, 2), (1, 20, 4)])
    with Store(tmp_path / "s.sqlite") as store:
        store.insert(history.entries)
        state = current_state(store, history.commons)
        assert verify_state(store, history.commons) == state.state_hash
        # Tamper with the persisted materialization: verify notices and drops the cache.
        import cbor2

        key = f"state/{history.commons}/head"
        head = cbor2.loads(store.get_cache(key))  # type: ignore[arg-type]
        head["state_hash"] = "0" * 64
        store.put_cache(key, cbor2.dumps(head))
        with pytest.raises(StateMismatch, match="cached state"):
            verify_state(store, history.commons)
        assert store.get_cache(key) is None
        assert verify_state(store, history.commons) == state.state_hash
        assert rebuild(store, history.commons).state_hash == state.state_hash
        forget(store)


def test_a_new_process_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    """A restarted process continues from the persisted checkpoint (entries load lazily
    from the store), including a late entry that sorts before the checkpoint's position."""
    from p2pcommons.state import engine
    from p2pcommons.state.checkpoint import LazyEntries

    history = build([(0, 3, 1), (2, 1, 0), (0, 0, 2), (0, 5, 4), (1, 0, 0), (1, 9, 6), (0, 3, 8), (5, 3, 2),
                     (0, 0, 5), (0, 2, 5), (0, 11, 9)])
    # A steward's contribution written from a stale view: it sorts early, nobody depends on it.
    late = history.write(1, "contribution", {"title": "from the field", "value": 2}, stale=True)
    early = [e for e in history.entries if e is not late]
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.insert(early)
        current_state(store, history.commons, persist=True)
    forget()
    with Store(path) as store:
        store.insert([late])
        state = current_state(store, history.commons)
        live = engine._live[engine._key(store, history.commons)]
        assert isinstance(live.folder.entries, LazyEntries)
        assert live.folder.meta[late.id.raw].key < live.folder.order[-1]  # it was a late entry
        assert state.state_hash == fold(history.entries).state_hash
        assert verify_state(store, history.commons) == state.state_hash
    forget()


def test_auto_admit_admits_joins_to_an_open_commons(tmp_path: Path) -> None:
    from p2pcommons.state.engine import auto_admit
    from tests.test_state_histories import SIGNERS

    history = build([(4, 9, 1)])  # a newcomer (author 2) joins
    joins = [e for e in history.entries if e.kind == "join"]
    assert joins
    with Store(tmp_path / "s.sqlite") as store:
        store.insert(history.entries)
        written = auto_admit(store, SIGNERS[0], history.commons)
        assert len(written) == 1 and written[0].kind == "admission"
        state = current_state(store, history.commons)
        assert state.has_role(joins[0].author, "member")
        assert auto_admit(store, SIGNERS[0], history.commons) == []
    forget()


def test_late_entry_after_resume_replays_from_a_kept_snapshot(tmp_path: Path) -> None:
    from p2pcommons.entry import sign_entry
    from p2pcommons.state import engine
    from tests.test_state_histories import SIGNERS, History

    history = History()
    for i in range(700):
        history.write(0, "contribution", {"title": f"c{i}", "value": 1})
    anchor = history.entries[-60]
    late = sign_entry(SIGNERS[3], commons=history.commons, seq=1, prev=None, kind="join", body={"name": "late"},
                      deps=[anchor.id], timestamp=5)
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.insert(history.entries)
        current_state(store, history.commons, persist=True)
    forget()
    with Store(path) as store:
        store.insert([late])
        live_state = current_state(store, history.commons)
        folder = engine._live[engine._key(store, history.commons)].folder
        # A snapshot that came back with the checkpoint sits before the late entry: the
        # replay started there, not from the beginning.
        assert any((-1, b"") < key < folder.meta[late.id.raw].key for key in folder.snap_keys)
        assert live_state.state_hash == fold([*history.entries, late]).state_hash
    forget()


def test_an_append_reads_no_old_entry_back(tmp_path: Path) -> None:
    """Appending one entry to a live fold fed from the store reads no stored body back: its
    parents' times (to date it, §2.4) come from the fold, not from their bodies, which the
    live fold dropped after applying them (each append cost a range read and the decoding
    of 256 old entries, most of an append's time)."""
    from tests.test_state_histories import History

    history = History()
    for i in range(600):
        history.write(i % 2, "contribution", {"title": f"c{i}", "value": 1})
    with Store(tmp_path / "s.sqlite") as store:
        store.insert(history.entries)
        current_state(store, history.commons, persist=False)
        reads: list[str] = []
        in_order_from, get = store.in_order_from, store.get

        def counted_range(*args: Any) -> list[bytes]:
            reads.append("range")
            return in_order_from(*args)

        def counted_get(*args: Any) -> Entry | None:
            reads.append("get")
            return get(*args)

        store.in_order_from = counted_range  # type: ignore[method-assign]
        store.get = counted_get  # type: ignore[method-assign]
        for i in range(3):
            entry = history.write(i % 2, "contribution", {"title": f"append {i}", "value": 1})
            store.insert([entry])
            state = current_state(store, history.commons, persist=False)
        assert reads == []
        assert state.state_hash == fold(history.entries).state_hash
    forget()


@prop_settings(100)
@given(actions=ACTIONS)
@example(actions=[(6, 9, 0), (0, 0, 262), (0, 9, 0), (0, 9, 0), (0, 12, 0), (4, 9, 0)])  # a delta reorders joins
def test_checkpoint_snapshots_round_trip_as_differences(actions: list[tuple[int, int, int]]) -> None:
    """Snapshots go into a checkpoint as their difference from the state (changed items,
    absent keys, a shared list prefix): each one decodes back to exactly itself."""
    from p2pcommons.state.checkpoint import _dump_delta, _dump_state, _load_delta
    from p2pcommons.state.records import TABLES

    def dump(s: Any) -> dict[str, Any]:
        """The state's rows, each table's rows in key order: a table is a map, and a delta
        re-inserts changed items at the end (no handler's outcome depends on a table's
        iteration order; the canonical encoding sorts keys)."""
        doc = _dump_state(s)
        for table in TABLES:
            doc[table.name] = sorted(doc[table.name], key=repr)
        return doc

    history = build(actions)
    folder = Folder(history.commons, snapshot_every=1)
    for entry in history.entries:
        folder.add(entry)
    folder.run()
    state = folder.state
    assert state is not None
    for snap, _ in folder.snap_states:
        if snap is None:
            continue
        delta = _dump_delta(snap, state)
        assert dump(_load_delta(delta, state)) == dump(snap)
        # and the same against an empty-ish state (everything differs)
        assert dump(_load_delta(_dump_delta(state, snap), snap)) == dump(state)


def test_a_save_the_store_refused_is_tried_again(tmp_path: Path) -> None:
    """The fold's save failed (another process held the write lock past the busy timeout):
    the next fold saves, even with fewer new entries than the save interval.  Before, the
    failed save was counted as done and the persisted head stayed behind until
    PERSIST_EVERY more entries arrived (seen as a receiving daemon whose head never
    reached the end of a sync)."""
    import sqlite3

    from tests.support.histories import linear_history

    entries = linear_history(2, 20)
    path = tmp_path / "store.sqlite"
    with Store(path) as setup:
        setup.insert(entries[:-1])
    store = Store(path, busy_timeout=0)
    other = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        other.execute("BEGIN IMMEDIATE")
        current_state(store, entries[0].id)
        assert cached_head(store, entries[0].id) is None
        other.execute("ROLLBACK")
        store.insert(entries[-1:])
        state = current_state(store, entries[0].id)
        head = cached_head(store, entries[0].id)
        assert head is not None and head["count"] == state.entry_count == len(entries)
    finally:
        other.close()
        store.close()
        forget()


def _log_by_log(n: int) -> tuple[list[Entry], Any]:
    """A genesis and ``n`` entries of six members writing in turns, each naming the others'
    heads; the entries after the genesis each author's log in turn, as a bundle holds them."""
    from tests.test_state_memory import _quiet_history

    entries, commons = _quiet_history(n)
    return [entries[0], *sorted(entries[1:], key=lambda e: (e.author, e.seq))], commons


def test_entries_missing_a_parent_wait_in_the_store_not_in_the_fold(tmp_path: Path) -> None:
    """A bundle taken log by log into a node that holds much of the commons: most entries
    name other logs' entries that come later.  The fold held each waiting for its parents
    (and, dropping its body, read and decoded it again one query at a time when they came);
    now it is offered only entries the store has placed, and the others count as waiting
    from the store, with the same state, hash and outcomes as a fold of everything."""
    entries, commons = _log_by_log(1200)
    with Store(tmp_path / "store.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries[:1])
        held = entries[:1]
        current_state(store, commons, persist=False)
        for at in range(1, len(entries), 100):  # groups of 100: never as many as the fold holds
            group = entries[at:at + 100]
            store.insert(group)
            held += group
            state = current_state(store, commons, persist=False)
            live = engine._live[engine._key(store, commons)]
            assert not live.folder.waiting
            reference = fold(held, commons)
            assert state.state_hash == reference.state_hash
            assert state.waiting_count == reference.waiting_count
            waiting = [e for e in group if reference.outcome(e.id).status == "waiting"]
            for entry in waiting[:3]:
                assert state.outcome(entry.id) == reference.outcome(entry.id)
        assert reference.waiting_count == 0 and state.entry_count == len(entries)
        assert {o.id for o in state.outcomes()} == {e.id for e in entries}
        forget(store)


def test_an_entry_placed_while_the_engine_reads_is_offered_once(tmp_path: Path, monkeypatch: Any) -> None:
    """Another process stores the parents entries waited for between a first fold's marks
    and its read of the store's order: those entries, placed after the marks, are held back
    this time (the marks counted them as waiting) and offered with the next read; never
    twice, never lost.  (A later read takes its marks and its rows in one statement.)"""
    entries, commons = _log_by_log(60)
    offered: list[bytes] = []
    take = Folder.take_in_order

    def recorded(folder: Folder, batch: Any) -> int:
        batch = list(batch)
        offered.extend(e.id.raw for e in batch)
        return take(folder, batch)

    monkeypatch.setattr(Folder, "take_in_order", recorded)
    with Store(tmp_path / "store.sqlite") as store:
        # Every log but the last: most of their entries wait for the last log's.
        last_author = entries[-1].author
        first = [e for e in entries if e.author != last_author]
        rest = [e for e in entries if e.author == last_author]
        store.insert(first)
        mark = store.feed_mark

        def mark_then_store_the_rest(commons_id: Any) -> tuple[int, int, int]:
            found = mark(commons_id)
            with Store(store.path) as writer:  # (a second connection: another process's)
                writer.insert(rest)
            return found

        store.feed_mark = mark_then_store_the_rest  # type: ignore[method-assign]
        try:
            state = current_state(store, commons, persist=False)
        finally:
            del store.feed_mark
        before = fold(first, commons)
        assert before.waiting_count > 0
        assert state.state_hash == before.state_hash  # as at the marks: the rest not seen yet
        assert state.waiting_count == before.waiting_count
        state = current_state(store, commons, persist=False)
        assert sorted(offered) == sorted(e.id.raw for e in entries)  # each once
        assert state.state_hash == fold(entries, commons).state_hash
        live = engine._live[engine._key(store, commons)]
        assert state.waiting_count == 0 and not live.folder.waiting
        forget(store)


def test_a_fold_survives_another_connection_committing_while_it_reads(tmp_path: Path, monkeypatch: Any) -> None:
    """A fold reads the commons in batches and writes its archive between them, on the same
    connection: a first fold (the whole commons) and a later one (what was placed since,
    more than a batch).  Before: the read's cursor stayed open across those writes, so once
    another connection committed (the daemon's store thread storing gossip, the ingest
    process), the next archive write failed at once with SQLITE_BUSY (an outdated read
    snapshot) and the whole fold with it — retried, it failed again while the node kept
    storing entries."""
    from tests.support.histories import linear_history

    entries = linear_history(2, engine.FEED_BATCH * 3)
    commons = entries[0].id
    first, later = entries[:engine.FEED_BATCH * 4], entries[engine.FEED_BATCH * 4:]
    path = tmp_path / "store.sqlite"
    with Store(path) as setup:
        setup.insert(first)
    take = Folder.take_in_order
    commits: list[int] = []

    def take_then_commit_elsewhere(folder: Folder, batch: Any) -> int:
        taken = take(folder, batch)
        with Store(path) as other, other.transaction():  # (another process's connection)
            other.put_cache("test/other", b"%d" % len(commits))
        commits.append(1)
        return taken

    monkeypatch.setattr(Folder, "take_in_order", take_then_commit_elsewhere)
    with Store(path) as store:
        state = current_state(store, commons, persist=False)
        live = engine._live[engine._key(store, commons)]
        assert live.folder.archive is not None and len(commits) > 1  # (it evicted between batches)
        assert state.state_hash == fold(first, commons).state_hash
        store.insert(later)
        assert engine.FEED_BATCH < len(later) < live.count  # (taken as what was placed since)
        commits.clear()
        state = current_state(store, commons, persist=False)
        assert engine._live[engine._key(store, commons)] is live and len(commits) > 1
        assert state.state_hash == fold(entries, commons).state_hash
        forget(store)
