"""Each stored entry's version vector, computed once at insert, kept as a skip difference.

An entry's version vector maps each log (the store's log number) to the highest seq of
that log in the entry's causal past, the entry itself included.  It answers "is X in Y's
causal past": the vector of Y at X's log is at least X's seq.  (Where a log forked, one
seq names two entries and the vector speaks of seqs, as the state fold's own does.)  The
store computes it in the transaction that places the entry (once every parent is stored),
so a reader asks the store instead of rebuilding the past.

Why a skip difference and not the vector: stored whole, a vector costs O(authors) per
entry (10,000 authors: 10,000 slots for an entry that adds one).  Stored as its difference
from its previous entry, reading one slot walks back through the whole log, and a long run
of joiners (each naming the one before) chains every log together.  So each entry stores
its difference from a *base*, an ancestor chosen by skew-binary jump pointers (Myers, "An
applicative random-access stack", 1983) along its *primary* parent: the parent with the
highest clock, whose vector is usually the nearest to the entry's.
(Not the ``prev``: with 10,000 authors an entry's prev is thousands of entries older, and
the difference from it held 2,000 slots per entry; from the newest parent, 9.)  With
``level`` the number of primary steps down to a root (an entry naming no parent, such as a
genesis), the base of an entry whose primary parent is ``p`` is ``p``'s base's base if the
two jumps below ``p`` span equal levels, else ``p`` itself.  So:

- a read walks O(log level) rows (at most 2 log2(level) + 2, whatever the history);
- along a chain, every primary step is spanned by O(log level) rows, so the differences
  stored add up to O(what the entries add × log level), not O(authors) per entry;
- a join names the current heads: it is based on the latest of them, or two jumps below
  it, and stores the few slots it adds, not every author the heads have seen.

A base on the entry's own log, on its chain, is named by its seq (found through the
``(log, seq)`` index; where the log forked at that seq, by following ``prev`` links, so a
fork sibling is never taken for it); any other base by its id, and the store keeps which rows name which
(``vv_named``), so that deleting entries (an outsider's log expiring) first gives the rows
based on them their whole vector.

Each row holds its level; reads walk from the entry through its bases, and a slot's value
is the first one found (a vector only grows along the way).  The in-memory tries
(:mod:`.causal`) of recent entries are kept (:attr:`VectorIndex.tries`), so the usual entry,
whose parents were just placed, merges its parents' tries and stores :func:`~.causal.diff`
of its base's, which costs what it adds.

Local derived data: computed again from the entries by the schema 8 migration, never
replicated.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Container, Iterable
from itertools import islice
from typing import TypeVar

from . import causal
from .causal import Vector

WALK_MAX = 2 * 64 + 2  # rows a whole read walks at most (levels below 2^64)
# Recent entries' tries kept (the older half goes).  Memory against CPU with many authors:
# 100,000 entries by 10,000 authors stored in log order took 1.2 ms per entry and 1,059 MiB
# with 16,384 kept, 2.1 ms and 645 MiB with 4,096 (462 MiB without vectors); 12 authors: no
# difference.
TRIES_MAX = 4096
ROWS_MAX = 4096  # decoded rows kept
BEYOND_MAX = 256  # slots read from a parent's rows before merging its whole vector instead
# version | base kind | item size | reserved | level | base seq (a base on the own log; else 0)
_HEADER = struct.Struct("<BBBxQQ")
_VERSION = 1
_NONE, _OWN, _NAMED = 0, 1, 2  # base kinds: none (a root), by seq on the own log, by id
# (Public: a reader holding some entries' vectors builds another's from its row and its base's.)
ROOT, OWN_LOG, NAMED = _NONE, _OWN, _NAMED
T = TypeVar("T")
_ID_LENGTH = 36  # every entry id is a 36-byte CID (p2pcommons.dagcbor)


class Row:
    """A stored entry's vector row, decoded: its level, where its base is and what it adds."""

    __slots__ = ("base", "base_id", "base_seq", "flat", "kind", "level")

    def __init__(self, kind: int, level: int, base_seq: int, base: bytes | None, flat: tuple[int, ...]) -> None:
        self.kind = kind
        self.level = level
        self.base_seq = base_seq  # (kind _OWN)
        self.base = base  # (kind _NAMED)
        self.flat = flat  # ``[log, seq, ...]``: the slots where the entry's vector exceeds its base's
        # The base's id once found (kind _OWN: through the ``(log, seq)`` index; it never
        # changes, and a row is read back many times while its log grows past it).
        self.base_id: bytes | None = base


