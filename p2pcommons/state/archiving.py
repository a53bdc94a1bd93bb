"""The interface an evicting fold archives to, and an in-memory implementation.

The store's implementation (a table of per-log segments) is :mod:`.archive`; this module
knows nothing of the store, so the pure fold imports it without the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from .. import causal
from ..causal import Vector
from ..dagcbor import links_in
from ..entry import Entry
from .positions import VV as _VV
from .positions import Meta as _Meta
from .positions import bare


class HeldVectors(Protocol):
    """What an evicting fold still holds of its entries' version vectors (its records before
    the archived positions; authors' latest and the genesis after them): what
    :meth:`Archive.vector` builds on.  Implemented by :class:`~.fold.Folder`."""

    @property
    def author_index(self) -> Mapping[bytes, int]: ...

    def held_vector(self, raw: bytes) -> Vector | None:
        """The vector of the entry ``raw`` (None: archived, or not ready)."""

    def held_vector_at(self, author: bytes, seq: int) -> Vector | None:
        """The vector of ``author``'s entry at ``seq`` (None: archived, not ready, or forked there)."""


class Archive:
    """Where an evicting fold keeps the records of the entries it has evicted from memory.

    Per evicted entry: its fold record (:class:`_Meta`: clock, id, author index, seq) and its
    outcome; and the entry bodies, for a full refold and for queries.  The records come back
    without their version vectors (:func:`.positions.bare`): "is X in Y's past" needs only
    X's author index and seq, and the rare entry whose own vector would merge an archived
    parent's asks :meth:`vector` (the store computed every entry's vector at insert).  The
    engine's implementation is a store table (local derived data, never replicated) plus the
    store's entries; :class:`MemoryArchive` keeps them in memory (tests, comparisons)."""

    def put(self, rows: list[tuple[_Meta, str, str]], bodies: list[Entry | None], authors: list[bytes],
            times: list[int] | None = None, forked: Mapping[int, int] | None = None, start: int = 0) -> None:
        """Archive records (in fold order; ``authors``: the fold's authors by index; ``bodies``:
        the entries, None where the fold no longer holds one; ``times``: the entries'
        effective times — own, or the floor if later — -1 where not known: then the entry
        has no floor; ``forked``: the fold's forked keys (author indexes) and their fork points, where two
        records may share a seq; ``start``: how many records were archived before these)."""
        raise NotImplementedError

    def meta(self, raw: bytes) -> _Meta | None:
        """An archived entry's record, without its vector (:func:`.positions.bare`)."""
        raise NotImplementedError

    def vector_at_hand(self, eid: bytes, author: bytes, fold: HeldVectors) -> Vector | None:
        """:meth:`vector` if it costs no read (the engine's archive: the entry's stored row came
        with its bytes, and the fold holds its base's vector); None otherwise."""
        return None

    def vector(self, eid: bytes, author: bytes, parents: list[bytes], fold: HeldVectors) -> Vector:
        """The version vector (by the fold's author indexes) of the past of ``eid``, a stored
        entry by ``author`` whose ``parents`` are ready in the fold, some archived; it may
        include the entry's own seq."""
        raise NotImplementedError

    def outcome(self, raw: bytes) -> tuple[_Meta, str, str] | None:
        raise NotImplementedError

    def entry(self, raw: bytes) -> Entry | None:
        raise NotImplementedError

    def time(self, raw: bytes) -> int | None:
        """An archived entry's effective time (as :meth:`put` was given it; else, or for an
        entry not archived, its own time; None: not stored)."""
        body = self.entry(raw)
        return None if body is None else body.time

    def kind(self, raw: bytes) -> str | None:
        """An archived entry's kind."""
        body = self.entry(raw)
        return None if body is None else body.kind

    def entries(self) -> Iterable[Entry]:
        """Every entry to refold from (at least every archived one; more is harmless)."""
        raise NotImplementedError

    def ids(self) -> Iterable[bytes]:
        raise NotImplementedError

    def records_of(self, aidx: int, author: bytes, seq: int) -> list[tuple[_Meta, str, str]]:
        """The archived records (as :meth:`outcome` gives them) of ``author``'s entries (author
        index ``aidx``) from ``seq`` on, on every branch where the key forked: what a new
        fork point there takes the effect of (the fold's ``_void_archived``)."""
        raise NotImplementedError

    def names_key(self, kind: str, key: bytes) -> bool:
        """Whether a stored entry of ``kind`` may name ``key`` (its bytes appear in the
        entry; a superset of the entries that do, archived or not)."""
        raise NotImplementedError

    def names_entry(self, raw: bytes, author: bytes) -> bool:
        """Whether an archived entry not by ``author`` names the entry ``raw`` in its body (a
        stored one, for the engine's archive: a superset)."""
        raise NotImplementedError

    def count_stable(self, frontier: list[int]) -> int:
        """How many archived entries have ``seq <= frontier[author index]``."""
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def drop_caches(self) -> None:
        """Forget what is cached of the archive (never the archive itself)."""


