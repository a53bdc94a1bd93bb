"""An entry's position in the fold: its causal facts, one flat record per ready entry.

The replayer (:mod:`.fold`) computes them when an entry's parents are present; handlers see
them only through the view's causal-past questions (:mod:`.handlers.view`); the archive
(:mod:`.archive`) and the checkpoint (:mod:`.checkpoint`) store them.
"""

from __future__ import annotations

import operator
from typing import Any

from .. import causal
from ..causal import Vector
from ..entry import Entry

Key = tuple[int, bytes]
ZERO_KEY: Key = (-1, b"")  # before every position (the empty start)


class Meta(tuple[Any, ...]):
    """Per-entry fold metadata, one flat tuple: ``(clock, id, aidx, seq, shift, root)``.

    One object per entry (no separate key tuple or version-vector tuple): the record *is*
    the entry's sort key, since records compare by ``(clock, id)`` (ids are unique, so the
    later fields never take part), and ``order`` holds the records themselves.  The version
    vector (``shift, root``: a persistent trie, :mod:`.causal`) holds, per author index, the
    highest seq of that author in the entry's causal past, so "is X in the causal past of Y"
    is one lookup; it shares all but the slots the entry changes with its parents' vectors,
    so it costs what the entry adds, not O(authors)."""

    __slots__ = ()

    def __new__(cls, clock: int, key: Key, vv: Vector, aidx: int, seq: int) -> Meta:
        return tuple.__new__(cls, (clock, key[1], aidx, seq, *vv))

    clock = property(operator.itemgetter(0))
    eid = property(operator.itemgetter(1))
    aidx = property(operator.itemgetter(2))
    seq = property(operator.itemgetter(3))

    @property
    def vv(self) -> Vector:
        """Per author index, the highest seq in the entry's causal past (:mod:`.causal`)."""
        return self[VV], self[VV + 1]

    def seen(self, aidx: int) -> int:
        """The highest seq of the author at ``aidx`` in the entry's causal past."""
        return causal.get((self[VV], self[VV + 1]), aidx)

    @property
    def key(self) -> Meta:
        return self


VV = 4  # where the version vector (shift, root) starts in a full Meta record
# The shift of an archived record, whose vector is not kept (:mod:`.archiving`): its clock,
# id, author index and seq answer "is it in Y's past" from Y's vector; an entry whose own
# vector would need it asks the archive (:meth:`.archiving.Archive.vector`).
NO_VECTOR = -1


def bare(m: Meta) -> Meta:
    """``m`` without its version vector (as an archive returns it)."""
    return tuple.__new__(Meta, (m[0], m[1], m[2], m[3], NO_VECTOR, ()))
by_clock = operator.itemgetter(0)


def parents(entry: Entry) -> list[bytes]:
    """The raw ids an entry depends on directly: its deps, then its prev."""
    deps = list(entry.dep_ids)
    if entry.prev is not None:
        deps.append(entry.prev.raw)
    return deps
