"""The live fold's archive in the store: evicted fold records as per-log segments.

An evicting :class:`~.fold.Folder` hands over, at each eviction, the records of the
positions it no longer holds (clock, id, author index, seq, outcome).  Per author those are
always the next run of seqs (an entry is ready only after its ``prev``, and sorts after it),
so they are stored as *segments*: one row per run of at most ``SEGMENT_MAX`` consecutive
seqs of one log, keyed ``(space, log, first seq)`` — rows append in key order, and one row
carries hundreds of records.  An entry's record is found through the store's entries table
(id → log, seq) and the segment covering that seq; the record's id is compared, so a fork
sibling is never mistaken for the archived entry.  Where a key's log forked, two entries share
a seq, which a segment cannot hold: that key's records from its fork point on are rows of
their own (the store's ``fold_forked``, one record each in the segment encoding, found by id).

Segment encoding (little-endian), columns after a header, so one record decodes without
the others::

    header  u8 version (5) | u8 0 | u16 id length | u32 count | u32 0
    clocks  count × i64
    times   count × i64      (each entry's effective time: its own, or its floor if later, see
                              Folder._date; -1: not known when it was archived, and no floor.
                              Versions 3-4: the own time, the floor kept in the fold)
    status  count × u8       (0 applied, 1 rejected, 2 pending)
    ids     count × id length
    reasons CBOR list of [index, reason] for records with a reason (absent when none)

Why no version vectors (version 5; versions 2-4 carried each record's as a chain of
differences, with per-eviction *frames* of first vectors, and are still read, their vectors
skipped): the store computes every entry's vector at insert (:mod:`p2pcommons.vectors`).
An archived record answers "is X in Y's past" with its author index and seq alone; the rare
entry whose own vector would merge an archived parent's reads its vector from the store's
rows instead, from the nearest base the fold still holds (:meth:`StoreArchive.vector`: a
row's base is a few positions back in the fold's order, so nearly always still held).
Writing the vectors had been about a third of archiving's cost.

Why the time: an entry naming an archived one it had not seen (a review of an old
contribution) needs that entry's record *and* its effective time (its date's floor); kept
beside the record, one lookup answers both instead of a second read and decode of the entry
itself, and the fold keeps no floor of an archived entry in memory.

Why :class:`StoreArchive` decodes a whole segment and keeps its records for a while: such
references come in runs (reviews take the oldest pending contributions, which were written
together, so one segment answers several), and a lookup through the store (a join of the
entries table with the segments) cost as much as the decoding.  The records are a bounded
cache (dropped with the fold's other lookup caches after a large fold); an archived record
never changes, and the cache is cleared whenever the archive is.

Local derived data, never replicated: a segment that does not decode raises
:class:`DamagedArchive` (a damaged cache, e.g. after a disk fault), and the engine drops the
fold and its archive and folds again from the entries, which are verified data.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import NamedTuple, Protocol

import cbor2

from .. import causal, vectors
from ..dagcbor import CID, links_in
from ..entry import Entry, decode_stored
from ..errors import StoreCorrupt
from ..store import Store
from ..vectors import MissingVector
from .archiving import Archive, HeldVectors
from .fold import _PLAIN
from .positions import NO_VECTOR
from .positions import Meta as _Meta

SEGMENT_MAX = 256  # records per row: bounds what one lookup reads (~20-40 KB)
RECORDS_MAX = 4096  # decoded records StoreArchive keeps (whole segments; the older half goes)
_HEADER = struct.Struct("<BBHII")
_FRAME_SIZE = 8  # version 4: after the header, the segment's frame and its index there (skipped)
_VERSION = 5  # 5: no vectors; 4: frames; 3: each entry's time; 2: vectors as differences
_READS = (2, 3, 4, 5)  # versions decoded (their vectors, before 5, skipped)
_NO_TIME = -1  # an archived entry whose time was not at hand (its body already dropped)
_STATUS = ("applied", "rejected", "pending")
_CODE = {status: code for code, status in enumerate(_STATUS)}

Record = tuple[_Meta, str, str]
Timed = tuple[_Meta, str, str, int]  # a record and its entry's own time (``_NO_TIME``: unknown)


class DamagedArchive(StoreCorrupt):
    """A fold archive segment in the store does not decode."""


def encode_segment(rows: list[Record], times: list[int] | None = None) -> bytes:
    """One segment's records (consecutive seqs of one author, ids of one length) and their
    entries' own times (None: none known)."""
    metas = [row[0] for row in rows]
    count = len(metas)
    idlen = len(metas[0][1])
    clocks = array("q", [m[0] for m in metas])
    stamps = array("q", times if times is not None else [_NO_TIME] * count)
    if len(stamps) != count:
        raise ValueError("one time per record")
    if sys.byteorder == "big":  # (the format is little-endian, as _layout reads it)
        for column in (clocks, stamps):
            column.byteswap()
    parts = [
        _HEADER.pack(_VERSION, 0, idlen, count, 0),
        clocks.tobytes(),
        stamps.tobytes(),
        bytes([_CODE[row[1]] for row in rows]),
        b"".join([m[1] for m in metas]),
    ]
    reasons = [[i, row[2]] for i, row in enumerate(rows) if row[2]]
    if reasons:
        parts.append(cbor2.dumps(reasons))
    return b"".join(parts)


