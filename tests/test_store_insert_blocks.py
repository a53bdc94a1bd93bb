"""Entry rows are written as multi-row INSERT statements of ``_ROWS_PER_INSERT`` rows, the
rest one by one (:meth:`Store._insert_entry_rows`).

Why a property: the block statements are a fast path beside the one-row statement, and the
redo after a duplicate (the savepoint) depends on the count they report.  Whatever batches
and duplicates arrive, the store must hold each entry once, in the order it first arrived
(``n``: the arrival order that readers page by), with the counts and causal facts of the
entries held.  The batches here span several blocks and a remainder.

The redo takes this call's rows out again by their numbers (no savepoint: one makes SQLite
journal every page the insert touches); a savepoint remains where the numbers could not
tell (``n`` near its maximum), and the two must leave the same store.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons import store as store_module
from p2pcommons.entry import Entry
from p2pcommons.store import _ROWS_PER_INSERT, Store

from .support.histories import linear_history
from .support.signed import new_store, scaled
from .test_store_causal import from_scratch, stored_facts


@functools.cache
def _history() -> list[Entry]:
    # genesis + 3 authors x 110: more than two blocks, and a remainder
    return linear_history(3, 110, body_bytes=8, label="blocks")


@st.composite
def _deliveries(draw: st.DrawFn) -> list[list[Entry]]:
    """The history's entries in a random order, cut into batches, some of them sent again
    (a whole batch or a slice of it, or single entries inside a new batch)."""
    entries = draw(st.permutations(_history()))
    cuts = sorted(draw(st.lists(st.integers(0, len(entries)), max_size=3)))
    batches, start = [], 0
    for cut in [*cuts, len(entries)]:
        batches.append(entries[start:cut])
        start = cut
    for _ in range(draw(st.integers(0, 2))):
        sent = [e for batch in batches for e in batch]
        if not sent:
            break
        at = draw(st.integers(0, len(batches)))
        first = draw(st.integers(0, len(sent) - 1))
        again = sent[first:first + draw(st.integers(1, 2 * _ROWS_PER_INSERT))]
        fresh = draw(st.lists(st.sampled_from(entries), max_size=20))
        batches.insert(at, [*fresh, *again] if draw(st.booleans()) else [*again, *fresh])
    return batches


@settings(max_examples=scaled(0.2), deadline=None)
@given(_deliveries())
def test_block_inserts_store_each_entry_once_in_arrival_order(tmp_path: Path, batches: list[list[Entry]]) -> None:
    store = new_store(tmp_path)
    try:
        arrival: dict[bytes, Entry] = {}
        for batch in batches:
            store.insert(batch)
            for entry in batch:
                arrival.setdefault(entry.id.raw, entry)
            stored = [bytes(r[0]) for r in store.db.execute("SELECT id FROM entries ORDER BY n")]
            assert stored == list(arrival)
            held = list(arrival.values())
            assert store.count() == len(held)
            assert stored_facts(store, held) == from_scratch(held)
    finally:
        store.close()


def _contents(store: Store) -> list[Any]:
    """Everything an insert writes, in a comparable form (rows in arrival order)."""
    db = store.db
    return [
        [tuple(r) for r in db.execute("SELECT n, id, log, seq, kind, raw, clock FROM entries ORDER BY n")],
        sorted(tuple(r) for r in db.execute("SELECT * FROM waiting")),
        sorted(tuple(r) for r in db.execute("SELECT * FROM waiting_for")),
        sorted(tuple(r) for r in db.execute("SELECT * FROM logs")),
        sorted(tuple(r) for r in db.execute("SELECT * FROM commons_counts")),
    ]


@settings(max_examples=scaled(0.3), deadline=None)
@given(_deliveries())
def test_the_redo_by_row_numbers_leaves_what_the_savepoint_left(tmp_path: Path, batches: list[list[Entry]]) -> None:
    stores = [new_store(tmp_path), new_store(tmp_path)]  # (by row numbers; by the savepoint)
    try:
        for batch in batches:
            stores[0].insert(batch)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(store_module, "_LAST_ROW_NUMBER", 0)  # (every insert takes the savepoint)
                stores[1].insert(batch)
            assert _contents(stores[0]) == _contents(stores[1])
    finally:
        for store in stores:
            store.close()


def test_a_batch_of_new_entries_is_inserted_without_a_savepoint(tmp_path: Path) -> None:
    """The usual batch (nothing stored yet) takes no savepoint, so SQLite journals no page."""
    store = new_store(tmp_path)
    statements: list[str] = []
    try:
        store.db.set_trace_callback(statements.append)
        store.insert(_history())
        assert store.count() == len(_history())
        assert not [s for s in statements if "SAVEPOINT" in s.upper()]
        statements.clear()
        store.insert(_history()[-5:] + _history()[:3])  # (all stored already: the redo stores none)
        assert store.count() == len(_history())
    finally:
        store.close()
