"""Properties of offline bundles (hypothesis): real signed histories, real SQLite files.

Export then import reproduces the entries; every truncation and every tampering is
rejected with the right error and leaves the target store exactly as it was (entries
already there survive).  Example counts scale with P2PC_HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons.bundle import MAGIC, BundleReader, import_bundle, write_bundle
from p2pcommons.entry import sign_entry
from p2pcommons.errors import (
    BundleTampered,
    BundleTruncated,
    InvalidBundle,
    InvalidEntry,
    MalformedBundle,
    ReceivedDataError,
    WrongCommons,
)
from p2pcommons.ingest import ingest
from p2pcommons.protocols.framing import encode_uvarint
from p2pcommons.store import Fork, Head, Store

from .support.signed import SIGNERS, History, histories, new_store, scaled


def fresh_store(tmp_path: Path) -> Store:
    """A new SQLite file per hypothesis example (tmp_path is shared by all examples)."""
    return new_store(tmp_path)


def export(tmp_path: Path, history: History) -> bytes:
    with fresh_store(tmp_path) as store:
        ingest(store, history.raws)
        out = io.BytesIO()
        header = write_bundle(store, history.commons, out, created=history.genesis.time)
        assert header.entries == len(history.entries)
    return out.getvalue()


def contents(store: Store) -> tuple[list[bytes], list[list[Head]], list[Fork]]:
    commons = [c.id for c in store.commons_list()]
    return (sorted(store.iter_raw()), [store.heads(c) for c in commons], store.forks())


@st.composite
def target_states(draw: st.DrawFn, history: History) -> list[bytes]:
    """What the importing store already holds: nothing, a prefix of this commons, or
    another commons altogether."""
    choice = draw(st.sampled_from(["empty", "prefix", "other"]))
    if choice == "prefix":
        return history.raws[: draw(st.integers(1, len(history.entries)))]
    if choice == "other":
        return draw(histories(max_authors=2, max_steps=3, label="resident")).raws
    return []


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=12), st.data())
def test_export_then_import_yields_the_same_entries(tmp_path: Path, history: History, data: st.DataObject) -> None:
    bundle = export(tmp_path, history)
    resident = data.draw(target_states(history))
    with fresh_store(tmp_path) as store:
        ingest(store, resident)
        before = set(store.iter_raw())
        header, report = import_bundle(store, io.BytesIO(bundle))
        assert header.commons == history.commons and header.entries == len(history.entries)
        assert header.bytes == sum(map(len, history.raws))
        assert report.rejected == []
        assert set(store.iter_raw(history.commons)) == set(history.raws)
        assert set(store.iter_raw()) == before | set(history.raws)
        assert {(f.author, f.seq) for f in store.forks(history.commons)} == history.forks
        assert report.added_count == len(set(history.raws) - before)
        # a second import changes nothing
        snapshot = contents(store)
        _header, again = import_bundle(store, io.BytesIO(bundle))
        assert again.added_count == 0 and again.duplicates == len(history.entries)
        assert contents(store) == snapshot
        # and re-exporting gives the same file
        out = io.BytesIO()
        write_bundle(store, history.commons, out, created=history.genesis.time)
        assert out.getvalue() == bundle


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=8), st.data())
def test_truncated_bundles_are_rejected_and_nothing_is_lost(tmp_path: Path, history: History,
                                                            data: st.DataObject) -> None:
    bundle = export(tmp_path, history)
    cut = data.draw(st.integers(0, len(bundle) - 1), label="cut")
    resident = data.draw(target_states(history))
    with fresh_store(tmp_path) as store:
        ingest(store, resident)
        before = contents(store)
        with pytest.raises(BundleTruncated):
            import_bundle(store, io.BytesIO(bundle[:cut]))
        assert contents(store) == before


def test_every_truncation_of_one_bundle_is_rejected(tmp_path: Path) -> None:
    """Exhaustively, for one small bundle: every proper prefix is BundleTruncated."""
    genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body={"name": "t"}, timestamp=1)
    entries = [genesis]
    for seq in range(2, 5):
        entries.append(sign_entry(SIGNERS[0], commons=genesis.id, seq=seq, prev=entries[-1].id, kind="note",
                                  body={"n": seq}, timestamp=seq))
    fixed = History(genesis, entries)
    bundle = export(tmp_path, fixed)
    with fresh_store(tmp_path) as store:
        ingest(store, fixed.raws[:2])
        before = contents(store)
        for cut in range(len(bundle)):
            with pytest.raises(BundleTruncated):
                import_bundle(store, io.BytesIO(bundle[:cut]))
        assert contents(store) == before
        with pytest.raises(MalformedBundle):
            import_bundle(store, io.BytesIO(bundle + b"\x00"))
        assert contents(store) == before


@settings(max_examples=scaled(1))
@given(histories(max_steps=8), st.data())
def test_tampered_bundles_are_rejected_and_nothing_is_lost(tmp_path: Path, history: History,
                                                           data: st.DataObject) -> None:
    """Change any byte: the import fails (checksum, framing, or an entry's own checks) and
    the store is exactly as before.  If the checksum is recomputed after the change, an
    entry's signature or hash links must still catch it."""
    bundle = export(tmp_path, history)
    position = data.draw(st.integers(0, len(bundle) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != bundle[position]), label="byte")
    tampered = bytearray(bundle)
    tampered[position] = byte
    rehash = data.draw(st.booleans(), label="recompute checksum") and position < len(bundle) - 32
    if rehash:
        tampered[-32:] = hashlib.sha256(tampered[:-32]).digest()
    resident = data.draw(target_states(history))
    with fresh_store(tmp_path) as store:
        ingest(store, resident)
        before = contents(store)
        try:
            import_bundle(store, io.BytesIO(bytes(tampered)))
        except ReceivedDataError as error:
            assert contents(store) == before
            if position >= len(bundle) - 32:
                assert type(error) is BundleTampered  # the checksum itself
            assert isinstance(error, InvalidBundle | InvalidEntry)
        else:
            # Bundles are not signed, so with the checksum recomputed a change to the one
            # field nothing vouches for, the header's creation time, goes unnoticed; but
            # nothing but the genuine entries can get in.
            assert rehash, "a tampered bundle with a stale checksum was accepted"
            header_end = len(MAGIC) + 1 + bundle[len(MAGIC)]
            assert len(MAGIC) < position < header_end
            assert set(store.iter_raw()) == set(before[0]) | set(history.raws)


def test_header_totals_are_verified(tmp_path: Path) -> None:
    """Regression: the header's byte total was never checked, so a bundle whose header
    misstated it (checksum recomputed) imported without complaint."""
    genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body={"name": "t"}, timestamp=1)
    fixed = History(genesis, [genesis])
    bundle = export(tmp_path, fixed)
    frames = list(BundleReader(io.BytesIO(bundle)))
    for entries, size in ((1, len(genesis.raw) + 1), (1, len(genesis.raw) - 1), (2, len(genesis.raw))):
        header = dagcbor.encode({"commons": genesis.id, "created": 1, "entries": entries, "bytes": size})
        body = MAGIC + encode_uvarint(len(header)) + header
        body += b"".join(encode_uvarint(len(f)) + f for f in frames) + b"\x00"
        with fresh_store(tmp_path) as store:
            with pytest.raises(BundleTampered, match="header announces"):
                import_bundle(store, io.BytesIO(body + hashlib.sha256(body).digest()))
            assert store.count() == 0


