"""Compact in-memory forms of the state's biggest tables (issue 12: a million entries).

The records the handlers read and write stay the NamedTuples and dicts of :mod:`.records`;
only how the state *holds* them changes, never what they are (the state hash, checkpoints
and views see the same values).  Why: a folded commons holds one record per contribution
and one share per member per distribution, and as Python objects those cost about 630 bytes
per contribution (a 12-field tuple, an id object, the author's key, the title, the time, the
review tuples, each a separate object) and 11 kB per distribution of a hundred members (a
dict of a hundred keys): about a gigabyte for a million-entry commons.

* :class:`Shares`: a distribution's shares as one value per member in a byte string, over a
  roster (the sorted member keys) shared by every distribution with the same members.
* :class:`Contributions`: contribution id → :class:`~.records.Contribution`, each held as
  one byte string (``marshal`` of its fields, authors as indexes into a key table shared by
  the table's copies); a record is built again when it is read.  ``marshal`` is a private,
  in-process format here: nothing written with it leaves the process (checkpoints keep their
  own rows, :mod:`.records`).
* :func:`share`: one object for equal small values (an author key, a kind, a unit), so a
  million records do not each hold their own copy.
* :class:`_Layers`: the packed tables and :class:`Votes` are copy-on-write, a flat shared
  base (:class:`_Frozen`) and a dict of what changed since, so the fold's snapshots share
  every unchanged row with the state instead of each holding a dict of every row.
"""

from __future__ import annotations

import marshal
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, MutableMapping, ValuesView
from collections.abc import Sequence as SequenceABC
from itertools import accumulate, pairwise
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from ..dagcbor import CID, _trusted_cid

if TYPE_CHECKING:
    from .records import Contribution, Proposal

_T = TypeVar("_T")

# --- sharing equal values -----------------------------------------------------------------

_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 1 << 14  # distinct values kept; past it the table starts afresh (bounded)


def share(value: _T) -> _T:
    """One object for equal values (bytes, str, tuples of them, CIDs): a cache, so never
    a question of correctness, bounded so an adversary's many distinct values cost nothing
    lasting."""
    found = _SHARED.get(value)
    if found is not None:
        return found  # type: ignore[no-any-return]
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    _SHARED[value] = value
    return value


# --- distribution shares -----------------------------------------------------------------


class _Roster:
    """Sorted member keys and each one's position: shared by every distribution to the same members."""

    __slots__ = ("index", "keys")

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self.keys = keys
        self.index = {k: i for i, k in enumerate(keys)}


_ROSTERS: dict[tuple[bytes, ...], _Roster] = {}
_ROSTERS_MAX = 64


def _roster(keys: tuple[bytes, ...]) -> _Roster:
    found = _ROSTERS.get(keys)
    if found is None:
        if len(_ROSTERS) >= _ROSTERS_MAX:
            _ROSTERS.clear()
        found = _ROSTERS[keys] = _Roster(tuple(share(k) for k in keys))
    return found


class Shares(Mapping[bytes, int]):
    """A distribution's shares (member key → amount), read-only: the values packed
    little-endian in ``width`` bytes each, in the roster's order.  Iterates in the order
    it was given (the fold gives them sorted by key), like the dict it replaces."""

    __slots__ = ("_roster", "_values", "_width")

    def __init__(self, shares: Mapping[bytes, int] | Iterable[tuple[bytes, int]]) -> None:
        pairs = list(shares.items()) if isinstance(shares, Mapping) else list(shares)
        self._roster = _roster(tuple(k for k, _ in pairs))
        top = max((v for _, v in pairs), default=0)
        width = max(1, (top.bit_length() + 7) // 8)
        self._width = width
        self._values = b"".join(v.to_bytes(width, "little") for _, v in pairs)

    def __getitem__(self, key: bytes) -> int:
        i = self._roster.index[key]
        w = self._width
        return int.from_bytes(self._values[i * w:i * w + w], "little")

    def __contains__(self, key: object) -> bool:
        return key in self._roster.index

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._roster.keys)

    def __len__(self) -> int:
        return len(self._roster.keys)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Shares):
            return self._roster.keys == other._roster.keys and \
                [*self.values()] == [*other.values()]  # (widths may differ)
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # (mutable-looking, like the dict it replaces)

    def __repr__(self) -> str:
        return f"Shares({dict(self.items())!r})"


# --- copy-on-write layers -----------------------------------------------------------------

_ABSENT: Any = object()  # (not in the top layer: look in the base)
_FIRST = itemgetter(0)
_GONE: Any = object()  # (deleted in the top layer, though the base has it)
MERGE_MIN = 1024  # a top layer smaller than this is never merged into its base
MERGE_FRACTION = 4  # ... nor one smaller than the base's 1/MERGE_FRACTION (amortized O(1) per write;
# 4, was 8: a fresh fold merges half as often, 2-4 % of its CPU; at 1M entries the daemon's
# RSS after its fold is unchanged, 160 MiB — bench/memory.py --store-only)