class _Layout(NamedTuple):
    idlen: int
    records: int  # (count)
    clocks: int  # where each column starts
    times: int  # (-1: a version-2 segment, without times)
    status: int
    ids: int
    end: int  # where the reasons start, if any


def _layout(blob: bytes) -> _Layout:
    """Where a segment's columns are (an older version's vector columns are skipped)."""
    version, size, idlen, count, items = _HEADER.unpack_from(blob)
    if version not in _READS or (version < 5 and size not in (4, 8)):
        raise ValueError("unknown fold archive segment encoding")
    clocks = _HEADER.size + (_FRAME_SIZE if version == 4 else 0)
    times = clocks + 8 * count if version >= 3 else -1
    status = (times if times >= 0 else clocks) + 8 * count
    ids = status + count + (4 * (count + 1) if version < 5 else 0)  # (before 5: the vectors' offsets)
    end = ids + idlen * count + (size * items if version < 5 else 0)  # (and their differences)
    if len(blob) < end:
        raise ValueError("a truncated fold archive segment")
    return _Layout(idlen, count, clocks, times, status, ids, end)


def decode_segment(blob: bytes, aidx: int, first: int) -> list[Timed]:
    """Every record of a segment (``aidx``: its author index, ``first``: its first seq),
    without vectors (:func:`.positions.bare`), with its entry's time."""
    at = _layout(blob)
    count = at.records
    clocks = struct.unpack_from(f"<{count}q", blob, at.clocks)
    times = struct.unpack_from(f"<{count}q", blob, at.times) if at.times >= 0 else (_NO_TIME,) * count
    reasons: dict[int, str] = {}
    if len(blob) > at.end:
        reasons = {int(i): str(text) for i, text in cbor2.loads(blob[at.end:])}
    idlen = at.idlen
    ids = at.ids
    out: list[Timed] = []
    for index in range(count):
        state = _STATUS[blob[at.status + index]]
        reason = reasons.get(index, "")
        if not reason and state in _PLAIN:
            state, reason = _PLAIN[state]
        raw = blob[ids + idlen * index: ids + idlen * (index + 1)]
        meta = tuple.__new__(_Meta, (clocks[index], raw, aidx, first + index, NO_VECTOR, ()))
        out.append((meta, state, reason, times[index]))
    return out


def segment_ids(blob: bytes) -> Iterator[bytes]:
    at = _layout(blob)
    for i in range(at.records):
        yield blob[at.ids + at.idlen * i: at.ids + at.idlen * (i + 1)]