def encode(kind: int, level: int, flat: list[int], base_seq: int = 0, base: bytes | None = None) -> bytes:
    try:
        items = array("I", flat)
    except OverflowError:
        items = array("q", flat)
    if sys.byteorder == "big":
        items.byteswap()
    head = _HEADER.pack(_VERSION, kind, items.itemsize, level, base_seq)
    return head + (base or b"") + items.tobytes()


def decode(blob: bytes) -> Row:
    """A row from its bytes (ValueError: not a vector row this version writes)."""
    version, kind, size, level, base_seq = _HEADER.unpack_from(blob)
    at = _HEADER.size
    base = None
    if kind == _NAMED:
        base = bytes(blob[at:at + _ID_LENGTH])
        at += _ID_LENGTH
    if version != _VERSION or kind not in (_NONE, _OWN, _NAMED) or size not in (4, 8) \
            or (len(blob) - at) % (2 * size) or (kind == _OWN) is not (base_seq > 0):
        raise ValueError("not a version vector row")
    items = array("I" if size == 4 else "q")
    items.frombytes(blob[at:])
    if sys.byteorder == "big":
        items.byteswap()
    return Row(kind, level, base_seq, base, tuple(items))


def based_on(blob: bytes) -> bytes | None:
    """The id a row names as its base (another log's entry), without decoding the rest."""
    if len(blob) >= _HEADER.size + _ID_LENGTH and blob[1] == _NAMED:
        return bytes(blob[_HEADER.size:_HEADER.size + _ID_LENGTH])
    return None


# How the index reads the store: ``(log, seq, vv)`` of an entry by id; the ``(id, vv)`` rows
# at a log's seq; an entry's ``prev`` id (decoding its stored bytes).
ById = Callable[[bytes], tuple[int, int, bytes | None] | None]
AtSeq = Callable[[int, int], list[tuple[bytes, bytes | None]]]
PrevOf = Callable[[bytes], bytes | None]


class MissingVector(LookupError):
    """An entry's vector cannot be read: it is not stored, or not placed yet."""


