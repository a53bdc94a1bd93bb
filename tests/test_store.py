"""Properties of the SQLite store against a plain-Python model (hypothesis).

Real signed histories go in through the ingest path in random batches; every query must
agree with what the model computes from the entries themselves, before and after the file
is closed and reopened.  Example counts scale with P2PC_HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, decode_entry
from p2pcommons.ingest import Ingestor, ingest
from p2pcommons.store import Fork, Head, Store

from .support.signed import History, histories, new_store, scaled


def store_path(tmp_path: Path) -> Path:
    """A new store file (copied from an empty template), closed, for the test to open."""
    store = new_store(tmp_path)
    store.close()
    return store.path


class Model:
    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.by_log: dict[bytes, list[Entry]] = defaultdict(list)
        for entry in entries:
            self.by_log[entry.author].append(entry)

    def max_seq(self, author: bytes) -> int:
        return max((e.seq for e in self.by_log.get(author, [])), default=0)

    def ids_at(self, author: bytes, seq: int) -> set[CID]:
        return {e.id for e in self.by_log.get(author, []) if e.seq == seq}

    def heads(self) -> list[Head]:
        heads = []
        for author in sorted(self.by_log):
            top = self.max_seq(author)
            heads += [Head(author, top, cid) for cid in sorted(self.ids_at(author, top), key=lambda c: c.raw)]
        return heads

    def forks(self, commons: CID) -> list[Fork]:
        result = []
        for author in sorted(self.by_log):
            for seq in sorted({e.seq for e in self.by_log[author]}):
                ids = sorted(self.ids_at(author, seq), key=lambda c: c.raw)
                if len(ids) > 1:
                    result.append(Fork(commons, author, seq, tuple(ids)))
        return result


def check_against_model(store: Store, history: History) -> None:
    model = Model(history.entries)
    commons = history.commons
    assert store.count(commons) == store.count() == len(history.entries)
    assert store.has_commons(commons)
    for entry in history.entries:
        assert store.has(entry.id)
        assert store.get_raw(entry.id) == entry.raw
        got = store.get(entry.id)
        assert got is not None and got.raw == entry.raw
    unknown = [CID.of(b"unknown %d" % i).raw for i in range(3)]
    some = [e.id.raw for e in history.entries[::2]]
    assert store.which_exist(some + unknown) == set(some)
    assert not store.has(CID(unknown[0]))
    assert store.get(CID(unknown[0])) is None
    for author in model.by_log:
        assert store.max_seq(commons, author) == model.max_seq(author)
        for seq in range(1, model.max_seq(author) + 2):
            assert set(store.ids_at(commons, author, seq)) == model.ids_at(author, seq)
        raws = list(store.iter_raw(commons, author=author, order="log"))
        assert sorted(raws) == sorted(e.raw for e in model.by_log[author])
        seqs = [e.seq for e in sorted(model.by_log[author], key=lambda e: (e.seq, e.id.raw))]
        assert [decode_entry(r).seq for r in raws] == seqs  # log order: ascending seq
        for chunk in (1, 2, 1000):  # read a chunk at a time: a fork's entries may straddle two
            clocked = [raw for _, raw in store.iter_log_clocked(commons, author, 0, chunk)]
            assert clocked == raws
        cut = model.max_seq(author) // 2
        after = list(store.iter_raw(commons, author=author, after_seq=cut))
        assert sorted(after) == sorted(e.raw for e in model.by_log[author] if e.seq > cut)
    assert store.heads(commons) == model.heads()
    assert store.forks(commons) == store.forks() == model.forks(commons)
    for kind in {e.kind for e in history.entries}:
        assert sorted(store.iter_raw(commons, kind=kind)) == sorted(e.raw for e in history.entries if e.kind == kind)
    # arrival order is the order entries were stored in; every entry comes exactly once
    assert sorted(store.iter_raw(commons)) == sorted(history.raws)
    (info,) = store.commons_list()
    assert info.id == commons and info.name == history.genesis.body["name"]
    assert (info.entries, info.authors) == (len(history.entries), len(model.by_log))
    recent = store.recent_heads(commons, exclude_author=history.genesis.author, limit=2)
    assert len(recent) <= 2
    assert all(c in {h.id for h in model.heads() if h.author != history.genesis.author} for c in recent)


cut_lists = st.lists(st.integers(0, 1000), max_size=4)


def batches(raws: list[bytes], cuts: list[int]) -> list[list[bytes]]:
    points = sorted({c % (len(raws) + 1) for c in cuts} | {0, len(raws)})
    return [raws[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=12), cut_lists)
def test_store_agrees_with_the_model_and_survives_reopening(tmp_path: Path, history: History,
                                                           cuts: list[int]) -> None:
    path = store_path(tmp_path)
    with Store(path) as store:
        for batch in batches(history.raws, cuts):
            Ingestor(store).add_batch(batch)
        check_against_model(store, history)
    with Store(path) as reopened:
        check_against_model(reopened, history)
        # every stored entry still decodes and verifies (what `p2pc verify` does)
        for entry in reopened.iter_entries():
            entry.verify_signature()


@settings(max_examples=scaled(0.3))
@given(histories(max_steps=10), st.data())
def test_insert_is_idempotent(tmp_path: Path, history: History, data: st.DataObject) -> None:
    with Store(store_path(tmp_path)) as store:
        ingest(store, history.raws)
        again = data.draw(st.lists(st.sampled_from(history.entries), max_size=len(history.entries)))
        store.insert(again, [(history.commons, a, s) for a, s in history.forks])
        check_against_model(store, history)


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=10), st.integers(0, 1000))
def test_a_rolled_back_transaction_leaves_no_trace(tmp_path: Path, history: History, split: int) -> None:
    """Entries inserted in a transaction that fails are gone, and the store (including its
    cache of log numbers) works normally afterwards."""
    split = 1 + split % len(history.entries)
    first, rest = history.raws[:split], history.raws[split:]
    with Store(store_path(tmp_path)) as store:
        ingest(store, first)
        before = sorted(store.iter_raw())
        with pytest.raises(RuntimeError), store.transaction():
            Ingestor(store).add_batch(rest)
            raise RuntimeError("abort")
        assert sorted(store.iter_raw()) == before
        for raw in rest:
            assert not store.has(CID.of(raw))
        ingest(store, rest)
        check_against_model(store, history)


@settings(max_examples=scaled(0.2))
@given(histories(max_steps=6), st.integers(2, 12))
def test_short_ids_find_their_entry(tmp_path: Path, history: History, length: int) -> None:
    with Store(store_path(tmp_path)) as store:
        ingest(store, history.raws)
        for entry in history.entries:
            text = str(entry.id)
            assert store.find_by_prefix(text) == [entry.id]
            found = store.find_by_prefix(text[: 4 + length])
            assert entry.id in found
            assert all(str(c).startswith(text[: 4 + length]) for c in found)


@settings(max_examples=scaled(0.5))
@given(st.binary(max_size=300))
def test_bytes_are_bound_as_blobs_through_a_registered_adapter(tmp_path: Path, value: bytes) -> None:
    """The store registers an identity adapter for bytes (Python 3.11's sqlite3 otherwise
    looks one up the slow way for every bytes parameter), and bytes still go in and come
    back as the same blob."""
    import sqlite3

    assert sqlite3.adapters.get((bytes, sqlite3.PrepareProtocol)) is bytes
    with new_store(tmp_path) as store:
        assert store.db.execute("SELECT ?, typeof(?)", (value, value)).fetchone() == (value, "blob")
        store.put_cache("k", value)
        assert store.get_cache("k") == value
