"""The replayer: a pure, resumable fold of one commons' entry set, knowing no entry kinds.

Specification: ``protocols/commons.md``.  No I/O happens here; :mod:`.engine` persists.

The kernel's parts: this module orders entries, computes their causal facts
(:mod:`.positions`), snapshots, restores and replays; what an entry *does* is decided by its
kind's handler (:mod:`.handlers`, one module per family, dispatched through one registry),
which sees the fold only through :class:`.handlers.view.View`; the state's records are
declared once in :mod:`.records`; :mod:`.views` answers queries.

Why it is built this way:

* **Order.**  Entries are applied in one deterministic linear extension of the causal order,
  sorted by ``(Lamport clock, id bytes)``; the clock is ``1 + max`` over ``prev`` and
  ``deps`` (genesis 0).  An entry with a missing dependency (transitively) waits.
* **Version vectors** (per entry, the highest seq of each author in its causal past, as a
  persistent trie sharing all but what the entry changes with its parents' — :mod:`.causal`:
  O(what the entry adds) per entry, not O(authors)) make every "is X in the causal past of
  Y" question one lookup of depth log32(authors): causal authorization
  (the grant of a member's standing must be in the entry's past), references (a review's
  contribution must be in the review's past), strong removal and stability.
* **Copy-on-write records** (NamedTuples replaced, never mutated) make a snapshot a handful
  of shallow copies — the big tables' copies share every unchanged row (:mod:`.compact`) —
  so snapshots can be frequent and late entries cheap.
* **Strong removal** is retroactive: an effective removal excludes the removed member's
  entries outside its causal past even where they sort *before* it.  When that excludes an
  entry already applied, the fold restores the snapshot before that entry and replays with
  the exclusion (monotone: each restart adds an exclusion, so it terminates).
* **Eviction** (``Folder(archive=…)``; the engine's live fold uses it, a bare ``Folder`` or
  :func:`fold` holds everything).  Every member's next entry chains through their latest
  one, so it sorts after it: positions up to the minimum, over the members who hold
  stability (active or suspended, not forked, not retired), of their latest entry's key
  are final for everyone but outsiders.  (Members silent for ``silent_after`` clock ticks
  are left out of that minimum, so that one silent member cannot switch eviction off; an
  entry of theirs written from so old a view refolds, as a retired member's does.)  At
  each snapshot, the positions up to the newest snapshot at or before that minimum (the
  *base*) are archived: their records (clock, author index, seq, outcome; not their
  version vectors, which the store computed at insert) go to the :class:`Archive` (the
  engine's is a store table, local and never replicated) and leave memory — entry bodies,
  records, log slots, order, older snapshots.  Kept: the state at the base (one snapshot),
  the window after it, per author the latest record, the genesis record (these with their
  vectors), and a bounded cache of archived records looked up.  What was archived is
  answered from the archive: causal-past checks (an archived record's author index and seq
  against the asking entry's vector), kinds of referenced entries, outcomes and stability
  of old entries (stability is computed exactly as without eviction, from the archived
  author index and seq).  An entry whose own vector would merge an archived parent's (one
  its newest parent had not seen) takes it from the archive (:meth:`Archive.vector`: the
  store's row of the entry over its base's vector, which the fold nearly always holds).  A
  backdated entry's floor is archived with its record, as its effective time, and leaves
  memory.  An entry sorting at or before the base by someone who is not a member there, or
  no longer is (a newcomer's join, an outsider's entry, a departed or removed member's
  entry written from an old view) is rejected or recorded pending wherever it sorts, and
  nothing before the base can observe it: its effect goes into the base state and the
  window replays; so is an entry of a key that had forked at or before its seq (the fork
  penalty rejects it wherever it sorts).  A forked key holds no stability, so a fork does not
  stop eviction (it did: one stranger's fork, and every record stayed in memory for good);
  the archive keeps its records from the fork point on by id.  Anything else that
  would take effect at or before the base — an entry of a retired (silent) or suspended
  member written from an old view, a new fork point of a key whose entries from there were
  archived (held ones only replay, from the first; a stranger's key whose archived entries
  were rejected or pending, and in no one else's past, loses their effect in the base state:
  :meth:`Folder._void_archived`), a strong-removal exclusion of an
  archived entry — refolds from scratch, every entry read back from the archive
  (``refolds`` counts them; the engine's live fold raises :class:`MustRefold` instead, and
  the engine folds afresh from the store's order in batches).  Hence the state, hashes and
  outcomes are exactly those of a fold that holds everything
  (``tests/test_state_memory.py``); memory beyond the state is bounded by the window, not
  by the number of entries.
"""


from __future__ import annotations

import bisect
import contextlib
import gc
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from itertools import compress, islice, repeat
from operator import is_
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from .. import causal as _causal
from ..causal import Vector as _Vector
from ..causal import get as _vget
from ..causal import merge as _merge
from ..causal import put as _vput
from ..dagcbor import CID
from ..entry import Entry
from .archiving import Archive, MemoryArchive
from .front import FrontIndex
from .handlers import APPLIED, HANDLERS, PENDING, REJECTED, WAITING, Rejected
from .handlers.devices import holds_stability, stability_holders
from .handlers.distributions import compute_shares
from .handlers.genesis import found
from .handlers.late import REMOVED, STRANGER, late_judge, take_out
from .handlers.sanctions import SANCTION_ACTIONS
from .held import HeldBack
from .intake import take_in_order
from .positions import VV as _VV
from .positions import ZERO_KEY as _ZERO_KEY
from .positions import Key
from .positions import Meta as _Meta
from .positions import by_clock as _by_clock
from .positions import parents as _parents
from .records import Contribution, Join, Member, Proposal, Resource
from .records import State as _State

if TYPE_CHECKING:
    from .views import CommonsState

# Snapshots kept besides the empty start: the newest RECENT_SNAPSHOTS, and older ones thinned
# to roughly logarithmic spacing, so their memory is a bounded multiple of the state's.
MAX_SNAPSHOTS = 12
SILENT_AFTER = 4096  # clock ticks a silent member holds eviction back (Folder.silent_after)
# The eviction front when no member's next entry bounds it (Folder._front): after every position.
_UNBOUNDED: Key = (2**63, b"")
RECENT_SNAPSHOTS = 4
# A bulk fold's snapshots (Folder._planned): each at least this fraction of its distance from
# the run's end after the previous one (logarithmic spacing, about the set the thinning keeps).
PLAN_SPACING = 0.35
EVICT_EVERY = 4096  # positions an evicting fold's long run applies, at most, between evictions
# Positions between snapshots, at most (Folder._interval): what a late entry replays is then
# bounded whatever the state's size (at 1M entries the state's size / 32 was 18,750 positions,
# and a late stranger's entry replayed up to two such intervals: 365 ms for the 100 ms target).
SNAPSHOT_MAX = 512
# A new fork point's archived entries that another key's entry has in its past, at most,
# for which the fold asks the archive whether one is named (each a lookup in the store's
# ``named`` table, and a decode of the few entries it lists: Folder._void_archived); more
# refold, as any fork over archived entries did.  (It was 4 while each ask was a scan of
# every stored entry's bytes.)
VOID_ASKS = 32

