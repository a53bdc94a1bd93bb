"""The commons state machine: a pure, resumable fold of one commons' entry set.

Specification: ``protocols/commons.md``.  No I/O happens here; :mod:`.engine` persists.

Why it is built this way:

* **Order.**  Entries are applied in one deterministic linear extension of the causal order,
  sorted by ``(Lamport clock, id bytes)``; the clock is ``1 + max`` over ``prev`` and
  ``deps`` (genesis 0).  An entry with a missing dependency (transitively) waits.
* **Version vectors** (per entry, a tuple of the highest seq of each author in its causal
  past) make every "is X in the causal past of Y" question O(1): causal authorization
  (the grant of a member's standing must be in the entry's past), references (a review's
  contribution must be in the review's past), strong removal and stability.
* **Copy-on-write records** (NamedTuples replaced, never mutated) make a snapshot a handful
  of shallow dict copies, so snapshots can be frequent and late entries cheap.
* **Strong removal** is retroactive: an effective removal excludes the removed member's
  entries outside its causal past even where they sort *before* it.  When that excludes an
  entry already applied, the fold restores the snapshot before that entry and replays with
  the exclusion (monotone: each restart adds an exclusion, so it terminates).
* **Eviction** (``Folder(archive=…)``; the engine's live fold uses it, a bare ``Folder`` or
  :func:`fold` holds everything).  Every member's next entry chains through their latest
  one, so it sorts after it: positions up to the minimum, over the members who hold
  stability (active or suspended, not forked, not retired), of their latest entry's key
  are final for everyone but outsiders.  At each snapshot, the positions up to the newest
  snapshot at or before that minimum (the *base*) are archived: their records (clock,
  version vector, outcome) go to the :class:`Archive` (the engine's is a store table, local
  and never replicated) and leave memory — entry bodies, records, log slots, order, older
  snapshots.  Kept: the state at the base (one snapshot), the window after it, per author
  the latest record, the genesis record, a bounded cache of archived records looked up,
  and the position and kind of each archived entry that later entries may name and that
  took effect (a contribution, proposal, join, admission, role change, resource or
  sanction: each has a record in the state, so this index grows with the state, not with
  the number of entries) — so a review of an old contribution costs no archive lookup.  What was
  archived is answered from the archive: causal-past checks, kinds of referenced entries,
  outcomes and stability of old entries (stability is computed exactly as without
  eviction, from the archived author index and seq).  An entry sorting at or before the
  base by someone who is not a member there, or no longer is (a newcomer's join, an
  outsider's entry, a departed or removed member's entry written from an old view) is
  rejected or recorded pending wherever it sorts, and nothing before the base can observe
  it: its effect goes into the base state and the window replays.  Anything else that
  would take effect at or before the base — an entry of a retired (silent) or suspended
  member written from an old view, a fork of an archived entry, a strong-removal exclusion
  of an archived entry — refolds from scratch, every entry read back from the archive
  (``refolds`` counts them).  Hence the state, hashes and outcomes are exactly
  those of a fold that holds everything (``tests/test_state_memory.py``); memory beyond
  the state is bounded by the window, not by the number of entries.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import hashlib
import operator
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, NamedTuple

from ..dagcbor import CID, encode, link
from ..entry import Entry
from . import rules as rules_mod
from .rules import InvalidRules

APPLIED = "applied"
REJECTED = "rejected"
PENDING = "pending"
WAITING = "waiting"

MAX_TEXT = 1000
MAX_AMOUNT = 2**53  # every amount or value in a body (also refused at decode: entry.MAX_AMOUNT)
# Bounded arithmetic (protocols/commons.md §3.7): every sum the fold keeps stays at or below
# MAX_TOTAL; the entry that would take one above it is rejected with the numbers.  Why: the
# state must stay computable (and encodable: DAG-CBOR integers end at 2**64 - 1) on every
# node, whatever one member writes.
MAX_TOTAL = 2**53
SANCTION_ACTIONS = ("warning", "suspend", "remove", "reinstate")
_ZERO_KEY: tuple[int, bytes] = (-1, b"")
# Snapshots kept besides the empty start: the newest RECENT_SNAPSHOTS, and older ones thinned
# to roughly logarithmic spacing, so their memory is a bounded multiple of the state's.
MAX_SNAPSHOTS = 12
RECENT_SNAPSHOTS = 4

Key = tuple[int, bytes]


class Member(NamedTuple):
    name: str
    roles: tuple[str, ...]
    grants: tuple[tuple[str, CID], ...]  # role -> entry that granted it (for causal checks)
    status: str  # active | suspended | removed | left
    since: CID  # the genesis or the admission that made them a member
    warnings: int  # per member identity: kept across leave and rejoin
    # How the status came about, for judging a sanction by its causal past (not hashed):
    # ``(seq, status)`` pairs, ``seq`` strictly increasing, each the status after an event
    # that depends on the member's own entry at ``seq`` (their leave; the admission of their
    # join) or, with ``seq`` 0, on none of their entries (the genesis, a sanction).
    view: tuple[tuple[int, str], ...] = ()


def _seen(view: tuple[tuple[int, str], ...], seq: int, status: str) -> tuple[tuple[int, str], ...]:
    """``view`` with a new status that depends on the member's own entry at ``seq`` (0: none).
    An older event at or after ``seq`` can no longer be the latest one a viewer sees."""
    kept = view
    while kept and kept[-1][0] >= seq:
        kept = kept[:-1]
    return (*kept, (seq, status))


def _status_seen(member: Member, seen_seq: int) -> str | None:
    """The member's status as an entry that has seen their log up to ``seen_seq`` knows it:
    from the latest event that depends on none of their entries it had not seen."""
    for seq, status in reversed(member.view):
        if seq <= seen_seq:
            return status
    return None


class Join(NamedTuple):
    author: bytes
    name: str
    approvals: tuple[bytes, ...]


class Contribution(NamedTuple):
    author: bytes
    title: str
    kind: str
    ref: str
    claimed: int
    status: str  # pending | accepted | rejected
    accepts: tuple[bytes, ...]
    rejects: tuple[bytes, ...]
    value: int
    outside: bool


class Proposal(NamedTuple):
    author: bytes
    title: str
    changes: dict[str, Any]
    yes: tuple[bytes, ...]
    no: tuple[bytes, ...]
    status: str  # open | adopted | rejected


class Resource(NamedTuple):
    name: str
    rivalrous: bool
    quota: int
    period: int  # seconds; 0 = no period (a lifetime quota)
    unit: str


class _Exclusion(NamedTuple):
    member: bytes
    after_seq: int
    cause: Key
    cause_id: CID
    liftable: bool  # a suspension (a later reinstatement lifts it); a removal is final


class _State:
    """The mutable part of the fold.  Containers are shallow-copied for snapshots; the
    records inside them are immutable tuples, so shallow copies are enough."""

    __slots__ = ("contributions", "distributions", "info", "joins", "ledger", "ledger_total", "lifted", "members",
                 "proposals", "resources", "rules", "sanctions", "totals", "usage", "votes")

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.rules: dict[str, Any] = rules_mod.default_rules()
        self.members: dict[bytes, Member] = {}
        self.joins: dict[CID, Join] = {}
        self.contributions: dict[CID, Contribution] = {}
        self.proposals: dict[CID, Proposal] = {}
        self.votes: dict[tuple[CID, bytes], bool] = {}
        self.resources: dict[CID, Resource] = {}
        self.usage: dict[tuple[CID, int, bytes], int] = {}
        # Per (resource, member), the use over all periods (not hashed: the bound's sum).
        self.totals: dict[tuple[CID, bytes], int] = {}
        self.ledger: dict[bytes, tuple[int, int]] = {}
        self.ledger_total = 0  # the sum of the ledger's values (derived, not hashed)
        self.distributions: list[dict[str, Any]] = []
        self.sanctions: list[dict[str, Any]] = []
        self.lifted: dict[bytes, CID] = {}  # member -> reinstatement lifting their suspension

    def copy(self) -> _State:
        new = _State.__new__(_State)
        new.info = self.info
        new.rules = self.rules  # replaced, never mutated
        new.members = self.members.copy()
        new.joins = self.joins.copy()
        new.contributions = self.contributions.copy()
        new.proposals = self.proposals.copy()
        new.votes = self.votes.copy()
        new.resources = self.resources.copy()
        new.usage = self.usage.copy()
        new.totals = self.totals.copy()
        new.ledger = self.ledger.copy()
        new.ledger_total = self.ledger_total
        new.distributions = self.distributions.copy()
        new.sanctions = self.sanctions.copy()
        new.lifted = self.lifted.copy()
        return new

    def size(self) -> int:
        return len(self.members) + len(self.joins) + len(self.contributions) + len(self.proposals) + \
            len(self.votes) + len(self.usage) + len(self.ledger)


class _Meta(tuple[Any, ...]):
    """Per-entry fold metadata, one flat tuple: ``(clock, id, aidx, seq, *version_vector)``.

    One object per entry (no separate key tuple or version-vector tuple): the record *is*
    the entry's sort key, since records compare by ``(clock, id)`` (ids are unique, so the
    later fields never take part), and ``order`` holds the records themselves."""

    __slots__ = ()

    def __new__(cls, clock: int, key: Key, vv: tuple[int, ...], aidx: int, seq: int) -> _Meta:
        return tuple.__new__(cls, (clock, key[1], aidx, seq, *vv))

    clock = property(operator.itemgetter(0))
    eid = property(operator.itemgetter(1))
    aidx = property(operator.itemgetter(2))
    seq = property(operator.itemgetter(3))

    @property
    def vv(self) -> tuple[int, ...]:
        """Per author index, the highest seq in the entry's causal past (a new tuple)."""
        return self[_VV:]

    @property
    def key(self) -> _Meta:
        return self