class _Frozen:
    """Immutable rows (raw key → byte string) in a handful of flat buffers instead of a dict
    of objects: about 40 bytes per row plus the value's own bytes, where a dict holds a key
    object, a value object and a slot (about 170 bytes plus the value's).  The keys, all of
    one width, sorted in one byte string, without the prefix they all share (an entry id's
    four bytes of CID header); the values concatenated in the same order.  With ``ordered``,
    the rows iterate in the order they came (an array maps that order to the sorted one,
    4 bytes a row); otherwise in key order.  Values all of one width are found by their
    place alone (no array of offsets).  A key is found by binary search within its bucket:
    the keys are entry ids (hashes), so the two bytes after the shared prefix spread them
    evenly over up to 65,536 buckets of about eight (an adversary grinding ids into one
    bucket only brings back a binary search over it).  ``thaw`` turns a stored byte string
    back into the table's value (None: kept as is)."""

    __slots__ = ("_buckets", "_data", "_keys", "_n", "_prefix", "_rank", "_shift", "_starts", "_thaw", "_vwidth",
                 "_width")

    def __init__(self, keys: list[bytes] | None = None, values: list[bytes] | None = None,
                 thaw: Callable[[bytes], Any] | None = None, *, ordered: bool = True) -> None:
        keys = keys or []
        values = values or []
        n = len(keys)
        order = sorted(range(n), key=keys.__getitem__)
        rank: array[int] | None = None
        if ordered:  # place in order of arrival -> sorted position
            rank = array("I", bytes(4 * n))
            for position, i in enumerate(order):
                rank[i] = position
        self._fill([keys[i] for i in order], [values[i] for i in order], rank, thaw)

    @classmethod
    def of_sorted(cls, keys: list[bytes], values: list[bytes], rank: array[int] | None,
                  thaw: Callable[[bytes], Any] | None, prefix: bytes = b"") -> _Frozen:
        """Rows given in key order (``rank``: each row's sorted position, in order of
        arrival; None: iterate in key order), the keys without ``prefix``."""
        self = cls.__new__(cls)
        self._fill(keys, values, rank, thaw, prefix)
        return self

    def _fill(self, ordered_keys: list[bytes], values: list[bytes], rank: array[int] | None,
              thaw: Callable[[bytes], Any] | None, prefix: bytes = b"") -> None:
        n = self._n = len(ordered_keys)
        self._thaw = thaw
        self._rank = rank
        # The prefix every key shares (the first and last sorted keys share it), up to two
        # bytes short of the width: those two bytes, their top ``bits`` bits, are the bucket.
        # (Keys given without a prefix that is not all they share are given back whole first.)
        if prefix and n and len(ordered_keys[0]) > 2 and ordered_keys[0][0] == ordered_keys[-1][0]:
            ordered_keys = [prefix + k for k in ordered_keys]
            prefix = b""
        width = self._width = len(prefix) + (len(ordered_keys[0]) if n else 0)
        at = 0
        if n and not prefix:
            first, last = ordered_keys[0], ordered_keys[-1]
            while at < width - 2 and first[at] == last[at]:
                at += 1
            prefix = ordered_keys[0][:at]
        self._prefix = prefix
        if at:
            ordered_keys = [k[at:] for k in ordered_keys]
        self._keys = b"".join(ordered_keys)
        bits = min(16, max(1, (n // 8).bit_length())) if width >= 2 else 0  # (0: one bucket)
        self._shift = 16 - bits
        self._buckets = array("I", [bisect_left(ordered_keys, (b << (16 - bits)).to_bytes(2, "big"))
                                    for b in range(1 << bits)])
        self._buckets[0] = 0  # (keys narrower than two bytes: one bucket, from the first)
        self._buckets.append(n)
        del ordered_keys
        lengths = set(map(len, values))
        if len(lengths) == 1 and 0 not in lengths:  # (all of one width: a row's value is found by its place)
            self._vwidth = lengths.pop()
            self._starts: array[int] | None = None
        else:
            self._vwidth = 0
            total = sum(map(len, values))
            self._starts = array("I" if total < 1 << 32 else "Q", [0])
            self._starts.extend(accumulate(map(len, values)))
        self._data = b"".join(values)

    def sorted_rows(self) -> tuple[list[bytes], list[bytes]]:
        """Every key (without the shared prefix) and its stored byte string, in key order."""
        keys, data, vw, starts, n = self._keys, self._data, self._vwidth, self._starts, self._n
        w = self._width - len(self._prefix)
        ids = [keys[i * w:i * w + w] for i in range(n)]
        if starts is None:
            blobs = [data[i * vw:i * vw + vw] for i in range(n)]
        else:
            blobs = [data[a:b] for a, b in pairwise(starts)]
        return ids, blobs

    def _find(self, raw: bytes) -> int:
        """The row's sorted position, or -1."""
        if len(raw) != self._width or not self._n:
            return -1
        prefix = self._prefix
        if prefix:
            at = len(prefix)
            if raw[:at] != prefix:
                return -1
            raw = raw[at:]
        w = len(raw)
        if not w:
            return 0  # (the one key of width 0)
        keys = self._keys
        buckets = self._buckets
        b = int.from_bytes(raw[:2], "big") >> self._shift
        lo, hi = buckets[b], buckets[b + 1]
        if hi - lo <= 64:  # (a bucket of a few keys: one search of its bytes, in C, in place)
            start = lo * w
            end = hi * w
            j = keys.find(raw, start, end)
            while j >= 0:
                if not (j - start) % w:
                    return lo + (j - start) // w
                j = keys.find(raw, j + 1, end)
            return -1
        while lo < hi:  # (a crowded bucket, ids ground into it: a binary search)
            mid = (lo + hi) >> 1
            if keys[mid * w:mid * w + w] < raw:
                lo = mid + 1
            else:
                hi = mid
        if lo < self._n and keys[lo * w:lo * w + w] == raw:
            return lo
        return -1

    def _value(self, i: int) -> Any:
        vw = self._vwidth
        if vw:
            blob = self._data[i * vw:i * vw + vw]
        else:
            starts = self._starts
            assert starts is not None
            blob = self._data[starts[i]:starts[i + 1]]
        return blob if self._thaw is None else self._thaw(blob)

    def get(self, raw: bytes, default: Any = None) -> Any:
        i = self._find(raw)
        return default if i < 0 else self._value(i)

    def __contains__(self, raw: bytes) -> bool:
        return self._find(raw) >= 0

    def __len__(self) -> int:
        return self._n

    def containing(self, needle: bytes) -> Iterator[tuple[bytes, bytes]]:
        """``(key, stored byte string)`` of the rows whose stored bytes contain ``needle``,
        in key order: one byte search over the values' single buffer (in C), then only the
        rows it hits are sliced out — not a Python step per row."""
        data, vw, starts = self._data, self._vwidth, self._starts
        keys, prefix = self._keys, self._prefix
        w = self._width - len(prefix)
        at = data.find(needle)
        while at >= 0:
            if vw:
                i = at // vw
                start, end = i * vw, i * vw + vw
            else:
                assert starts is not None
                i = bisect_right(starts, at) - 1
                start, end = starts[i], starts[i + 1]
            if at + len(needle) <= end:  # (not one straddling two rows' bytes)
                yield prefix + keys[i * w:i * w + w], data[start:end]
                at = data.find(needle, end)
            else:
                at = data.find(needle, at + 1)

    def sorted_items(self) -> Iterator[tuple[bytes, Any]]:
        """Every ``(key, value)`` in key order (the order the rows are stored in)."""
        keys, prefix, data, thaw, vw, starts = \
            self._keys, self._prefix, self._data, self._thaw, self._vwidth, self._starts
        w = self._width - len(prefix)
        for i in range(self._n):
            blob = data[i * vw:i * vw + vw] if starts is None else data[starts[i]:starts[i + 1]]
            yield prefix + keys[i * w:i * w + w], blob if thaw is None else thaw(blob)

    def _positions(self) -> Iterable[int]:
        """The rows' sorted positions, in iteration order."""
        return range(self._n) if self._rank is None else self._rank

    def __iter__(self) -> Iterator[bytes]:
        keys, prefix = self._keys, self._prefix
        w = self._width - len(prefix)
        for position in self._positions():
            yield prefix + keys[position * w:position * w + w]

    def items(self) -> Iterator[tuple[bytes, Any]]:
        keys, prefix, data, thaw, vw, starts = \
            self._keys, self._prefix, self._data, self._thaw, self._vwidth, self._starts
        w = self._width - len(prefix)
        for i in self._positions():
            blob = data[i * vw:i * vw + vw] if starts is None else data[starts[i]:starts[i + 1]]
            yield prefix + keys[i * w:i * w + w], blob if thaw is None else thaw(blob)


class _Layers:
    """Raw key → value in two layers: a *base* (:class:`_Frozen`) shared with copies and
    never mutated, and this table's own *top* dict of what changed since (values, or
    ``_GONE`` for a key deleted from the base).  Why: the fold snapshots the state every
    ``size() // 32`` entries and keeps one snapshot (the archive's base) for good; a plain
    dict copy is O(rows) each time and doubled what a folded million-entry commons holds,
    and a dict of a million packed records is itself 170 bytes a row of overhead.  A copy
    here costs O(top) and shares every row of the base.  When the top layer has grown to
    ``1/MERGE_FRACTION`` of the base (and ``MERGE_MIN``), a copy first merges it into a new
    base, so the copies made afterwards share that (amortized O(1) a write; rows whose key
    width or value the base cannot hold stay in the top).  Iteration order is a dict's
    (a replaced row keeps its place) as long as nothing is deleted and re-added."""

    __slots__ = ("_base", "_n", "_top")
    _ordered: ClassVar[bool] = True  # (False: the base iterates in key order, 4 bytes a row less)

    def __init__(self, base: _Frozen | None = None, top: dict[bytes, Any] | None = None,
                 n: int | None = None) -> None:
        self._base: _Frozen = self._frozen([], []) if base is None else base
        self._top: dict[bytes, Any] = {} if top is None else top
        self._n = len(self._base) if n is None else n

    @staticmethod
    def _thaw() -> Callable[[bytes], Any] | None:
        """How the base gives values back (None: the byte strings themselves)."""
        return None

    @staticmethod
    def _freeze(value: Any) -> bytes | None:
        """A value as the base holds it (None: it cannot; the row stays in the top)."""
        return value if type(value) is bytes else None

    def _get(self, raw: bytes, default: Any = None) -> Any:
        v = self._top.get(raw, _ABSENT)
        if v is _ABSENT:
            return self._base.get(raw, default)
        return default if v is _GONE else v

    def _has(self, raw: bytes) -> bool:
        v = self._top.get(raw, _ABSENT)
        if v is _ABSENT:
            return raw in self._base
        return v is not _GONE

    def _set(self, raw: bytes, value: Any) -> None:
        top = self._top
        old = top.get(raw, _ABSENT)
        if old is _GONE or (old is _ABSENT and raw not in self._base):
            self._n += 1
        top[raw] = value

    def _insert(self, raw: bytes, value: Any) -> None:
        """:meth:`_set` of a key the caller knows this table has never held (the applying
        entry's own id; a vote just looked up and absent): no search of the base for it.
        Why: that search (a bucket of the flat base, cold in the cache) was most of a
        new row's cost, and the fold writes one or two new rows for most entries.  (A
        key in the top layer, even deleted, takes :meth:`_set`: a dict lookup, no search.)"""
        top = self._top
        if raw in top:
            self._set(raw, value)
            return
        self._n += 1
        top[raw] = value

    def _overwrite(self, raw: bytes, value: Any) -> None:
        """:meth:`_set` of a key the caller knows this table holds (a record it has just
        read): the count stays, so the base is not searched for the key.  (One deleted in
        the top layer, which a caller cannot have read, takes :meth:`_set`.)"""
        top = self._top
        if top.get(raw) is _GONE:
            self._set(raw, value)
            return
        top[raw] = value

    def _del(self, raw: bytes) -> None:
        top = self._top
        old = top.get(raw, _ABSENT)
        if old is _GONE or (old is _ABSENT and raw not in self._base):
            raise KeyError(raw)
        if raw in self._base:
            top[raw] = _GONE
        else:
            del top[raw]
        self._n -= 1

    def _raw_keys(self) -> Iterator[bytes]:
        base, top = self._base, self._top
        if not top:
            yield from base
            return
        for raw in base:
            if top.get(raw, _ABSENT) is not _GONE:
                yield raw
        for raw, v in top.items():
            if v is not _GONE and raw not in base:
                yield raw

    def _raw_items(self) -> Iterator[tuple[bytes, Any]]:
        base, top = self._base, self._top
        if not top:
            yield from base.items()
            return
        for raw, v in base.items():
            w = top.get(raw, _ABSENT)
            if w is _ABSENT:
                yield raw, v
            elif w is not _GONE:
                yield raw, w
        for raw, v in top.items():
            if v is not _GONE and raw not in base:
                yield raw, v

    def _raw_items_by_key(self) -> Iterator[tuple[bytes, Any]]:
        """:meth:`_raw_items` in key order: the base's rows as stored (in key order), merged
        with the top layer's rows, sorted (each replacing or deleting the base's row of its key)."""
        top = sorted(self._top.items(), key=_FIRST)
        i, m = 0, len(top)
        for raw, value in self._base.sorted_items():
            while i < m and top[i][0] < raw:
                key, mine = top[i]
                i += 1
                if mine is not _GONE:
                    yield key, mine
            if i < m and top[i][0] == raw:
                mine = top[i][1]
                i += 1
                if mine is not _GONE:
                    yield raw, mine
                continue
            yield raw, value
        for key, mine in top[i:]:
            if mine is not _GONE:
                yield key, mine

    def _shared(self) -> tuple[_Frozen, dict[bytes, Any], int]:
        """The layers for a copy: the base shared, the top copied (merged first if big)."""
        self._merge_if_due()
        return self._base, self._top.copy(), self._n

    def _merge_if_due(self) -> None:
        top = self._top
        if len(top) >= MERGE_MIN and len(top) * MERGE_FRACTION > len(self._base):
            self._merge()

    def _merge(self) -> None:
        """The top layer merged into a new base (rows the base cannot hold stay on top)."""
        if not self._merge_rows(self._freeze):
            self._merge_all()

    def _merge_rows(self, freeze: Callable[[Any], bytes | None]) -> bool:
        """:meth:`_merge` when no row leaves the base (none deleted, none replaced by a value
        it cannot hold; else False, nothing done): the base's rows, already in key order, are
        taken as they are stored (no thawing, no re-sorting), the top's new rows sorted
        among them (a merge of two sorted runs) and the order of arrival carried over.
        (A merge cutting and joining slices of the base's buffers was tried: no faster at
        100,000 entries, and it left the 1M daemon 27 MiB larger after its fold, 188 against
        161 MiB; why is not yet known.)"""
        base, top = self._base, self._top
        keys, blobs = base.sorted_rows()
        n_old = len(keys)
        prefix = base._prefix
        at = len(prefix)
        width = base._width if n_old else -1
        new_keys: list[bytes] = []
        new_blobs: list[bytes] = []
        kept: dict[bytes, Any] = {}
        whole = not at  # (a new key without the prefix: the keys are given back whole)
        for raw, value in top.items():
            if value is _GONE:
                return False
            frozen = freeze(value)
            if width < 0:
                width = len(raw)
            if raw[:at] == prefix:
                key = raw[at:]
                i = bisect_left(keys, key, 0, n_old)
                found = i < n_old and keys[i] == key
            else:
                found = False
                whole = True
            if frozen is None or len(raw) != width:
                if found:
                    return False
                kept[raw] = value
            elif found:
                blobs[i] = frozen
            else:
                new_keys.append(raw)
                new_blobs.append(frozen)
        if whole:
            if at:
                keys = [prefix + k for k in keys]
            prefix = b""
        elif at:
            new_keys = [k[at:] for k in new_keys]
        rank = base._rank if self._ordered else None
        if new_keys:
            keys += new_keys
            blobs += new_blobs
            order = sorted(range(len(keys)), key=keys.__getitem__)
            keys = [keys[i] for i in order]
            blobs = [blobs[i] for i in order]
            if rank is not None:
                where = array("I", bytes(4 * len(order)))  # old place (then the new rows') -> sorted position
                for position, i in enumerate(order):
                    where[i] = position
                rank = array("I", [where[p] for p in rank])
                rank.extend(where[n_old:])
        self._base = _Frozen.of_sorted(keys, blobs, rank, self._thaw(), prefix)
        self._top = kept
        return True

    def _merge_all(self) -> None:
        """:meth:`_merge` for any top layer: every row read, frozen and sorted again."""
        keys: list[bytes] = []
        values: list[bytes] = []
        kept: dict[bytes, Any] = {}
        freeze = self._freeze
        width = -1
        for raw, value in self._raw_items():
            frozen = freeze(value)
            if width < 0:
                width = len(raw)
            if frozen is None or len(raw) != width:
                kept[raw] = value
            else:
                keys.append(raw)
                values.append(frozen)
        self._base = self._frozen(keys, values)
        self._top = kept

    def _frozen(self, keys: list[bytes], values: list[bytes]) -> _Frozen:
        return _Frozen(keys, values, self._thaw(), ordered=self._ordered)

    def _delta(self, other: _Layers) -> tuple[list[bytes], list[bytes]]:
        """Raw keys whose value here differs from ``other``'s (or ``other`` lacks), and the
        raw keys ``other`` has and this lacks: a checkpoint's snapshot as a difference, in
        O(top) when both share their base (the fold's snapshots and state mostly do)."""
        if other._base is self._base:
            mine, theirs = self._top, other._top
            changed = [raw for raw, v in mine.items()
                       if v is not _GONE and other._get(raw, _ABSENT) != v]
            changed += [raw for raw in theirs if raw not in mine and self._has(raw)
                        and self._get(raw) != other._get(raw, _ABSENT)]
            absent = [raw for raw in {**theirs, **mine} if not self._has(raw) and other._has(raw)]
            return changed, absent
        here, there = dict(self._raw_items()), dict(other._raw_items())
        return ([raw for raw, v in here.items() if there.get(raw, _ABSENT) != v],
                [raw for raw in there if raw not in here])


# --- contributions ------------------------------------------------------------------------

_STATUS_CODE: dict[str, bool | None] = {"pending": None, "accepted": True, "rejected": False}
_STATUS_OF: dict[bool | None, str] = {code: status for status, code in _STATUS_CODE.items()}


class _Keys:
    """Byte strings (author keys, resource ids) and, for contributions, their kinds (short
    text) by index, append-only: shared by a table and all its copies (snapshots), so an
    index written by one means the same key in every other.  Grows with the distinct keys
    the state's records name, not with entries."""

    __slots__ = ("index", "keys")

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.index: dict[Any, int] = {}

    def of(self, key: Any) -> int:
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.keys)
            self.keys.append(key)
        return found


_V = TypeVar("_V")


class Packed(_Layers, MutableMapping[CID, _V]):
    """Entry id → record, each record held as one byte string (``_pack``/``_unpack``, per
    table) and built again when read.  Insertion order is kept, as a dict's (a replaced
    record keeps its place); a copy (a snapshot) shares the packed records, the key table
    and, copy-on-write, every row that neither changes afterwards (:class:`_Layers`)."""

    __slots__ = ("_keys",)

    def __init__(self, items: Iterable[tuple[CID, _V]] = (), *, _keys: _Keys | None = None,
                 _layers: tuple[_Frozen, dict[bytes, Any], int] | None = None) -> None:
        # (Each value packed; in the rare case it cannot be, the record itself.)
        super().__init__(*(_layers or ()))
        self._keys = _Keys() if _keys is None else _keys
        for cid, record in items:
            self[cid] = record

    def _pack(self, value: _V) -> bytes:
        raise NotImplementedError

    def _unpack(self, blob: bytes) -> _V:
        raise NotImplementedError

    def __getitem__(self, key: CID) -> _V:
        blob = self._get(key.raw, _ABSENT)
        if blob is _ABSENT:
            raise KeyError(key)
        return self._unpack(blob) if type(blob) is bytes else blob

    def get(self, key: CID, default: Any = None) -> Any:
        # (:meth:`_Layers._get` and :meth:`_Frozen.get` inlined: a review reads its
        # contribution, a vote its proposal, mostly from the base.)
        raw = key.raw
        blob = self._top.get(raw, _ABSENT)
        if blob is _ABSENT:
            base = self._base
            i = base._find(raw)
            if i < 0:
                return default
            blob = base._value(i)
        elif blob is _GONE:
            return default
        return self._unpack(blob) if type(blob) is bytes else blob

    def __setitem__(self, key: CID, value: _V) -> None:
        try:
            packed: Any = self._pack(value)
        except (ValueError, TypeError):  # (a value marshal cannot hold, nested too deep: kept as it is)
            packed = value
        self._set(key.raw, packed)

    def insert(self, key: CID, value: _V) -> None:
        """``self[key] = value`` for an id this table has never held, the applying entry's
        own (its contribution, proposal, booking): the base is not searched for it
        (:meth:`_Layers._insert`).  A caller's promise, not checked: an id held already
        would be counted twice in ``len``."""
        try:
            packed: Any = self._pack(value)
        except (ValueError, TypeError):
            packed = value
        self._insert(key.raw, packed)

    def overwrite(self, key: CID, value: _V) -> None:
        """``self[key] = value`` for an id this table holds, its record just read (a review's
        contribution, a vote's proposal): the base is not searched for it
        (:meth:`_Layers._overwrite`).  A caller's promise, not checked: an id not held
        would be missing from ``len``."""
        try:
            packed: Any = self._pack(value)
        except (ValueError, TypeError):
            packed = value
        self._overwrite(key.raw, packed)

    def __delitem__(self, key: CID) -> None:
        self._del(key.raw)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, CID) and self._has(key.raw)

    def __iter__(self) -> Iterator[CID]:
        return map(_trusted_cid, self._raw_keys())

    def __len__(self) -> int:
        return self._n

    def items(self) -> ItemsView[CID, _V]:
        return _Items(self)

    def values(self) -> ValuesView[_V]:
        return _Values(self)

    def _pairs(self) -> Iterator[tuple[CID, _V]]:
        """Every (id, record), read in one pass over the layers (no lookup per row)."""
        unpack = self._unpack
        for raw, blob in self._raw_items():
            yield _trusted_cid(raw), unpack(blob) if type(blob) is bytes else blob

    def pairs_by_id(self) -> Iterator[tuple[CID, _V]]:
        """Every (id, record) in the order of the ids' bytes, in one pass.  Why: the query
        tables' whole rewrite after a fresh fold inserts a row per record into a table keyed
        by id (``p2pcommons.tables.write``); in id order each row goes at the end of its
        B-tree, where random order had SQLite read and write a page per row (a million rows,
        their indexes built after them: 22.8 s of SQLite's work in random order, 11.3 in id
        order, measured on SQLite alone)."""
        unpack = self._unpack
        for raw, blob in self._raw_items_by_key():
            yield _trusted_cid(raw), unpack(blob) if type(blob) is bytes else blob

    def screened(self, needle: bytes) -> Iterator[_V]:
        """Every record whose packed form contains ``needle``, and every record not held
        packed: a superset of the records with a string field that contains it (``marshal``
        writes a string as its UTF-8 bytes), found by a byte search instead of decoding
        every record.  Why: a late entry's judge asks whether any proposal ever changed a
        contribution rule; at a million entries decoding 50,000 proposals for it took a
        quarter of a second (:func:`.handlers.late.late_judge`)."""
        unpack, top = self._unpack, self._top
        for blob in top.values():
            if type(blob) is not bytes:
                if blob is not _GONE:
                    yield blob
            elif needle in blob:
                yield unpack(blob)
        for raw, blob in self._base.containing(needle):
            if raw not in top:  # (else replaced or deleted: seen above)
                yield unpack(blob)

    def delta(self, other: Packed[_V]) -> tuple[list[CID], list[CID]]:
        """Ids whose record here differs from ``other``'s (or that it lacks), and ids only
        ``other`` has (:meth:`_Layers._delta`)."""
        if other._keys is not self._keys:  # (packed over different key tables: compare records)
            theirs = dict(other._pairs())
            return ([c for c, v in self._pairs() if theirs.get(c, _ABSENT) != v],
                    [c for c in theirs if c not in self])
        changed, absent = self._delta(other)
        return list(map(_trusted_cid, changed)), list(map(_trusted_cid, absent))

    def copy(self: _P) -> _P:
        """A snapshot's copy: the packed records are immutable bytes, shared, and so is the base layer."""
        return type(self)(_keys=self._keys, _layers=self._shared())

    def same(self, other: Packed[_V], key: CID) -> bool:
        """Is ``key``'s record the same in both (a checkpoint delta: compared packed, unread)?"""
        if other._keys is not self._keys:
            return bool(self.get(key) == other.get(key))
        return bool(self._get(key.raw) == other._get(key.raw))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} records)"


