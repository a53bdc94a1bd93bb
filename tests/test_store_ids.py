"""Entries found by id through ``ids`` and ``new_ids`` (schema 6), not a unique index on
``entries.id``: the tables must name exactly the stored rows whatever is inserted, sent
again, deleted or merged, and an entry stored already must still be ignored.

Why a property: three things keep the tables right (the insert's triggers, the delete's
trigger, the merge inside an insert's transaction) and every lookup by id reads them; a row
missing from them is an entry the node has but cannot find, a row too many one it thinks it
has.  The merge bounds are made tiny here so that merges happen between, inside and after
the deliveries.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons import store as store_module
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry
from p2pcommons.store import SCHEMA_VERSION, Store

from .support.histories import linear_history
from .support.signed import new_store, scaled


@functools.cache
def _history() -> list[Entry]:
    return linear_history(3, 12, body_bytes=8, label="ids")


def _by_id(store: Store) -> dict[bytes, int]:
    """``ids`` and ``new_ids`` together, checked to name no id twice."""
    both = "SELECT id, n FROM ids UNION ALL SELECT id, n FROM new_ids"
    rows = [(bytes(i), int(n)) for i, n in store.db.execute(both)]
    found = dict(rows)
    assert len(found) == len(rows), "an id in both tables, or twice"
    return found


def _check(store: Store, held: set[bytes]) -> None:
    """The store holds exactly ``held``, each once, and finds each by id (and no other)."""
    stored = [(bytes(i), int(n)) for i, n in store.db.execute("SELECT id, n FROM entries")]
    assert len(stored) == len({i for i, _ in stored}), "an entry stored twice"
    assert {i for i, _ in stored} == held
    assert _by_id(store) == dict(stored)
    assert store.id_table_faults() == (0, 0)  # (the audit agrees)
    everything = [e.id.raw for e in _history()]
    assert store.which_exist(everything) == held
    for entry in _history():
        assert store.has(entry.id) == (entry.id.raw in held)
        assert store.get_raw(entry.id) == (entry.raw if entry.id.raw in held else None)


_operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.lists(st.integers(0, len(_history()) - 1), max_size=30)),
        st.tuples(st.just("cut"), st.integers(0, 3), st.integers(1, 14)),
    ),
    max_size=8,
)


@settings(max_examples=scaled(0.3), deadline=None)
@given(_operations, st.integers(1, 6))
def test_the_id_tables_name_exactly_the_stored_entries(tmp_path: Path, operations: list[tuple[object, ...]],
                                                       merge_at: int) -> None:
    history = _history()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "_MERGE_IDS_MIN", merge_at)
        patch.setattr(store_module, "_MERGE_IDS_MAX", 2 * merge_at)
        store = new_store(tmp_path)
        try:
            held: set[bytes] = set()
            for operation in operations:
                if operation[0] == "insert":
                    picked = [history[0], *(history[k] for k in operation[1])]  # type: ignore[union-attr]
                    store.insert(picked)
                    held.update(e.id.raw for e in picked)
                else:
                    _, log, cut = operation
                    with store.transaction():
                        gone = store.db.execute("DELETE FROM entries WHERE log = ? AND seq >= ? RETURNING id",
                                                (log, cut)).fetchall()
                    held.difference_update(bytes(r[0]) for r in gone)
                _check(store, held)
        finally:
            store.close()


def test_an_insert_leaves_ids_alone_until_the_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New ids go to the small table; the big one is written only by a merge, all at once."""
    monkeypatch.setattr(store_module, "_MERGE_IDS_MIN", 20)
    monkeypatch.setattr(store_module, "_MERGE_IDS_MAX", 20)
    history = _history()
    store = new_store(tmp_path)
    try:
        store.insert(history[:10])
        assert store.db.execute("SELECT count(*) FROM ids").fetchone()[0] == 0
        assert store.db.execute("SELECT count(*) FROM new_ids").fetchone()[0] == 10
        store.insert(history[10:25])
        assert store.db.execute("SELECT count(*) FROM ids").fetchone()[0] == 25
        assert store.db.execute("SELECT count(*) FROM new_ids").fetchone()[0] == 0
        store.insert(history[:30])  # (25 stored already: ignored)
        assert store.count() == 30
        _check(store, {e.id.raw for e in history[:30]})
    finally:
        store.close()