_VV = 4  # where the version vector starts in a _Meta record
_by_clock = operator.itemgetter(0)


def _parents(entry: Entry) -> list[bytes]:
    deps = [d.raw for d in entry.deps]
    if entry.prev is not None:
        deps.append(entry.prev.raw)
    return deps


_PLAIN = {APPLIED: (APPLIED, ""), PENDING: (PENDING, "")}  # shared: one tuple, not one per entry
_APPLIED_PLAIN = _PLAIN[APPLIED]


class _Outcomes(MutableMapping[bytes, tuple[str, str]]):
    """Per ready entry, ``(status, reason)`` — stored only where it is not plain "applied".

    Most entries are simply applied; keeping a dict slot for each of them cost ~50 bytes per
    entry.  A ready entry with no stored exception reads as ``(APPLIED, "")``.  That is exact
    wherever the fold looks: every position before the one being applied has been applied in
    the current pass (a late entry or an exclusion restores a snapshot before itself), and
    after ``run`` every ready entry has been applied."""

    __slots__ = ("_meta", "other")

    def __init__(self, meta: dict[bytes, Any]) -> None:
        self._meta = meta
        self.other: dict[bytes, tuple[str, str]] = {}

    def __getitem__(self, key: bytes) -> tuple[str, str]:
        found = self.other.get(key)
        if found is not None:
            return found
        if key in self._meta:
            return _APPLIED_PLAIN
        raise KeyError(key)

    def get(self, key: bytes, default: Any = None) -> Any:
        found = self.other.get(key)
        if found is not None:
            return found
        return _APPLIED_PLAIN if key in self._meta else default

    def __contains__(self, key: object) -> bool:
        return key in self._meta

    def __setitem__(self, key: bytes, value: tuple[str, str]) -> None:
        if value[0] == APPLIED and not value[1]:
            self.other.pop(key, None)
        else:
            self.other[key] = value

    def __delitem__(self, key: bytes) -> None:  # pragma: no cover - the fold never deletes
        self.other.pop(key, None)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._meta)

    def __len__(self) -> int:
        return len(self._meta)


class _Rejected(Exception):
    """Raised inside a kind handler: the entry has no effect, for this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Conflict(Exception):
    """A removal became effective that excludes entries already applied before it."""

    def __init__(self, exclusion: _Exclusion, earliest: Key) -> None:
        super().__init__("conflict")
        self.exclusion = exclusion
        self.earliest = earliest


class Outcome(NamedTuple):
    """What one entry did.  ``status``: applied, rejected, pending (a newcomer's or outsider's
    entry waiting for the member entry that accepts it) or waiting (missing dependencies)."""

    id: CID
    kind: str
    author: bytes
    seq: int
    status: str
    reason: str
    stable: bool
    holders: tuple[bytes, ...]  # active members whose latest entry has not acknowledged it
    missing: tuple[CID, ...]


def _hex(author: bytes) -> str:
    return author.hex()


class Archive:
    """Where an evicting fold keeps the records of the entries it has evicted from memory.

    Per evicted entry: its fold record (:class:`_Meta`: clock, id, author index, seq, version
    vector) and its outcome; and the entry bodies, for a full refold and for queries.  The
    engine's implementation is a store table (local derived data, never replicated) plus the
    store's entries; :class:`MemoryArchive` keeps them in memory (tests, comparisons)."""

    def put(self, rows: list[tuple[_Meta, str, str]], bodies: list[Entry | None], authors: list[bytes]) -> None:
        """Archive records (in fold order; ``authors``: the fold's authors by index)."""
        raise NotImplementedError

    def meta(self, raw: bytes) -> _Meta | None:
        raise NotImplementedError

    def outcome(self, raw: bytes) -> tuple[_Meta, str, str] | None:
        raise NotImplementedError

    def entry(self, raw: bytes) -> Entry | None:
        raise NotImplementedError

    def kind(self, raw: bytes) -> str | None:
        """An archived entry's kind."""
        body = self.entry(raw)
        return None if body is None else body.kind

    def entries(self) -> Iterable[Entry]:
        """Every entry to refold from (at least every archived one; more is harmless)."""
        raise NotImplementedError

    def ids(self) -> Iterable[bytes]:
        raise NotImplementedError

    def count_stable(self, frontier: list[int]) -> int:
        """How many archived entries have ``seq <= frontier[author index]``."""
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError


class MemoryArchive(Archive):
    """An archive in memory: the fold's semantics with eviction, without saving memory."""

    def __init__(self) -> None:
        self.rows: dict[bytes, tuple[_Meta, str, str]] = {}
        self.bodies: dict[bytes, Entry] = {}

    def put(self, rows: list[tuple[_Meta, str, str]], bodies: list[Entry | None], authors: list[bytes]) -> None:
        for row, body in zip(rows, bodies, strict=True):
            self.rows[row[0][1]] = row
            if body is not None:
                self.bodies[row[0][1]] = body

    def meta(self, raw: bytes) -> _Meta | None:
        row = self.rows.get(raw)
        return None if row is None else row[0]

    def outcome(self, raw: bytes) -> tuple[_Meta, str, str] | None:
        return self.rows.get(raw)

    def entry(self, raw: bytes) -> Entry | None:
        return self.bodies.get(raw)

    def entries(self) -> Iterable[Entry]:
        return list(self.bodies.values())

    def ids(self) -> Iterable[bytes]:
        return list(self.rows)

    def count_stable(self, frontier: list[int]) -> int:
        return sum(1 for m, _, _ in self.rows.values() if m[2] < len(frontier) and frontier[m[2]] >= m[3])

    def clear(self) -> None:
        self.rows.clear()
        self.bodies.clear()


_CACHE_MAX = 4096  # archived records looked up recently (references to old entries)
_UNKNOWN: Any = object()
# Kinds a later entry may name (``Folder.ref`` targets, a member's admission and grants, a
# lifting reinstatement): an evicting fold keeps their positions in ``Folder.refs``.
_NAMED_KINDS = ("contribution", "rule_proposal", "join", "admission", "role", "resource_add", "sanction",
                "genesis")
_NAMED_CODE = {kind: code for code, kind in enumerate(_NAMED_KINDS)}
_SEQ_BITS = 40
_AIDX_BITS = 24


def _pack_position(meta: _Meta, code: int) -> int | None:
    """One int for ``(clock, author index, seq, kind code)``: ~40 bytes instead of a record."""
    seq: int = meta[3]
    aidx: int = meta[2]
    clock: int = meta[0]
    if seq >> _SEQ_BITS or aidx >> _AIDX_BITS:
        return None  # (beyond any real log: looked up in the archive instead)
    return ((((clock << _SEQ_BITS) | seq) << _AIDX_BITS | aidx) << 4) | code


def _unpack_position(raw: bytes, packed: int) -> _Meta:
    """A light record: clock, id, author index and seq, without the version vector."""
    aidx = (packed >> 4) & ((1 << _AIDX_BITS) - 1)
    seq = (packed >> (4 + _AIDX_BITS)) & ((1 << _SEQ_BITS) - 1)
    return tuple.__new__(_Meta, (packed >> (4 + _AIDX_BITS + _SEQ_BITS), raw, aidx, seq))


