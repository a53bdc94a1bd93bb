"""After a large fold the engine lets go of what only the fold needed while it ran
(:func:`p2pcommons.state.release.release_caches`): the replayer's lookup caches and SQLite's
free page cache, before the trim (bench/memory.py measures what that gives back at a million
entries).  Caches, never state: the folds that follow give the state a fold from scratch does."""

from __future__ import annotations

from typing import Any

from p2pcommons.state import engine, fold
from p2pcommons.store import Store
from tests.test_state_histories import build


def test_a_large_fold_drops_the_fold_caches_and_folds_on_as_before(tmp_path: Any, monkeypatch: Any) -> None:
    history = build([(i % 3, (i + 1) % 3, 0) for i in range(40)])
    entries = history.entries
    half = len(entries) // 2
    store = Store(tmp_path / "s.sqlite")
    try:
        store.insert(entries[:half])
        monkeypatch.setattr(engine, "TRIM_AFTER", 1 << 30)  # (a small fold: nothing dropped)
        engine.current_state(store, history.commons, persist=False)
        folder = next(live.folder for key, live in engine._live.items() if key[1] == history.commons.raw)
        folder._cache[b"stale"] = None
        folder._times[b"stale"] = 0
        engine.current_state(store, history.commons, persist=False)
        assert b"stale" in folder._cache and b"stale" in folder._times
        store.insert(entries[half:])
        monkeypatch.setattr(engine, "TRIM_AFTER", 1)
        state = engine.current_state(store, history.commons, persist=False)
        assert not folder._cache and not folder._times
        assert state.state_hash == fold(entries).state_hash
        assert store.db.execute("SELECT count(*) FROM entries").fetchone()[0] == len(entries)
    finally:
        engine.forget()
        store.close()