@settings(max_examples=scaled(0.3))
@given(histories(max_steps=6), histories(max_steps=6, label="other").filter(lambda h: len(h.entries) > 1))
def test_a_bundle_cannot_smuggle_entries_of_another_commons(tmp_path: Path, mine: History, other: History) -> None:
    """Frames from another commons, spliced in with a matching header and a valid
    checksum, are rejected as WrongCommons, even where that other commons is known."""
    bundle = export(tmp_path, mine)
    frames = list(BundleReader(io.BytesIO(bundle)))
    extra = other.raws[1:]
    header = dagcbor.encode({"commons": mine.commons, "created": mine.genesis.time,
                             "entries": len(frames) + len(extra),
                             "bytes": sum(map(len, frames)) + sum(map(len, extra))})
    body = MAGIC + encode_uvarint(len(header)) + header
    body += b"".join(encode_uvarint(len(r)) + r for r in frames + extra) + b"\x00"
    spliced = body + hashlib.sha256(body).digest()
    with fresh_store(tmp_path) as store:
        ingest(store, other.raws[:1])
        before = contents(store)
        with pytest.raises(WrongCommons):
            import_bundle(store, io.BytesIO(spliced))
        assert contents(store) == before


@settings(max_examples=scaled(1))
@given(st.binary(max_size=64).map(lambda tail: MAGIC + tail))
def test_garbage_after_the_magic_is_rejected(tmp_path: Path, data: bytes) -> None:
    store = _shared_stores.get(tmp_path)
    if store is None:  # one store for every example: creating a store costs several fsyncs
        store = _shared_stores[tmp_path] = fresh_store(tmp_path)
    with pytest.raises(InvalidBundle):
        import_bundle(store, io.BytesIO(data))
    assert store.count() == 0


_shared_stores: dict[Path, Store] = {}


@settings(max_examples=scaled(0.3))
@given(histories(max_steps=8), st.integers(1, 70_000))
def test_reader_is_independent_of_read_sizes(tmp_path: Path, history: History, chunk: int) -> None:
    """The reader yields the same frames whatever sizes the file returns from read()."""
    bundle = export(tmp_path, history)

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = data
            self._pos = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            size = min(chunk, len(self._data) - self._pos) if n < 0 else min(n, chunk)
            out = self._data[self._pos:self._pos + size]
            self._pos += len(out)
            return out

    reader = BundleReader(Trickle(bundle))  # type: ignore[arg-type]
    assert list(reader) == list(BundleReader(io.BytesIO(bundle))) and reader.finished
    assert sorted(reader_frames(bundle)) == sorted(history.raws)


def reader_frames(bundle: bytes) -> list[bytes]:
    reader = BundleReader(io.BytesIO(bundle))
    frames = list(reader)
    assert reader.finished and reader.entries_read == len(frames) == reader.header.entries
    return frames