_P = TypeVar("_P", bound=Packed[Any])

_RECORDS: dict[str, Any] = {}
_CONTRIBUTION: Any = None


def _records() -> dict[str, Any]:
    """The record classes (:mod:`.records` imports this module, so they are looked up once, late)."""
    global _CONTRIBUTION
    if not _RECORDS:
        from . import records

        _RECORDS.update(Contribution=records.Contribution, Proposal=records.Proposal)
        _CONTRIBUTION = records.Contribution
    return _RECORDS


# A contribution's compact form (in-process only, native byte order, never written out):
#   head  u8 tag | u16 author | u16 kind | i32 claimed | i32 value | i64 time | u8 accepts | u8 rejects
#   then  u16 per accepting, then per rejecting reviewer | (tag's ref bit) u16 length, ref's UTF-8
#   rest  the title's UTF-8
# author, kind and reviewers as indexes into the table's key table.  The tag is 0x10 | status
# (0 pending, 1 accepted, 2 rejected) | 4 outside | 8 a ref: never the first byte of marshal's
# form (a tuple: 0x28, 0x29, 0xa8 or 0xa9), which holds every record this one cannot (refs,
# another status, an int out of range, more than 64 keys or reviewers of one record).
_C_HEAD = struct.Struct("=BHHiiqBB")
_C_TAG = 0x10
_C_STATUS: dict[str, int] = {"pending": 0, "accepted": 1, "rejected": 2}
_C_STATUS_OF = ("pending", "accepted", "rejected")
_C_REVIEWS = 64  # reviewers of one kind held in the compact form (more: marshal's)
_C_U16 = [struct.Struct(f"={n}H") for n in range(2 * _C_REVIEWS + 1)]