class VectorIndex:
    """Computes entries' vector rows at insert and reads them back, for one connection.

    The caches hold facts fixed by an entry's id (which fixes its past) and the log numbers
    of its store: the store clears them when a rollback may have taken log numbers back."""

    def __init__(self, by_id: ById, at_seq: AtSeq, prev_of: PrevOf) -> None:
        self._by_id = by_id
        self._at_seq = at_seq
        self._prev_of = prev_of
        self.tries: dict[bytes, Vector] = {}
        self._rows: dict[bytes, tuple[int, int, Row]] = {}  # id -> (log, seq, row), read back
        # Rows computed since :meth:`begin`, whole: the batch being stored is not in the
        # table yet, and its entries' bases are often its own earlier ones.
        self._pending: dict[bytes, tuple[int, int, Row, bytes | None]] = {}  # id -> (log, seq, row, prev)
        self._pending_at: dict[tuple[int, int], list[bytes]] = {}

    def begin(self) -> None:
        """A new batch: the rows computed for the last one are stored now (one rolled back
        was :meth:`discard`-ed), so they join the rows read back.  (Dropped, each was read
        again from the store when a later entry named it: the newest heads, which every
        entry names, a statement each, 14 % of storing a 100-author history.)"""
        for eid, (log, seq, row, _) in self._pending.items():
            _keep(self._rows, eid, (log, seq, row), ROWS_MAX)
        self._pending.clear()
        self._pending_at.clear()

    def discard(self) -> None:
        """The rows computed since :meth:`begin` were not stored: forget them, and their tries
        (which would otherwise stand for rows that are not there)."""
        for eid in self._pending:
            self.tries.pop(eid, None)
        self._pending.clear()
        self._pending_at.clear()

    def forget_rows(self) -> None:
        """Forget the rows read back or computed (another connection may have rewritten some)."""
        self._rows.clear()
        self._pending.clear()
        self._pending_at.clear()

    def clear(self) -> None:
        self.tries.clear()
        self.forget_rows()  # (not begin(): the rows computed last may be the ones rewritten)

    # --- reading ---------------------------------------------------------------------------

    def _row(self, eid: bytes) -> tuple[int, int, Row]:
        pending = self._pending.get(eid)
        if pending is not None:
            return pending[0], pending[1], pending[2]
        held = self._rows.get(eid)
        if held is not None:
            return held
        found = self._by_id(eid)
        if found is None:
            raise MissingVector(eid)
        log, seq, blob = found
        if blob is None:
            raise MissingVector(eid)
        held = (log, seq, decode(blob))
        _keep(self._rows, eid, held, ROWS_MAX)
        return held

    def _base_of(self, eid: bytes, log: int, seq: int, row: Row) -> bytes | None:
        """The id of a row's base (None: it has none)."""
        if row.kind != _OWN or row.base_id is not None:
            return row.base_id
        row.base_id = self.ancestor(eid, log, seq, row.base_seq)
        return row.base_id

    def ancestor(self, eid: bytes, log: int, seq: int, target: int) -> bytes:
        """The entry at seq ``target`` on ``eid``'s own chain (``eid`` at ``seq`` of ``log``)."""
        ids: set[bytes] = {*self._pending_at.get((log, target), []), *(row[0] for row in self._at_seq(log, target))}
        if len(ids) == 1:
            return ids.pop()
        # A fork at that seq (or the entry missing): follow prev links from the entry.
        at, current = seq, eid
        while at > target:
            pending = self._pending.get(current)
            prev = pending[3] if pending is not None else self._prev_of(current)
            if prev is None:
                raise MissingVector(eid)
            current, at = prev, at - 1
        return current

    def _on_chain(self, prev: bytes, log: int, prev_seq: int, seq: int, base: bytes) -> bool:
        """Whether ``base`` (at ``seq`` of ``log``) is the entry at that seq on the chain of
        ``prev`` (the entry's prev, at ``prev_seq``): where the log forked, another log may
        have seen the other sibling, and a base by seq must be the one the chain resolves to."""
        try:
            return self.ancestor(prev, log, prev_seq, seq) == base
        except MissingVector:
            return False

    def position(self, eid: bytes) -> tuple[int, int]:
        """A placed entry's ``(log, seq)`` (MissingVector: not stored, or no vector)."""
        log, seq, _ = self._row(eid)
        return log, seq

    def walk(self, eid: bytes) -> Iterable[tuple[bytes, int, int, Row]]:
        """The rows a read visits: the entry's, then its base's, and so on."""
        current: bytes | None = eid
        for _ in range(WALK_MAX):
            if current is None:
                return
            log, seq, row = self._row(current)
            yield current, log, seq, row
            current = self._base_of(current, log, seq, row)
        raise ValueError("a version vector row chain longer than its levels allow")

    def slot(self, eid: bytes, log: int) -> int:
        """The vector of ``eid`` at ``log`` (0: no entry of that log in its past)."""
        held = self.tries.get(eid)
        if held is not None:
            return causal.get(held, log)
        for _, _, _, row in self.walk(eid):
            flat = row.flat
            for at in range(0, len(flat), 2):
                if flat[at] == log:
                    return flat[at + 1]
        return 0

    def vector(self, eid: bytes) -> Vector:
        """An entry's whole vector as a trie (kept among the recent ones).

        Built from the nearest base whose trie is at hand, upwards: each row on the way is
        set over its base's trie, and kept.  Why not gather the slots of the whole walk and
        build one trie from them (as before): with 10,000 authors a walk that found no trie
        gathered every author's slot, so each such read cost O(authors) (a sort of 10,000
        slots; 58 % of storing a 10,000-author history), and the trie it built shared no
        node with its neighbours', so merging it cost O(authors) again.  Kept, the bases a
        walk passes through (a few jump-pointer ancestors, shared by every entry above them)
        are at hand for the next walk, and each trie shares the nodes of its base's."""
        tries = self.tries
        held = tries.get(eid)
        if held is not None:
            return held
        above: list[tuple[bytes, Row]] = []
        vector = causal.EMPTY
        for visited, _, _, row in self.walk(eid):
            below = tries.get(visited)
            if below is not None:  # (a base whose vector is at hand: the rest of the walk is in it)
                vector = below
                if len(tries) >= TRIES_MAX // 2:  # (used again: it moves to the young end)
                    del tries[visited]
                    tries[visited] = below
                break
            above.append((visited, row))
        for visited, row in reversed(above):
            vector = causal.apply(vector, row.flat)
            _keep(tries, visited, vector, TRIES_MAX)
        return vector

    def whole_row(self, eid: bytes) -> bytes:
        """A stored entry's row made again from its whole vector, with no base (its level
        kept): for an entry whose base is about to be deleted."""
        return encode(_NONE, self._row(eid)[2].level, _flat(self.vector(eid)))

    # --- computing ---------------------------------------------------------------------------

    def place(self, eid: bytes, log: int, seq: int, parents: list[bytes],
              clock_of: Callable[[bytes], int], forked: Container[int] = ()) -> tuple[bytes | None, bytes | None]:
        """The row of an entry being placed (every parent placed, with its row stored or
        computed earlier through this index), and the id of another log's entry it names as
        its base (None: none).  Its vector is kept.  None for both where a parent has no
        vector (its own past lost an entry, deleted from an older store): the entry has none
        either.

        ``forked``: the logs that may hold two entries at one seq.  A parent on any other
        log whose seq the primary parent's vector reaches is in the primary's past (the one
        entry at that seq is on the chain the primary saw), so its vector adds nothing and
        is not merged: an entry names the newest heads it knows, and the newest of them has
        usually seen the rest (96-100 % of the other parents in the benchmark histories)."""
        primary = None
        if parents:
            # The primary parent: the one with the highest clock, whose vector is most often
            # the nearest to the entry's (its prev may be thousands of entries older).
            # (Ties: the first named.  Any parent would do: the choice only shapes the rows.)
            primary = parents[0] if len(parents) == 1 else max(parents, key=clock_of)
        try:
            held = self.tries.get
            vector = causal.EMPTY
            if primary is not None:
                top = vector = held(primary) or self.vector(primary)
                wholes: list[Vector] = []
                beyond: dict[int, int] = {}
                for parent in parents:
                    if parent != primary:
                        p_log, p_seq, _ = self._row(parent)
                        if (p_log in forked or causal.get(top, p_log) < p_seq) \
                                and not self._beyond(parent, top, forked, beyond):
                            wholes.append(held(parent) or self.vector(parent))
                if beyond:
                    vector = causal.apply(top, [x for pair in beyond.items() for x in pair])
                if wholes:
                    vector = causal.merge_all([vector, *wholes])
        except MissingVector:
            return None, None
        if causal.get(vector, log) < seq:
            vector = causal.put(vector, log, seq)
        base: bytes | None = None
        if primary is None:
            blob, named = encode(_NONE, 0, _flat(vector)), None
        else:
            p_log, p_seq, p_row = self._row(primary)
            base = primary
            jump = self._base_of(primary, p_log, p_seq, p_row)
            if jump is not None:
                j_log, j_seq, j_row = self._row(jump)
                jump2 = self._base_of(jump, j_log, j_seq, j_row)
                if jump2 is not None and p_row.level - j_row.level == j_row.level - self._row(jump2)[2].level:
                    base = jump2
            b_log, b_seq, _ = self._row(base)
            level = p_row.level + 1
            diff = causal.diff(self.vector(base), vector)
            if b_log == log and b_seq < seq and self._on_chain(parents[-1], log, seq - 1, b_seq, base):
                blob, named = encode(_OWN, level, diff, base_seq=b_seq), None
            else:
                blob, named = encode(_NAMED, level, diff, base=base), base
        _keep(self.tries, eid, vector, TRIES_MAX)
        row = decode(blob)
        row.base_id = base
        self._pending[eid] = (log, seq, row, parents[-1] if seq > 1 and parents else None)
        self._pending_at.setdefault((log, seq), []).append(eid)
        return blob, named

    def _beyond(self, parent: bytes, top: Vector, forked: Container[int], beyond: dict[int, int]) -> bool:
        """Add to ``beyond`` the slots where ``parent``'s vector exceeds ``top``'s, read from
        its rows down to the first entry in ``top``'s past (whose vector ``top`` covers);
        False, adding nothing, if that takes more than ``BEYOND_MAX`` slots (the caller then
        merges the whole vector).

        Why: a parent the primary has not seen (often the entry's own ``prev``, which nobody
        named since) usually adds one slot, its own, and its base is in the primary's past.
        Merging its whole vector compared every leaf of two tries built apart, O(authors):
        at 3,000 authors, 300 µs per such parent and a third of storing the history."""
        found: dict[int, int] = {}
        slots = 0
        get = causal.get
        for _, log, seq, row in self.walk(parent):
            if log not in forked and get(top, log) >= seq:
                break  # (in top's past: so is everything its vector holds)
            flat = row.flat
            slots += len(flat)
            if slots > 2 * BEYOND_MAX:
                return False
            for index, value in zip(flat[0::2], flat[1::2], strict=True):
                if index not in found:  # (the first found is the latest)
                    found[index] = value
        for index, value in found.items():
            if value > get(top, index) and value > beyond.get(index, 0):
                beyond[index] = value
        return True


def _flat(vector: Vector) -> list[int]:
    return [x for pair in causal.items(vector) for x in pair]


def _keep(cache: dict[bytes, T], key: bytes, value: T, bound: int) -> None:
    """Add to a bounded cache (a dict keeps insertion order: the older half goes)."""
    if len(cache) >= bound:
        for old in list(islice(cache, bound // 2)):
            del cache[old]
    cache[key] = value