__all__ = ["APPLIED", "MAX_SNAPSHOTS", "PENDING", "REJECTED", "SANCTION_ACTIONS", "WAITING", "Archive",
           "Contribution", "Folder", "Join", "Member", "MemoryArchive", "Proposal", "Resource", "bulk",
           "compute_shares"]


_C = TypeVar("_C", bound="list[Any] | MutableMapping[Any, Any]")


def _renew(folder: Folder, name: str, empty: _C) -> _C:
    """``folder.name`` set to ``empty``'s contents: in place if it exists, since code running
    across a refold (``_apply_all``'s loop over ``order``) holds the container itself."""
    current = getattr(folder, name, None)
    if current is None:
        return empty
    if isinstance(current, list):
        current[:] = empty
    else:
        current.clear()
        current.update(empty)
    return current  # type: ignore[no-any-return]


class _Exclusion(NamedTuple):
    member: bytes
    after_seq: int
    cause: Key
    cause_id: CID
    liftable: bool  # a suspension (a later reinstatement lifts it); a removal is final


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


class _Conflict(Exception):
    """A removal became effective that excludes entries already applied before it."""

    def __init__(self, exclusion: _Exclusion, earliest: Key) -> None:
        super().__init__("conflict")
        self.exclusion = exclusion
        self.earliest = earliest


# Effective times of recently readied entries kept (parents are mostly recent): between half
# this and this many, so what the fold holds does not grow with the entries it has seen; or
# _TIMES_PER_AUTHOR per author, if more.  (An entry's prev is about as many positions back as
# there are authors writing: with 10,000 authors, 2,048 kept missed nearly every prev, and
# each miss read and decoded the parent from the store, 9 % of the fold.)
_TIMES_MAX = 1 << 11
_TIMES_PER_AUTHOR = 8
_CACHE_MAX = 4096  # archived records looked up recently (references to old entries)
_UNKNOWN: Any = object()
_NO_BODIES: dict[bytes, Entry] = {}  # (an entry table without a dict of held bodies)


