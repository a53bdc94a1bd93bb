"""The live fold's archive in the store: evicted fold records as per-log segments.

An evicting :class:`~.fold.Folder` hands over, at each eviction, the records of the
positions it no longer holds (clock, id, author index, seq, version vector, outcome).  Per
author those are always the next run of seqs (an entry is ready only after its ``prev``,
and sorts after it), so they are stored as *segments*: one row per run of at most
``SEGMENT_MAX`` consecutive seqs of one log, keyed ``(space, log, first seq)`` — rows append
in key order, and one row carries hundreds of records.  An entry's record is found through
the store's entries table (id → log, seq) and the segment covering that seq; the record's
id is compared, so a fork sibling is never mistaken for the archived entry.

Segment encoding (little-endian), columns after a header, so one record decodes without
the others::

    header  u8 version (4) | u8 item size (4 or 8) | u16 id length | u32 count | u32 items
            | u32 frame | u32 index in the frame   (version 4; versions 2-3 end at items)
    clocks  count × i64
    times   count × i64      (each entry's own time; -1: not known when it was archived.
                              Version 2, which lacks the column, is still read)
    status  count × u8       (0 applied, 1 rejected, 2 pending)
    offsets (count + 1) × u32 (where each record's difference starts in ``diffs``, in items)
    ids     count × id length
    diffs   items × (u32 or i64): per record, flat ``index, seq`` pairs — the slots where its
            version vector differs from the previous record's (the first: from its *base*,
            the vector at its index in its frame; frame 0: the empty vector), so a record
            costs what its entry adds, not O(authors)
    reasons CBOR list of [index, reason] for records with a reason (absent when none)

Why frames (version 4): the segments of one eviction are its *frame*.  A segment's first
record cannot take its vector from the record before it, which is another segment's, and
from the empty vector it costs the whole vector: with many authors a segment holds about one
record (10,000 authors: 100,000 entries folded at 702/s through the store, 70 % of it writing
whole vectors).  So each eviction also writes one row, its frame (``log`` = minus the frame's
number, ``first`` 0, ``count`` 0, ``aidx`` -1), holding its segments' first vectors in clock
order as a chain of differences (the first from the empty vector: once per eviction, not per
segment), and a segment names its frame and its index there.

Why the time: an entry naming an archived one it had not seen (a review of an old
contribution) needs that entry's record *and* its time (its date's floor); kept beside the
record, one lookup answers both instead of a second read and decode of the entry itself.

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
from collections.abc import Iterable, Iterator
from itertools import chain, compress, islice, pairwise, zip_longest
from operator import gt, ne
from typing import NamedTuple, Protocol

import cbor2

from .. import causal
from ..dagcbor import CID
from ..entry import Entry
from ..errors import StoreCorrupt
from ..store import Store
from .archiving import Archive
from .fold import _PLAIN
from .positions import VV as _VV
from .positions import Meta as _Meta

SEGMENT_MAX = 256  # records per row: bounds what one lookup reads (~20-40 KB)
FRAMES_MAX = 8  # decoded frames StoreArchive keeps
RECORDS_MAX = 4096  # decoded records StoreArchive keeps (whole segments; the older half goes)
_HEADER = struct.Struct("<BBHII")
_FRAME = struct.Struct("<II")  # version 4: after the header, the segment's frame and index there
_VERSION = 4  # 4: frames; 3: each entry's time; 2: version vectors as differences (was: dense, padded)
_READS = (2, 3, 4)  # versions decoded (2: no time column; 2-3: every segment from the empty vector)
_TRACK = struct.Struct("<BII")  # a frame: u8 item size | u32 count | u32 items, then offsets and diffs
_NO_TIME = -1  # an archived entry whose time was not at hand (its body already dropped)
_STATUS = ("applied", "rejected", "pending")
_CODE = {status: code for code, status in enumerate(_STATUS)}

Record = tuple[_Meta, str, str]
Timed = tuple[_Meta, str, str, int]  # a record and its entry's own time (``_NO_TIME``: unknown)


class DamagedArchive(StoreCorrupt):
    """A fold archive segment in the store does not decode."""


def encode_segment(rows: list[Record], times: list[int] | None = None, frame: int = 0, index: int = 0,
                   base: causal.Vector = causal.EMPTY) -> bytes:
    """One segment's records (consecutive seqs of one author, ids of one length) and their
    entries' own times (None: none known); its first vector as a difference from ``base``,
    the vector at ``index`` in ``frame`` (0: none, the empty vector)."""
    metas = [row[0] for row in rows]
    count = len(metas)
    idlen = len(metas[0][1])
    offsets, flat = vector_diffs(metas, base)
    diffs = _items(flat)
    size = diffs.itemsize
    clocks = array("q", [m[0] for m in metas])
    stamps = array("q", times if times is not None else [_NO_TIME] * count)
    if len(stamps) != count:
        raise ValueError("one time per record")
    if sys.byteorder == "big":  # (the format is little-endian, as decode_record reads it)
        for column in (clocks, stamps, offsets, diffs):
            column.byteswap()
    parts = [
        _HEADER.pack(_VERSION, size, idlen, count, len(flat)),
        _FRAME.pack(frame, index),
        clocks.tobytes(),
        stamps.tobytes(),
        bytes([_CODE[row[1]] for row in rows]),
        offsets.tobytes(),
        b"".join([m[1] for m in metas]),
        diffs.tobytes(),
    ]
    reasons = [[i, row[2]] for i, row in enumerate(rows) if row[2]]
    if reasons:
        parts.append(cbor2.dumps(reasons))
    return b"".join(parts)


_ZEROS = (0,) * causal.WIDTH


def _items(flat: list[int]) -> array[int]:
    """Differences as stored: u32 items (seqs are positive; beyond 32 bits only in a very
    long log), else i64."""
    try:
        return array("I", flat)
    except OverflowError:
        return array("q", flat)


def encode_frame(vectors: list[causal.Vector]) -> bytes:
    """A frame: its segments' first vectors, each as its difference from the one before (the
    first from the empty vector)."""
    offsets, flat = vector_diffs([(0, b"", 0, 0, *vector) for vector in vectors])  # type: ignore[misc]
    diffs = _items(flat)
    if sys.byteorder == "big":
        for column in (offsets, diffs):
            column.byteswap()
    return b"".join([_TRACK.pack(diffs.itemsize, len(vectors), len(flat)), offsets.tobytes(), diffs.tobytes()])


def decode_frame(blob: bytes) -> list[causal.Vector]:
    """The vectors of a frame (:func:`encode_frame`), sharing the leaves they do not change."""
    size, count, items = _TRACK.unpack_from(blob)
    if size not in (4, 8) or len(blob) != _TRACK.size + 4 * (count + 1) + size * items:
        raise ValueError("a fold archive frame of the wrong size")
    ends = struct.unpack_from(f"<{count + 1}I", blob, _TRACK.size)
    if ends[0] or any(map(gt, ends, ends[1:])) or ends[-1] != items or any(end % 2 for end in ends):
        raise ValueError("a fold archive frame's offsets are out of range")
    flat = struct.unpack_from(f"<{items}{'I' if size == 4 else 'q'}", blob, _TRACK.size + 4 * (count + 1))
    return _chain(flat, ends)


def segment_frame(blob: bytes) -> tuple[int, int]:
    """``(frame, index)`` of a segment (``(0, 0)``, the empty vector, before version 4)."""
    if blob[0] < 4:
        return 0, 0
    frame, index = _FRAME.unpack_from(blob, _HEADER.size)
    return int(frame), int(index)


def vector_diffs(metas: list[_Meta], start: causal.Vector = causal.EMPTY) -> tuple[array[int], list[int]]:
    """Each record's version vector as its difference from the previous record's (the first
    from ``start``), flat ``index, seq`` pairs, and where each record's pairs end: what
    each entry adds, not O(authors) per record — :func:`causal.diff` of each pair of
    neighbours, with fast paths (encoding was most of archiving's cost, a tenth of a fresh
    node's fold): a vector identical to the previous one adds nothing, and two vectors of one
    level (up to 32 authors) or of two (up to 1,024: the general walk's calls per leaf were a
    fifth of it), the new one no narrower, are compared leaf by leaf in place."""
    offsets = array("I", [0])
    flat: list[int] = []
    shift, root = start
    for m in metas:
        new_shift = m[_VV]
        new_root = m[_VV + 1]
        if new_root is not root or new_shift != shift:
            if not root:
                shift = new_shift  # (the empty vector, at any depth)
            width = len(new_root)
            if new_shift == shift and width >= len(root) and new_shift <= causal.BITS:
                if not new_shift:
                    old = root + _ZEROS[:width - len(root)] if len(root) < width else root
                    for j in compress(range(width), map(ne, old, new_root)):
                        flat += (j, new_root[j])
                else:
                    base = 0
                    for leaf, new_leaf in zip_longest(root, new_root, fillvalue=()):
                        if leaf is not new_leaf:
                            width = len(new_leaf)
                            if len(leaf) > width:  # (slots cleared: never along a log)
                                cleared = causal.diff((0, leaf), (0, new_leaf))
                                cleared[0::2] = [j + base for j in cleared[0::2]]
                                flat += cleared
                            else:
                                if len(leaf) < width:
                                    leaf = leaf + _ZEROS[:width - len(leaf)]
                                for j in compress(range(width), map(ne, leaf, new_leaf)):
                                    flat += (base + j, new_leaf[j])
                        base += causal.WIDTH
            else:
                flat += causal.diff((shift, root), (new_shift, new_root))
            shift = new_shift
            root = new_root
        offsets.append(len(flat))
    return offsets, flat


class _Layout(NamedTuple):
    size: int  # bytes per difference item
    idlen: int
    records: int  # (count)
    items: int
    clocks: int  # where each column starts
    times: int  # (-1: a version-2 segment, without times)
    status: int
    offsets: int
    ids: int
    diffs: int
    end: int  # where the reasons start, if any


def _layout(blob: bytes) -> _Layout:
    version, size, idlen, count, items = _HEADER.unpack_from(blob)
    if version not in _READS or size not in (4, 8):
        raise ValueError("unknown fold archive segment encoding")
    clocks = _HEADER.size + (_FRAME.size if version >= 4 else 0)
    times = clocks + 8 * count if version >= 3 else -1
    status = (times if times >= 0 else clocks) + 8 * count
    offsets = status + count
    ids = offsets + 4 * (count + 1)
    diffs = ids + idlen * count
    end = diffs + size * items
    if len(blob) < end:
        raise ValueError("a truncated fold archive segment")
    return _Layout(size, idlen, count, items, clocks, times, status, offsets, ids, diffs, end)


def decode_record(blob: bytes, index: int, aidx: int, seq: int, base: causal.Vector = causal.EMPTY) -> Record:
    """The ``index``-th record of a segment (``aidx``, ``seq``: its author index and seq;
    ``base``: the vector its frame gives it, :func:`segment_frame`)."""
    at = _layout(blob)
    if not 0 <= index < at.records:
        raise IndexError(index)
    (clock,) = struct.unpack_from("<q", blob, at.clocks + 8 * index)
    (end_item,) = struct.unpack_from("<I", blob, at.offsets + 4 * (index + 1))
    if end_item > at.items or end_item % 2:
        raise ValueError("a fold archive segment's offsets are out of range")
    raw = blob[at.ids + at.idlen * index: at.ids + at.idlen * (index + 1)]
    # The record's vector: the differences of the records up to it, applied in order
    # (at most SEGMENT_MAX of them: a bounded walk).
    flat = struct.unpack_from(f"<{end_item}{'I' if at.size == 4 else 'q'}", blob, at.diffs)
    if end_item > 2 * causal.WIDTH:
        # Many slots set again and again (a log's vector only grows: each slot's last value
        # is the record's): collapsed in C first, so apply walks each slot once — a reviewed
        # old contribution's record, read back to merge its vector, cost one Python step per
        # difference of every record before it in its segment.
        slots = dict(zip(flat[0::2], flat[1::2], strict=True))
        if 0 not in slots.values():  # (a zero is never written along a log; if it were, in order)
            flat = tuple(chain.from_iterable(slots.items()))
    vv = causal.apply(base, flat)
    state = _STATUS[blob[at.status + index]]
    reason = ""
    if len(blob) > at.end:
        for i, text in cbor2.loads(blob[at.end:]):
            if i == index:
                reason = text
                break
    if not reason and state in _PLAIN:
        state, reason = _PLAIN[state]
    return tuple.__new__(_Meta, (clock, raw, aidx, seq, *vv)), state, reason


def decode_segment(blob: bytes, aidx: int, first: int, base: causal.Vector = causal.EMPTY) -> list[Timed]:
    """Every record of a segment (``aidx``: its author index, ``first``: its first seq), with
    its entry's time: one pass over the differences, each record's vector built from the
    previous one's (sharing the leaves it does not change), not one walk per record.
    ``base``: the vector its frame gives it (:func:`segment_frame`)."""
    at = _layout(blob)
    count = at.records
    clocks = struct.unpack_from(f"<{count}q", blob, at.clocks)
    times = struct.unpack_from(f"<{count}q", blob, at.times) if at.times >= 0 else (_NO_TIME,) * count
    ends = struct.unpack_from(f"<{count + 1}I", blob, at.offsets)
    if ends[0] or any(map(gt, ends, ends[1:])) or ends[-1] > at.items or any(end % 2 for end in ends):
        raise ValueError("a fold archive segment's offsets are out of range")
    flat = struct.unpack_from(f"<{ends[-1]}{'I' if at.size == 4 else 'q'}", blob, at.diffs)
    vectors = _chain(flat, ends, base)
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
        meta = tuple.__new__(_Meta, (clocks[index], raw, aidx, first + index, *vectors[index]))
        out.append((meta, state, reason, times[index]))
    return out


def _chain(flat: tuple[int, ...], ends: tuple[int, ...], base: causal.Vector = causal.EMPTY) -> list[causal.Vector]:
    """Each record's vector from a chain of differences (``flat``, record ``i``'s pairs
    between ``ends[i]`` and ``ends[i + 1]``), the first from ``base``.  Up to 1,024 authors
    (one or two levels, from the empty vector) the slots are kept dense and only the leaves a
    record changes are built again; otherwise :func:`causal.apply` record by record."""
    out: list[causal.Vector] = []
    indexes = flat[0::2]
    if base[1] or (indexes and max(indexes) >= causal.WIDTH * causal.WIDTH):
        vector = base
        for start, end in pairwise(ends):
            if end > start:
                vector = causal.apply(vector, flat[start:end])
            out.append(vector)
        return out
    top = max(indexes, default=0)
    if indexes and min(indexes) < 0:
        raise ValueError("a fold archive segment's author indexes are out of range")
    dense = [0] * (top + 1)
    leaves: list[causal.Node] = [()] * (top // causal.WIDTH + 1)
    vector = causal.EMPTY
    for start, end in pairwise(ends):
        if end > start:
            changed = set()
            for index, value in zip(flat[start:end:2], flat[start + 1:end:2], strict=True):
                dense[index] = value
                changed.add(index >> causal.BITS)
            for k in changed:
                leaf = dense[k << causal.BITS:(k + 1) << causal.BITS]
                while leaf and not leaf[-1]:
                    leaf.pop()
                leaves[k] = tuple(leaf)
            n = len(leaves)
            while n and not leaves[n - 1]:
                n -= 1
            vector = (0, leaves[0] if n else ()) if n <= 1 else (causal.BITS, tuple(leaves[:n]))
        out.append(vector)
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


class StoreSource(Protocol):
    """Whatever holds the store a live fold currently reads (the engine's live fold record:
    a process may reopen the store file).  A protocol, so this module needs nothing of the
    engine that uses it (no import cycle)."""

    @property
    def store(self) -> Store | None: ...


class StoreArchive(Archive):
    """The live fold's archive: evicted records as segments in the store's ``fold_segments``
    table (local derived data, never replicated), entry bodies from the store's entries."""

    def __init__(self, source: StoreSource | Store, commons: CID, space: bytes | None = None) -> None:
        self._source = source  # a live fold's current store, or one store
        self._commons = commons
        # Rows of this fold only: another process folding the same commons has its own.
        self.space = space if space is not None else commons.raw + os.urandom(8)
        # Records of the segments decoded lately, by id (a cache: see the module's docstring).
        self._records: dict[bytes, Timed] = {}
        self._frames: dict[int, list[causal.Vector]] = {}  # frames decoded lately
        self._frame: int | None = None  # the last frame written (read from the store once)

    @property
    def _store(self) -> Store:
        store = self._source if isinstance(self._source, Store) else self._source.store
        assert store is not None
        return store

    def put(self, rows: list[tuple[_Meta, str, str]], bodies: list[Entry | None], authors: list[bytes],
            times: list[int] | None = None) -> None:
        """Archive records with their entries' times (``times``, else those of the ``bodies``
        given; the store holds the bodies themselves)."""
        if times is None:
            times = [_NO_TIME if body is None else body.time for body in bodies]
        runs: dict[int, list[tuple[_Meta, str, str]]] = {}
        stamps: dict[int, list[int]] = {}
        for row, time in zip(rows, times, strict=True):
            aidx = row[0][2]
            run = runs.get(aidx)
            if run is None:
                run = runs[aidx] = []
                stamps[aidx] = []
            run.append(row)
            stamps[aidx].append(time)
        store = self._store
        chunks: list[tuple[int, int, list[tuple[_Meta, str, str]], list[int]]] = []  # (log, aidx, records, times)
        for aidx, run in runs.items():
            log = store.existing_log(self._commons, authors[aidx])
            if log is None:
                raise ValueError("an archived entry's log is not in the store")
            own = stamps[aidx]
            at = 0  # (where ``part`` starts in the run)
            for part in _consecutive(run):
                for start in range(0, len(part), SEGMENT_MAX):
                    chunk = part[start:start + SEGMENT_MAX]
                    chunks.append((log, aidx, chunk, own[at + start:at + start + len(chunk)]))
                at += len(part)
        # The frame: the chunks' first vectors in clock order, so that each differs little
        # from the one before it (see the module's docstring).
        chunks.sort(key=lambda chunk: chunk[2][0][0][0])
        firsts: list[causal.Vector] = [(chunk[2][0][0][_VV], chunk[2][0][0][_VV + 1]) for chunk in chunks]
        frame = self._next_frame()
        segments: list[tuple[int, int, int, int, bytes]] = [(-frame, 0, 0, -1, encode_frame(firsts))]
        for index, (log, aidx, records, times_of) in enumerate(chunks):
            segments.append((log, records[0][0][3], len(records), aidx,
                             encode_segment(records, times_of, frame, index, firsts[index])))
        store.archive_put(self.space, segments)

    def _next_frame(self) -> int:
        if self._frame is None:
            self._frame = self._store.archive_last_frame(self.space)
        self._frame += 1
        return self._frame

    def _frame_vectors(self, frame: int) -> list[causal.Vector]:
        """A frame's vectors, read and decoded once (the last few are kept)."""
        held = self._frames.get(frame)
        if held is None:
            blob = self._store.archive_frame(self.space, frame)
            if blob is None:
                raise ValueError(f"frame {frame} is missing")
            held = decode_frame(blob)
            if len(self._frames) >= FRAMES_MAX:
                del self._frames[next(iter(self._frames))]
            self._frames[frame] = held
        return held

    def meta(self, raw: bytes) -> _Meta | None:
        record = self._record(raw)
        return None if record is None else record[0]

    def outcome(self, raw: bytes) -> tuple[_Meta, str, str] | None:
        record = self._record(raw)
        return None if record is None else record[:3]

    def _record(self, raw: bytes) -> Timed | None:
        """An archived entry's record and time: from the segments decoded lately, else its
        segment read and decoded whole (see the module's docstring)."""
        held = self._records.get(raw)
        if held is not None:
            return held
        found = self._store.archive_find(self.space, raw)
        if found is None:
            return None
        index, aidx, first, blob = found
        try:
            frame, at = segment_frame(blob)
            records = decode_segment(blob, aidx, first, self._frame_vectors(frame)[at] if frame else causal.EMPTY)
            record = records[index]
        except Exception as exc:
            raise DamagedArchive(f"The state fold's archive in the store is damaged ({exc}); "
                                 "the state is being folded again from the entries.") from None
        cache = self._records
        if len(cache) + len(records) > RECORDS_MAX:  # (a dict keeps insertion order: the older half goes)
            for older in list(islice(cache, len(cache) // 2 + len(records))):
                del cache[older]
        for held in records:
            cache[held[0][1]] = held
        return record if record[0][1] == raw else None  # (else a fork sibling of the archived entry)

    def drop_caches(self) -> None:
        self._records.clear()
        self._frames.clear()

    def entry(self, raw: bytes) -> Entry | None:
        return self._store.get(CID(raw))

    def time(self, raw: bytes) -> int | None:
        """From the archived record if it was just read (an entry naming an archived one it
        had not seen reads its record, then its time), else from the stored bytes without
        building the entry (they were checked when stored)."""
        held = self._records.get(raw)
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

    def count_stable(self, frontier: list[int]) -> int:
        width = len(frontier)
        stable = 0
        for aidx, first, count, _ in self._store.archive_segments(self.space, records=False):
            if aidx < width:
                stable += max(0, min(count, frontier[aidx] - first + 1))
        return stable

    def truncate(self, upto: dict[bytes, int]) -> None:
        """Keep only the records up to ``upto[author]`` per author (a checkpoint's archive)."""
        self._records.clear()
        self._frames.clear()
        self._store.archive_truncate(self.space, self._commons, upto)

    def clear(self) -> None:
        self._records.clear()
        self._frames.clear()
        self._frame = None
        self._store.archive_clear(self.space)