class Contributions(Packed["Contribution"]):
    """Contribution id → :class:`~.records.Contribution` (about 40 bytes each, not 450):
    the compact form above for the usual record, ``marshal`` of its fields otherwise."""

    __slots__ = ()

    def _pack(self, c: Contribution) -> bytes:
        # (The fold packs a record per contribution and per review: kept to a few C calls.
        # A title or ref that is not text has no ``encode``: marshal's form.)
        of = self._keys.of
        author, title, kind, ref, claimed, status, accepts, rejects, value, outside, refs, time = c
        code = _C_STATUS.get(status) if type(status) is str else None
        if code is not None and not refs and type(claimed) is int and type(value) is int and type(time) is int \
                and type(outside) is bool and type(kind) is str and len(accepts) <= _C_REVIEWS \
                and len(rejects) <= _C_REVIEWS:
            try:
                # (Keys seen before — nearly all — read from the key table's dict in C; a new
                # one added by ``of``, in the same order as ever: reviewers, author, kind.)
                index = self._keys.index
                reviewers = [*map(index.get, accepts), *map(index.get, rejects)] if accepts or rejects else []
                if None in reviewers:
                    reviewers = [of(a) for a in (*accepts, *rejects)]
                who = index.get(author)
                if who is None:
                    who = of(author)
                what = index.get(kind)
                if what is None:
                    what = of(kind)
                head = _C_HEAD.pack(_C_TAG | code | (4 if outside else 0) | (8 if ref else 0), who, what,
                                    claimed, value, time, len(accepts), len(rejects))
                if ref:
                    text = ref.encode()
                    return b"".join((head, _C_U16[len(reviewers)].pack(*reviewers),
                                     len(text).to_bytes(2, "little"), text, title.encode()))
                if reviewers:
                    return b"".join((head, _C_U16[len(reviewers)].pack(*reviewers), title.encode()))
                return head + title.encode()
            except (struct.error, OverflowError, UnicodeError, AttributeError):
                pass  # (an index, int or ref out of the compact form's range, or text that is not str)
        return marshal.dumps((of(author), title, kind, ref, claimed, _STATUS_CODE.get(status, status),
                              tuple([of(a) for a in accepts]) if accepts else None,
                              tuple([of(a) for a in rejects]) if rejects else None, value, outside,
                              tuple([r.raw for r in refs]) if refs else None, time))

    def _unpack(self, blob: bytes) -> Contribution:
        keys = self._keys.keys
        cls = _CONTRIBUTION or _records()["Contribution"]
        if blob[0] & 0xF0 == _C_TAG:
            tag, author, kind, claimed, value, time, n_accepts, n_rejects = _C_HEAD.unpack_from(blob)
            at = _C_HEAD.size
            n = n_accepts + n_rejects
            accepts: tuple[bytes, ...] = ()
            rejects: tuple[bytes, ...] = ()
            if n:
                reviewers = _C_U16[n].unpack_from(blob, at)
                at += 2 * n
                if n_accepts:
                    accepts = tuple([keys[i] for i in reviewers[:n_accepts]])
                if n_rejects:
                    rejects = tuple([keys[i] for i in reviewers[n_accepts:]])
            ref = ""
            if tag & 8:
                size = int.from_bytes(blob[at:at + 2], "little")
                ref = blob[at + 2:at + 2 + size].decode()
                at += 2 + size
            return tuple.__new__(cls, (  # type: ignore[no-any-return]
                keys[author], blob[at:].decode(), keys[kind], ref, claimed, _C_STATUS_OF[tag & 3], accepts, rejects,
                value, bool(tag & 4), (), time))
        (author, title, kind, ref, claimed, status, accepts_at, rejects_at, value, outside, refs,
         time) = marshal.loads(blob)
        return tuple.__new__(cls, (  # type: ignore[no-any-return]
            keys[author], title, kind, ref, claimed, _STATUS_OF.get(status, status) if type(status) is not str
            else status, tuple([keys[a] for a in accepts_at]) if accepts_at else (),
            tuple([keys[a] for a in rejects_at]) if rejects_at else (), value, outside,
            tuple(map(_trusted_cid, refs)) if refs else (), time))


