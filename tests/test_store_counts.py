"""The store's kept per-commons counts (``commons_counts``, schema 3) against a recount.

Why: listing the commons (the daemon's announcer, ``p2pc contribute``) used to count every
entry; it now reads counts that every insert and delete keeps in its own transaction.  The
property drives a real SQLite store through random ingests, re-inserts, local appends and
outsiders' expiry cuts, and after every step the kept counts must equal a full recount.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons.author import append
from p2pcommons.dagcbor import CID
from p2pcommons.errors import BehindOwnLog
from p2pcommons.ingest import Ingestor
from p2pcommons.node.daemon import _announcement
from p2pcommons.store import SCHEMA_VERSION, Store

from .support.signed import SIGNERS, History, histories, new_store, scaled


def recount(store: Store) -> dict[CID, tuple[int, int]]:
    rows = store._db.execute(
        "SELECT logs.commons, count(*), count(DISTINCT logs.log) FROM entries JOIN logs ON logs.log = entries.log "
        "GROUP BY logs.commons").fetchall()
    return {CID(bytes(c)): (int(e), int(a)) for c, e, a in rows}


def assert_counts_agree(store: Store) -> None:
    truth = recount(store)
    assert store.counts() == truth
    for info in store.commons_list():
        assert (info.entries, info.authors) == truth.get(info.id, (0, 0))
        assert store.count(info.id) == truth.get(info.id, (0, 0))[0]
    assert store.count() == sum(e for e, _a in truth.values())


steps = st.lists(
    st.tuples(st.sampled_from(["ingest", "reinsert", "append", "expire"]), st.integers(0, 10_000),
              st.integers(0, 10_000)),
    min_size=1, max_size=12)


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=10, label="a"), histories(max_steps=6, label="b"), steps)
def test_kept_counts_equal_a_recount_after_any_writes(tmp_path: Path, first: History, second: History,
                                                      plan: list[tuple[str, int, int]]) -> None:
    # a fresh directory per example: hypothesis reuses tmp_path, and a home's record of what it
    # signed (signed.json, beside the store) must not outlive the store it describes
    store = new_store(Path(tempfile.mkdtemp(dir=tmp_path)))
    pending = {h.commons: list(h.entries) for h in (first, second)}
    try:
        for action, x, y in plan:
            commons = [first.commons, second.commons][x % 2]
            if action == "ingest" and pending[commons]:
                size = 1 + y % len(pending[commons])
                batch, pending[commons] = pending[commons][:size], pending[commons][size:]
                Ingestor(store).add_batch([e.raw for e in batch])
            elif action == "reinsert":
                held = next(h for h in (first, second) if h.commons == commons).entries
                store.insert(held[: 1 + y % len(held)])  # some stored already: not counted twice
            elif action == "append" and store.has_commons(commons):
                # an "expire" may have cut this home's own log: it then rightly signs no more there
                with contextlib.suppress(BehindOwnLog):
                    append(store, SIGNERS[y % len(SIGNERS)], commons, "note", {"n": x},
                           force=True)  # an unknown kind: stored, not applied (counts count stored entries)
            elif action == "expire":
                heads = store.heads(commons)
                if heads:
                    head = heads[y % len(heads)]
                    with store.transaction():
                        store.put_on_probation(commons, {head.author: 1 + x % head.seq}, 0.0)
                    cut = None if x % 5 == 0 else 1 + y % (head.seq + 1)
                    store.expire_outsider_logs(1.0, lambda _c, _a, _f, cut=cut: cut)
            assert_counts_agree(store)
        path = store.path
    finally:
        store.close()
    with Store(path) as reopened:
        assert_counts_agree(reopened)


@settings(max_examples=scaled(0.1))
@given(histories(max_steps=8))
def test_a_schema_2_store_gets_its_counts_on_first_open(tmp_path: Path, history: History) -> None:
    """Opening a store written before the counts (schema 2) recounts once and moves it to the current schema."""
    store = new_store(tmp_path)
    Ingestor(store).add_batch(history.raws)
    path = store.path
    truth = recount(store)
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE commons_counts")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    with Store(path) as upgraded:
        assert upgraded._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
        assert upgraded.counts() == truth
        assert_counts_agree(upgraded)


@settings(max_examples=scaled(0.1))
@given(histories(max_steps=8))
def test_the_announce_path_and_commons_listing_never_count_entries(tmp_path: Path, history: History) -> None:
    """What the announcer runs per wake-up (held commons, then each commons' heads), and the
    commons listing `p2pc contribute` resolves names with, issue no count over entries."""
    store = new_store(tmp_path)
    try:
        Ingestor(store).add_batch(history.raws)
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        for commons in store.commons_ids():
            _announcement(store, commons, {})
        listed = store.commons_list()
        store.count(history.commons)
        store._db.set_trace_callback(None)
        assert [c.id for c in listed] == [history.commons]
        assert statements, "the trace callback saw the statements"
        assert not [s for s in statements if "count(" in s.lower()], statements
    finally:
        store.close()
