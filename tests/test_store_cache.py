"""The store's cache table (the fold's checkpoint, the materialized state, small heads).

A big commons' checkpoint is a row of over 100 MB.  In a WITHOUT ROWID table that row lives
in the key's own b-tree, and finding even a small key read the big rows' overflow pages
(0.1-0.7 s per lookup at a million entries); a rowid table finds keys through its index.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from p2pcommons.store import SCHEMA_VERSION, Store


def _table_sql(db: sqlite3.Connection) -> str:
    return str(db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cache'").fetchone()[0])


def test_the_cache_table_has_rowids(tmp_path: Path) -> None:
    with Store(tmp_path / "store.db") as store:
        assert "WITHOUT ROWID" not in _table_sql(store._db).upper()


def test_a_schema_4_cache_becomes_a_rowid_table_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    rows = {"state/x/head": b"h" * 161, "state/x/checkpoint": os.urandom(1 << 20), "outsiders/x/policy": b"p"}
    with Store(path) as store:
        for key, value in rows.items():
            store.put_cache(key, value)
    db = sqlite3.connect(path)  # as schema 4 left it: the same rows in a WITHOUT ROWID table
    db.execute("ALTER TABLE cache RENAME TO old")
    db.execute("CREATE TABLE cache (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO cache SELECT key, value FROM old")
    db.execute("DROP TABLE old")
    db.execute("PRAGMA user_version=4")
    db.commit()
    db.close()
    with Store(path) as upgraded:
        assert upgraded._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5
        assert "WITHOUT ROWID" not in _table_sql(upgraded._db).upper()
        assert {key: upgraded.get_cache(key) for key in rows} == rows
        names = {str(r[0]) for r in upgraded._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "cache_without_rowid" not in names