class MemoryArchive(Archive):
    """An archive in memory: the fold's semantics with eviction, without saving memory."""

    def __init__(self) -> None:
        self.rows: dict[bytes, tuple[_Meta, str, str]] = {}
        self.bodies: dict[bytes, Entry] = {}
        # The archived records' vectors, kept aside as the store keeps its own (never handed
        # back with a record): what :meth:`vector` merges.
        self.vectors: dict[bytes, Vector] = {}
        self.times: dict[bytes, int] = {}  # effective times given with the records

    def put(self, rows: list[tuple[_Meta, str, str]], bodies: list[Entry | None], authors: list[bytes],
            times: list[int] | None = None, forked: Mapping[int, int] | None = None, start: int = 0) -> None:
        for at, ((m, status, reason), body) in enumerate(zip(rows, bodies, strict=True)):
            raw = m[1]
            self.rows[raw] = (bare(m), status, reason)
            if times is not None and times[at] >= 0:
                self.times[raw] = times[at]
            if m[_VV] >= 0:
                self.vectors[raw] = (m[_VV], m[_VV + 1])
            if body is not None:
                self.bodies[raw] = body

    def vector(self, eid: bytes, author: bytes, parents: list[bytes], fold: HeldVectors) -> Vector:
        """Every parent's vector merged (what the store computes at insert)."""
        merged = causal.EMPTY
        for parent in parents:
            found = fold.held_vector(parent)
            merged = causal.merge(merged, found if found is not None else self.vectors[parent])
        return merged

    def meta(self, raw: bytes) -> _Meta | None:
        row = self.rows.get(raw)
        return None if row is None else row[0]

    def outcome(self, raw: bytes) -> tuple[_Meta, str, str] | None:
        return self.rows.get(raw)

    def entry(self, raw: bytes) -> Entry | None:
        return self.bodies.get(raw)

    def time(self, raw: bytes) -> int | None:
        held = self.times.get(raw)
        return held if held is not None else super().time(raw)

    def entries(self) -> Iterable[Entry]:
        return list(self.bodies.values())

    def ids(self) -> Iterable[bytes]:
        return list(self.rows)

    def records_of(self, aidx: int, author: bytes, seq: int) -> list[tuple[_Meta, str, str]]:
        return [row for row in self.rows.values() if row[0][2] == aidx and row[0][3] >= seq]

    def names_key(self, kind: str, key: bytes) -> bool:
        return any(body.kind == kind and key in body.raw for body in self.bodies.values())

    def names_entry(self, raw: bytes, author: bytes) -> bool:
        return any(body.author != author and raw in links_in(body.body) for body in self.bodies.values())

    def count_stable(self, frontier: list[int]) -> int:
        return sum(1 for m, _, _ in self.rows.values() if m[2] < len(frontier) and frontier[m[2]] >= m[3])

    def clear(self) -> None:
        self.rows.clear()
        self.bodies.clear()
        self.vectors.clear()
        self.times.clear()
