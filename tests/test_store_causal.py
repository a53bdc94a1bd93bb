"""Causal facts computed once, at insert (store schema 4): each entry's Lamport clock, and the
entries still waiting for a parent.

Why: the state fold reads a commons in ``(clock, id)`` order straight from the store
(:meth:`Store.in_order`), so it never goes back over entries it already applied because a
log arrived after the entries that sort after it.  The promise checked here: whatever order
and batching the entries arrive in, the stored facts equal the ones computed from scratch
over the entries held — and a store from before schema 4 gets them on first open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons.entry import Entry, Signer, decode_entry, decode_stored, sign_entry
from p2pcommons.errors import InvalidEntry
from p2pcommons.state import engine
from p2pcommons.state.engine import current_state, forget
from p2pcommons.state.fold import Folder
from p2pcommons.store import SCHEMA_VERSION, Store

from .support.histories import linear_history, seed
from .support.signed import History, histories, new_store, scaled


def from_scratch(entries: list[Entry]) -> dict[bytes, int | None]:
    """Per entry, its clock if every ancestor is held (1 + max over parents; a genesis 0, an
    entry naming no parent 1), else None: computed over the whole set, no order assumed."""
    by_id = {e.id.raw: e for e in entries}
    clocks: dict[bytes, int | None] = {}

    def clock(eid: bytes) -> int | None:
        if eid in clocks:
            return clocks[eid]
        entry = by_id.get(eid)
        if entry is None:
            return None
        parents = [d.raw for d in entry.deps] + ([entry.prev.raw] if entry.prev is not None else [])
        found = [clock(p) for p in parents]
        value = None if None in found else (max(found) + 1 if found else (0 if entry.commons is None else 1))  # type: ignore[type-var,operator]
        clocks[eid] = value
        return value

    for eid in by_id:
        clock(eid)
    return clocks


def stored_facts(store: Store, entries: list[Entry]) -> dict[bytes, int | None]:
    return {e.id.raw: store.clock_of(e.id) for e in entries}


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[History, list[list[Entry]]]:
    """A history, and its entries in any order, cut into batches, some entries left out."""
    history = draw(histories(max_authors=4, max_steps=14))
    shuffled = draw(st.permutations(history.entries))
    kept = [e for e, keep in zip(shuffled, draw(st.lists(st.booleans(), min_size=len(shuffled),
                                                         max_size=len(shuffled))), strict=True)
            if keep or draw(st.booleans())]
    cuts = sorted(draw(st.lists(st.integers(0, len(kept)), max_size=4)))
    batches, start = [], 0
    for cut in [*cuts, len(kept)]:
        batches.append(kept[start:cut])
        start = cut
    # Sometimes an entry comes twice (a re-sent batch): nothing changes.
    if kept and draw(st.booleans()):
        batches.append(kept[: draw(st.integers(1, len(kept)))])
    return history, batches


def placed_late_truth(batches: list[list[Entry]], held: dict[bytes, Entry]) -> set[bytes]:
    """The entries of ``held`` that their own insert left unplaced: those stored (first) in a
    batch after which, counting everything stored by then, a parent was still unplaced."""
    stored: dict[bytes, Entry] = {}
    late: set[bytes] = set()
    for batch in batches:
        new = [e for e in batch if e.id.raw not in stored]
        stored.update((e.id.raw, e) for e in batch)
        if set(stored) - set(held):
            break  # (batches beyond what the caller has stored so far)
        truth = from_scratch(list(stored.values()))
        late.update(e.id.raw for e in new if truth[e.id.raw] is None)
        if set(stored) == set(held):
            break
    return late


@settings(max_examples=scaled(0.5))
@given(deliveries())
def test_stored_causal_facts_equal_those_computed_from_scratch_in_any_insert_order(
        tmp_path: Path, delivery: tuple[History, list[list[Entry]]]) -> None:
    _, batches = delivery
    store = new_store(tmp_path)
    try:
        held: dict[bytes, Entry] = {}
        for batch in batches:
            store.insert(batch)
            held.update((e.id.raw, e) for e in batch)
            truth = from_scratch(list(held.values()))
            assert stored_facts(store, list(held.values())) == truth
            assert store.waiting_ids() == {eid for eid, clock in truth.items() if clock is None}
            # The waiting tables hold exactly the waiting entries, each watching one parent
            # that is not placed: nothing is left behind once an entry is placed.
            db = store._db
            assert {bytes(r[0]) for r in db.execute("SELECT id FROM waiting")} == store.waiting_ids()
            watched = [(bytes(p), bytes(i)) for p, i in db.execute("SELECT parent, id FROM waiting_for")]
            assert sorted(i for _, i in watched) == sorted(store.waiting_ids())
            assert all(truth.get(p) is None for p, _ in watched)
            # Each entry placed after its own insert is numbered, once (the engine's second
            # cursor); only placed entries are.  (One its own insert placed by waking an
            # earlier entry it named may be numbered too: the engine takes it once either way.)
            late = [bytes(r[0]) for r in db.execute("SELECT id FROM placed_late ORDER BY k")]
            assert len(late) == len(set(late))
            assert all(truth.get(eid) is not None for eid in late)
            assert set(late) >= {eid for eid in placed_late_truth(batches, held) if truth.get(eid) is not None}
        path = store.path
    finally:
        store.close()
    with Store(path) as reopened:  # (and a new connection sees the same, its mirror read afresh)
        assert stored_facts(reopened, list(held.values())) == from_scratch(list(held.values()))


@settings(max_examples=scaled(0.3))
@given(deliveries())
def test_the_store_order_is_the_folds_order(tmp_path: Path, delivery: tuple[History, list[list[Entry]]]) -> None:
    """``in_order`` yields the placed entries exactly in the fold's ``(clock, id)`` order."""
    history, batches = delivery
    store = new_store(tmp_path)
    try:
        for batch in batches:
            store.insert(batch)
        held = {e.id.raw: e for batch in batches for e in batch}
        folder = Folder(history.commons)
        for entry in held.values():
            folder.add(entry)
        order = [bytes(k[1]) for k in folder.order]
        truth = from_scratch(list(held.values()))
        placed_ids = [decode_entry(raw).id.raw for raw in store.in_order(history.commons)]
        in_commons = {eid for eid, e in held.items() if (e.commons or e.id) == history.commons}
        expected_placed = [eid for eid in sorted((eid for eid in in_commons if truth[eid] is not None),
                                                 key=lambda eid: (truth[eid], eid))]
        assert placed_ids[:len(expected_placed)] == expected_placed
        assert set(placed_ids[len(expected_placed):]) == {eid for eid in in_commons if truth[eid] is None}
        # The fold's own order (clock, id) over what it made ready is the same sequence.
        assert order == [eid for eid in expected_placed if eid in set(order)]
    finally:
        store.close()