class Proposals(Packed["Proposal"]):
    """Proposal id → :class:`~.records.Proposal`, packed likewise (its changes and action
    are plain data: rebuilt equal on each read)."""

    __slots__ = ()

    def _pack(self, p: Proposal) -> bytes:
        of = self._keys.of
        return marshal.dumps((of(p.author), p.title, p.changes, tuple(of(a) for a in p.yes),
                              tuple(of(a) for a in p.no), p.status, tuple(of(a) for a in p.abstain), p.deadline,
                              p.time, None if p.closed is None else p.closed.raw, p.action))

    def _unpack(self, blob: bytes) -> Proposal:
        author, title, changes, yes, no, status, abstain, deadline, time, closed, action = marshal.loads(blob)
        keys = self._keys.keys
        return tuple.__new__(_records()["Proposal"], (  # type: ignore[no-any-return]
            keys[author], title, changes, tuple(keys[a] for a in yes), tuple(keys[a] for a in no), status,
            tuple(keys[a] for a in abstain), deadline, time, None if closed is None else _trusted_cid(closed),
            action))


Booking = tuple[CID, int, bytes, int]


# A booking's compact form (in-process only, native byte order): u8 tag 0x10 | u16 resource |
# u16 author | i32 period | i32 amount, resource and author as key table indexes — one width
# for every row, so the flat base keeps no offsets; marshal's form (never starting with 0x10)
# for a booking out of its range.
_B_FORM = struct.Struct("=BHHii")