def test_entries_have_no_unique_index_on_id(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite") as store:
        indexed = [str(r[0]) for r in store.db.execute(
            "SELECT name FROM pragma_index_list('entries') WHERE \"unique\" = 1")]
        assert indexed == []


_COLUMNS = "n, id, log, seq, kind, raw, clock"  # (a schema 5 store's)


def _as_schema_5(path: Path) -> None:
    """Rewrite a store as schema 5 left it: a unique index on ``entries.id``, no id tables."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for name in ("entries_stored_once", "entries_id_added", "entries_id_deleted"):
        db.execute(f"DROP TRIGGER {name}")
    for name in ("ids", "new_ids", "ids_merged", "vv_named"):
        db.execute(f"DROP TABLE {name}")
    db.execute("ALTER TABLE entries DROP COLUMN vv")
    db.execute("ALTER TABLE entries RENAME TO old")
    db.execute("CREATE TABLE entries (n INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, log INTEGER NOT NULL, "
               "seq INTEGER NOT NULL, kind TEXT NOT NULL, raw BLOB NOT NULL, clock INTEGER)")
    db.execute("INSERT INTO entries SELECT * FROM old")
    db.execute("DROP TABLE old")
    db.execute("CREATE INDEX entries_by_log ON entries (log, seq)")
    db.execute("CREATE INDEX entries_by_clock ON entries (clock, id) WHERE clock IS NOT NULL")
    db.execute("PRAGMA user_version=5")
    db.execute("COMMIT")
    db.close()


def test_a_schema_5_store_is_rebuilt_with_its_rows_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    history = _history()
    with Store(path) as store:
        store.insert(history[:20])
        store.db.execute("DELETE FROM entries WHERE n = 5")  # (a gap in the numbers: kept)
        before = [tuple(r) for r in store.db.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY n")]
        commons = history[0].id
        in_order = list(store.in_order(commons))
    _as_schema_5(path)
    with Store(path) as upgraded:
        assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 10
        assert [tuple(r) for r in upgraded.db.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY n")] == before
        # (Schema 8's vectors, computed on the way: none for the entries whose past lost one.)
        assert upgraded.vector(history[3].id) is not None
        assert _by_id(upgraded) == {bytes(r[1]): int(r[0]) for r in before}
        assert list(upgraded.in_order(commons)) == in_order
        names = {str(r[0]) for r in upgraded.db.execute("SELECT name FROM sqlite_master")}
        assert {"entries_by_log", "entries_by_clock", "entries_stored_once"} <= names
        assert "old" not in names and "entries_unique_id" not in names
        upgraded.insert(history)  # (what was stored is ignored, the rest goes in)
        assert upgraded.count() == len(history)  # (the deleted one came back with the rest)
        assert upgraded.which_exist(e.id.raw for e in history) == {e.id.raw for e in history}
        assert upgraded.clock_of(CID(history[-1].id.raw)) is not None


def test_the_audit_finds_an_id_table_that_disagrees_with_the_entries(tmp_path: Path) -> None:
    from p2pcommons.verify import verify_store

    history = _history()
    with Store(tmp_path / "store.sqlite") as store:
        store.insert(history[:10])
        assert store.id_table_faults() == (0, 0)
        assert verify_store(store).ok
        lost = history[3].id.raw
        store.db.execute("DELETE FROM new_ids WHERE id = ?", (lost,))
        store.db.execute("INSERT INTO ids (id, n) VALUES (?, 999)", (history[20].id.raw,))
        assert store.id_table_faults() == (1, 1)
        assert not store.has(history[3].id)
        problems = verify_store(store).problems
        assert any("cannot be found by their id" in p for p in problems)
        assert any("name 1 entries that are not stored" in p for p in problems)


def test_a_schema_6_store_gets_the_late_placements_table(tmp_path: Path) -> None:
    """Schema 7 numbers entries placed after they were stored (:meth:`Store._wake`): a store
    of schema 6 gets the table, empty, and numbers the placements from then on."""
    path = tmp_path / "store.sqlite"
    history = _history()
    with Store(path) as store:
        store.insert(history[:1])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE placed_late")
    db.execute("DROP TABLE vv_named")
    db.execute("ALTER TABLE entries DROP COLUMN vv")
    db.execute("PRAGMA user_version=6")
    db.close()
    with Store(path) as upgraded:
        assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 10
        assert _placed_late(upgraded) == set()
        late, parent = history[2], history[1]  # (the third names the second)
        assert parent.id.raw in {bytes(d) for d in late.dep_ids} | ({late.prev.raw} if late.prev else set())
        upgraded.insert([late])
        assert _placed_late(upgraded) == set()  # waiting: not placed
        upgraded.insert([parent])
        assert late.id.raw in _placed_late(upgraded)


def _placed_late(store: Store) -> set[bytes]:
    return {bytes(r[0]) for r in store.db.execute("SELECT id FROM placed_late")}