def _as_schema_3(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP INDEX entries_by_clock")
    db.execute("DROP TABLE waiting")
    db.execute("DROP TABLE waiting_for")
    db.execute("ALTER TABLE entries DROP COLUMN clock")
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()


@settings(max_examples=scaled(0.1))
@given(deliveries())
def test_a_schema_3_store_gets_its_causal_facts_on_first_open(
        tmp_path: Path, delivery: tuple[History, list[list[Entry]]]) -> None:
    _, batches = delivery
    store = new_store(tmp_path)
    for batch in batches:
        store.insert(batch)
    held = list({e.id.raw: e for batch in batches for e in batch}.values())
    path = store.path
    store.close()
    _as_schema_3(path)
    with Store(path) as upgraded:
        assert upgraded._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 4
        assert stored_facts(upgraded, held) == from_scratch(held)


def test_a_fresh_engine_fold_of_entries_stored_in_log_order_never_goes_back(tmp_path: Path) -> None:
    """Entries stored one author's log after another (as sync delivers them) fold, from the
    store's order, without a restore or a refold, to the state of an in-memory fold."""
    # Independent logs (each depends on the genesis and its own prev only), more than a feed
    # batch: each log is ready when it arrives, and sorts among the logs applied before it.
    genesis = linear_history(1, 0)[0]
    signers = [Signer(seed(f"log-{i}")) for i in range(4)]
    entries = [genesis]
    for signer in signers:
        prev: Entry | None = None
        for seq in range(1, 701):
            prev = sign_entry(signer, commons=genesis.id, seq=seq, prev=None if prev is None else prev.id,
                              kind="note", deps=[genesis.id] if prev is None else [], body={"n": seq},
                              timestamp=seq)
            entries.append(prev)
    by_log = sorted(entries, key=lambda e: (e.author, e.seq))
    commons = entries[0].id
    store = new_store(tmp_path)
    try:
        for i in range(0, len(by_log), 500):
            store.insert(by_log[i:i + 500])
        forget()
        state = current_state(store, commons, persist=False)
        live = engine._live[engine._key(store, commons)]
        assert (live.folder.replays, live.folder.refolds, live.folder.restarts) == (0, 0, 0)
        reference = Folder(commons)
        for entry in by_log:
            reference.add(entry)
        assert state.state_hash == reference.result().state_hash
    finally:
        forget()
        store.close()


def test_a_replay_reads_the_bodies_it_needs_in_ranges_not_one_query_each(tmp_path: Path) -> None:
    """A late entry sends the live fold back over positions whose bodies it dropped; they
    come back in ranges of the store's order, not one ``Store.get`` per entry."""
    genesis = linear_history(1, 0)[0]
    signer = Signer(seed("replay"))
    entries = [genesis]
    prev: Entry | None = None
    for seq in range(1, 1201):
        prev = sign_entry(signer, commons=genesis.id, seq=seq, prev=None if prev is None else prev.id, kind="note",
                          deps=[genesis.id] if prev is None else [], body={"n": seq}, timestamp=seq)
        entries.append(prev)
    store = new_store(tmp_path)
    try:
        store.insert(entries)
        forget()
        current_state(store, genesis.id, persist=False)
        late = sign_entry(Signer(seed("late")), commons=genesis.id, seq=1, prev=None, kind="note",
                          deps=[entries[200].id], body={"late": True}, timestamp=1)
        store.insert([late])
        gets = 0
        real_get = store.get

        def counting_get(entry_id: object) -> Entry | None:
            nonlocal gets
            gets += 1
            return real_get(entry_id)  # type: ignore[arg-type]

        store.get = counting_get  # type: ignore[method-assign]
        state = current_state(store, genesis.id, persist=False)
        live = engine._live[engine._key(store, genesis.id)]
        assert live.folder.replays >= 1  # it did go back (about 1,000 positions)
        assert gets <= 10
        reference = Folder(genesis.id)
        for entry in [*entries, late]:
            reference.add(entry)
        assert state.state_hash == reference.result().state_hash
    finally:
        forget()
        store.close()


@settings(max_examples=scaled(0.2))
@given(histories(max_authors=3, max_steps=8), st.binary(max_size=64))
def test_decoding_a_stored_entry_gives_the_entry_and_refuses_what_decode_entry_refuses(
        history: History, junk: bytes) -> None:
    """The fold reads stored entries with ``decode_stored`` (no canonical re-encoding check:
    the store took those exact bytes from ``decode_entry``): the same entries, and for bytes
    that are not an entry, the same error."""
    for entry in history.entries:
        stored = decode_stored(entry.raw)
        assert (stored.id, stored.raw, stored.deps, stored.prev, stored.body, stored.kind) == \
            (entry.id, entry.raw, entry.deps, entry.prev, entry.body, entry.kind)
    try:
        decode_entry(junk)
    except InvalidEntry as expected:
        with pytest.raises(type(expected)):
            decode_stored(junk)


@settings(max_examples=scaled(0.3))
@given(deliveries())
def test_the_stored_id_the_fold_takes_is_the_entrys_hash(
        tmp_path: Path, delivery: tuple[History, list[list[Entry]]]) -> None:
    """The fold's read path takes each entry's id from the store rather than hashing it again
    (``in_order_rows`` and ``decode_stored(raw, id)``): in any insert order and batching, each
    stored id is the hash of the bytes beside it, the rows are ``in_order``'s entries in the
    same order, and an entry decoded with its stored id equals the one decoded by hashing."""
    history, batches = delivery
    store = new_store(tmp_path)
    try:
        for batch in batches:
            store.insert(batch)
        rows = list(store.in_order_rows(history.commons))
        assert [raw for raw, _, _ in rows] == list(store.in_order(history.commons))
        for raw, eid, vv in rows:
            assert vv == store._vector_row_by_id(eid)[2]  # type: ignore[index]
            hashed, taken = decode_entry(raw), decode_stored(raw, eid)
            assert eid == hashed.id.raw
            assert (taken.id, taken.raw, taken.seq, taken.sig, taken.deps, taken.prev, taken.body, taken.kind,
                    taken.time, taken.author, taken.commons) == \
                (hashed.id, hashed.raw, hashed.seq, hashed.sig, hashed.deps, hashed.prev, hashed.body, hashed.kind,
                 hashed.time, hashed.author, hashed.commons)
    finally:
        store.close()


def test_a_batch_in_log_order_is_placed_in_memory_and_written_once(tmp_path: Path) -> None:
    """A batch grouped by log (as ingest hands it over) names, in one author's entries,
    another author's entries that come later in the same batch: those are placed in memory
    before any row is written, so no entry of the batch waits in the tables or has its row
    rewritten with its clock afterwards (the cost that made storing a sync in log order
    about four times as dear as in causal order)."""
    history = linear_history(3, 40)  # each entry depends on the previous author's latest
    by_log = sorted(history[1:], key=lambda e: (e.author, e.seq))
    store = new_store(tmp_path)
    try:
        store.insert(history[:1])
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        store.insert(by_log)
        store._db.set_trace_callback(None)
        assert not [s for s in statements if "waiting" in s or s.startswith("UPDATE entries")]
        assert store.waiting_ids() == set()
        assert stored_facts(store, history) == from_scratch(history)
    finally:
        store.close()