class Bookings(Packed[Booking]):
    """Use of a rivalrous resource → (resource, period, author, amount), packed likewise
    (13 bytes a booking in the usual case)."""

    __slots__ = ()

    def _pack(self, b: Booking) -> bytes:
        of = self._keys.of
        resource, period, author, amount = b
        if type(period) is int and type(amount) is int:
            try:
                return _B_FORM.pack(_C_TAG, of(resource.raw), of(author), period, amount)
            except struct.error:
                pass  # (an index or int out of the compact form's range)
        return marshal.dumps((of(resource.raw), period, of(author), amount))

    def _unpack(self, blob: bytes) -> Booking:
        keys = self._keys.keys
        if blob[0] == _C_TAG:
            _, resource, author, period, amount = _B_FORM.unpack(blob)
        else:
            resource, period, author, amount = marshal.loads(blob)
        return _trusted_cid(keys[resource]), period, keys[author], amount


Vote = tuple[CID, bytes]


class _Items(ItemsView[Any, Any]):
    """A packed table's items, read in one pass (not one lookup per key)."""

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return self._mapping._pairs()  # type: ignore[attr-defined, no-any-return]


class _Values(ValuesView[Any]):
    def __iter__(self) -> Iterator[Any]:
        return (v for _, v in self._mapping._pairs())  # type: ignore[attr-defined]