class Folder:
    """Resumable fold of one commons.  ``add`` entries in any order, any number of times;
    ``run`` brings the state up to date; the result equals a fold from scratch."""

    def __init__(self, commons: CID, *, snapshot_every: int = 256, archive: Archive | None = None) -> None:
        self.commons = commons
        self.archive = archive
        self._commons_raw = commons.raw
        self.snapshot_every = snapshot_every
        # False: a refold from scratch raises MustRefold, for the owner to fold afresh (the
        # engine, from the store's order in batches); True: it reads every entry back itself.
        self.refold_in_place = True
        # Keyed by raw id bytes, not CID objects: bytes hash and compare in C, and intake
        # does a dozen lookups per entry.  These four are cleared in place, never replaced:
        # a checkpointed fold's lazy entry table reads ``meta`` and ``waiting`` as its index.
        self.entries: MutableMapping[bytes, Entry] = {}
        self.meta: dict[bytes, _Meta] = {}
        # Entries waiting for parents: how many distinct parents each still lacks (which ones:
        # ``waiters``, parent -> the entries waiting for it; :meth:`missing_parents`).  A count,
        # not the set of them: a bundle taken log by log leaves most of its entries waiting,
        # and a set of a dozen ids each was about 1.5 KB an entry.
        self.waiting: dict[bytes, int] = {}
        self.outcomes = _Outcomes(self.meta)
        # What survives a refold from the archive (``_rebuild``): exclusions found so far (the
        # caller clears them where they may no longer hold), counters.
        self.exclusions: list[_Exclusion] = []
        # Removals and suspensions that could take effect only through entries of their
        # target that they would exclude (with their exclusion in force they are rejected,
        # without it they apply): they take no effect, so that a rejected sanction never
        # excludes anything.  Raw ids; rare (see ``_drop_stale_exclusions``).
        self.void: set[bytes] = set()
        # Eviction waits for a member's next entry no longer than this many clock ticks: a
        # member silent longer (a drive-by join in an open commons) would otherwise keep
        # every later position in memory for ever.  Their next entry, written from a view
        # that old, sorts before the archived positions and refolds (as a retired member's
        # does); written from a recent view, it sorts last, as anyone's.  Results are the
        # same either way; only memory and that rare refold's cost depend on it.
        self.silent_after = SILENT_AFTER
        # Entries of this commons its feeder holds back, waiting in the store for a parent it
        # lacks (:mod:`.held`; the engine's): counted as waiting, never taken.  None: every
        # entry is offered (a pure fold).
        self.held: HeldBack | None = None
        self.restarts = 0
        self.refolds = 0
        self.voided = 0  # times a new fork point's archived entries lost their effect without a refold
        self.replays = 0  # times the fold went back to a snapshot (a late entry, an exclusion)
        self._reset()

    def _reset(self) -> None:
        """Forget every entry taken and everything derived from them: the one place the
        fold's per-entry fields are listed (the constructor and a refold both start here)."""
        entries = self.entries
        if isinstance(entries, dict):
            entries.clear()
        else:
            entries.evict()  # type: ignore[attr-defined]
        self.meta.clear()
        self.waiting.clear()
        self.outcomes.other.clear()
        self.waiters: dict[bytes, list[bytes]] = _renew(self, "waiters", {})
        # Per author, seq -> the entry at that position; extra fork siblings in ``forks``.
        self.logs: dict[bytes, dict[int, bytes]] = _renew(self, "logs", {})
        self.forks: dict[tuple[bytes, int], list[bytes]] = _renew(self, "forks", {})
        self.fork_seq: dict[bytes, int] = _renew(self, "fork_seq", {})
        self.author_index: dict[bytes, int] = _renew(self, "author_index", {})
        self.authors: list[bytes] = _renew(self, "authors", [])
        self.order: list[Key] = _renew(self, "order", [])  # (clock, raw id), sorted
        self.applied = 0  # how many positions of ``order`` the state reflects
        self.state: _State | None = None
        self.genesis_error = ""
        self.snap_keys: list[Key] = _renew(self, "snap_keys", [_ZERO_KEY])
        self.snap_states: list[tuple[_State | None, str]] = _renew(self, "snap_states", [(None, "")])
        self.since_snapshot = 0
        self._replay_from: Key | None = None
        self._refold = False
        # Keys that forked at a seq the archive holds, and where (:meth:`_void_archived`).
        self._voids: dict[bytes, int] = {}
        self.max_clock = 0
        # Every author's latest entry by position, for the eviction front (:mod:`.front`):
        # built on the first eviction, told of each new latest from then on.
        self.front_index: FrontIndex | None = None
        # Per author, the ready entry with the highest seq.
        self.latest: dict[bytes, bytes] = _renew(self, "latest", {})
        # Entries dated before an entry in their causal past (§3.3 step 3, time): raw id ->
        # the latest time in that past.  Only such entries are listed (rare: an honest
        # writer dates its entries after their parents), so it costs nothing per entry.  An
        # evicting fold archives an entry's floor with its record (as its effective time,
        # which a later entry naming it reads) and drops it here: a writer whose clock runs
        # behind would otherwise grow this for ever.
        self.floors: dict[bytes, int] = _renew(self, "floors", {})
        # The effective time (own time, or floor if later) of recently readied entries: the
        # next entries' parents are mostly among them, so dating an entry reads no parent's
        # body (a fold fed from the store had evicted them: one range read and decode per
        # parent was a third of a fresh fold).  A cache: the value is a pure function of
        # the entry and its causal past, so it is never stale; bounded by dropping its older half.
        self._times: dict[bytes, int] = _renew(self, "_times", {})
        # Eviction (only with an archive): positions up to ``base`` are archived, not held.
        self.base: Key = _ZERO_KEY
        self.evicted = 0  # entries archived
        # Per author, the highest archived seq.
        self.evicted_upto: dict[bytes, int] = _renew(self, "evicted_upto", {})
        # Archived records kept: authors' latest, the genesis.
        self.old: dict[bytes, _Meta] = _renew(self, "old", {})
        # Archived records looked up recently (None: not archived, nor ready — an id of no
        # entry, such as a resource's).
        self._cache: dict[bytes, _Meta | None] = _renew(self, "_cache", {})

    # --- intake -------------------------------------------------------------------------

    def add(self, entry: Entry) -> bool:
        """Take one entry (idempotent).  Returns whether it was new to this fold."""
        eid = entry.id.raw
        if eid in self.entries:
            return False
        commons = entry.commons
        if (eid if commons is None else commons.raw) != self._commons_raw:
            return False
        archived_seq = bool(self.evicted) and entry.seq <= self.evicted_upto.get(entry.author, 0)
        if archived_seq and self._position(eid) is not None:
            return False  # archived already
        self.entries[eid] = entry
        log = self.logs.get(entry.author)
        if log is None:
            log = self.logs[entry.author] = {}
        # (A new entry at an archived seq is a fork sibling of the archived entry, whose log
        # slot went with it.)
        first = log.setdefault(entry.seq, eid) if not archived_seq else None
        if first is not eid:
            self.forks.setdefault((entry.author, entry.seq), []).append(eid)
            if entry.seq < self.fork_seq.get(entry.author, 2**63):
                self._forked_at(entry.author, entry.seq)  # the key's entries from there lose effect
            # (Else the key had forked at or before this seq already: the entry is rejected
            # wherever it sorts, taken like a late stranger's, :meth:`_late_strangers`.)
        meta = self.meta
        parents = _parents(entry)
        # The parents' records, looked up once here and handed to _make_ready.
        records: list[_Meta | None] = list(map(meta.get, parents))  # (map: no Python frame per parent)
        if None in records:
            missing = [d for d, r in zip(parents, records, strict=True) if r is None]
            if self.evicted:
                found = {d: self._known(d) for d in missing}
                records = [found[d] if r is None else r for d, r in zip(parents, records, strict=True)]
                missing = [d for d in missing if found[d] is None]
        else:
            missing = []
        if commons is not None and self._commons_raw not in meta and self._commons_raw not in missing \
                and self._commons_raw not in self.old and self._position(self._commons_raw) is None:
            missing.append(self._commons_raw)
        if missing:
            missing = list(dict.fromkeys(missing))  # (a parent named twice is waited for once)
            self.waiting[eid] = len(missing)
            waiters = self.waiters
            for dep in missing:
                listed = waiters.get(dep)
                if listed is None:
                    waiters[dep] = [eid]
                else:
                    listed.append(eid)
            return True
        self._make_ready(eid, records)  # type: ignore[arg-type]  # (none missing)
        return True

    def fork_points(self) -> dict[int, int]:
        """Each forked key's fork point by its author index (the archive keeps those keys'
        records from there by id)."""
        index = self.author_index
        return {index[author]: seq for author, seq in self.fork_seq.items() if author in index}

    def expect_forks(self, forks: Mapping[bytes, int]) -> None:
        """Fork points (key -> seq) that the entries about to be offered show: two different
        entries of the key at that seq among them.  Set now, so that the key's entries from
        there are rejected as they are applied, as the fold finds once it has taken both
        siblings, instead of applied and then refolded when the second one comes (from
        scratch, if the first was archived: a fresh fold of a commons with forks refolded
        once per forked key).  Where the fold already applied such an entry, it replays or
        refolds (:meth:`_forked_at`), as taking the second sibling would have made it.  The
        result is the same either way, provided both siblings are then offered."""
        fork_seq = self.fork_seq
        for author, seq in forks.items():
            if seq < fork_seq.get(author, 2**63):
                self._forked_at(author, seq)

    def _forked_at(self, author: bytes, seq: int) -> None:
        """``author``'s key forked at ``seq`` (lower than any fork point it had): its entries
        from there lose their effect.  The fold replays from the first of them it applied,
        or (one of them archived) takes their effect out of the state at the archive's base
        (:meth:`_void_archived`, in :meth:`run`), else refolds from scratch.  (It refolded
        from scratch always: a device restored from a backup minutes old cost a fold of the
        whole history.)"""
        self.fork_seq[author] = seq
        self.front_index = None  # (a forked key holds no stability: judged afresh)
        if self.evicted_upto.get(author, 0) >= seq:
            self._voids[author] = seq  # (run() takes their effect out of the base state, or refolds)
            return
        meta = self.meta
        affected = [meta.get(eid) for at, eid in self.logs.get(author, {}).items() if at >= seq]
        if self.forks:
            affected += [meta.get(eid) for (key, at), ids in self.forks.items() if key == author and at >= seq
                         for eid in ids]
        held = [m for m in affected if m is not None]
        if not held or not self.applied:
            return  # (none applied yet: each is rejected as it is applied)
        earliest = min(held)
        if earliest <= self.order[self.applied - 1] and (self._replay_from is None or earliest < self._replay_from):
            self._replay_from = earliest

    def missing_parents(self, raw: bytes, parent_ids: Iterable[bytes]) -> list[bytes]:
        """The parents the waiting entry ``raw`` still lacks, sorted (its commons' genesis
        among them if that is missing): those of ``parent_ids`` (its deps and prev) whose
        waiters list it."""
        waiters = self.waiters
        return sorted({dep for dep in (*parent_ids, self._commons_raw) if raw in waiters.get(dep, ())})

    def waiting_parents(self) -> dict[bytes, list[bytes]]:
        """Every waiting entry's missing parents (one pass over ``waiters``: a checkpoint
        writes them)."""
        found: dict[bytes, list[bytes]] = {raw: [] for raw in self.waiting}
        for dep, listed in self.waiters.items():
            for raw in listed:
                missing = found.get(raw)
                if missing is not None:
                    missing.append(dep)
        return found

    def add_in_order(self, entry: Entry) -> bool:
        """:meth:`add` for an entry taken in the fold's ``(clock, id)`` order with every parent
        already ready here — the store's order (:meth:`Store.in_order`, clocks computed at
        insert), as the engine's first fold reads it: no readiness queue, no waiting table, no
        re-sorting (the entry sorts last, so it is appended).  An entry that sorts earlier is
        inserted and replayed from, as :meth:`add` does; anything else (a duplicate, a fork, a
        missing parent, an entry another one waits for) goes through :meth:`add`, so the
        result is always the same.  (:meth:`take_in_order` takes a batch.)"""
        return take_in_order(self, (entry,)) > 0

    def take_in_order(self, entries: Iterable[Entry]) -> int:
        """:meth:`add_in_order` for each of ``entries`` in turn, with what the intake uses bound
        once per batch (:mod:`.intake`); how many were new to this fold."""
        return take_in_order(self, entries)

    def _make_ready(self, first: bytes, first_parents: list[_Meta] | None = None) -> None:
        # (Entries taken in log order mostly wait, then become ready in cascades here: the
        # containers and methods the loop uses are bound once, not looked up per entry.)
        stack = [first]
        meta = self.meta
        entries = self.entries
        waiting = self.waiting
        waiting_get = waiting.get
        waiters_of = self.waiters
        ready = self._ready
        held = meta.__getitem__
        while stack:
            eid = stack.pop()
            entry = entries[eid]
            # A waiter leaves the waiting table only now that its body is at hand (a lazy
            # entry table knows an entry by the fold's indexes: ready or waiting).
            waiting.pop(eid, None)
            parent_ids = _parents(entry)
            if first_parents is None:
                parents = list(map(held, parent_ids)) if not self.evicted else \
                    [meta.get(p) or self._parent(p) for p in parent_ids]
            else:
                parents = first_parents
                first_parents = None
            ready(eid, entry, parent_ids, parents)
            waiters = waiters_of.pop(eid, None)
            if waiters:
                for waiter in waiters:  # (each listed once per parent it waits for)
                    left = waiting_get(waiter)
                    if left is None:
                        continue
                    if left > 1:
                        waiting[waiter] = left - 1
                    else:
                        stack.append(waiter)  # leaves ``waiting`` when it is made ready

    def _ready(self, eid: bytes, entry: Entry, parent_ids: list[bytes], parents: list[_Meta]) -> None:
        """An entry whose parents are all ready becomes ready: its time floor, clock, version
        vector and position in ``order``."""
        meta = self.meta
        author = entry.author
        seq = entry.seq
        aidx = self.author_index.get(author)
        if aidx is None:
            aidx = self.author_index[author] = len(self.authors)
            self.authors.append(author)
        vt: _Vector
        if not parents:
            clock = 0 if entry.commons is None else 1
            vt = _causal.EMPTY
            self._remember_time(eid, entry.time)
        elif len(parents) == 1:
            clock = parents[0][0] + 1
            top = parents[0]
            vt = (top[_VV], top[_VV + 1]) if top[_VV] >= 0 else self._archived_past(entry, parent_ids)
            self._date(eid, entry, parent_ids)
        else:
            # Parents already in the causal past of the latest parent add nothing to
            # its version vector: skip them (usually all but one or two, since writers
            # depend on every head they saw).  Not with forks, where seq alone is ambiguous.
            # (Only a forked key's entries from its fork point need merging always, and a
            # past holding the other branch holds both siblings, so the fork is known by
            # then; skipping the others was tried and folded a forked commons no faster.)
            latest = max(parents, key=_by_clock)
            top = latest
            clock = top[0] + 1
            vt = top[_VV], top[_VV + 1]
            # Dated by the parents that are not in another parent's causal past: an entry's
            # effective time is at least its past's, so those add nothing to the floor (a
            # review names an old contribution its author's previous entry had seen: its
            # time is then never read, from memory or the store).
            dated = [latest[1]]
            forked = bool(self.fork_seq)
            stored = None if self.archive is None else self.archive.vector_at_hand(eid, author, self)
            if stored is not None:
                # The store computed this entry's vector at insert, and its row came with its
                # bytes: set over its base's vector, held here, it costs what the entry adds,
                # where merging its parents' vectors visits every slot they do not share
                # (with 10,000 authors, half of a fold's time).
                if vt[0] < 0:
                    dated = parent_ids
                else:
                    dated += [p[1] for p in parents if p is not latest and (forked or _vget(vt, p[2]) < p[3])]
                vt = stored
                parents = []  # (nothing left to merge)
            elif vt[0] < 0:  # (the latest parent is archived: its vector is not kept)
                vt, dated = self._archived_past(entry, parent_ids), parent_ids
            leaf = None if vt[0] else vt[1]  # (up to 32 authors the vector is one leaf)
            pair = vt[1] if vt[0] == _causal.BITS else None  # (up to 1,024: leaves under one root)
            for p in parents if dated is not parent_ids else ():
                if p is latest:
                    continue
                if forked:
                    seen = -1
                elif leaf is not None:
                    j = p[2]
                    seen = leaf[j] if j < len(leaf) else 0
                elif pair is not None:  # (_vget inlined: two tuple indexings)
                    j = p[2]
                    k = j >> _causal.BITS
                    if k < len(pair):
                        under = pair[k]
                        j &= _causal.MASK
                        seen = under[j] if j < len(under) else 0
                    else:
                        seen = 0
                else:
                    seen = _vget(vt, p[2])
                if seen < p[3]:
                    if p[_VV] < 0:  # (archived, its vector not kept: the archive answers)
                        vt, dated = self._archived_past(entry, parent_ids), parent_ids
                        break
                    dated.append(p[1])
                    vt = _merge(vt, (p[_VV], p[_VV + 1]))
                    leaf = None if vt[0] else vt[1]
                    pair = vt[1] if vt[0] == _causal.BITS else None
            self._date(eid, entry, dated)
        if seq > _vget(vt, aidx):
            vt = _vput(vt, aidx, seq)
        key = meta[eid] = tuple.__new__(_Meta, (clock, eid, aidx, seq, *vt))
        latest_raw = self.latest
        newest = latest_raw.get(author)
        if newest is None or seq > (meta.get(newest) or self.record(newest))[3]:
            latest_raw[author] = eid
            if self.front_index is not None:
                self.front_index.moved(clock, eid, author)
            if newest is not None and self.old and newest != self._commons_raw:
                self.old.pop(newest, None)
        if clock > self.max_clock:
            self.max_clock = clock
        order = self.order
        if (not order or key > order[-1]) and not (self.evicted and key <= self.base):
            order.append(key)
        else:
            self._place(key)

    def _place(self, key: _Meta) -> None:
        """Insert a ready entry's record that does not sort last into ``order``; if it sorts
        before what is applied, the next ``run`` replays from it."""
        order = self.order
        index = bisect.bisect_left(order, key)
        order.insert(index, key)
        # (At or before the archived positions: always behind what is applied.)
        if index < self.applied or (self.evicted and key <= self.base):
            self.applied += 1  # keep pointing past the same applied entries
            if self._replay_from is None or key < self._replay_from:
                self._replay_from = key

    def _date(self, eid: bytes, entry: Entry, parent_ids: list[bytes]) -> None:
        """Record the entry's floor if it is dated before an entry in its causal past: the
        latest *effective* time over its parents (a parent's own time, or its floor if that
        is later), so one backdated entry cannot launder a later one's date."""
        floor = self._floor(parent_ids)
        if floor > entry.time:
            self.floors[eid] = floor
            self._remember_time(eid, floor)
        else:
            self._remember_time(eid, entry.time)

    def _floor(self, parent_ids: Iterable[bytes]) -> int:
        """The latest effective time over these parents (each one's own time, or its floor if
        later): what an entry naming them may not be dated before.  (Also the batch intake's,
        :func:`.intake.take_in_order`.)"""
        floors = self.floors
        times = self._times
        floor = 0
        for parent in parent_ids:
            held = times.pop(parent, None)
            if held is None:
                held = floors.get(parent)
                if held is None:
                    held = self._parent_time(parent)
            times[parent] = held  # (moved to the newest end: a parent named often stays)
            if held > floor:
                floor = held
        return floor

    def _parent_time(self, raw: bytes) -> int:
        """A parent's own time, read alone (a lazy table would read ahead; a reference to
        an old entry, such as a review of an old contribution, needs only its time)."""
        entries = self.entries
        loaded = getattr(entries, "loaded", None)
        held = loaded(raw) if loaded is not None else entries.get(raw)
        if held is not None:
            return int(held.time)
        if self.archive is not None and raw not in self.meta:
            found = self.archive.time(raw)  # (kept with its record: read with it, or alone)
            if found is not None:
                return found
        if loaded is not None:
            with contextlib.suppress(KeyError):
                return int(entries.one(raw).time)  # type: ignore[attr-defined]
        return self.body(raw).time

    def times_bound(self) -> int:
        """How many effective times ``_times`` keeps at most (see ``_TIMES_MAX``)."""
        return max(_TIMES_MAX, _TIMES_PER_AUTHOR * len(self.authors))

    def _remember_time(self, eid: bytes, effective: int) -> None:
        times = self._times
        if len(times) >= _TIMES_MAX:  # drop the older half (a dict keeps insertion order)
            bound = self.times_bound()
            if len(times) >= bound:
                for old in list(islice(times, bound // 2)):
                    del times[old]
        times[eid] = effective

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

    def record(self, raw: bytes) -> _Meta:
        """The full fold record of a ready entry, held or archived (KeyError: not ready here)."""
        found = self._lookup(raw)
        if found is None:
            raise KeyError(raw)
        return found

    def drop_caches(self) -> None:
        """Forget the lookup caches of archived records (``_cache``, ``_times``, the
        archive's own): caches, never state (a checkpoint keeps none of them), refilled by the
        late entries that need them.  The engine calls it after a large fold (:mod:`.release`)."""
        self._cache.clear()
        self._times.clear()
        if self.archive is not None:
            self.archive.drop_caches()

    _position = _lookup  # (a position is the record itself: positions.Meta)

    def _known(self, raw: bytes) -> _Meta | None:
        """A possibly archived parent's record: authors' latest first (the usual parents)."""
        return self.old.get(raw) or self._position(raw)

    def _archived_past(self, entry: Entry, parent_ids: list[bytes]) -> _Vector:
        """The version vector of an entry's past where a parent it must merge is archived:
        archived records keep no vector (the store computed every entry's at insert), so the
        archive answers, from the vectors the fold still holds (:meth:`Archive.vector`)."""
        if self.archive is None:
            raise KeyError(entry.id.raw)  # (only an evicting fold has records without vectors)
        return self.archive.vector(entry.id.raw, entry.author, parent_ids, self)

    def held_vector(self, raw: bytes) -> _Vector | None:
        """The version vector of an entry whose record the fold holds (None: archived or unknown)."""
        m = self.meta.get(raw) or self.old.get(raw)
        return None if m is None or m[_VV] < 0 else (m[_VV], m[_VV + 1])

    def held_vector_at(self, author: bytes, seq: int) -> _Vector | None:
        """The version vector of ``author``'s entry at ``seq`` if the fold holds it (None where
        the log forked: two entries there)."""
        if author in self.fork_seq:
            return None
        log = self.logs.get(author)
        raw = None if log is None else log.get(seq)
        return None if raw is None else self.held_vector(raw)

    def _parent(self, raw: bytes) -> _Meta:
        found = self._known(raw)
        if found is None:
            raise KeyError(raw)
        return found

    def body(self, raw: bytes) -> Entry:
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
        if self._voids:
            voids, self._voids = self._voids, {}
            if not self._refold and not self._void_archived(voids):
                self._refold = True
        if self.evicted and self._replay_from is not None and self._replay_from <= self.base and not self._refold \
                and self._late_strangers():
            self._replay_from = None  # restored to the base: the loop below replays the window
        # What the fold concluded at or after the replay point may not hold any more (what
        # arrived may stop a sanction there): an exclusion, or a sanction made void there —
        # and what was concluded before it under them (another sanction voided because that
        # exclusion rejected it, an exclusion that won only then) neither.  Only a replay from
        # the start, without exclusions or void marks, finds what a fold from scratch does.
        replay_from = self._replay_from
        meta = self.meta
        from_start = self._refold or (replay_from is not None and (
            any(ex.cause >= replay_from for ex in self.exclusions)
            or any(tag[:-32] in meta and meta[tag[:-32]] >= replay_from for tag in self.void)))
        if self.void and (from_start or replay_from is not None):
            # Judged again wherever the fold replays them (what arrived may settle them).
            replay: Key = _ZERO_KEY if from_start or replay_from is None else replay_from
            self.void = {tag for tag in self.void if tag[:-32] in meta and meta[tag[:-32]] < replay}
        if from_start:
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
        """Exclusions whose removal did not take effect in the end (it took effect, and with
        its exclusion in force a replay did not: the state's ``excluded`` table, which the
        handler's :meth:`excluding` call fills, lacks it) are dropped and made void (per
        removing entry and member: one entry may decide several removals);
        the fold then replays from the start.  True if it did.  Each round voids at least one
        sanction, which never excludes again, so this terminates."""
        state = self.state
        in_force = state.excluded if state is not None else {}
        stale = [ex for ex in self.exclusions
                 if ex.cause_id.raw in self.meta and (ex.cause_id.raw, ex.member) not in in_force]
        if not stale:
            return False
        self.void.update(ex.cause_id.raw + ex.member for ex in stale)
        self.exclusions = [ex for ex in self.exclusions if ex not in stale]
        self._restore(_ZERO_KEY)
        return True

    def _planned_front(self) -> Key | None:
        """Where a run plans the snapshot its eviction will use as base (:meth:`_planned`):
        the eviction front, or the run's last position when nothing bounds the front."""
        if self.archive is None:
            return None
        front = self._front()
        return self.order[-1] if front is _UNBOUNDED and self.order else front

    def _apply_all(self) -> None:
        order = self.order
        front = self._planned_front()  # (the plan's eviction target)
        apply = self._apply
        every = self.snapshot_every
        while (applied := self.applied) < len(order):
            key = order[applied]
            try:
                apply(key)
            except _Conflict as conflict:
                self.restarts += 1
                self.exclusions.append(conflict.exclusion)
                self._restore(conflict.earliest)
                front = self._planned_front()
                continue
            self.applied = applied + 1
            # (Past the minimum interval, the state's size is looked at every 16 entries only,
            # and at the eviction front.)
            since = self.since_snapshot = self.since_snapshot + 1
            if since >= every and (since == every or not since & 15 or key is front) \
                    and self.state is not None \
                    and self._planned(self._interval(), key is front, front is not None):
                self._snapshot(key)

    def _interval(self) -> int:
        """Positions between snapshots: the state's size / 32, at least ``snapshot_every`` and
        at most ``SNAPSHOT_MAX``.  The floor keeps copies rare while a copy cost O(rows); the
        big tables' copies now cost what changed since their last merge (:mod:`.compact`), so
        the ceiling costs little, and it bounds what a late entry replays (the window after
        the newest snapshot before it; with eviction, after the archive's base: about two
        intervals in a daemon taking appends) independently of the state's size."""
        assert self.state is not None
        return max(self.snapshot_every, min(self.state.size() // 32, SNAPSHOT_MAX))

    def _planned(self, interval: int, at_front: bool, evicting: bool) -> bool:
        """Take a snapshot here?  Due every ``interval`` positions (:meth:`_interval`: the
        state's size / 32, at most ``SNAPSHOT_MAX``).  A bulk fold (``run`` with many positions of
        ``order`` not yet applied) knows where the run ends, so it takes only the snapshots
        that would survive: each costs a State.copy, and most were thinned or evicted soon
        after (157 in a 100k fold, 12 of them kept).

        * With eviction (``evicting``: an eviction front known at the start of the run, the
          position every member's next entry sorts after, :meth:`_front`): at the front
          (``at_front``) — its snapshot becomes the eviction's base, and every earlier one
          would be evicted with it — if one would be half due by the run's end (so the
          window a late entry replays after a run stays within half an ``interval``: it
          was anywhere up to one); at the run's
          last position (an append), if due; and otherwise one every ``EVICT_EVERY``
          positions at most, so that a long run (a refold) still archives, and drops the
          bodies it decoded, as it goes.
        * Without: logarithmic spacing from the run's end — a snapshot only once at least
          ``PLAN_SPACING`` times its distance from the end has passed since the previous one,
          so the newest are ``interval`` apart and older ones ever further apart, the same
          kind of set :meth:`_thin_snapshots` leaves (a late entry ``d`` positions back
          replays at most about ``(1 + PLAN_SPACING) d + interval`` positions).

        An append (one position pending) takes every snapshot due, as before.  Only memory
        and the cost of later replays depend on this, never the result."""
        since = self.since_snapshot
        left = len(self.order) - self.applied  # positions after this one in the run
        if evicting:
            if at_front:
                return since + left >= interval // 2
            return since >= interval and (not left or since >= EVICT_EVERY)
        return since >= interval and since >= left * PLAN_SPACING

    def _late_strangers(self) -> bool:
        """Apply entries sorting at or before the archived positions without a refold, when
        the rules say the state at the archive's base judges them for every earlier position
        (:func:`.handlers.late.late_judge`: a stranger's or former member's entry, through
        its handler; a removed member's, through strong removal, if only removals exclude
        them and one excludes this entry, citing the earliest such removal, as the fold of
        everything does).  Their effect goes into the state at the base, and the window after
        it is replayed.  True if all were; anything else (a retired member's entry, which
        takes effect) refolds."""
        base_state, base_error = self.snap_states[0]
        if base_state is None or base_error:
            return False
        judge = late_judge(base_state)
        probe = base_state.copy()
        results: list[tuple[bytes, tuple[str, str]]] = []
        for key in self.order:
            if key > self.base:
                break
            eid = key[1]
            entry = self.entries[eid]
            if entry.commons is None:
                return False
            fork = self.fork_seq.get(entry.author) if self.fork_seq else None
            if fork is not None:
                if entry.seq < fork:
                    return False
                results.append((eid, (REJECTED, forked_reason(fork))))  # (the first check, wherever it sorts)
                continue
            verdict = judge(entry)
            if verdict == REMOVED:
                reason = self._removed_for_good(entry, base_state)
                if reason is None:
                    return False
                results.append((eid, (REJECTED, reason)))
                continue
            if verdict != STRANGER:
                return False
            floor = self.floors.get(eid)
            if floor is not None:
                results.append((eid, (REJECTED, _backdated(entry.time, floor))))
                continue
            handler = HANDLERS.get(entry.kind)
            if handler is None:
                results.append((eid, (REJECTED, f"Unknown entry kind '{entry.kind}'.")))
                continue
            try:
                status = handler(self, probe, entry, self.meta[eid])
            except Rejected as rejected:
                results.append((eid, (REJECTED, rejected.reason)))
                continue
            if status != PENDING:  # pragma: no cover - a non-member's entry never applies by itself
                return False
            results.append((eid, _PLAIN[PENDING]))
        for eid, outcome in results:
            self.outcomes[eid] = outcome
        self._rebase(probe, base_error)  # (the base state now includes them)
        # They are in the base state now: archived at once, as the positions before them
        # were.  (Held, each later pass took them into the base state again: strangers'
        # logs arriving one after another cost the square of their groups, and a table's
        # count of rows went wrong.)
        self._archive_prefix(self.applied, self.base)
        return True

    def _rebase(self, state: _State, error: str) -> None:
        """Make ``state`` the state at the archive's base (it took in what arrived late, or
        lost what a new fork point voided there) and go back to it: the window after the
        base is replayed."""
        self.snap_states[0] = (state, error)
        del self.snap_keys[1:]
        del self.snap_states[1:]
        self.state = state.copy()
        self.genesis_error = error
        self.applied = bisect.bisect_right(self.order, self.base)
        self.since_snapshot = 0

    def _void_archived(self, voids: dict[bytes, int]) -> bool:
        """Keys that forked at a seq whose entries the archive holds (``voids``: key -> new
        fork point): their entries from there lose their effect (the fork penalty) without a
        refold, when the state at the base shows what that effect was.  True if done (the
        base state without it; the window replays); False: the fold must refold.

        Why it is exact.  It is done only for a key that is a stranger at the base
        (:func:`.handlers.late.late_judge`, as for a late stranger's entry) whose archived
        entries from the fork point were each rejected (no effect) or recorded pending (a
        join, an outsider's contribution, still pending and unreviewed: its record is taken
        out, :func:`.handlers.late.take_out`), and which no other key's entry names (an
        admission, a review, a contribution's refs: judged again, it could come out
        otherwise).  An entry that has one of them in its past without naming it comes out
        the same: handlers look at an entry's past only through what it names and members'
        grants, and its time floor counts its parents' times whatever their outcome.  The
        archive is asked whether one is named only for those another key's latest entry has
        in its past (members' next entries name the newest heads, a stranger's among them),
        at most ``VOID_ASKS`` of them (each a lookup in the store's ``named`` table).  The one rule that
        looks at a pending join without naming it — a key with a pending join cannot be
        bound as a device — makes a join that leaves its key with none refold whenever a
        stored device entry names that key.

        Their outcomes are not rewritten in the archive: an archived entry of a key from its
        fork point on is rejected by the fork penalty, whatever its record says
        (:meth:`.views.CommonsState.outcome`), so a checkpoint written before the fork still
        agrees with the archive.  Why all this: a stranger who signed two entries at one seq,
        one of them archived, refolded the whole commons — 5-6 CPU-s at 100,000 entries, 40-60
        at a million — for the price of two signatures, again with every new key."""
        archive = self.archive
        base_state, base_error = self.snap_states[0]
        if archive is None or base_state is None or base_error or self.snap_keys[0] != self.base:
            return False
        judge = late_judge(base_state)
        probe = base_state.copy()
        for author, seq in voids.items():
            aidx = self.author_index.get(author)
            if aidx is None:
                return False
            records = archive.records_of(aidx, author, seq)
            seen = self._seen_by_others(author, aidx)
            asked = [record[1] for record, _, _ in records if record[3] <= seen]
            if len(asked) > VOID_ASKS or any(archive.names_entry(raw, author) for raw in asked):
                return False
            for record, status, _ in records:
                entry = self.body(record[1])
                if judge(entry) != STRANGER or not take_out(probe, entry, status, archive.names_key):
                    return False
        self.voided += 1
        self._rebase(probe, base_error)
        return True

    def _seen_by_others(self, author: bytes, aidx: int) -> int:
        """The highest seq of ``author``'s log that an entry by another key has in its causal
        past (its log's latest has then: vectors only grow along a log; a forked key's other
        branches are rejected wherever they sort); unbounded where a latest entry's vector is
        not held."""
        seen = 0
        for other, raw in self.latest.items():
            if other == author:
                continue
            meta = self._known(raw)
            if meta is None or meta[_VV] < 0:
                return 2**63
            seen = max(seen, meta.seen(aidx))
        return seen

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

    def _front(self) -> Key | None:
        """The eviction front: the minimum over the stability set of their latest entry (a
        member's next entry chains through it, so it sorts after; members silent for
        ``silent_after`` clock ticks left out).  When that leaves nobody (every member silent,
        as in an open commons whose founders went quiet while strangers write), no member's
        next entry bounds it: ``_UNBOUNDED``, every applied position may go, and an entry
        sorting back there is a stranger's or a silent member's, taken as they always are.
        None: nothing can be evicted now (no state yet, a member with no entry yet).  Forked
        keys hold no stability: left out, as the walk leaves them out."""
        if self.state is None:
            return None
        horizon = self.max_clock - self.silent_after
        if horizon > 0:
            return self._front_kept(horizon)
        return self._front_walk()

    def _front_walk(self) -> Key | None:
        """:meth:`_front` by walking every key that holds stability: while a member who never
        wrote still bounds it (the first ``silent_after`` clock ticks)."""
        if self.state is None:
            return None
        horizon = self.max_clock - self.silent_after
        front: Key = _UNBOUNDED
        for author in stability_set(self):
            newest = self.latest.get(author)
            if newest is None:
                if horizon > 0:
                    continue  # never wrote, for long: silent (see ``silent_after``)
                return None
            record = self.record(newest)
            if record[0] < horizon:
                continue  # silent: an entry of theirs from that old view refolds
            if record < front:
                front = record
        return front

    def _front_kept(self, horizon: int) -> Key:
        """:meth:`_front` from the index of latest entries (:mod:`.front`), once every
        member who never wrote counts as silent (``horizon`` past 0):
        O(log authors) instead of a walk over the members."""
        state = self.state
        assert state is not None
        index = self.front_index
        if index is None:
            index = self.front_index = FrontIndex(self.latest, lambda raw: self.record(raw)[0])
        members, devices = state.members, state.devices
        forked = self.fork_seq  # (a forked key holds no stability; a new fork drops the index)
        found = index.front(self.latest, horizon, state.rules.get("retire", {}).get("after", 0), self.max_clock,
                            (members, devices),
                            lambda author: author not in forked and holds_stability(members, devices, author))
        return _UNBOUNDED if found is None else self.record(found[1])

    def _evict(self) -> None:
        """Archive the records of the positions up to the newest snapshot that every member's
        next entry must sort after (:meth:`_front`).  Only an entry by someone outside that
        set (or a silent member) (a non-member, a retired member, a forker) can still sort
        there; it refolds."""
        front = self._front()
        if front is None or self.applied == 0:
            return
        keys = self.snap_keys
        j = bisect.bisect_right(keys, front) - 1
        if j <= 0:
            return
        base = keys[j]
        n = bisect.bisect_right(self.order, base)
        if n > self.applied:  # pragma: no cover - snapshots are of applied positions
            return
        self._archive_prefix(n, base)
        self.base = base
        del keys[:j]
        del self.snap_states[:j]

    def _archive_prefix(self, n: int, base: Key) -> None:
        """Archive the records of the first ``n`` positions of ``order`` (applied, and at or
        before ``base``, the position of the state the fold would restart from) and drop
        them from memory."""
        if not n:
            return
        archive = self.archive
        assert archive is not None
        meta = self.meta
        other = self.outcomes.other
        # (A few passes over the archived positions, most of them in C, rather than one
        # Python loop doing everything per position.  They are those up to ``base``.)
        for raw in (*self.latest.values(), self._commons_raw):  # authors' latest, the genesis: kept
            m = meta.get(raw)
            if m is not None and m <= base:
                self.old[raw] = m
        ids = [position[1] for position in self.order[:n]]
        metas = list(map(meta.pop, ids))
        rows: list[tuple[_Meta, str, str]]
        if other:
            outcomes = [other.pop(raw, _APPLIED_PLAIN) for raw in ids]
            rows = [(m, outcome[0], outcome[1]) for m, outcome in zip(metas, outcomes, strict=True)]
        else:
            rows = list(zip(metas, repeat(APPLIED), repeat(""), strict=False))
        entries = self.entries
        discard = getattr(entries, "discard_many", None)
        bodies: list[Entry | None]
        bodies = [None] * n if discard is not None else [entries.pop(raw, None) for raw in ids]
        # The entries' effective times go with their records (a later entry naming one it had
        # not seen needs both): the recent ones, else an entry's floor, which then leaves
        # memory with it (``floors`` would otherwise grow with every backdated entry ever
        # taken), else a body still held (-1: unknown, the archive reads the entry's own
        # time, which is its effective time: it has no floor).
        times = list(map(self._times.get, ids))
        untimed = list(compress(range(n), map(is_, times, repeat(None))))  # (in C: most are known)
        floors = self.floors
        if floors and untimed:
            floored = floors.keys() & {ids[at] for at in untimed}
            if floored:
                for at in untimed:
                    if ids[at] in floored:
                        times[at] = floors[ids[at]]
                untimed = [at for at in untimed if times[at] is None]
        if floors:
            for eid in floors.keys() & ids:
                del floors[eid]
        if untimed:
            loaded = getattr(entries, "loaded", None)
            for at in untimed:
                body = bodies[at] if loaded is None else loaded(ids[at])
                times[at] = -1 if body is None else body.time
        if discard is not None:
            discard(ids)
        if self.forks:  # (Archived fork siblings leave ``forks`` too: the archive keeps their
            gone = set(ids)  # records, and only held ones are looked up there.)
            for forked_at, siblings in list(self.forks.items()):
                kept = [raw for raw in siblings if raw not in gone]
                if len(kept) != len(siblings):
                    if kept:
                        self.forks[forked_at] = kept
                    else:
                        del self.forks[forked_at]
        # Each author's log slots of what is archived go; the highest archived seq is kept.
        authors = self.authors
        logs = [self.logs.get(author) for author in authors]
        upto = self.evicted_upto
        top = [upto.get(author, 0) for author in authors]
        for m in metas:
            aidx = m[2]
            seq = m[3]
            log = logs[aidx]
            if log is not None and log.get(seq) == m[1]:
                del log[seq]
            if seq > top[aidx]:
                top[aidx] = seq
        for aidx, seq in enumerate(top):
            if seq:
                upto[authors[aidx]] = seq
        archive.put(rows, bodies, authors, times, self.fork_points(), self.evicted)  # type: ignore[arg-type]  # (no None left)
        cache = self._cache
        unknown = [raw for raw, found in cache.items() if found is None]
        if unknown:  # the cache may say "not archived" of what now is
            now = set(ids)
            for raw in unknown:
                if raw in now:
                    del cache[raw]
        del self.order[:n]
        self.applied -= n
        self.evicted += n

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
        if self.applied:
            self.replays += 1
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
        far are kept (the caller clears them where they may no longer hold).  A fold whose
        owner refolds from its own order instead (``refold_in_place`` False: the engine's,
        which reads the store in batches, where this reads every entry into memory at once)
        raises :class:`MustRefold`, and is then of no further use."""
        assert self.archive is not None
        if not self.refold_in_place:
            raise MustRefold
        self.refolds += 1
        held = [self.entries[raw] for raw in [*self.meta, *self.waiting]]
        archived = list(self.archive.entries())
        exclusions = self.exclusions
        self._reset()  # (author indexes are assigned afresh)
        self.archive.clear()
        for entry in archived:
            self.add(entry)
        for entry in held:
            self.add(entry)
        self.exclusions = [ex._replace(cause=self.meta[ex.cause[1]]) for ex in exclusions if ex.cause[1] in self.meta]
        self._refold = False

    def _apply(self, key: Key) -> None:
        eid = key[1]
        # (The body from the table's dict of held bodies, in C: a lazy table's ``__getitem__``
        # is a Python call per applied entry, and the body is nearly always held.)
        entries = self.entries
        entry = (entries if type(entries) is dict else getattr(entries, "bodies", _NO_BODIES)).get(eid)
        if entry is None:
            entry = entries[eid]
        meta: _Meta = key  # type: ignore[assignment]  # (``order`` holds the records themselves: positions.Meta)
        if entry.commons is None:
            if eid != self._commons_raw:
                self.outcomes[eid] = (REJECTED, "This genesis founds a different commons.")
                return
            self._genesis(entry)
            return
        state = self.state
        if state is None or self.genesis_error:
            why = f"invalid (its {self.genesis_error} is not valid)." if self.genesis_error else "missing."
            self.outcomes[eid] = (REJECTED, "The commons' genesis is " + why)
            return
        author = entry.author
        fork = self.fork_seq.get(author) if self.fork_seq else None
        if fork is not None and entry.seq >= fork:
            self.outcomes[eid] = (REJECTED, forked_reason(fork))
            return
        excluded = self._exclusion(author, entry.seq, state, meta) if self.exclusions else None
        if excluded is not None:
            self.outcomes[eid] = (REJECTED, _strong_removal(excluded))
            return
        floor = self.floors.get(eid) if self.floors else None
        if floor is not None:
            self.outcomes[eid] = (REJECTED, _backdated(entry.time, floor))
            return
        handler = HANDLERS.get(entry.kind)
        try:
            if handler is None:
                raise Rejected(f"Unknown entry kind '{entry.kind}'.")
            status = handler(self, state, entry, meta)
        except Rejected as rejected:
            self.outcomes[eid] = (REJECTED, rejected.reason)
        else:
            if status == APPLIED:
                self.outcomes.other.pop(eid, None)
            else:
                self.outcomes.other[eid] = _PLAIN[status]

    def _lifted(self, state: _State, author: bytes, meta: _Meta, cause: Key) -> bool:
        """Did a reinstatement that came after the suspension ``cause`` lift it for this entry?"""
        reinstatement = state.lifted.get(author)
        if reinstatement is None or not self.in_past(reinstatement, meta):
            return False
        rmeta = self._position(reinstatement.raw)
        return rmeta is not None and rmeta.key > cause

    # --- the view handlers see (handlers.view.View) ----------------------------------------

    def in_past(self, target: CID, meta: _Meta) -> bool:
        """Is ``target`` in the causal past of the entry described by ``meta``?"""
        raw = target.raw
        if raw == self._commons_raw:
            return True
        tmeta = self.meta.get(raw)
        if tmeta is None:
            tmeta = self._position(raw)  # (a member's admission: in ``_cache``)
            if tmeta is None:
                return False
        # The target author's slot in the version vector (``causal.get``, inlined: the
        # handlers ask this several times per entry).  (4, 5: the vector's shift and root,
        # positions.VV; up to 32 authors the root is the one leaf, shift 0.)
        index = tmeta[2]
        shift = meta[4]
        node = meta[5]
        if shift:
            if index >> shift >> 5:
                return False
            while shift:
                j = (index >> shift) & 31
                if j >= len(node):
                    return False
                node = node[j]
                shift -= 5
            index &= 31
        found: bool = index < len(node) and node[index] >= tmeta[3] and (
            tmeta[0] < meta[0] or (tmeta[0] == meta[0] and tmeta[1] < meta[1]))
        return found

    def kind_of(self, target: CID) -> str:
        """The kind of a ready entry, held or archived (the store's ``kind`` column)."""
        raw = target.raw
        if raw in self.meta or self.archive is None:
            return self.entries[raw].kind
        return self.archive.kind(raw) or ""

    def is_entry(self, target: CID) -> bool:
        return self._position(target.raw) is not None

    def time_of(self, target: CID) -> int:
        return self.body(target.raw).time

    def seq_of(self, target: CID) -> int:
        position = self._position(target.raw)
        return position[3] if position is not None else 0

    def seen_seq(self, author: bytes, meta: _Meta) -> int:
        aidx = self.author_index.get(author)
        return meta.seen(aidx) if aidx is not None else 0

    def is_void(self, sanction: CID, member: bytes) -> bool:
        return sanction.raw + member in self.void

    def excluding(self, member: bytes, sanction: CID, meta: _Meta, liftable: bool) -> None:
        """Make a removal or suspension strong: exclude the member's entries outside its past."""
        aidx = self.author_index.get(member)
        after = meta.seen(aidx) if aidx is not None else 0
        exclusion = _Exclusion(member, after, meta.key, sanction, liftable)
        if exclusion in self.exclusions:
            assert self.state is not None
            self.state.excluded[(sanction.raw, member)] = True
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
        assert self.state is not None
        self.state.excluded[(sanction.raw, member)] = True

    # --- results -------------------------------------------------------------------------

    def _genesis(self, entry: Entry) -> None:
        self.state, self.genesis_error, reason = found(entry)
        self.outcomes[entry.id.raw] = (REJECTED, reason) if self.genesis_error else (APPLIED, "")

    def result(self) -> CommonsState:
        from .views import CommonsState  # (the views read the replayer; not the reverse)

        self.run()
        return CommonsState(self)


def _strong_removal(excluded: _Exclusion) -> str:
    return f"Strong removal: written outside the causal past of the sanction {excluded.cause_id} against its author."


class MustRefold(Exception):
    """The fold must start again from scratch and its owner does that itself
    (:attr:`Folder.refold_in_place` False)."""


def forked_reason(fork: int) -> str:
    """Why an entry of a key that forked at ``fork`` is rejected (the fork penalty)."""
    return (f"Its author signed two different entries at seq {fork} (a fork); "
            "the author's entries from the fork point on have no effect.")


def _backdated(time: int, floor: int) -> str:
    return (f"It is dated {time}, before {floor}, the time of an entry in its causal past "
            "(an entry's time is never earlier than its parents').")


def stability_set(folder: Folder) -> list[bytes]:
    """The keys whose latest entries define stability: active or suspended members' own keys
    and active devices, not forked, not retired."""
    state = folder.state
    if state is None:
        return []
    retire = state.rules.get("retire", {}).get("after", 0)
    result = []
    for author in stability_holders(state):  # members' own keys and their active devices
        if author in folder.fork_seq:
            continue
        newest = folder.latest.get(author)
        if retire and folder.max_clock - (folder.record(newest).clock if newest is not None else 0) > retire:
            continue
        result.append(author)
    return result


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