def _consecutive(run: list[tuple[_Meta, str, str]]) -> Iterator[list[tuple[_Meta, str, str]]]:
    """One author's records split where the seqs stop being consecutive or the id length
    changes (in practice never: the whole run comes back as one part)."""
    if run[-1][0][3] - run[0][0][3] == len(run) - 1 and len({len(row[0][1]) for row in run}) == 1:
        yield run
        return
    start = 0
    for i in range(1, len(run) + 1):
        if i == len(run) or run[i][0][3] != run[i - 1][0][3] + 1 or len(run[i][0][1]) != len(run[start][0][1]):
            yield run[start:i]
            start = i


def _damaged(reason: object) -> DamagedArchive:
    """The error for an archive row that does not read back (``reason``: what was wrong)."""
    return DamagedArchive(f"The state fold's archive in the store is damaged ({reason}); "
                          "the state is being folded again from the entries.")


class StoreSource(Protocol):
    """Whatever holds the store a live fold currently reads (the engine's live fold record:
    a process may reopen the store file).  A protocol, so this module needs nothing of the
    engine that uses it (no import cycle)."""

    @property
    def store(self) -> Store | None: ...


class StoreArchive(Archive):
    """The live fold's archive: evicted records as segments in the store's ``fold_segments``
    table (local derived data, never replicated), entry bodies and version vectors from the
    store's entries."""

    def __init__(self, source: StoreSource | Store, commons: CID, space: bytes | None = None) -> None:
        self._source = source  # a live fold's current store, or one store
        self._commons = commons
        # Rows of this fold only: another process folding the same commons has its own.
        self.space = space if space is not None else commons.raw + os.urandom(8)
        # Records of the segments decoded lately, by id (a cache: see the module's docstring).
        self._records: dict[bytes, Timed] = {}
        self._log_authors: dict[int, bytes] = {}  # the store's log numbers (never change)
        self._at_hand: dict[bytes, bytes | None] = {}  # (rows_at_hand)
        self._forked: int | None = None  # how many forked keys' records it holds (None: not counted yet)

    @property
    def _store(self) -> Store:
        store = self._source if isinstance(self._source, Store) else self._source.store
        assert store is not None
        return store

    def put(self, rows: list[tuple[_Meta, str, str]], bodies: list[Entry | None], authors: list[bytes],
            times: list[int] | None = None, forked: Mapping[int, int] | None = None, start: int = 0) -> None:
        """Archive records with their entries' times (``times``, else those of the ``bodies``
        given; the store holds the bodies themselves).  A forked key's records from its fork
        point on (``forked``: its author index -> fork point) are rows of their own, found by id: two
        entries share a seq there, which a segment cannot hold; ``start``: how many records
        were archived before these."""
        if times is None:
            times = [_NO_TIME if body is None else body.time for body in bodies]
        runs: dict[int, list[tuple[_Meta, str, str]]] = {}
        stamps: dict[int, list[int]] = {}
        singles: list[tuple[bytes, int, int, int, bytes]] = []
        fork_at = forked or {}
        for ordinal, (row, time) in enumerate(zip(rows, times, strict=True), start):
            aidx = row[0][2]
            if fork_at and row[0][3] >= fork_at.get(aidx, 2**63):
                singles.append((row[0][1], aidx, row[0][3], ordinal, encode_segment([row], [time])))
                continue
            run = runs.get(aidx)
            if run is None:
                run = runs[aidx] = []
                stamps[aidx] = []
            run.append(row)
            stamps[aidx].append(time)
        store = self._store
        segments: list[tuple[int, int, int, int, bytes]] = []
        for aidx, run in runs.items():
            log = store.existing_log(self._commons, authors[aidx])
            if log is None:
                raise ValueError("an archived entry's log is not in the store")
            own = stamps[aidx]
            at = 0  # (where ``part`` starts in the run)
            for part in _consecutive(run):
                for start in range(0, len(part), SEGMENT_MAX):
                    chunk = part[start:start + SEGMENT_MAX]
                    segments.append((log, chunk[0][0][3], len(chunk), aidx,
                                     encode_segment(chunk, own[at + start:at + start + len(chunk)])))
                at += len(part)
        store.archive_put(self.space, segments, singles)
        if singles and self._forked is not None:
            self._forked += len(singles)

    def meta(self, raw: bytes) -> _Meta | None:
        record = self._record(raw)
        return None if record is None else record[0]

    def outcome(self, raw: bytes) -> tuple[_Meta, str, str] | None:
        record = self._record(raw)
        return None if record is None else record[:3]

    def rows_at_hand(self, rows: Iterable[tuple[bytes, bytes | None]]) -> None:
        """The version vector rows (``(id, vv)``) of the entries the fold is about to take:
        read with their bytes (:meth:`Store.in_order_rows`), so :meth:`vector` needs no read
        for them.  Replaces the previous batch's."""
        self._at_hand = dict(rows)

    def vector_at_hand(self, eid: bytes, author: bytes, fold: HeldVectors) -> causal.Vector | None:
        """The entry's own vector from its row at hand (:meth:`rows_at_hand`) set over its
        base's vector, if the fold holds that (a row's base is its newest parent, or a jump
        below it: a few positions back in the fold's order, so nearly always); else None."""
        blob = self._at_hand.get(eid)
        if blob is None:
            return None
        try:
            row = vectors.decode(blob)
        except ValueError as exc:
            raise DamagedArchive(f"An entry's version vector row in the store does not decode ({exc}); "
                                 "the state is being folded again from the entries.") from None
        if row.kind == vectors.ROOT:
            start: causal.Vector | None = causal.EMPTY
        elif row.kind == vectors.OWN_LOG:
            start = fold.held_vector_at(author, row.base_seq)
        else:
            start = None if row.base is None else fold.held_vector(row.base)
        if start is None:
            return None
        flat = row.flat
        return self._over(start, dict(zip(flat[0::2], flat[1::2], strict=True)), fold)

    def vector(self, eid: bytes, author: bytes, parents: list[bytes], fold: HeldVectors) -> causal.Vector:
        """The entry's own vector, computed by the store at insert: from its row at hand
        (:meth:`vector_at_hand`), else from its rows read from the store, down to the first
        base the fold holds."""
        held = self.vector_at_hand(eid, author, fold)
        if held is not None:
            return held
        slots: dict[int, int] = {}
        start = causal.EMPTY
        setdefault = slots.setdefault
        try:
            for visited, flat in self._store.vector_rows(eid):
                below = fold.held_vector(visited)
                if below is not None:
                    start = below
                    break
                for log, value in zip(flat[0::2], flat[1::2], strict=True):
                    setdefault(log, value)  # (the first found is the latest)
        except MissingVector as exc:
            raise DamagedArchive(f"The state fold cannot read an entry's version vector from the store ({exc!r}); "
                                 "the state is being folded again from the entries.") from None
        return self._over(start, slots, fold)

    def _over(self, start: causal.Vector, slots: dict[int, int], fold: HeldVectors) -> causal.Vector:
        """``slots`` (the store's log number -> seq) set over ``start``, by the fold's author indexes."""
        names = self._log_authors
        if not names.keys() >= slots.keys():
            names.update(self._store.log_authors(self._commons))
        index = fold.author_index
        try:
            flat = sorted((index[names[log]], value) for log, value in slots.items())
        except KeyError as exc:
            raise DamagedArchive(f"An entry's version vector in the store names a log the fold does not "
                                 f"know ({exc!r}); the state is being folded again from the entries.") from None
        return causal.apply(start, [x for pair in flat for x in pair])

    def _record(self, raw: bytes) -> Timed | None:
        """An archived entry's record and time: from the segments decoded lately, else its
        segment read and decoded whole (see the module's docstring)."""
        held = self._records.get(raw)
        if held is not None:
            return held
        found = self._store.archive_find(self.space, raw)
        if found is None:
            return self._forked_record(raw)
        index, aidx, first, blob = found
        try:
            records = decode_segment(blob, aidx, first)
            record = records[index]
        except Exception as exc:
            raise _damaged(exc) from None
        cache = self._records
        if len(cache) + len(records) > RECORDS_MAX:  # (a dict keeps insertion order: the older half goes)
            for older in list(islice(cache, len(cache) // 2 + len(records))):
                del cache[older]
        for held in records:
            cache[held[0][1]] = held
        return record if record[0][1] == raw else self._forked_record(raw)  # (else a fork sibling's)

    def _forked_record(self, raw: bytes) -> Timed | None:
        """A forked key's archived record (from its fork point on: one row each, by id)."""
        if self._forked is None:
            self._forked = self._store.archive_forked_count(self.space)
        if not self._forked:
            return None  # (the usual case: no fork, no query)
        found = self._store.archive_find_forked(self.space, raw)
        if found is None:
            return None
        aidx, seq, blob = found
        try:
            record = decode_segment(blob, aidx, seq)[0]
        except Exception as exc:
            raise _damaged(exc) from None
        if record[0][1] != raw:
            raise _damaged("a forked record's id")
        return record

    def drop_caches(self) -> None:
        self._records.clear()
        self._at_hand = {}

    def entry(self, raw: bytes) -> Entry | None:
        return self._store.get(CID(raw))

    def time(self, raw: bytes) -> int | None:
        """An archived entry's effective time from its record (usually just read: an entry
        naming an archived one it had not seen reads its record, then its time), else the
        entry's own time from the stored bytes, without building the entry (they were checked
        when stored): an entry archived without a known time had no floor, and one archived
        by a segment version before 5 has its floor in the fold's ``floors``."""
        held = self._records.get(raw) or self._record(raw)
        if held is not None and held[3] != _NO_TIME:
            return held[3]
        stored = self._store.get_raw(CID(raw))
        if stored is None:
            return None
        value = cbor2.loads(stored)
        return value["time"] if isinstance(value, dict) and type(value.get("time")) is int else None

    def kind(self, raw: bytes) -> str | None:
        return self._store.archive_kind(raw)

    def entries(self) -> Iterable[Entry]:
        return self._store.iter_entries(self._commons)

    def ids(self) -> Iterable[bytes]:
        for _, _, _, blob in self._store.archive_segments(self.space):
            try:
                yield from segment_ids(blob)
            except (ValueError, struct.error) as exc:
                raise DamagedArchive(f"The state fold's archive in the store is damaged ({exc}).") from None
        for raw, _, _ in self._store.archive_forked(self.space):
            yield raw

    def records_of(self, aidx: int, author: bytes, seq: int) -> list[tuple[_Meta, str, str]]:
        found: list[tuple[_Meta, str, str]] = []
        for first, blob in self._store.archive_of_log(self.space, self._commons, author, aidx, seq):
            try:
                records = decode_segment(blob, aidx, first)
            except Exception as exc:
                raise _damaged(exc) from None
            found += [record[:3] for record in records if record[0][3] >= seq]
        return found

    def names_key(self, kind: str, key: bytes) -> bool:
        return self._store.names_key(self._commons, kind, key)

    def names_entry(self, raw: bytes, author: bytes) -> bool:
        # (The stored entries the store's ``named`` table lists under its id: a few rows,
        # each decoded to be sure, its key being 8 bytes of the id.)
        for stored, entry_id in self._store.entries_naming(self._commons, raw, author):
            if raw in links_in(decode_stored(stored, entry_id).body):
                return True
        return False

    def count_stable(self, frontier: list[int]) -> int:
        width = len(frontier)
        stable = 0
        for aidx, first, count, _ in self._store.archive_segments(self.space, records=False):
            if aidx < width:
                stable += max(0, min(count, frontier[aidx] - first + 1))
        for _, aidx, seq in self._store.archive_forked(self.space):
            if aidx < width and frontier[aidx] >= seq:
                stable += 1
        return stable

    def truncate(self, upto: dict[bytes, int], evicted: int) -> None:
        """Keep only the records up to ``upto[author]`` per author, and the forked keys'
        records among the first ``evicted`` archived (a checkpoint's archive)."""
        self._records.clear()
        self._forked = None
        self._store.archive_truncate(self.space, self._commons, upto, evicted)

    def clear(self) -> None:
        self._records.clear()
        self._forked = 0
        self._store.archive_clear(self.space)