_VOTE_FROZEN = {True: b"\x01", False: b"\x00", None: b"\x02"}
_VOTE_THAWED = {b: v for v, b in _VOTE_FROZEN.items()}


class Votes(_Layers, MutableMapping[Vote, Any]):
    """(proposal, voter) → choice, keyed by one byte string (the proposal's id, then the
    voter's key) instead of a tuple of two objects and an id object of its own per vote;
    copies share unchanged votes (:class:`_Layers`)."""

    __slots__ = ()

    def __init__(self, items: Iterable[tuple[Vote, Any]] = (), *,
                 _layers: tuple[_Frozen, dict[bytes, Any], int] | None = None) -> None:
        super().__init__(*(_layers or ()))
        for key, value in items:
            self[key] = value

    @staticmethod
    def _thaw() -> Callable[[bytes], Any] | None:
        return _VOTE_THAWED.__getitem__

    @staticmethod
    def _freeze(value: Any) -> bytes | None:
        return _VOTE_FROZEN.get(value) if type(value) is bool or value is None else None

    def _pairs(self) -> Iterator[tuple[Vote, Any]]:
        for raw, value in self._raw_items():
            yield (_trusted_cid(raw[:36]), raw[36:]), value

    def items(self) -> ItemsView[Vote, Any]:
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        return _Values(self)

    def delta(self, other: Votes) -> tuple[list[Vote], list[Vote]]:
        """Votes that differ here from ``other`` (or that it lacks), and votes only ``other`` has."""
        changed, absent = self._delta(other)
        return ([(_trusted_cid(k[:36]), k[36:]) for k in changed], [(_trusted_cid(k[:36]), k[36:]) for k in absent])

    def __getitem__(self, key: Vote) -> Any:
        value = self._get(key[0].raw + key[1], _ABSENT)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def get(self, key: Vote, default: Any = None) -> Any:
        return self._get(key[0].raw + key[1], default)

    def __setitem__(self, key: Vote, value: Any) -> None:
        self._set(key[0].raw + key[1], value)

    def insert(self, key: Vote, value: Any) -> None:
        """``self[key] = value`` for a vote this table does not hold (just looked up and
        absent, or on a proposal being opened): no search of the base (:meth:`Packed.insert`)."""
        self._insert(key[0].raw + key[1], value)

    def __delitem__(self, key: Vote) -> None:
        self._del(key[0].raw + key[1])

    def __contains__(self, key: object) -> bool:
        return type(key) is tuple and len(key) == 2 and isinstance(key[0], CID) and \
            self._has(key[0].raw + key[1])

    def __iter__(self) -> Iterator[Vote]:
        return ((_trusted_cid(k[:36]), k[36:]) for k in self._raw_keys())

    def __len__(self) -> int:
        return self._n

    def copy(self) -> Votes:
        return Votes(_layers=self._shared())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Votes({len(self)} votes)"


# --- distributions ------------------------------------------------------------------------

_DISTRIBUTION_FIXED = ("id", "amount", "currency", "shares")


class _Rosters:
    """Rosters by index, append-only: shared by a :class:`Distributions` and its copies."""

    __slots__ = ("index", "rosters")

    def __init__(self) -> None:
        self.rosters: list[_Roster] = []
        self.index: dict[tuple[bytes, ...], int] = {}

    def of(self, roster: _Roster) -> int:
        found = self.index.get(roster.keys)
        if found is None:
            found = self.index[roster.keys] = len(self.rosters)
            self.rosters.append(roster)
        return found


DISTRIBUTION_CHUNK = 256  # distributions per frozen chunk (tests lower it)