class Folder:
    """Resumable fold of one commons.  ``add`` entries in any order, any number of times;
    ``run`` brings the state up to date; the result equals a fold from scratch."""

    def __init__(self, commons: CID, *, snapshot_every: int = 256, archive: Archive | None = None) -> None:
        self.commons = commons
        self.archive = archive
        self._commons_raw = commons.raw
        self.snapshot_every = snapshot_every
        # Keyed by raw id bytes, not CID objects: bytes hash and compare in C, and intake
        # does a dozen lookups per entry.
        self.entries: MutableMapping[bytes, Entry] = {}
        self.meta: dict[bytes, _Meta] = {}
        self.waiting: dict[bytes, set[bytes]] = {}
        self.waiters: dict[bytes, list[bytes]] = {}
        # Per author, seq -> the entry at that position; extra fork siblings in ``forks``.
        self.logs: dict[bytes, dict[int, bytes]] = {}
        self.forks: dict[tuple[bytes, int], list[bytes]] = {}
        self.fork_seq: dict[bytes, int] = {}
        self.author_index: dict[bytes, int] = {}
        self.authors: list[bytes] = []
        self.order: list[Key] = []  # (clock, raw id), sorted
        self.applied = 0  # how many positions of ``order`` the state reflects
        self.state: _State | None = None
        self.genesis_error = ""
        self.outcomes = _Outcomes(self.meta)
        self.snap_keys: list[Key] = [_ZERO_KEY]
        self.snap_states: list[tuple[_State | None, str]] = [(None, "")]
        self.since_snapshot = 0
        self.exclusions: list[_Exclusion] = []
        # Removals and suspensions that could take effect only through entries of their
        # target that they would exclude (with their exclusion in force they are rejected,
        # without it they apply): they take no effect, so that a rejected sanction never
        # excludes anything.  Raw ids; rare (see ``_drop_stale_exclusions``).
        self.void: set[bytes] = set()
        self._replay_from: Key | None = None
        self._refold = False
        self.max_clock = 0
        self.restarts = 0
        self.latest: dict[bytes, bytes] = {}  # per author, the ready entry with the highest seq
        # Eviction (only with an archive): positions up to ``base`` are archived, not held.
        self.base: Key = _ZERO_KEY
        self.evicted = 0  # entries archived
        self.evicted_upto: dict[bytes, int] = {}  # per author, the highest archived seq
        self.old: dict[bytes, _Meta] = {}  # archived records kept: authors' latest, the genesis
        self._cache: dict[bytes, _Meta | None] = {}  # archive lookups (None: not archived)
        # Only with an archive: id -> packed position and kind of entries later ones may name.
        self.refs: dict[bytes, int] = {}
        self._light: dict[bytes, _Meta] = {}  # refs unpacked recently (a member's admission, grants)
        self.refolds = 0

    # --- intake -------------------------------------------------------------------------

    def add(self, entry: Entry) -> bool:
        """Take one entry (idempotent).  Returns whether it was new to this fold."""
        eid = entry.id.raw
        if eid in self.entries:
            return False
        commons = entry.commons
        if (eid if commons is None else commons.raw) != self._commons_raw:
            return False
        if self.evicted and entry.seq <= self.evicted_upto.get(entry.author, 0):
            if self._position(eid) is not None:
                return False  # archived already
            self._refold = True  # a fork of an archived entry: refold from the archive
        self.entries[eid] = entry
        log = self.logs.get(entry.author)
        if log is None:
            log = self.logs[entry.author] = {}
        first = log.setdefault(entry.seq, eid)
        if first is not eid:
            self.forks.setdefault((entry.author, entry.seq), []).append(eid)
            if entry.seq < self.fork_seq.get(entry.author, 2**63):
                self.fork_seq[entry.author] = entry.seq
                self._refold = True  # rare: the author's entries from the fork point lose effect
        meta = self.meta
        parents = _parents(entry)
        # The parents' records, looked up once here and handed to _make_ready.
        records: list[_Meta | None] = [meta.get(d) for d in parents]
        missing = [d for d, r in zip(parents, records, strict=True) if r is None] if None in records else []
        if missing and self.evicted:
            found = {d: self._known(d) for d in missing}
            records = [found[d] if r is None else r for d, r in zip(parents, records, strict=True)]
            missing = [d for d in missing if found[d] is None]
        if commons is not None and self._commons_raw not in meta and self._commons_raw not in missing \
                and self._position(self._commons_raw) is None:
            missing.append(self._commons_raw)
        if missing:
            self.waiting[eid] = set(missing)
            for dep in missing:
                self.waiters.setdefault(dep, []).append(eid)
            return True
        self._make_ready(eid, records)  # type: ignore[arg-type]  # (none missing)
        return True

    def _make_ready(self, first: bytes, first_parents: list[_Meta] | None = None) -> None:
        stack = [first]
        meta = self.meta
        while stack:
            eid = stack.pop()
            entry = self.entries[eid]
            # A waiter leaves the waiting table only now that its body is at hand (a lazy
            # entry table knows an entry by the fold's indexes: ready or waiting).
            self.waiting.pop(eid, None)
            if first_parents is None:
                parent_ids = _parents(entry)
                # (Evicted: an archived parent may come as a light record, without its version
                # vector; the full record is read only where that vector is needed.)
                parents = [meta[p] for p in parent_ids] if not self.evicted else \
                    [meta.get(p) or self._parent(p) for p in parent_ids]
            else:
                parents = first_parents
                first_parents = None
            author = entry.author
            seq = entry.seq
            aidx = self.author_index.get(author)
            if aidx is None:
                aidx = self.author_index[author] = len(self.authors)
                self.authors.append(author)
            vv: list[int] | None
            vt: tuple[int, ...]
            if not parents:
                clock = 0 if entry.commons is None else 1
                vv = [0] * (aidx + 1)
            elif len(parents) == 1:
                clock = parents[0].clock + 1
                vv = list(self._full(parents[0]).vv)
            else:
                # Parents already in the causal past of the latest parent add nothing to
                # its version vector: skip them (usually all but one or two, since writers
                # depend on every head they saw).  Not with forks, where seq alone is ambiguous.
                latest = max(parents, key=_by_clock)
                top = self._full(latest)
                clock = top[0] + 1
                if not self.fork_seq:
                    # (Indexes, not the named properties: this runs a dozen times per entry.)
                    width = len(top) - _VV
                    parents = [p for p in parents if p is latest or p[2] >= width or top[_VV + p[2]] < p[3]]
                tv = top[_VV:]
                if len(parents) == 1:
                    # The common case: the latest parent's vector covers all the others.
                    if aidx < len(tv):
                        vv = None
                        vt = (*tv[:aidx], seq, *tv[aidx + 1:]) if tv[aidx] < seq else tv
                    else:
                        vv = list(tv)
                    vvs = []
                else:
                    vvs = [p[_VV:] if len(p) > _VV else self._full(p)[_VV:] for p in parents]
                widths = set(map(len, vvs))
                if not vvs:
                    pass
                elif len(vvs) == 1:
                    vv = list(tv)
                elif len(widths) == 1:
                    merged = tuple(map(max, *vvs))
                    if aidx < len(merged) and merged[aidx] < seq:
                        vv = None
                        vt = (*merged[:aidx], seq, *merged[aidx + 1:])
                    else:
                        vv = list(merged)
                else:
                    vv = [0] * max(widths)
                    for v in vvs:
                        for i, x in enumerate(v):
                            if x > vv[i]:
                                vv[i] = x
            if vv is not None:
                if len(vv) <= aidx:
                    vv.extend([0] * (aidx + 1 - len(vv)))
                if seq > vv[aidx]:
                    vv[aidx] = seq
                vt = tuple(vv)
            key = meta[eid] = tuple.__new__(_Meta, (clock, eid, aidx, seq, *vt))
            newest = self.latest.get(author)
            if newest is None or seq > (meta.get(newest) or self._archived(newest)).seq:
                self.latest[author] = eid
                if newest is not None and self.old and newest != self._commons_raw:
                    self.old.pop(newest, None)
            if clock > self.max_clock:
                self.max_clock = clock
            order = self.order
            if (not order or key > order[-1]) and not (self.evicted and key <= self.base):
                order.append(key)
            else:
                index = bisect.bisect_left(order, key)
                order.insert(index, key)
                # (At or before the archived positions: always behind what is applied.)
                if index < self.applied or (self.evicted and key <= self.base):
                    self.applied += 1  # keep pointing past the same applied entries
                    if self._replay_from is None or key < self._replay_from:
                        self._replay_from = key
            waiters = self.waiters.pop(eid, None)
            if waiters:
                for waiter in waiters:
                    missing = self.waiting.get(waiter)
                    if missing is None or eid not in missing:
                        continue  # (listed twice when it names one dependency twice)
                    missing.discard(eid)
                    if not missing:
                        stack.append(waiter)  # leaves ``waiting`` when it is made ready

    def _lookup(self, raw: bytes) -> _Meta | None:
        """The fold record of a ready entry, held or archived (None: not ready here)."""
        found = self.meta.get(raw)
        if found is None and self.evicted:
            found = self.old.get(raw)
            if found is None and self.archive is not None:
                cached = self._cache.get(raw, _UNKNOWN)
                if cached is not _UNKNOWN:
                    return cached  # type: ignore[no-any-return]
                found = self.archive.meta(raw)
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[raw] = found  # None too: ids that are not entries (resources)
        return found

    def _archived(self, raw: bytes) -> _Meta:
        found = self._lookup(raw)
        if found is None:
            raise KeyError(raw)
        return found

    def _position(self, raw: bytes) -> _Meta | None:
        """Clock, id, author index and seq of a ready entry, held or archived — possibly as
        a light record without the version vector (from ``refs``: no archive lookup)."""
        found = self.meta.get(raw)
        if found is None and self.evicted:
            found = self._light.get(raw)
            if found is not None:
                return found
            packed = self.refs.get(raw)
            if packed is not None:
                found = _unpack_position(raw, packed)
                if len(self._light) >= _CACHE_MAX:
                    self._light.clear()
                self._light[raw] = found
                return found
            found = self._lookup(raw)
        return found

    def _known(self, raw: bytes) -> _Meta | None:
        """A possibly archived parent's record: authors' latest first (the usual parents)."""
        return self.old.get(raw) or self._position(raw)

    def _parent(self, raw: bytes) -> _Meta:
        found = self._known(raw)
        if found is None:
            raise KeyError(raw)
        return found

    def _full(self, record: _Meta) -> _Meta:
        """The full record (with its version vector) for a possibly light one."""
        return record if len(record) > _VV else self._archived(record[1])

    def _named(self, eid: bytes, meta: _Meta, kind: str) -> None:
        """Remember where an entry that later entries may name is, and its kind (evicting
        folds only): after it is archived, naming it costs no archive lookup."""
        code = _NAMED_CODE.get(kind)
        if code is not None:
            packed = _pack_position(meta, code)
            if packed is not None:
                self.refs[eid] = packed

    def _entry(self, raw: bytes) -> Entry:
        """An entry's body, held or archived."""
        try:
            return self.entries[raw]
        except KeyError:
            body = None if self.archive is None else self.archive.entry(raw)
            if body is None:
                raise
            return body

    def count(self) -> int:
        """Ready entries (held and archived)."""
        return len(self.meta) + self.evicted

    # --- application ----------------------------------------------------------------------

    def run(self) -> None:
        """Apply every ready entry not yet reflected in the state."""
        if self.evicted and self._replay_from is not None and self._replay_from <= self.base and not self._refold \
                and self._late_strangers():
            self._replay_from = None  # restored to the base: the loop below replays the window
        if self.void and (self._refold or self._replay_from is not None):
            # Judged again wherever the fold replays them (what arrived may settle them).
            replay: Key = _ZERO_KEY if self._refold or self._replay_from is None else self._replay_from
            self.void = {raw for raw in self.void if raw in self.meta and self.meta[raw] < replay}
        if self._refold or (self._replay_from is not None and any(
                ex.cause >= self._replay_from for ex in self.exclusions)):
            self._refold = False
            self.exclusions = []
            self._restore(_ZERO_KEY)
        elif self._replay_from is not None:
            self._restore(self._replay_from)
        self._replay_from = None
        self._apply_all()
        while self._drop_stale_exclusions():
            self._apply_all()

    def _drop_stale_exclusions(self) -> bool:
        """Exclusions whose sanction did not take effect in the end (it applied, and with its
        exclusion in force a replay rejected it) are dropped and their sanctions made void;
        the fold then replays from the start.  True if it did.  Each round voids at least one
        sanction, which never excludes again, so this terminates."""
        stale = [ex for ex in self.exclusions
                 if ex.cause_id.raw in self.meta and self.outcomes.get(ex.cause_id.raw, _APPLIED_PLAIN)[0] != APPLIED]
        if not stale:
            return False
        self.void.update(ex.cause_id.raw for ex in stale)
        self.exclusions = [ex for ex in self.exclusions if ex not in stale]
        self._restore(_ZERO_KEY)
        return True

    def _apply_all(self) -> None:
        order = self.order
        while self.applied < len(order):
            key = order[self.applied]
            try:
                self._apply(key)
            except _Conflict as conflict:
                self.restarts += 1
                self.exclusions.append(conflict.exclusion)
                self._restore(conflict.earliest)
                continue
            self.applied += 1
            self.since_snapshot += 1
            # (Past the minimum interval, the state's size is looked at every 16 entries only.)
            since = self.since_snapshot
            if since >= self.snapshot_every and (since == self.snapshot_every or not since & 15) \
                    and self.state is not None:
                interval = max(self.snapshot_every, self.state.size() // 8)
                if self.since_snapshot >= interval:
                    self._snapshot(key)

    def _late_strangers(self) -> bool:
        """Apply entries sorting at or before the archived positions without a refold, when
        their authors are not members at the archive's base — so at no earlier position
        either (members are never dropped from the state) — or are *former* members there:

        * not a member: the entry is rejected wherever it sorts, or (a join; a contribution
          while contributions are open to anyone, and their policy was never changed)
          recorded pending, which nothing before the base can observe (an entry naming it
          depends on it, so it is new too);
        * left: the same, for the same reasons — and the author had left wherever the entry
          sorts, since it chains through their leave and only their own (later, so not yet
          applied) entries could have left again after a readmission;
        * removed, with only removals (no suspensions) excluding them, and the entry outside
          the causal past of one: strong removal rejects it wherever it sorts, citing the
          earliest such removal, as the fold of everything does.

        Its effect goes into the state at the base, and the window after it is replayed.
        True if all were; anything else (a retired member's entry, which takes effect)
        refolds."""
        base_state, base_error = self.snap_states[0]
        if base_state is None or base_error:
            return False
        changed = any(p.status == "adopted" and any(k.split(".")[0] == "contribution" for k in p.changes)
                      for p in base_state.proposals.values())
        probe = base_state.copy()
        results: list[tuple[bytes, tuple[str, str]]] = []
        for key in self.order:
            if key > self.base:
                break
            eid = key[1]
            entry = self.entries[eid]
            if entry.author in self.fork_seq or entry.commons is None:
                return False
            former = base_state.members.get(entry.author)
            if former is not None and former.status == "removed":
                reason = self._removed_for_good(entry, base_state)
                if reason is None:
                    return False
                results.append((eid, (REJECTED, reason)))
                continue
            if (former is not None and former.status != "left") or (entry.kind == "contribution" and changed):
                return False
            handler = _HANDLERS.get(entry.kind)
            if handler is None:
                results.append((eid, (REJECTED, f"Unknown entry kind '{entry.kind}'.")))
                continue
            try:
                status = handler(self, probe, entry, self.meta[eid])
            except _Rejected as rejected:
                results.append((eid, (REJECTED, rejected.reason)))
                continue
            if status != PENDING:  # pragma: no cover - a non-member's entry never applies by itself
                return False
            results.append((eid, _PLAIN[PENDING]))
            self._named(eid, self.meta[eid], entry.kind)
        for eid, outcome in results:
            self.outcomes[eid] = outcome
        # The base state now includes them; replay the window after it.
        self.snap_states[0] = (probe, base_error)
        del self.snap_keys[1:]
        del self.snap_states[1:]
        self.state = probe.copy()
        self.genesis_error = base_error
        self.applied = bisect.bisect_right(self.order, self.base)
        self.since_snapshot = 0
        return True

    def _removed_for_good(self, entry: Entry, state: _State) -> str | None:
        """The strong-removal rejection of a removed member's entry, if it holds wherever the
        entry sorts: only removals exclude its author (a suspension's lifting depends on the
        state at the entry's position), and one excludes this entry."""
        if any(ex.liftable for ex in self.exclusions if ex.member == entry.author):
            return None
        excluded = self._exclusion(entry.author, entry.seq, state, self.meta[entry.id.raw])
        return None if excluded is None else _strong_removal(excluded)

    def _exclusion(self, author: bytes, seq: int, state: _State, meta: _Meta) -> _Exclusion | None:
        """The earliest sanction (whatever order the exclusions were found in) that excludes
        ``author``'s entry at ``seq``, placed at ``meta`` over ``state``: strong removal.  A
        suspension counts unless a reinstatement in the entry's causal past lifted it."""
        excluded: _Exclusion | None = None
        for ex in self.exclusions:
            if ex.member == author and seq > ex.after_seq and (excluded is None or ex.cause < excluded.cause) \
                    and not (ex.liftable and self._lifted(state, author, meta, ex.cause)):
                excluded = ex
        return excluded

    def _snapshot(self, key: Key) -> None:
        assert self.state is not None
        self.snap_keys.append(key)
        self.snap_states.append((self.state.copy(), self.genesis_error))
        self.since_snapshot = 0
        if self.archive is not None:
            self._evict()
        if len(self.snap_keys) > MAX_SNAPSHOTS + 1:
            self._thin_snapshots()

    def _evict(self) -> None:
        """Archive the records of the positions up to the newest snapshot that every member's
        next entry must sort after (the minimum over the stability set of their latest entry:
        a member's next entry chains through it).  Only an entry by someone outside that set
        (a non-member, a retired member, a forker) can still sort there; it refolds."""
        front: Key | None = None
        for author in _stability_set(self):
            newest = self.latest.get(author)
            if newest is None:
                return
            record = self._archived(newest)
            if front is None or record < front:
                front = record
        if front is None or self.fork_seq or self.applied == 0:
            return
        keys = self.snap_keys
        j = bisect.bisect_right(keys, front) - 1
        if j <= 0:
            return
        base = keys[j]
        n = bisect.bisect_right(self.order, base)
        if n > self.applied:  # pragma: no cover - snapshots are of applied positions
            return
        archive = self.archive
        assert archive is not None
        meta = self.meta
        other = self.outcomes.other
        entries = self.entries
        discard = getattr(entries, "discard", None)
        pinned = set(self.latest.values())
        pinned.add(self._commons_raw)
        upto = self.evicted_upto
        rows: list[tuple[_Meta, str, str]] = []
        bodies: list[Entry | None] = []
        authors = self.authors
        refs = self.refs
        for position in self.order[:n]:
            raw = position[1]
            m = meta.pop(raw)
            status, reason = other.pop(raw, _APPLIED_PLAIN)
            if status == REJECTED:
                refs.pop(raw, None)  # had no effect: nothing in the state names it
            rows.append((m, status, reason))
            if discard is not None:
                bodies.append(None)
                discard(raw)
            else:
                bodies.append(entries.pop(raw, None))
            if raw in pinned:
                self.old[raw] = m
            author = authors[m[2]]
            log = self.logs.get(author)
            if log is not None and log.get(m[3]) == raw:
                del log[m[3]]
            if m[3] > upto.get(author, 0):
                upto[author] = m[3]
        archive.put(rows, bodies, authors)
        cache = self._cache
        unknown = [raw for raw, found in cache.items() if found is None]
        if unknown:  # the cache may say "not archived" of what now is
            now = {m[1] for m, _, _ in rows}
            for raw in unknown:
                if raw in now:
                    del cache[raw]
        del self.order[:n]
        self.applied -= n
        self.evicted += n
        self.base = base
        del keys[:j]
        del self.snap_states[:j]

    def _thin_snapshots(self) -> None:
        """Bound the snapshots kept (each costs O(state)): keep the empty start, the newest
        ``RECENT_SNAPSHOTS``, and thin the older ones towards logarithmic spacing, dropping
        the one whose neighbours are closest relative to its distance from the newest (by
        Lamport clock).  Only the cost of a late entry far back changes (it replays from an
        earlier snapshot), never the result."""
        keys = self.snap_keys
        newest = keys[-1][0]
        best, best_score = 0, 0.0
        for i in range(1, len(keys) - RECENT_SNAPSHOTS):
            score = (keys[i + 1][0] - keys[i - 1][0]) / (newest - keys[i][0] + 1)
            if best == 0 or score < best_score:
                best, best_score = i, score
        if best:
            del keys[best]
            del self.snap_states[best]

    def _restore(self, before: Key) -> None:
        """Go back to the latest snapshot taken strictly before position ``before``."""
        if self.evicted and before <= self.base:
            self._rebuild()
            return
        index = bisect.bisect_left(self.snap_keys, before) - 1
        if index < 0:
            index = 0
        del self.snap_keys[index + 1:]
        del self.snap_states[index + 1:]
        snap_key = self.snap_keys[index]
        state, error = self.snap_states[index]
        self.state = None if state is None else state.copy()
        self.genesis_error = error
        self.applied = bisect.bisect_right(self.order, snap_key) if snap_key != _ZERO_KEY else 0
        self.since_snapshot = 0

    def _rebuild(self) -> None:
        """Refold from scratch, every entry taken again (archived ones from the archive):
        something must take effect at or before the archived positions.  Exclusions found so
        far are kept (the caller clears them where they may no longer hold)."""
        assert self.archive is not None
        self.refolds += 1
        held = [self.entries[raw] for raw in [*self.meta, *self.waiting]]
        archived = list(self.archive.entries())
        exclusions = self.exclusions
        restarts = self.restarts
        entries = self.entries
        if isinstance(entries, dict):
            entries.clear()
        else:
            entries.evict()  # type: ignore[attr-defined]
        self.meta.clear()
        self.waiting.clear()
        self.waiters.clear()
        self.logs.clear()
        self.forks.clear()
        self.fork_seq.clear()
        self.author_index.clear()
        self.authors.clear()
        self.order.clear()
        self.applied = 0
        self.state = None
        self.genesis_error = ""
        self.outcomes.other.clear()
        self.snap_keys[:] = [_ZERO_KEY]
        self.snap_states[:] = [(None, "")]
        self.since_snapshot = 0
        self._replay_from = None
        self._refold = False
        self.max_clock = 0
        self.latest.clear()
        self.base = _ZERO_KEY
        self.evicted = 0
        self.evicted_upto.clear()
        self.old.clear()
        self._cache.clear()
        self.refs.clear()
        self._light.clear()  # (author indexes are assigned afresh)
        self.archive.clear()
        for entry in archived:
            self.add(entry)
        for entry in held:
            self.add(entry)
        self.exclusions = [ex._replace(cause=self.meta[ex.cause[1]]) for ex in exclusions if ex.cause[1] in self.meta]
        self.restarts = restarts
        self._refold = False

    def _apply(self, key: Key) -> None:
        eid = key[1]
        entry = self.entries[eid]
        meta = self.meta[eid]
        if entry.commons is None:
            if eid != self._commons_raw:
                self.outcomes[eid] = (REJECTED, "This genesis founds a different commons.")
                return
            self._genesis(entry)
            return
        state = self.state
        if state is None or self.genesis_error:
            self.outcomes[eid] = (REJECTED, "The commons' genesis is invalid: " + (self.genesis_error or "missing."))
            return
        author = entry.author
        fork = self.fork_seq.get(author)
        if fork is not None and entry.seq >= fork:
            self.outcomes[eid] = (REJECTED, f"Its author signed two different entries at seq {fork} (a fork); "
                                            "the author's entries from the fork point on have no effect.")
            return
        excluded = self._exclusion(author, entry.seq, state, meta) if self.exclusions else None
        if excluded is not None:
            self.outcomes[eid] = (REJECTED, _strong_removal(excluded))
            return
        handler = _HANDLERS.get(entry.kind)
        try:
            if handler is None:
                raise _Rejected(f"Unknown entry kind '{entry.kind}'.")
            status = handler(self, state, entry, meta)
        except _Rejected as rejected:
            self.outcomes[eid] = (REJECTED, rejected.reason)
        else:
            if status == APPLIED:
                self.outcomes.other.pop(eid, None)
            else:
                self.outcomes.other[eid] = _PLAIN[status]
            if self.archive is not None:
                self._named(eid, meta, entry.kind)

    def _lifted(self, state: _State, author: bytes, meta: _Meta, cause: Key) -> bool:
        """Did a reinstatement that came after the suspension ``cause`` lift it for this entry?"""
        reinstatement = state.lifted.get(author)
        if reinstatement is None or not self.in_past(reinstatement, meta):
            return False
        rmeta = self._position(reinstatement.raw)
        return rmeta is not None and rmeta.key > cause

    # --- helpers for handlers ---------------------------------------------------------------

    def in_past(self, target: CID, meta: _Meta) -> bool:
        """Is ``target`` in the causal past of the entry described by ``meta``?"""
        raw = target.raw
        if raw == self._commons_raw:
            return True
        tmeta = self.meta.get(raw)
        if tmeta is None:
            tmeta = self._light.get(raw) or self._position(raw)  # (a member's admission: in _light)
            if tmeta is None:
                return False
        i = tmeta[2] + _VV  # the target author's slot in the version vector
        return bool(i < len(meta) and meta[i] >= tmeta[3] and (
            tmeta[0] < meta[0] or (tmeta[0] == meta[0] and tmeta[1] < meta[1])))  # (a light record: no vv)

    def standing(self, state: _State, author: bytes, meta: _Meta, roles: list[str] | None) -> Member:
        """The author's membership (and one of ``roles``), checked against the state at this
        position *and* the entry's causal past: the grant must be something it had seen."""
        member = state.members.get(author)
        if member is None:
            raise _Rejected("Its author is not a member of the commons.")
        if member.status != "active":
            raise _Rejected(f"Its author's membership is {member.status}.")
        if not self.in_past(member.since, meta):
            raise _Rejected("Its author's admission is not in its causal past (written before being admitted).")
        if roles and "member" not in roles:
            held = [grant for role, grant in member.grants if role in roles]
            if not held:
                raise _Rejected(f"Its author lacks the role needed ({' or '.join(roles)}).")
            if not any(self.in_past(grant, meta) for grant in held):
                raise _Rejected("Its author's role was granted outside its causal past.")
        return member

    def ref(self, entry: Entry, meta: _Meta, field: str, kind: str | tuple[str, ...]) -> CID:
        """A link field that must name an entry of ``kind`` in this entry's causal past."""
        value = entry.body.get(field)
        try:
            target = link(value)
        except Exception:
            raise _Rejected(f"Its '{field}' is not an entry id.") from None
        if not self.in_past(target, meta):
            raise _Rejected(f"Its '{field}' names an entry outside its causal past.")
        kinds = (kind,) if isinstance(kind, str) else kind
        raw = target.raw
        packed = self.refs.get(raw)
        if packed is not None:
            found = _NAMED_KINDS[packed & 15]
        elif raw in self.meta or self.archive is None:
            found = self.entries[raw].kind
        else:
            found = self.archive.kind(raw) or ""
        if found not in kinds:
            raise _Rejected(f"Its '{field}' names a {found}, not a {' or '.join(kinds)}.")
        return target

    def excluding(self, member: bytes, sanction: CID, meta: _Meta, liftable: bool) -> None:
        """Make a removal or suspension strong: exclude the member's entries outside its past."""
        aidx = self.author_index.get(member)
        after = meta.vv[aidx] if aidx is not None and aidx < len(meta.vv) else 0
        exclusion = _Exclusion(member, after, meta.key, sanction, liftable)
        if exclusion in self.exclusions:
            return
        earliest: Key | None = None
        seq = after + 1
        if self.evicted_upto.get(member, 0) >= seq:
            raise _Conflict(exclusion, self.base)  # an archived entry is excluded: refold
        log = self.logs.get(member, {})
        while seq in log:
            for cid in (log[seq], *self.forks.get((member, seq), ())):
                m = self.meta.get(cid)
                # Already-rejected entries too: their recorded reason must not depend on
                # whether this exclusion was known when they were applied (incremental = full).
                if m is not None and m.key < meta.key and (earliest is None or m.key < earliest):
                    earliest = m.key
            seq += 1
        if earliest is not None:
            raise _Conflict(exclusion, earliest)
        self.exclusions.append(exclusion)

    # --- results -------------------------------------------------------------------------

    def _genesis(self, entry: Entry) -> None:
        state = _State()
        body = entry.body
        self.genesis_error = ""
        try:
            state.rules = rules_mod.validate_rules(body.get("rules"))
            info = {}
            for field in ("name", "description", "license"):
                value = body.get(field, "")
                if type(value) is not str or len(value) > MAX_TEXT:
                    raise InvalidRules(f"The genesis {field} must be text of at most {MAX_TEXT} characters.")
                info[field] = value
            state.info = info
            founders = body.get("stewards", [entry.author])
            if type(founders) is not list or not founders or any(
                    type(f) is not bytes or len(f) != 32 for f in founders):
                raise InvalidRules("The genesis stewards must be a non-empty list of 32-byte author keys.")
            grants = (("reviewer", entry.id), ("steward", entry.id))
            for founder in sorted(set(founders)):
                name = body.get("founder_name", "") if founder == entry.author else ""
                state.members[founder] = Member(name if type(name) is str else "", ("member", "reviewer", "steward"),
                                                grants, "active", entry.id, 0, ((0, "active"),))
            resources = body.get("resources", [])
            if type(resources) is not list:
                raise InvalidRules("The genesis resources must be a list.")
            for spec in resources:
                state.resources[CID.of(encode(spec))] = _resource(spec)
        except (InvalidRules, _Rejected) as error:
            self.genesis_error = str(error)
            self.outcomes[entry.id.raw] = (REJECTED, str(error))
            self.state = state
            return
        self.state = state
        self.outcomes[entry.id.raw] = (APPLIED, "")

    def result(self) -> CommonsState:
        self.run()
        return CommonsState(self)


def _strong_removal(excluded: _Exclusion) -> str:
    return f"Strong removal: written outside the causal past of the sanction {excluded.cause_id} against its author."


def _text(body: dict[str, Any], field: str, *, required: bool = False, default: str = "") -> str:
    value = body.get(field)
    if value is None:
        if required:
            raise _Rejected(f"It lacks the '{field}' field.")
        return default
    if type(value) is not str or len(value) > MAX_TEXT:
        raise _Rejected(f"Its '{field}' must be text of at most {MAX_TEXT} characters.")
    return value


def _amount(body: dict[str, Any], field: str, *, default: int | None = None, positive: bool = False) -> int:
    value = body.get(field, default)
    if type(value) is not int or not (1 if positive else 0) <= value <= MAX_AMOUNT:
        raise _Rejected(f"Its '{field}' must be a {'positive' if positive else 'non-negative'} integer.")
    return value


def _member_key(body: dict[str, Any]) -> bytes:
    value = body.get("member")
    if type(value) is not bytes or len(value) != 32:
        raise _Rejected("Its 'member' must be a 32-byte author key.")
    return value


def _resource(spec: Any) -> Resource:
    if type(spec) is not dict:
        raise _Rejected("A resource must be a map.")
    name = _text(spec, "name", required=True)
    rivalrous = spec.get("rivalrous", False)
    if type(rivalrous) is not bool:
        raise _Rejected("A resource's 'rivalrous' must be true or false.")
    quota = _amount(spec, "quota", default=0)
    period = _amount(spec, "period", default=0)
    if rivalrous and quota == 0:
        raise _Rejected("A rivalrous resource needs a positive quota.")
    return Resource(name, rivalrous, quota, period, _text(spec, "unit", default="unit"))


# --- kind handlers: return the status, or raise _Rejected(reason) ----------------------------


def _join(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    member = s.members.get(e.author)
    if member is not None and member.status == "active":
        raise _Rejected("Its author is already a member.")
    if member is not None and member.status in ("removed", "suspended"):
        raise _Rejected(f"Its author was {member.status} and cannot rejoin.")
    s.joins[e.id] = Join(e.author, _text(e.body, "name"), ())
    return PENDING


def _admission(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    f.standing(s, e.author, m, s.rules["membership"]["admitters"])
    join_id = f.ref(e, m, "join", "join")
    join = s.joins.get(join_id)
    if join is None:
        raise _Rejected("The join it admits is not pending (already admitted, or rejected).")
    if e.author in join.approvals:
        raise _Rejected("Its author already approved this join.")
    join = join._replace(approvals=(*join.approvals, e.author))
    policy = s.rules["membership"]
    needed = policy["approvals"] if policy["policy"] == "approval" else 1
    if len(join.approvals) < needed:
        s.joins[join_id] = join
        return APPLIED
    del s.joins[join_id]
    for other, pending in list(s.joins.items()):
        if pending.author == join.author:
            del s.joins[other]
    existing = s.members.get(join.author)
    if existing is not None and existing.status == "active":
        return APPLIED
    # Warnings belong to the member identity: leaving and rejoining does not clear them.
    warnings, view = (0, ()) if existing is None else (existing.warnings, existing.view)
    position = f._position(join_id.raw)
    join_seq = position[3] if position is not None else 0
    s.members[join.author] = Member(join.name, ("member",), (), "active", e.id, warnings,
                                    _seen(view, join_seq, "active"))
    return APPLIED


def _leave(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    member = f.standing(s, e.author, m, None)
    s.members[e.author] = member._replace(status="left", roles=(), grants=(), view=_seen(member.view, e.seq, "left"))
    return APPLIED


def _role(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    f.standing(s, e.author, m, s.rules["roles"]["roles"])
    target = _member_key(e.body)
    role = e.body.get("role")
    action = e.body.get("action", "grant")
    if role not in ("reviewer", "steward"):
        raise _Rejected("Its 'role' must be reviewer or steward.")
    if action not in ("grant", "revoke"):
        raise _Rejected("Its 'action' must be grant or revoke.")
    member = s.members.get(target)
    if member is None or member.status != "active":
        raise _Rejected("The member it names is not an active member.")
    grants = dict(member.grants)
    if action == "grant":
        grants[role] = e.id
    else:
        grants.pop(role, None)
    roles = tuple(sorted({"member", *grants}))
    s.members[target] = member._replace(roles=roles, grants=tuple(sorted(grants.items())))
    return APPLIED


def _sanction(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    """Whether a sanction takes effect is judged, for its target as for its author, by what
    its causal past holds: the target's status is the one the sanction's author saw (their
    own entries outside its causal past — a leave, a join and the admission completing it —
    do not count, neither to shield them nor to make them a member).  Only a sanction that
    takes effect excludes anything (strong removal); a rejected one changes nothing."""
    f.standing(s, e.author, m, s.rules["sanctions"]["roles"])
    target = _member_key(e.body)
    action = e.body.get("action")
    if action not in SANCTION_ACTIONS:
        raise _Rejected(f"Its 'action' must be one of {', '.join(SANCTION_ACTIONS)}.")
    reason = _text(e.body, "reason", required=True)
    member = s.members.get(target)
    if member is None:
        raise _Rejected("The member it names is not a member.")
    if target == e.author and action in ("suspend", "remove"):
        raise _Rejected("A member cannot suspend or remove themselves (use leave).")
    aidx = f.author_index.get(target)
    seen = _status_seen(member, m[_VV + aidx] if aidx is not None and _VV + aidx < len(m) else 0)
    if seen is None:
        raise _Rejected("The member it names is not a member in its causal past.")
    if action == "reinstate":
        if seen != "suspended" or member.status != "suspended":
            raise _Rejected("Only a suspended member can be reinstated.")
        s.members[target] = member._replace(status="active", view=_seen(member.view, 0, "active"))
        s.lifted[target] = e.id
    else:
        if seen in ("removed", "left") or (seen == "suspended" and action != "remove"):
            raise _Rejected(f"The member is already {seen}.")
        if action == "warning":
            member = member._replace(warnings=member.warnings + 1)
        else:
            if e.id.raw in f.void:
                raise _Rejected("It could take effect only through entries of its target that it would "
                                "exclude (outside its causal past), so it has none.")
            # Excludes the target's entries outside its causal past; if one was applied
            # before this position (a leave, a rejoin), this raises _Conflict and the fold
            # replays from there with the exclusion in force.
            f.excluding(target, e.id, m, action == "suspend")
            status = "suspended" if action == "suspend" else "removed"
            member = member._replace(status=status, view=_seen(member.view, 0, status))
            s.lifted.pop(target, None)
            if action == "remove":
                member = member._replace(roles=(), grants=())
        s.members[target] = member
    s.sanctions.append({"id": e.id, "member": target, "action": action, "reason": reason, "by": e.author})
    return APPLIED


def _contribution(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    body = e.body
    title = _text(body, "title", required=True)
    kind = _text(body, "kind", default="work")
    claimed = _amount(body, "value", default=1)
    ref = _text(body, "ref")
    outside = False
    try:
        f.standing(s, e.author, m, None)
    except _Rejected:
        if s.rules["contribution"]["policy"] != "anyone":
            raise
        outside = True
    s.contributions[e.id] = Contribution(e.author, title, kind, ref, claimed, "pending", (), (), 0, outside)
    return PENDING if outside else APPLIED


def _review(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    policy = s.rules["review"]
    f.standing(s, e.author, m, policy["roles"])
    target = f.ref(e, m, "contribution", "contribution")
    contribution = s.contributions.get(target)
    if contribution is None:
        raise _Rejected("The contribution it reviews had no effect (it was rejected).")
    if contribution.status != "pending":
        raise _Rejected(f"The contribution was already {contribution.status}.")
    if contribution.author == e.author and not policy["self_review"]:
        raise _Rejected("The rules do not let a member review their own contribution.")
    if e.author in contribution.accepts or e.author in contribution.rejects:
        raise _Rejected("Its author already reviewed this contribution.")
    verdict = e.body.get("verdict")
    if verdict not in ("accept", "reject"):
        raise _Rejected("Its 'verdict' must be accept or reject.")
    _text(e.body, "comment")
    if verdict == "accept":
        adjusted = _amount(e.body, "value", default=contribution.claimed)
        contribution = contribution._replace(accepts=(*contribution.accepts, e.author))
        if len(contribution.accepts) >= policy["accepts"]:
            weights = s.rules["values"]
            weight = weights.get(contribution.kind, weights.get("default", 100))
            value = adjusted * weight // 100
            if value > MAX_TOTAL:
                raise _Rejected(f"Accepting it would give the contribution a value of {value}, above the bound "
                                f"{MAX_TOTAL}.")
            if s.ledger_total + value > MAX_TOTAL:
                raise _Rejected(f"Accepting it would bring the ledger's total value to {s.ledger_total + value}, "
                                f"above the bound {MAX_TOTAL}.")
            contribution = contribution._replace(status="accepted", value=value)
            count, total = s.ledger.get(contribution.author, (0, 0))
            s.ledger[contribution.author] = (count + 1, total + value)
            s.ledger_total += value
    else:
        contribution = contribution._replace(rejects=(*contribution.rejects, e.author))
        if len(contribution.rejects) >= policy["rejects"]:
            contribution = contribution._replace(status="rejected")
    s.contributions[target] = contribution
    return APPLIED


def _eligible(s: _State, roles: list[str]) -> int:
    return sum(1 for member in s.members.values() if member.status == "active"
               and any(r in member.roles for r in roles))


def _tally(f: Folder, s: _State, proposal_id: CID, proposal: Proposal) -> Proposal:
    policy = s.rules["rule_change"]
    threshold = policy["threshold"]
    eligible = _eligible(s, policy["roles"])
    num, den = threshold["num"], threshold["den"]
    if len(proposal.yes) * den > eligible * num:
        try:
            s.rules = rules_mod.apply_changes(s.rules, proposal.changes)
        except InvalidRules:  # validated when proposed; kept for robustness
            return proposal._replace(status="rejected")
        return proposal._replace(status="adopted")
    if (eligible - len(proposal.no)) * den <= eligible * num:
        return proposal._replace(status="rejected")
    return proposal


def _rule_proposal(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    policy = s.rules["rule_change"]
    f.standing(s, e.author, m, None)
    changes = e.body.get("changes")
    if type(changes) is not dict:
        raise _Rejected("Its 'changes' must be a map of rule names to values.")
    try:
        rules_mod.apply_changes(s.rules, changes)
    except InvalidRules as error:
        raise _Rejected(f"Its rule change is invalid: {error}") from None
    proposal = Proposal(e.author, _text(e.body, "title"), changes, (), (), "open")
    member = s.members[e.author]
    if any(r in member.roles for r in policy["roles"]):
        # Proposing counts as the proposer's yes vote.
        proposal = proposal._replace(yes=(e.author,))
        s.votes[(e.id, e.author)] = True
    s.proposals[e.id] = _tally(f, s, e.id, proposal)
    return APPLIED


def _vote(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    f.standing(s, e.author, m, s.rules["rule_change"]["roles"])
    target = f.ref(e, m, "proposal", "rule_proposal")
    proposal = s.proposals.get(target)
    if proposal is None:
        raise _Rejected("The proposal it votes on had no effect (it was rejected).")
    if proposal.status != "open":
        raise _Rejected(f"The proposal is already {proposal.status}.")
    choice = e.body.get("choice")
    if choice not in ("yes", "no"):
        raise _Rejected("Its 'choice' must be yes or no.")
    if (target, e.author) in s.votes:
        raise _Rejected("Its author already voted on this proposal.")
    s.votes[(target, e.author)] = choice == "yes"
    if choice == "yes":
        proposal = proposal._replace(yes=(*proposal.yes, e.author))
    else:
        proposal = proposal._replace(no=(*proposal.no, e.author))
    s.proposals[target] = _tally(f, s, target, proposal)
    return APPLIED


def _resource_add(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    f.standing(s, e.author, m, s.rules["resources"]["roles"])
    s.resources[e.id] = _resource(e.body)
    return APPLIED


def _resource_use(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    f.standing(s, e.author, m, s.rules["resources"]["use_roles"])
    value = e.body.get("resource")
    try:
        target = link(value)
    except Exception:
        raise _Rejected("Its 'resource' is not an entry id.") from None
    resource = s.resources.get(target)
    if resource is None:
        raise _Rejected("The resource it uses is not known (not added, or outside its causal past).")
    if target != f.commons and not f.in_past(target, m) and f._position(target.raw) is not None:
        raise _Rejected("The resource it uses was added outside its causal past.")
    amount = _amount(e.body, "amount", positive=True)
    period = e.time // (resource.period * 1000) if resource.period else 0
    key = (target, period, e.author)
    used = s.usage.get(key, 0)
    if resource.rivalrous and used + amount > resource.quota:
        raise _Rejected(f"It exceeds the quota of {resource.name} ({used} + {amount} > {resource.quota} "
                        f"{resource.unit} per period).")
    lifetime = (target, e.author)
    total = s.totals.get(lifetime, 0) + amount
    if total > MAX_TOTAL:
        raise _Rejected(f"It would bring its author's use of {resource.name} to {total} {resource.unit}, above the "
                        f"bound {MAX_TOTAL}.")
    s.usage[key] = used + amount
    s.totals[lifetime] = total
    return APPLIED


def _distribution(f: Folder, s: _State, e: Entry, m: _Meta) -> str:
    f.standing(s, e.author, m, s.rules["distribution"]["roles"])
    amount = _amount(e.body, "amount", positive=True)
    currency = _text(e.body, "currency", default="units")
    shares = compute_shares(s.ledger, amount)
    if not shares:
        raise _Rejected("There are no accepted contributions to share among.")
    s.distributions.append({"id": e.id, "amount": amount, "currency": currency, "shares": shares})
    return APPLIED


def compute_shares(ledger: dict[bytes, tuple[int, int]], amount: int) -> dict[bytes, int]:
    """Split ``amount`` in proportion to accepted value: floor shares, then the remainder one
    unit at a time by largest remainder (ties by author key), so the shares sum exactly."""
    total = sum(value for _, value in ledger.values())
    if total <= 0:
        return {}
    shares = {}
    remainders = []
    for author in sorted(ledger):
        value = ledger[author][1]
        shares[author] = amount * value // total
        remainders.append((-(amount * value % total), author))
    left = amount - sum(shares.values())
    for _, author in sorted(remainders)[:left]:
        shares[author] += 1
    return {a: v for a, v in shares.items() if v}


_HANDLERS: dict[str, Any] = {
    "join": _join,
    "admission": _admission,
    "leave": _leave,
    "role": _role,
    "sanction": _sanction,
    "contribution": _contribution,
    "review": _review,
    "rule_proposal": _rule_proposal,
    "vote": _vote,
    "resource_add": _resource_add,
    "resource_use": _resource_use,
    "distribution": _distribution,
}


# --- the public result ---------------------------------------------------------------------


class CommonsState:
    """The folded state of one commons, its canonical form and hash, and per-entry outcomes.

    A view of the fold that produced it: the engine's live fold keeps advancing, so take a
    fresh one from ``current_state`` after ingesting, rather than keeping an old one."""

    def __init__(self, folder: Folder) -> None:
        self.commons = folder.commons
        self._folder = folder
        self.valid = folder.state is not None and not folder.genesis_error
        self.entry_count = folder.count()
        self.waiting_count = len(folder.waiting)
        self._canonical: dict[str, Any] | None = None
        self._hash: str | None = None
        self._front: tuple[list[int], dict[bytes, tuple[int, ...]], list[bytes]] | None = None

    # Computed on first use: appending an entry must not pay O(state) for a hash nobody reads.

    @property
    def canonical(self) -> dict[str, Any]:
        if self._canonical is None:
            with bulk():
                self._canonical = _canonical(self._folder)
        return self._canonical

    @property
    def state_hash(self) -> str:
        if self._hash is None:
            canonical = self.canonical
            with bulk():
                self._hash = hashlib.sha256(encode(canonical)).hexdigest()
        return self._hash

    @property
    def _frontier(self) -> list[int]:
        return self._stability()[0]

    @property
    def _latest(self) -> dict[bytes, tuple[int, ...]]:
        return self._stability()[1]

    @property
    def retired(self) -> list[bytes]:
        return self._stability()[2]

    def _stability(self) -> tuple[list[int], dict[bytes, tuple[int, ...]], list[bytes]]:
        if self._front is None:
            self._front = _frontier(self._folder)
        return self._front

    # Convenience views (plain data, JSON-ready) ------------------------------------------------

    @property
    def rules(self) -> dict[str, Any]:
        """The rules in force (cheap: no canonical encoding of the whole state)."""
        state = self._folder.state
        return {} if state is None else {k: dict(v) for k, v in state.rules.items()}

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        return dict(self.canonical.get("members", {}))

    def member_info(self, author: bytes) -> Member | None:
        state = self._folder.state
        return None if state is None else state.members.get(author)

    def active_members(self) -> list[bytes]:
        state = self._folder.state
        if state is None:
            return []
        return sorted(a for a, m in state.members.items() if m.status == "active")

    def has_role(self, author: bytes, role: str) -> bool:
        member = self.member_info(author)
        return member is not None and member.status == "active" and role in member.roles

    def outcome(self, entry_id: CID) -> Outcome | None:
        folder = self._folder
        raw = entry_id.raw
        entry = folder.entries.get(raw)
        meta = folder.meta.get(raw)
        if entry is None or (meta is None and raw not in folder.waiting):
            record = None if folder.archive is None else folder.archive.outcome(raw)
            if record is None:
                return None
            meta, status, reason = record
            entry = folder._entry(raw)
        elif raw in folder.waiting:
            missing = tuple(CID(m) for m in sorted(folder.waiting[raw]))
            return Outcome(entry_id, entry.kind, entry.author, entry.seq, WAITING,
                           "Waiting for dependencies this node does not hold yet.", False, (), missing)
        else:
            status, reason = folder.outcomes.get(raw, (WAITING, ""))
        if status == PENDING:
            status, reason = self._resolve_pending(entry)
        assert meta is not None
        holders = tuple(sorted(member for member, latest in self._latest.items()
                               if meta.aidx >= len(latest) or latest[meta.aidx] < entry.seq))
        return Outcome(entry_id, entry.kind, entry.author, entry.seq, status, reason, not holders, holders, ())

    def _resolve_pending(self, entry: Entry) -> tuple[str, str]:
        """A newcomer's or outsider's entry takes effect through the member entry that
        accepts it; report which, without rewriting the earlier entry's own record."""
        state = self._folder.state
        if state is None:
            return PENDING, ""
        if entry.kind == "contribution":
            c = state.contributions.get(entry.id)
            if c is not None and c.status == "accepted":
                return APPLIED, "Accepted by review."
            if c is not None and c.status == "rejected":
                return REJECTED, "Rejected by review."
            return PENDING, "Waiting for review (its author was not a member when writing it)."
        if entry.kind == "join":
            if entry.id in state.joins:
                return PENDING, "Waiting for admission."
            member = state.members.get(entry.author)
            if member is not None and member.since != self.commons:
                return APPLIED, f"Admitted by {member.since}."
            return REJECTED, "Not admitted."
        return PENDING, ""

    def outcomes(self) -> list[Outcome]:
        result = []
        folder = self._folder
        ids = list(folder.entries)
        if folder.archive is not None and folder.evicted:
            held = set(ids)
            ids += [raw for raw in folder.archive.ids() if raw not in held]
        for raw in ids:
            outcome = self.outcome(CID(raw))
            if outcome is not None:
                result.append(outcome)
        return result

    def stable_summary(self) -> dict[str, Any]:
        """The stable frontier: per author, entries up to this seq are stable."""
        folder = self._folder
        frontier = self._frontier
        stable = sum(1 for meta in folder.meta.values()
                     if meta.aidx < len(frontier) and frontier[meta.aidx] >= meta.seq)
        if folder.archive is not None and folder.evicted:
            stable += folder.archive.count_stable(frontier)
        top = _max_vv(folder)
        holding = sorted(_hex(m) for m, latest in self._latest.items()
                         if any((latest[i] if i < len(latest) else 0) < top[i] for i in range(len(top))))
        return {
            "stable_entries": stable,
            "tentative_entries": folder.count() - stable,
            "frontier": {_hex(folder.authors[i]): seq for i, seq in enumerate(self._frontier) if seq},
            "held_back_by": holding,
            "retired": sorted(_hex(a) for a in self.retired),
        }

    def contributions_by_status(self) -> dict[str, int]:
        counts = {"pending": 0, "accepted": 0, "rejected": 0}
        state = self._folder.state
        if state is not None:
            for c in state.contributions.values():
                counts[c.status] += 1
        return counts

    def contribution(self, cid: CID) -> Contribution | None:
        state = self._folder.state
        return None if state is None else state.contributions.get(cid)

    def proposal(self, cid: CID) -> Proposal | None:
        state = self._folder.state
        return None if state is None else state.proposals.get(cid)

    def pending_joins(self) -> dict[CID, Join]:
        state = self._folder.state
        return {} if state is None else dict(state.joins)

    def ledger(self) -> list[dict[str, Any]]:
        """Per contributor: accepted contributions, value, and share of the total (in basis
        points, integer) — the basis of benefit distribution."""
        state = self._folder.state
        if state is None:
            return []
        total = sum(v for _, v in state.ledger.values())
        rows = []
        for author in sorted(state.ledger):
            count, value = state.ledger[author]
            member = state.members.get(author)
            rows.append({"author": _hex(author), "name": member.name if member else "",
                         "accepted": count, "value": value,
                         "share_bp": (value * 10000 // total) if total else 0})
        return rows

    def resources(self) -> dict[CID, Resource]:
        state = self._folder.state
        return {} if state is None else dict(state.resources)

    def usage(self, resource: CID) -> dict[str, int]:
        state = self._folder.state
        totals: dict[str, int] = {}
        if state is not None:
            for (res, _period, author), amount in state.usage.items():
                if res == resource:
                    totals[_hex(author)] = totals.get(_hex(author), 0) + amount
        return totals

    def summary(self) -> dict[str, Any]:
        return {
            "commons": str(self.commons),
            "name": self._folder.state.info.get("name", "") if self._folder.state is not None else "",
            "state_hash": self.state_hash,
            "entries": self.entry_count,
            "waiting": self.waiting_count,
            "members": len(self.active_members()),
            "stable": self.stable_summary(),
            "rules": self.rules,
            "contributions": self.contributions_by_status(),
            "valid": self.valid,
        }


def _max_vv(folder: Folder) -> list[int]:
    best = [0] * len(folder.authors)
    for author, cid in folder.latest.items():
        best[folder.author_index[author]] = folder._archived(cid).seq
    return best


def _stability_set(folder: Folder) -> list[bytes]:
    """The members whose latest entries define stability (active or suspended, not forked,
    not retired)."""
    state = folder.state
    if state is None:
        return []
    retire = state.rules.get("retire", {}).get("after", 0)
    result = []
    for author, member in state.members.items():
        if member.status not in ("active", "suspended") or author in folder.fork_seq:
            continue
        newest = folder.latest.get(author)
        if retire and folder.max_clock - (folder._archived(newest).clock if newest is not None else 0) > retire:
            continue
        result.append(author)
    return result


def _frontier(folder: Folder) -> tuple[list[int], dict[bytes, tuple[int, ...]], list[bytes]]:
    """Per author, the highest seq acknowledged by every active or suspended, non-retired member."""
    state = folder.state
    width = len(folder.authors)
    if state is None:
        return [0] * width, {}, []
    retire = state.rules.get("retire", {}).get("after", 0)
    latest: dict[bytes, tuple[int, ...]] = {}
    retired = []
    max_seq = folder.latest
    for author, member in state.members.items():
        # Suspended members still hold stability back: a reinstatement brings them back.
        if member.status not in ("active", "suspended") or author in folder.fork_seq:
            continue
        newest = folder.latest.get(author)
        if retire and folder.max_clock - (folder._archived(newest).clock if newest is not None else 0) > retire:
            retired.append(author)
            continue
        cid = max_seq.get(author)
        latest[author] = folder._archived(cid).vv if cid is not None else ()
    frontier = [0] * width
    if latest:
        for i in range(width):
            frontier[i] = min(v[i] if i < len(v) else 0 for v in latest.values())
    return frontier, latest, sorted(retired)


def _canonical(folder: Folder) -> dict[str, Any]:
    s = folder.state
    out: dict[str, Any] = {"commons": str(folder.commons), "entries": folder.count(),
                           "waiting": len(folder.waiting)}
    if s is None:
        return out
    if folder.genesis_error:
        out["invalid"] = folder.genesis_error
    out["info"] = dict(s.info)
    out["rules"] = s.rules
    out["members"] = {
        _hex(a): {"name": m.name, "roles": list(m.roles), "status": m.status, "since": str(m.since),
                  "warnings": m.warnings}
        for a, m in s.members.items()
    }
    out["joins"] = {str(c): {"author": _hex(j.author), "name": j.name,
                             "approvals": sorted(_hex(a) for a in j.approvals)} for c, j in s.joins.items()}
    out["contributions"] = {
        str(c): {"author": _hex(x.author), "title": x.title, "kind": x.kind, "ref": x.ref, "claimed": x.claimed,
                 "status": x.status, "accepts": sorted(_hex(a) for a in x.accepts),
                 "rejects": sorted(_hex(a) for a in x.rejects), "value": x.value, "outside": x.outside}
        for c, x in s.contributions.items()
    }
    out["proposals"] = {
        str(c): {"author": _hex(p.author), "title": p.title, "changes": p.changes, "status": p.status,
                 "yes": sorted(_hex(a) for a in p.yes), "no": sorted(_hex(a) for a in p.no)}
        for c, p in s.proposals.items()
    }
    resources: dict[str, Any] = {}
    for c, r in s.resources.items():
        resources[str(c)] = {"name": r.name, "rivalrous": r.rivalrous, "quota": r.quota, "period": r.period,
                             "unit": r.unit, "used": {}}
    for (res, period, author), amount in s.usage.items():
        resources[str(res)]["used"].setdefault(str(period), {})[_hex(author)] = amount
    out["resources"] = resources
    out["ledger"] = {_hex(a): {"accepted": n, "value": v} for a, (n, v) in s.ledger.items()}
    out["distributions"] = [
        {"id": str(d["id"]), "amount": d["amount"], "currency": d["currency"],
         "shares": {_hex(a): v for a, v in d["shares"].items()}} for d in s.distributions
    ]
    out["sanctions"] = [
        {"id": str(x["id"]), "member": _hex(x["member"]), "action": x["action"], "reason": x["reason"],
         "by": _hex(x["by"])} for x in s.sanctions
    ]
    return out


def fold(entries: Iterable[Entry], commons: CID | None = None) -> CommonsState:
    """The state of one commons from a set of its entries (order and duplicates don't matter).

    ``commons`` defaults to the id of the (single) genesis among ``entries``."""
    items = list(entries)
    if commons is None:
        genesis = sorted({e.id for e in items if e.is_genesis}, key=lambda c: c.raw)
        if not genesis:
            raise ValueError("fold() needs the genesis entry or an explicit commons id")
        commons = genesis[0]
    folder = Folder(commons)
    with bulk():
        for entry in items:
            folder.add(entry)
        return folder.result()


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk fold.  The fold allocates many small
    acyclic objects, which makes CPython run full collections over every entry held — about
    a third of a large fold's time — while there is no cyclic garbage to find."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
