"""Keeping a commons' state up to date with what the store holds.

The fold (:mod:`.fold`) is pure; this module feeds it from the store and caches results.

* A live :class:`~.fold.Folder` per (store file, commons) stays in memory for the life of
  the process (the node daemon), so an entry that arrives after the others costs O(1)
  amortized to apply, and a late entry replays only from the nearest in-memory snapshot
  before its position.  The fold is offered only entries the store has placed (every parent
  stored: the clocks are computed at insert), in the store's ``(clock, id)`` order: a first
  fold reads the whole commons so (:meth:`Store.in_order_rows`) and only appends; later,
  what arrived or was placed since its marks (:meth:`Store.placed_since`), so each call reads
  only what is new.  Entries still missing a parent wait in the store, counted as waiting
  (:mod:`.held`).  A replay reads the bodies it needs in ranges of the store's order
  (:meth:`Store.in_order_from`), not one query each.
* The result's head (state hash, entry count, watermark) and a checkpoint of the
  fold (:mod:`.checkpoint`: per-entry metadata, outcomes and the state as a snapshot at the
  last position) are written to the store's cache table under ``state/<commons>/…`` (local
  derived data, never replicated).  A new process resumes from the checkpoint and applies
  only the entries that arrived since; a late entry replays from the nearest snapshot the
  checkpoint kept (or from the start), loading old entries from the store as needed.
  ``verify_state`` rebuilds from scratch and compares.
* The live fold evicts (:mod:`.fold`, "Eviction"): records of positions final for every
  member go to the store's ``fold_segments`` table (:class:`.archive.StoreArchive`), so a long-lived
  daemon's memory is bounded by the state and a window of recent entries, not by the
  history.  A first fold from the store applies entries in batches of ``FEED_BATCH`` so
  that it never holds more than a batch of decoded bodies; so does a fold that must start
  again from scratch (:func:`_afresh`: the live fold is dropped and folded afresh).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import cbor2

from .. import tables
from ..dagcbor import CID
from ..entry import Entry, Signer, decode_stored
from ..errors import StoreBusy, StoreCorrupt, StoreError
from ..store import FoldRow, Store
from . import checkpoint
from .archive import DamagedArchive, StoreArchive
from .fold import Folder, MustRefold, bulk
from .positions import parents
from .release import release_caches, release_freed_memory
from .views import CommonsState


class StateMismatch(StoreCorrupt):
    """The cached or incremental commons state differs from a rebuild from scratch."""


CACHE_PREFIX = "state/"
CACHE_VERSION = 2
# Automatic cache writes happen every max(PERSIST_EVERY, entries // 10) new entries: each
# costs O(state), so this keeps their amortized cost per entry constant.
PERSIST_EVERY = 1000
READ_AHEAD = 256  # bodies read at once when a replay needs one the fold does not hold
KEEP_BODIES = 2048  # decoded bodies of the newest entries kept between folds (a late entry's replay)
FEED_BATCH = 2048  # a first fold from the store applies (and evicts) entries in batches of this many


@dataclass
class _Live:
    folder: Folder
    store: Store | None = None
    max_n: int = 0  # the store's arrival number of the newest entry offered to the fold
    max_k: int = 0  # the store's number of the newest late placement offered to it
    count: int = 0  # entries of the commons accounted for: taken by the fold, or held back
    state: CommonsState | None = None
    folded_count: int = -1
    persisted_count: int = -1

    def load_entry(self, raw: bytes) -> Entry | None:
        """Entries a checkpointed fold knows but has not loaded come from the current store."""
        return None if self.store is None else self.store.get(CID(raw))

    def load_ahead(self, clock: int, raw: bytes) -> list[Entry]:
        """The bodies from position ``(clock, raw)`` on, in the store's order (a replay's)."""
        if self.store is None:
            return []
        return [decode_stored(body) for body in self.store.in_order_from(self.folder.commons, clock, raw, READ_AHEAD)]


_live: dict[tuple[str, bytes], _Live] = {}
_lock = threading.Lock()


# Entries folded at once after which the heap pages the fold freed are given back (.release).
TRIM_AFTER = 20_000


def _key(store: Store, commons: CID) -> tuple[str, bytes]:
    return (os.path.abspath(store.path), commons.raw)


def _cache_key(commons: CID, part: str) -> str:
    return f"{CACHE_PREFIX}{commons}/{part}"


def _untouched(live: _Live) -> bool:
    """Has the live fold taken nothing yet (its first feed reads the store's order)?"""
    return live.max_n == 0 and not live.folder.meta and not live.folder.waiting


def _feed(live: _Live, store: Store, commons: CID, *, archive: bool = True, again: bool = False) -> _Live:
    """Offer the fold the entries placed since it last looked; the live fold (a new one if
    it folded afresh, :func:`_refold_fresh`).

    The store places an entry at insert, once it holds every parent (its clock, :meth:`Store.insert`);
    only placed entries are offered, in the store's ``(clock, id)`` order, so the fold takes
    them without a readiness queue, and an entry whose parent the store lacks waits there
    (held back, :mod:`.held`: the state counts it as waiting).  A first fold reads the whole
    commons that way (:meth:`Store.in_order_rows`); later ones read what arrived since
    (placed at insert) and what was placed since (its missing parent came), merged by the
    store into that order (:meth:`Store.placed_since`).  Why: a bundle or a peer delivering
    log by log brings most entries before the other logs' entries they name; the fold held
    each waiting, dropped its body, read and decoded it again one query at a time when its
    parents came, and went back for the late ones.

    What it takes may make the fold refold from scratch (a member's key's first fork, where
    the key's entries from there were archived; a late entry that takes effect before the archived
    positions): the fold is then dropped and folded afresh from the store's order
    (:func:`_afresh`), in batches, as a first fold is.  Why: the fold's own refold reads
    every entry back into memory at once and re-archives as it goes (13 s at 100,000
    entries against a fresh fold's 5-8 s, with every body held at once).  ``again``: this is
    that fresh fold, which refolds in place if it must (it does not start over again)."""
    rows: Iterator[FoldRow] | None = None
    if not _untouched(live):
        if _refold_fresh(live, store, commons):
            _drop(store, _key(store, commons))
            live = _live[_key(store, commons)] = _fresh(store, commons, archive=archive)
        else:
            marks, rows = store.placed_since(commons, live.max_n, live.max_k)
    folder = live.folder
    folder.refold_in_place = again
    if rows is None:
        marks = store.feed_mark(commons)
        rows = store.in_order_rows(commons, upto=marks[:2])  # (with each stored id: not hashed again)
        # A fresh fold knows the forks among what it is offered before it takes it: a key's
        # entries from its fork point are then rejected as they come, rather than applied,
        # archived, and refolded from scratch once the second sibling came (once per forked
        # key).  (Later feeds are small: a sibling in one refolds as it did.)
        forks = store.placed_forks(commons, marks[:2])
        if forks:
            folder.expect_forks(forks)
    # (A batch at a time, so the intake binds what it uses once per batch, not once per entry.)
    while batch := list(islice(rows, FEED_BATCH)):
        if isinstance(folder.archive, StoreArchive):  # (vectors of the general intake's entries: Folder._ready)
            folder.archive.rows_at_hand([(entry_id, vv) for _, entry_id, vv in batch])
        folder.take_in_order(decode_stored(raw, entry_id) for raw, entry_id, _ in batch)
        if len(batch) == FEED_BATCH and folder.archive is not None:
            # Apply as we go, so an evicting fold never holds more than a batch of bodies.
            try:
                folder.run()
            except MustRefold:
                return _afresh(store, commons, archive)
            if isinstance(folder.entries, checkpoint.LazyEntries):
                folder.entries.evict(KEEP_BODIES)
    if isinstance(folder.archive, StoreArchive):
        folder.archive.rows_at_hand(())
    live.max_n, live.max_k, stored = marks
    _hold(live, stored)
    return live


def _afresh(store: Store, commons: CID, archive: bool) -> _Live:
    """Drop the live fold (it must refold from scratch) and fold afresh from the store's
    order, in batches, as a first fold does (:func:`_feed`)."""
    _drop(store, _key(store, commons))
    live = _live[_key(store, commons)] = _fresh(store, commons, archive=archive)
    return _feed(live, store, commons, archive=archive, again=True)


def _hold(live: _Live, stored: int) -> None:
    """Account for the commons' ``stored`` entries: those the fold has not taken are held back."""
    folder = live.folder
    taken = folder.count() + len(folder.waiting)
    if not isinstance(folder.held, _StoreHeld):
        folder.held = _StoreHeld(live)
    folder.held.count = max(0, stored - taken)
    live.count = taken + folder.held.count


class _StoreHeld:
    """The live fold's :class:`.held.HeldBack`: its commons' entries the store keeps waiting
    for a parent it lacks."""

    def __init__(self, live: _Live) -> None:
        self.live = live
        self.count = 0

    def ids(self) -> list[bytes]:
        store = self.live.store
        return [] if store is None or not self.count else store.held_ids(self.live.folder.commons)

    def find(self, raw: bytes) -> tuple[Entry, list[bytes]] | None:
        store = self.live.store
        if store is None or not self.count:
            return None
        entry = store.get(CID(raw))
        if entry is None or entry.commons != self.live.folder.commons or store.clock_of(entry.id) is not None:
            return None
        # (As the fold lists a waiting entry's: sorted, once each, its genesis too if missing.)
        commons = self.live.folder.commons.raw
        return entry, sorted({p for p in (*parents(entry), commons) if store.clock_of(CID(p)) is None})


def current_state(store: Store, commons: CID, *, persist: bool | None = None) -> CommonsState:
    """The state of ``commons`` for exactly the entries the store holds now.

    Call it after every ingest or local write; it does only the work the new entries need.
    ``persist``: write the materialization to the cache now (True), never (False), or
    automatically (None: on a process's first read, then every ``PERSIST_EVERY`` entries,
    because hashing and writing the state costs O(state) and appends must stay O(1)).
    """
    key = _key(store, commons)
    with _lock, bulk():
        try:
            return _current(store, commons, key, persist, resume=True)
        except (StoreBusy, sqlite3.OperationalError):
            if not store.reader:
                raise
            # A read-only command never waits on a writer: the fold's archive could not be
            # written (another process took the lock mid-fold), so fold again in memory.
            _live.pop(key, None)
            return _current(store, commons, key, False, resume=False, archive=False)
        except DamagedArchive:
            # A damaged local cache (the fold's archive): fold again from the entries, which
            # are verified data, without the checkpoint that named that archive; if the
            # archive cannot serve that fold either (an entry's vector row is missing: its
            # past lost an entry before the store computed vectors), hold everything instead.
            _drop(store, key)
            try:
                return _current(store, commons, key, persist, resume=False)
            except DamagedArchive:
                _drop(store, key)
                return _current(store, commons, key, persist, resume=False, archive=False)


def _current(store: Store, commons: CID, key: tuple[str, bytes], persist: bool | None, *,
             resume: bool, archive: bool = True) -> CommonsState:
    """current_state's work, with the lock held (``resume``: from the checkpoint if any;
    ``archive``: a fresh fold may evict to the store's archive)."""
    live = _live.get(key)
    if live is None:
        live = (_resume(store, commons) if resume else None) or _fresh(store, commons, archive=archive)
        _live[key] = live
        _cleanup_archives(store)
    live.store = store
    live = _feed(live, store, commons, archive=archive)
    folded_before = max(live.folded_count, 0)
    if live.state is None or live.folded_count != live.count or live.folder.applied != len(live.folder.order):
        try:
            live.state = live.folder.result()
        except MustRefold:  # (what was taken takes effect before the archived positions)
            live = _afresh(store, commons, archive)
            live.state = live.folder.result()
        live.folder.refold_in_place = False
        with contextlib.suppress(Exception):  # a read-only store: ingest falls back to the genesis rules
            from ..outsiders import remember_policy

            remember_policy(store, commons, live.state.rules)
        if live.folded_count < 0 and live.persisted_count == live.count:
            # Just resumed from a checkpoint with nothing new: its hash is already known.
            head = cached_head(store, commons)
            if head is not None and head.get("count") == live.count:
                live.state._hash = str(head["state_hash"])
        live.folded_count = live.count
        entries = live.folder.entries
        if isinstance(entries, checkpoint.LazyEntries):
            entries.evict(KEEP_BODIES)  # memory: keep metadata and the newest bodies; the store has them
    every = max(PERSIST_EVERY, live.count // 10)
    due = live.persisted_count < 0 or live.count - live.persisted_count >= every
    wanted = persist or (persist is None and due and live.persisted_count != live.count)
    if wanted and (_persist(store, commons, live) or store.reader):
        live.persisted_count = live.count
    if live.count - folded_before >= TRIM_AFTER:
        release_caches(live.folder, store.db)  # (what only the fold needed while it ran)
        release_freed_memory()  # (a large fold frees far more than it keeps: see .release)
    return live.state


def _refold_fresh(live: _Live, store: Store, commons: CID) -> bool:
    """Fold afresh in the store's order rather than take what arrived since, when that is at
    least as much as the fold holds (and more than a batch): a node that held little of the
    commons (the genesis, after joining) importing a bundle, or resuming long after.  Why:
    what arrived since is merged into the fold's order by a sort (:meth:`Store.placed_since`),
    while a fresh fold reads the whole commons in that order from the store's index; for a
    bundle of 100,000 entries into a node holding the genesis, folding afresh took 8-13 %
    less CPU.  (Before
    the fold was offered only placed entries, it was twice as fast as taking the bundle in
    the order it arrived.)  The refold costs at most twice what the new entries cost alone."""
    if _untouched(live):
        return False  # (a fresh fold already: it reads the store's order)
    least = max(FEED_BATCH, live.count)
    if store.last_arrival() - live.max_n < least:
        return False  # (arrival numbers bound what arrived: no count needed, the usual case)
    return store.count(commons) - live.count >= least


def _drop(store: Store, key: tuple[str, bytes]) -> None:
    """Forget the live fold of ``key`` and the archive space it wrote."""
    dropped = _live.pop(key, None)
    space = None if dropped is None else _archive_space(dropped)
    if space is not None:
        with contextlib.suppress(Exception):
            store.archive_drop(space)


def _archive_space(live: _Live) -> bytes | None:
    archive = live.folder.archive
    return archive.space if isinstance(archive, StoreArchive) else None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # (no signal-0 probe on Windows: assume alive)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _cleanup_archives(store: Store) -> None:
    """Drop archive spaces nobody can use: of dead processes, or of this process's forgotten
    folds — except the one the persisted checkpoints name (a new process copies it)."""
    try:
        mine = {_archive_space(live) for key, live in _live.items() if key[0] == os.path.abspath(store.path)}
        for space, pid in store.archive_spaces():
            if space in mine:
                continue
            head = cached_head(store, CID(space[:-8])) if len(space) > 8 else None
            if head is not None and head.get("space") == space:
                continue
            if pid == os.getpid() or not _pid_alive(pid):
                store.archive_drop(space)
    except Exception:  # a read-only or busy store: leave it for later
        return


def _fresh(store: Store, commons: CID, *, archive: bool = True) -> _Live:
    live = _Live(Folder(commons), store=store)
    space = StoreArchive(live, commons)
    try:
        if archive:
            store.archive_open(space.space, os.getpid())
            live.folder.archive = space
    except Exception:  # a read-only or busy store: hold everything in memory instead
        pass
    live.folder.entries = checkpoint.LazyEntries(live.load_entry, live.folder.meta, live.folder.waiting,
                                                 ahead=live.load_ahead)
    return live


def _resume(store: Store, commons: CID) -> _Live | None:
    """A live fold from the persisted checkpoint, if there is a usable one."""
    raw = store.get_cache(_cache_key(commons, "checkpoint"))
    if raw is None:
        return None
    try:
        doc = cbor2.loads(raw)
        max_n = int(doc["max_n"])
        # (A checkpoint from before the late placements' numbers: every entry was offered
        # then, so none is held back, and the placements since are offered again, harmlessly.)
        max_k = int(doc.get("max_k", 0))
        held_back = int(doc.get("held", 0))
        blob = doc["folder"]
        old_space = doc.get("space")
    except Exception:
        return None
    del raw, doc  # the checkpoint can be tens of MiB: keep one copy while it is decoded
    live = _Live(Folder(commons), store=store, max_n=max_n, max_k=max_k)
    archive = StoreArchive(live, commons)
    folder = checkpoint.load(blob, commons, live.load_entry, archive)
    if folder is None:
        return None
    try:  # this fold's own copy of the checkpoint's archive, which must hold exactly its records
        store.archive_open(archive.space, os.getpid(), copy_from=old_space)
        held = store.archive_count(archive.space)
        if held > folder.evicted:  # evicted after the checkpoint was written: held again now
            archive.truncate(folder.evicted_upto, folder.evicted)
            held = store.archive_count(archive.space)
        if held != folder.evicted:
            store.archive_drop(archive.space)
            return None
    except Exception:
        if folder.evicted:
            return None
        folder.archive = None  # a read-only store: hold everything in memory
    live.folder = folder
    if isinstance(folder.entries, checkpoint.LazyEntries):
        folder.entries.read_ahead(live.load_ahead)
    folder.held = _StoreHeld(live)
    folder.held.count = held_back
    live.count = folder.count() + len(folder.waiting) + held_back
    live.persisted_count = live.count
    with contextlib.suppress(sqlite3.Error, StoreError):  # (the next write is then whole)
        tables.resumed(store, commons, {} if folder.state is None else folder.state.contributions, max_n,
                       _key(store, commons))
    return live


def _persist(store: Store, commons: CID, live: _Live) -> bool:
    """Write the fold's head, materialization and checkpoint (and the query tables); False
    if the store would not take them (read-only, or busy: the next fold tries again, instead
    of counting a save that never happened and leaving the head behind until the next one
    is due)."""
    state = live.state
    assert state is not None
    head = {
        "version": CACHE_VERSION,
        "count": live.count,
        "state_hash": state.state_hash,
        "max_n": live.max_n,
        "space": _archive_space(live),
    }
    try:
        store.put_cache(_cache_key(commons, "head"), cbor2.dumps(head, canonical=True))
        # (no "materialized" copy of the canonical state any more: nothing read it, and
        # encoding it cost O(state) memory twice over at every save; an old one is dropped)
        store.delete_cache(_cache_key(commons, "materialized"))
        _put_checkpoint(store, _cache_key(commons, "checkpoint"), live)
    except Exception:  # a read-only or busy store must not break reading the state
        return False
    # (likewise) the CLI's query tables, from the same state: a read-only or busy store skips
    # them, and they stay behind (the CLI then folds); anything else is a bug and is raised.
    with contextlib.suppress(sqlite3.Error, StoreError):
        tables.write(store, state, max_n=live.max_n, stored=store.count(commons), key=_key(store, commons))
    return True


SAVE_CHUNK = 1 << 20  # bytes copied at once from the checkpoint's temporary file into the store


def _put_checkpoint(store: Store, key: str, live: _Live) -> None:
    """Store ``{"max_n", "max_k", "held", "folder": <checkpoint>, "space"}`` (CBOR) under ``key`` without
    holding it in memory: the checkpoint is encoded into a temporary file beside the store
    (:func:`checkpoint.dump_to`), then copied into a blob of its final size a chunk at a
    time, in one transaction (a reader sees the old value or the new one).  Why: at a
    million entries it is hundreds of MB, held three times over (the document, its
    encoding, SQLite's copy of the bound value) by the first save after a fresh fold."""
    with tempfile.TemporaryFile(dir=store.path.parent, prefix=".p2pc-checkpoint-") as tmp:
        checkpoint.dump_to(live.folder, tmp)
        size = tmp.tell()
        tmp.seek(0)
        space = _archive_space(live)
        held_back = 0 if live.folder.held is None else live.folder.held.count
        head = (checkpoint.cbor_head(5, 5) + cbor2.dumps("max_n") + cbor2.dumps(live.max_n)
                + cbor2.dumps("max_k") + cbor2.dumps(live.max_k) + cbor2.dumps("held") + cbor2.dumps(held_back)
                + cbor2.dumps("folder") + checkpoint.cbor_head(2, size))
        tail = cbor2.dumps("space") + cbor2.dumps(space)
        waiting = store.waiting_at_most(0) if store.reader else contextlib.nullcontext()
        with waiting, store.transaction():
            db = store.db
            db.execute("INSERT OR REPLACE INTO cache (key, value) VALUES (?, zeroblob(?))",
                       (key, len(head) + size + len(tail)))
            (rowid,) = db.execute("SELECT rowid FROM cache WHERE key = ?", (key,)).fetchone()
            with db.blobopen("cache", "value", rowid) as blob:
                blob.write(head)
                while chunk := tmp.read(SAVE_CHUNK):
                    blob.write(chunk)
                blob.write(tail)


def cached_head(store: Store, commons: CID) -> dict[str, Any] | None:
    """The last persisted materialization (hash, entry count, per-author watermark), if any."""
    raw = store.get_cache(_cache_key(commons, "head"))
    if raw is None:
        return None
    try:
        value = cbor2.loads(raw)
    except Exception:
        return None
    return value if isinstance(value, dict) and value.get("version") == CACHE_VERSION else None


def rebuild(store: Store, commons: CID) -> CommonsState:
    """A fold from scratch over everything the store holds (no cache, no live state)."""
    folder = Folder(commons)
    for entry in store.iter_entries(commons, order="log"):
        folder.add(entry)
    return folder.result()


def verify_state(store: Store, commons: CID) -> str:
    """Rebuild from scratch and compare with the incremental state and the persisted cache;
    return the state hash.  On a mismatch the cache and live state are dropped (so the next
    read recomputes them) and :class:`StateMismatch` is raised (``p2pc verify`` fails)."""
    return str(verify_state_report(store, commons)["state_hash"])


def verify_state_report(store: Store, commons: CID) -> dict[str, Any]:
    """:func:`verify_state` with details: ``{"ok", "commons", "state_hash",
    "incremental_hash", "cached_hash", "entries", "problems"}``."""
    fresh = rebuild(store, commons)
    incremental = current_state(store, commons, persist=False)
    head = cached_head(store, commons)
    cached_hash = head.get("state_hash") if head and head.get("count") == fresh.entry_count else None
    problems = []
    if incremental.state_hash != fresh.state_hash:
        problems.append(f"The incremental state of {commons} differs from a rebuild from scratch.")
    if head is not None and head.get("count") == fresh.entry_count and cached_hash != fresh.state_hash:
        problems.append(f"The cached state of {commons} differs from a rebuild from scratch.")
    if problems:
        forget(store, commons)
        with contextlib.suppress(sqlite3.Error):  # busy: the next verify finds it again
            store.delete_cache(_cache_key(commons, ""))
        tables.drop(store, commons)
        _cleanup_archives(store)
        raise StateMismatch(" ".join(problems) + f" Rebuilt state hash: {fresh.state_hash}.")
    return {
        "entries": fresh.entry_count,
        "ok": not problems,
        "commons": str(commons),
        "state_hash": fresh.state_hash,
        "incremental_hash": incremental.state_hash,
        "cached_hash": cached_hash,
        "problems": problems,
    }


def forget(store: Store | None = None, commons: CID | None = None) -> None:
    """Drop live in-memory state (all of it, or one commons'), e.g. between tests."""
    with _lock:
        tables.forget(None if store is None or commons is None else _key(store, commons))
        if store is None:
            _live.clear()
        elif commons is None:
            prefix = os.path.abspath(store.path)
            for key in [k for k in _live if k[0] == prefix]:
                del _live[key]
        else:
            _live.pop(_key(store, commons), None)


def auto_admit(store: Store, signer: Signer, commons: CID) -> list[Entry]:
    """Write the admissions this node owes: for an open commons, every pending join this
    member has not approved yet (DESIGN.md §4: "written by the first member node that sees
    it").  Call after ingesting entries from peers or a bundle; returns the new admissions.
    Two member nodes may both admit one join concurrently; the second admission is then
    rejected harmlessly ("not pending").  A join this member already admitted is never
    admitted again (:func:`~p2pcommons.author.admit_once`)."""
    from ..author import admit_once
    from . import pending_admissions

    written = []
    for join in pending_admissions(current_state(store, commons), signer.public_key):
        entry = admit_once(store, signer, commons, join)
        if entry is not None:
            written.append(entry)
    return written