class Distributions(SequenceABC[dict[str, Any]]):
    """The state's distributions (the ledger's lines), in fold order, each held as one byte
    string (``marshal`` of its id, amount, currency, roster index and packed shares, and of
    its optional fields) and built again as the same dict when read.  Why: a distribution
    as a dict, an id object and a :class:`Shares` object cost about 530 bytes besides its
    shares' values; packed, about 100.

    The packed items are frozen ``DISTRIBUTION_CHUNK`` at a time into one byte string and an
    array of offsets (a *chunk*), shared by every copy (a snapshot copies the list of chunks
    and the short tail of items not frozen yet).  Why: one small object per distribution,
    made all along a fold, kept for the daemon's life, pinned a share of nearly every 1 MiB
    arena of Python's small-object allocator — an arena goes back to the system only when
    all its objects are gone — so a folded million-entry commons held about 40 MiB of
    arenas mostly empty.  An item of a frozen chunk that is replaced (a receipt) or could
    not be packed is kept in ``_patch`` by its place.  Items are replaced, never mutated."""

    __slots__ = ("_chunks", "_patch", "_rosters", "_tail")

    def __init__(self, items: Iterable[dict[str, Any]] = (), *, _rosters: _Rosters | None = None,
                 _items: list[Any] | None = None) -> None:
        self._rosters = _Rosters() if _rosters is None else _rosters
        self._chunks: list[tuple[bytes, array[int]]] = []
        self._tail: list[Any] = []
        self._patch: dict[int, Any] = {}
        for packed in _items or ():
            self._push(packed)
        for d in items:
            self.append(d)

    def _pack(self, d: dict[str, Any]) -> Any:
        """``d`` packed (or ``d`` itself, in the rare case it holds what the packing cannot)."""
        try:
            shares = d["shares"]
            if type(shares) is not Shares:
                shares = Shares(shares)
            extra = tuple((k, v) for k, v in d.items() if k not in _DISTRIBUTION_FIXED)
            cid = d["id"]
            if type(cid) is not CID:
                return d
            return marshal.dumps((cid.raw, d["amount"], d["currency"], self._rosters.of(shares._roster),
                                  shares._width, shares._values, extra))
        except (ValueError, TypeError, KeyError):
            return d

    def _unpack(self, blob: Any) -> dict[str, Any]:
        if type(blob) is not bytes:
            return blob  # type: ignore[no-any-return]
        raw, amount, currency, roster, width, values, extra = marshal.loads(blob)
        shares = Shares.__new__(Shares)
        shares._roster = self._rosters.rosters[roster]
        shares._width = width
        shares._values = values
        d = {"id": _trusted_cid(raw), "amount": amount, "currency": currency, "shares": shares}
        if extra:
            d.update(extra)
        return d

    def _push(self, packed: Any) -> None:
        """Append one packed item, freezing the tail into a chunk once it is full."""
        tail = self._tail
        tail.append(packed)
        if len(tail) >= DISTRIBUTION_CHUNK:
            self._chunks.append(self._freeze(tail, len(self._chunks) * DISTRIBUTION_CHUNK))
            self._tail = []

    def _freeze(self, items: list[Any], first: int) -> tuple[bytes, array[int]]:
        """A chunk of ``items`` (from place ``first``); an item not packed goes to ``_patch``."""
        blobs = []
        for j, item in enumerate(items):
            if type(item) is bytes:
                blobs.append(item)
            else:
                blobs.append(b"")
                self._patch[first + j] = item
        starts = array("I", [0])
        starts.extend(accumulate(map(len, blobs)))
        return b"".join(blobs), starts

    def _frozen(self) -> int:
        return len(self._chunks) * DISTRIBUTION_CHUNK

    def _raw(self, i: int) -> Any:
        """The packed item at ``i`` (0 <= i < len)."""
        frozen = len(self._chunks) * DISTRIBUTION_CHUNK
        if i >= frozen:
            return self._tail[i - frozen]
        found = self._patch.get(i, _ABSENT)
        if found is not _ABSENT:
            return found
        data, starts = self._chunks[i // DISTRIBUTION_CHUNK]
        j = i % DISTRIBUTION_CHUNK
        return data[starts[j]:starts[j + 1]]

    def _raws(self) -> Iterator[Any]:
        """Every packed item, in order."""
        patch = self._patch
        at = 0
        for data, starts in self._chunks:
            if patch:
                for j in range(len(starts) - 1):
                    found = patch.get(at + j, _ABSENT)
                    yield data[starts[j]:starts[j + 1]] if found is _ABSENT else found
            else:
                for a, b in pairwise(starts):
                    yield data[a:b]
            at += len(starts) - 1
        yield from self._tail

    def _index(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("distribution index out of range")
        return i

    def append(self, d: dict[str, Any]) -> None:
        self._push(self._pack(d))

    def extend(self, items: Iterable[dict[str, Any]]) -> None:
        for d in items:
            self.append(d)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> Distributions: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | Distributions:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if start == 0 and step == 1:  # (a prefix, as a checkpoint's delta takes: whole chunks shared)
                whole = stop // DISTRIBUTION_CHUNK
                out = Distributions(_rosters=self._rosters)
                out._chunks = self._chunks[:whole]
                first = whole * DISTRIBUTION_CHUNK
                out._patch = {k: v for k, v in self._patch.items() if k < first}
                for k in range(first, stop):
                    out._push(self._raw(k))
                return out
            return Distributions(_rosters=self._rosters, _items=[self._raw(k) for k in range(start, stop, step)])
        return self._unpack(self._raw(self._index(i)))

    def __setitem__(self, i: int, d: dict[str, Any]) -> None:
        i = self._index(i)
        packed = self._pack(d)
        frozen = self._frozen()
        if i >= frozen:
            self._tail[i - frozen] = packed
            return
        # (An item of a frozen chunk: the chunk frozen again with it — a new chunk, the old
        # one left to the copies that share it — so ``_patch`` holds only what cannot be packed.)
        c = i // DISTRIBUTION_CHUNK
        first = c * DISTRIBUTION_CHUNK
        items = [self._raw(k) for k in range(first, first + DISTRIBUTION_CHUNK)]
        items[i - first] = packed
        for k in range(first, first + DISTRIBUTION_CHUNK):
            self._patch.pop(k, None)
        self._chunks[c] = self._freeze(items, first)

    def __len__(self) -> int:
        return len(self._chunks) * DISTRIBUTION_CHUNK + len(self._tail)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._unpack, self._raws())

    def copy(self) -> Distributions:
        """A snapshot's copy: the chunks and packed items are immutable bytes, shared, and so are the rosters."""
        new = Distributions(_rosters=self._rosters)
        new._chunks = self._chunks.copy()
        new._tail = self._tail.copy()
        new._patch = self._patch.copy()
        return new

    def same_prefix(self, other: SequenceABC[dict[str, Any]]) -> int:
        """How many first items ``other`` has equal to this one's (compared packed when both
        are packed over the same rosters, as a snapshot and its state are: a chunk both
        share, without a replaced item in either, at once)."""
        n = 0
        if isinstance(other, Distributions) and other._rosters is self._rosters:
            mine, theirs = self._chunks, other._chunks
            patched = {k // DISTRIBUTION_CHUNK for k in (*self._patch, *other._patch)}
            c = 0
            while c < min(len(mine), len(theirs)) and mine[c] is theirs[c] and c not in patched:
                c += 1
            n = c * DISTRIBUTION_CHUNK
            for k in range(n, min(len(self), len(other))):
                x, y = self._raw(k), other._raw(k)
                if x is not y and x != y:
                    return k
            return min(len(self), len(other))
        for x, y in zip(self, other, strict=False):
            if x != y:
                return n
            n += 1
        return n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SequenceABC) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Distributions({list(self)!r})"
