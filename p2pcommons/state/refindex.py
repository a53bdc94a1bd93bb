"""The replayer's index of archived entries that later entries may name (``Folder.refs``).

Raw entry id → a non-negative int (a packed position and kind, :func:`.fold._pack_position`),
one row per contribution, proposal, join, admission, grant, resource or sanction that took
effect and was archived: it grows with the state, to about 450,000 rows at a million entries.

Why not a dict: a key object, an int object and a slot cost about 150 bytes a row.  Why not
the state's flat sorted tables (`compact.Positions`, which this replaced): a table
kept sorted is rewritten whole at each merge of what was added, about nine times over as it
grows — 0.3 CPU-s of a fresh node's 4-second fold at 100,000 entries, more at a million.

So a hash table of small buckets: each bucket two byte strings, the ids' last 32 bytes (what
differs between ids: their digests; the prefix they share is kept once) end to end, and the
values, each in the same number of bytes, in the same order.  A row costs about 45 bytes, as
in the sorted table; adding one copies its bucket's few hundred bytes (no merges), and the
buckets double, each split in two, once they hold ``_ROWS`` rows on average, so a row is
moved about twice in all.  A lookup hashes the id (Python's bytes hash, keyed per process:
ids ground to share a bucket do not share it in another process, and cost only a longer scan
here) and scans its bucket in C.  Ids that do not share the table's prefix and length (none
in practice) are kept in a plain dict beside.

Rows are written into a plain dict first and go into their buckets ``_PENDING`` at a time,
each bucket joined once for all its new rows (:meth:`RefIndex._flush`).  Why: the fold adds a
row for every contribution and proposal it applies, and copying the row's bucket to add one
row — a Python call, a hash, a search and two concatenations per row — was about a tenth of
applying a contribution (5 % of a fresh node's fold at 100,000 entries).  Lookups read the
dict first; what iterates, counts or deletes flushes it first, so the table reads as one dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping

_TAIL = 32  # bytes of each id kept in a bucket (the digest); the rest is the shared prefix
_ROWS = 32  # rows per bucket, on average, before the buckets double
_BUCKETS = 16  # buckets of an empty table (a power of two)
_PENDING = 4096  # rows written to the plain dict before they go into their buckets


class RefIndex(MutableMapping[bytes, int]):
    """Raw id → non-negative int, in about 45 bytes a row (see the module's docstring)."""

    __slots__ = ("_ids", "_mask", "_n", "_new", "_odd", "_prefix", "_values", "_vwidth")

    def __init__(self, items: Iterable[tuple[bytes, int]] = ()) -> None:
        self._reset()
        for raw, value in items:
            self[raw] = value

    def _reset(self) -> None:
        self._prefix: bytes | None = None  # set by the first row
        self._vwidth = 1
        self._mask = _BUCKETS - 1
        self._ids = [b""] * _BUCKETS
        self._values = [b""] * _BUCKETS
        self._n = 0
        self._odd: dict[bytes, int] = {}
        self._new: dict[bytes, int] = {}  # written, not yet in the buckets (nor in ``_odd``)

    def _find(self, tail: bytes, ids: bytes) -> int:
        """The row of ``tail`` in a bucket's ids, or -1 (a match must start at a row)."""
        j = ids.find(tail)
        while j >= 0:
            if not j % _TAIL:
                return j // _TAIL
            j = ids.find(tail, j + 1)
        return -1

    def _ours(self, raw: bytes) -> bool:
        """Whether ``raw`` belongs in the buckets (else in ``_odd``)."""
        return len(raw) > _TAIL and raw[:-_TAIL] == self._prefix

    def get(self, key: bytes, default: int | None = None) -> int | None:  # type: ignore[override]
        found = self._new.get(key)
        if found is not None:
            return found
        if len(key) <= _TAIL or key[:-_TAIL] != self._prefix:
            return self._odd.get(key, default)
        tail = key[-_TAIL:]
        b = hash(tail) & self._mask
        ids = self._ids[b]
        j = ids.find(tail)
        while j >= 0:  # (``_find``, inlined: the replayer asks this for every archived entry it meets)
            if not j % _TAIL:
                vw = self._vwidth
                at = j // _TAIL * vw
                return int.from_bytes(self._values[b][at:at + vw], "little")
            j = ids.find(tail, j + 1)
        return default

    def __getitem__(self, key: bytes) -> int:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: int) -> None:
        if value < 0:
            raise ValueError("a RefIndex holds non-negative ints")
        new = self._new
        new[key] = value
        if len(new) >= _PENDING:
            self._flush()

    def _flush(self) -> None:
        """Put the rows written since the last flush into their buckets: grouped by bucket,
        each bucket copied once for all of its new rows (the table doubles first if they
        would crowd it)."""
        new = self._new
        if not new:
            return
        self._new = {}
        if self._prefix is None:
            for key in new:
                if len(key) > _TAIL:
                    self._prefix = key[:-_TAIL]  # (the first id: every id of a commons shares it)
                    break
        prefix = self._prefix
        top = max(new.values())
        if top >> (8 * self._vwidth):
            self._widen((top.bit_length() + 7) // 8)
        while self._n + len(new) > _ROWS * (self._mask + 1):
            self._grow()  # (before the new rows go in: they are placed once)
        mask = self._mask
        groups: dict[int, list[tuple[bytes, int]]] = {}
        for key, value in new.items():
            if len(key) <= _TAIL or key[:-_TAIL] != prefix:
                self._odd[key] = value
                continue
            tail = key[-_TAIL:]
            b = hash(tail) & mask
            rows = groups.get(b)
            if rows is None:
                groups[b] = [(tail, value)]
            else:
                rows.append((tail, value))
        vw = self._vwidth
        all_ids, all_values = self._ids, self._values
        for b, rows in groups.items():
            ids, values = all_ids[b], all_values[b]
            tails: list[bytes] = []
            packed: list[bytes] = []
            for tail, value in rows:
                row = self._find(tail, ids) if ids else -1
                if row >= 0:  # (written before this flush: replaced in place)
                    values = values[:row * vw] + value.to_bytes(vw, "little") + values[row * vw + vw:]
                else:
                    tails.append(tail)
                    packed.append(value.to_bytes(vw, "little"))
            if tails:
                all_ids[b] = ids + b"".join(tails)
                values += b"".join(packed)
                self._n += len(tails)
            all_values[b] = values

    def __delitem__(self, key: bytes) -> None:
        self._flush()
        if not self._ours(key):
            del self._odd[key]
            return
        tail = key[-_TAIL:]
        b = hash(tail) & self._mask
        ids = self._ids[b]
        row = self._find(tail, ids)
        if row < 0:
            raise KeyError(key)
        vw = self._vwidth
        values = self._values[b]
        self._ids[b] = ids[:row * _TAIL] + ids[row * _TAIL + _TAIL:]
        self._values[b] = values[:row * vw] + values[row * vw + vw:]
        self._n -= 1

    def _widen(self, width: int) -> None:
        """Every value in ``width`` bytes (a value too big for the current width came)."""
        old = self._vwidth
        self._values = [b"".join(int.from_bytes(values[i:i + old], "little").to_bytes(width, "little")
                                 for i in range(0, len(values), old)) for values in self._values]
        self._vwidth = width

    def _grow(self) -> None:
        """Twice the buckets: each split in two by one more bit of its rows' hashes."""
        old = self._mask + 1
        mask = 2 * old - 1
        vw = self._vwidth
        ids = self._ids + [b""] * old
        values = self._values + [b""] * old
        for b in range(old):
            bucket, vals = ids[b], values[b]
            stay: list[bytes] = []
            stay_values: list[bytes] = []
            move: list[bytes] = []
            move_values: list[bytes] = []
            for row in range(len(bucket) // _TAIL):
                tail = bucket[row * _TAIL:row * _TAIL + _TAIL]
                value = vals[row * vw:row * vw + vw]
                if hash(tail) & mask == b:
                    stay.append(tail)
                    stay_values.append(value)
                else:
                    move.append(tail)
                    move_values.append(value)
            ids[b], values[b] = b"".join(stay), b"".join(stay_values)
            ids[b + old], values[b + old] = b"".join(move), b"".join(move_values)
        self._ids, self._values, self._mask = ids, values, mask

    def __contains__(self, key: object) -> bool:
        return type(key) is bytes and self.get(key) is not None

    def __iter__(self) -> Iterator[bytes]:
        self._flush()
        prefix = self._prefix or b""
        for ids in self._ids:
            for at in range(0, len(ids), _TAIL):
                yield prefix + ids[at:at + _TAIL]
        yield from self._odd

    def items(self) -> Iterator[tuple[bytes, int]]:  # type: ignore[override]
        self._flush()
        prefix = self._prefix or b""
        vw = self._vwidth
        for ids, values in zip(self._ids, self._values, strict=True):
            for row in range(len(ids) // _TAIL):
                yield prefix + ids[row * _TAIL:row * _TAIL + _TAIL], \
                    int.from_bytes(values[row * vw:row * vw + vw], "little")
        yield from self._odd.items()

    def values(self) -> Iterator[int]:  # type: ignore[override]
        for _, value in self.items():
            yield value

    def __len__(self) -> int:
        self._flush()
        return self._n + len(self._odd)

    def clear(self) -> None:
        self._reset()
