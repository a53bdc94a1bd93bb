"""The one validation path for entries that come from outside (bundles now, sync later).

Everything received goes through :class:`Ingestor`: decode, check the commons, check each
author's chain (no gaps, backlinks that match), verify signatures, keep forks as evidence,
and only then store.  The store never sees an entry that failed any check.

Signatures are verified once per chain segment (DESIGN.md §5): an entry's id is the hash of
its signed bytes and each entry links its predecessor's id, so one valid signature on the
newest entry of a run authenticates the whole run.  Both sides of a fork, and entries
nobody in the batch vouches for, are verified individually.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Literal

from .dagcbor import CID
from .entry import Entry, decode_entry
from .errors import (
    BacklinkMismatch,
    InvalidEntry,
    SequenceGap,
    WrongCommons,
)
from .outsiders import Limits, record, screen
from .skew import too_early
from .store import Store

VerifyMode = Literal["segment", "each"]
DEFAULT_BATCH = 2048


class IngestReport:
    """What a batch (or, summed, a whole stream) did.  ``added`` holds the new entries of
    one batch only; a summed report keeps just the count, so memory stays bounded.
    (A plain class, not a dataclass: ``dataclasses`` imports ``inspect``, about 10 ms of the
    start-up of every command that writes an entry, issue 18.)"""

    __slots__ = ("added", "added_count", "declined", "deferred", "duplicates", "forks", "rejected",
                 "signatures_checked")

    def __init__(self, added: list[Entry] | None = None, added_count: int = 0, duplicates: int = 0,
                 rejected: list[InvalidEntry] | None = None, forks: list[tuple[CID, bytes, int]] | None = None,
                 signatures_checked: int = 0, declined: int = 0, deferred: int = 0) -> None:
        self.added: list[Entry] = [] if added is None else added
        self.added_count = added_count
        self.duplicates = duplicates
        self.rejected: list[InvalidEntry] = [] if rejected is None else rejected
        self.forks: list[tuple[CID, bytes, int]] = [] if forks is None else forks
        self.signatures_checked = signatures_checked
        self.declined = declined  # valid, but an outsider's beyond what this node stores (p2pcommons.outsiders)
        self.deferred = deferred  # dated beyond the clock skew (p2pcommons.skew): taken when the clock gets there

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in (
            "added", "added_count", "duplicates", "rejected", "forks", "signatures_checked", "declined", "deferred"))
        return f"IngestReport({fields})"

    @property
    def received(self) -> int:
        return self.added_count + self.duplicates + len(self.rejected) + self.declined + self.deferred

    def merge(self, other: IngestReport) -> None:
        self.added_count += other.added_count
        self.duplicates += other.duplicates
        self.declined += other.declined
        self.deferred += other.deferred
        self.rejected.extend(other.rejected)
        self.forks.extend(other.forks)
        self.signatures_checked += other.signatures_checked


class Ingestor:
    """Validate and store batches of raw entries.

    ``commons``: if given, every entry must belong to it (a bundle or a sync session is
    scoped to one commons).  Otherwise entries must belong to a commons whose genesis is
    stored or arrives in the same batch, so nobody can fill a store with unrelated data.

    ``atomic``: raise the first error instead of rejecting the entry and going on; the
    caller's transaction then rolls everything back (bundle import).

    ``outsiders``: the node's bounds on what non-members may make it store (entries from
    the network: sync and gossip); None stores every valid entry (bundles, local writes).
    Either way the insider bookkeeping of :mod:`p2pcommons.outsiders` is kept up to date.

    ``clock``: the node's clock (seconds).  An entry dated beyond it by more than the skew
    (:mod:`p2pcommons.skew`), and its author's later entries in the batch, are deferred:
    neither stored nor rejected, so a later sync or import brings them again.  None: no
    deferral (the node's own writes, dated by this clock).
    """

    def __init__(
        self,
        store: Store,
        *,
        commons: CID | None = None,
        verify: VerifyMode = "segment",
        atomic: bool = False,
        outsiders: Limits | None = None,
        clock: Callable[[], float] | None = time.time,
    ) -> None:
        self.clock = clock
        self.store = store
        self.commons = commons
        self.verify = verify
        self.atomic = atomic
        self.outsiders = outsiders

    def _reject(self, report: IngestReport, error: InvalidEntry) -> None:
        if self.atomic:
            raise error
        report.rejected.append(error)

    def add_batch(self, raws: Iterable[bytes]) -> IngestReport:
        with _gc_paused():
            return self._add_batch(decode_all(raws))

    def add_decoded(self, decoded: list[Entry | InvalidEntry]) -> IngestReport:
        """:meth:`add_batch` of entries :func:`decode_all` decoded already (elsewhere, e.g.
        in another thread while the previous batch was being stored)."""
        with _gc_paused():
            return self._add_batch(decoded)

    def _add_batch(self, results: list[Entry | InvalidEntry]) -> IngestReport:
        # Ids are handled as their raw bytes inside a batch: hashing and comparing bytes
        # is done in C, a CID's __hash__/__eq__ in Python, and this loop runs per entry.
        report = IngestReport()
        decoded: dict[bytes, Entry] = {}
        for entry in results:
            if type(entry) is not Entry:
                assert isinstance(entry, InvalidEntry)
                self._reject(report, entry)
                continue
            key = entry.id.raw
            if key in decoded:
                report.duplicates += 1
                continue
            decoded[key] = entry
        if not decoded:
            return report
        # Only an entry at or below its log's highest stored seq can be stored already (the
        # store keeps a log's max_seq >= the seq of each of its entries), so only those ids
        # are looked up: a bundle or a sync of new entries needs no id lookups at all.
        stored_max: dict[tuple[bytes, bytes], int] = {}
        candidates = []
        for key, entry in decoded.items():
            named = entry.commons  # (entry.commons_id, without the property's call)
            log = (key if named is None else named.raw, entry.author)
            top = stored_max.get(log)
            if top is None:
                top = stored_max[log] = self.store.max_seq(entry.commons_id, entry.author)
            if entry.seq <= top:
                candidates.append(key)
        stored = self.store.which_exist(candidates) if candidates else set()
        report.duplicates += len(stored)
        fresh = [e for k, e in decoded.items() if k not in stored] if stored else list(decoded.values())
        fresh = self._defer(fresh, report)

        scope = None if self.commons is None else self.commons.raw
        known_commons = {e.id.raw for e in fresh if e.commons is None}
        groups: dict[tuple[bytes, bytes], list[Entry]] = defaultdict(list)
        for entry in fresh:
            commons = entry.commons
            if commons is None:  # (a genesis founds its own: entry.commons_id, inline)
                commons = entry.id
            commons_raw = commons.raw
            if scope is not None and commons_raw != scope:
                self._reject(report, WrongCommons(
                    f"Entry {entry.id} belongs to commons {commons}, not {self.commons}."
                ))
                continue
            if commons_raw not in known_commons:
                if not self.store.has_commons(commons):
                    self._reject(report, WrongCommons(
                        f"Entry {entry.id} belongs to commons {commons}, which this node does not hold."
                    ))
                    continue
                known_commons.add(commons_raw)
            groups[(commons_raw, entry.author)].append(entry)

        accepted: list[Entry] = []
        forks: list[tuple[CID, bytes, int]] = []
        for log, entries in groups.items():
            seqs = [e.seq for e in entries]
            # one entry per seq, already in order (the usual run from a sync or a bundle):
            # the sort by (seq, id) would change nothing, and no seq needs counting
            single = all(map(int.__lt__, seqs, seqs[1:]))
            if not single:
                entries.sort(key=_seq_and_id)
            elif self._take_run(log, entries, report, stored_max[log], accepted):
                continue
            authentic = self._authenticate(entries, report, single)
            self._check_chain(entries[0].commons_id, log[1], entries, authentic, accepted, forks, report,
                              stored_max[log])
        if accepted:
            screened = screen(self.store, accepted, self.outsiders)
            if screened.declined:
                report.declined += len(screened.declined)
                accepted = screened.kept
                held = {(e.commons_id.raw, e.author, e.seq) for e in accepted}
                forks = [f for f in forks if (f[0].raw, f[1], f[2]) in held]
            now = self.outsiders.clock() if self.outsiders is not None else 0.0
            with self.store.transaction():
                record(self.store, screened, now)
                if accepted or forks:
                    self.store.insert(accepted, forks)
        report.added.extend(accepted)
        report.added_count += len(accepted)
        report.forks.extend(forks)
        return report

    def _defer(self, entries: list[Entry], report: IngestReport) -> list[Entry]:
        """Leave out entries dated beyond the skew, and their authors' later entries (which
        chain through them): the node takes them when its clock gets there."""
        if self.clock is None:
            return entries
        now_ms = int(self.clock() * 1000)
        if not entries or not too_early(max([e.time for e in entries]), now_ms):
            return entries  # (the usual batch: its latest entry is in time, so all are)
        first: dict[tuple[bytes, bytes], int] = {}
        for entry in entries:
            if too_early(entry.time, now_ms):
                log = (entry.commons_id.raw, entry.author)
                if entry.seq < first.get(log, 2**63):
                    first[log] = entry.seq
        if not first:
            return entries
        kept = [e for e in entries if e.seq < first.get((e.commons_id.raw, e.author), 2**63)]
        # A deferred entry is still checked now: one that is not what its author signed
        # (a bundle changed in transit, its checksum recomputed) is rejected, not put off.
        for entry in entries:
            if entry.seq >= first.get((entry.commons_id.raw, entry.author), 2**63) and self._verified(entry, report):
                report.deferred += 1
        return kept

    def _verified(self, entry: Entry, report: IngestReport) -> bool:
        """Check one entry's signature (counted); reject it if it does not verify."""
        report.signatures_checked += 1
        try:
            entry.verify_signature()
        except InvalidEntry as error:
            self._reject(report, error)
            return False
        return True

    def _take_run(self, log: tuple[bytes, bytes], entries: list[Entry], report: IngestReport, stored_max: int,
                  accepted: list[Entry]) -> bool:
        """Accept the usual run in one pass, or say it is not one (then nothing was done).

        The usual run, as a sync or a bundle delivers it: consecutive seqs, all beyond what
        the store holds of the log (so no fork), each entry linking its predecessor in the
        run, the first linking a stored entry at the seq before it (or being seq 1), and
        the newest signature valid.  For such a run :meth:`_authenticate` verifies only the
        newest entry (its backlinks vouch for the rest) and :meth:`_check_chain` accepts
        every entry in order; this reaches the same result without a set, a cache and two
        calls per entry.  Anything else (a gap, a mismatch, a fork, a bad signature, "each")
        takes those two, which decide and report it.
        """
        first = entries[0]
        last = entries[-1]
        if self.verify == "each" or first.seq <= stored_max or last.seq - first.seq != len(entries) - 1:
            return False
        ids = [e.id.raw for e in entries]
        ids.pop()
        links = [b"" if e.prev is None else e.prev.raw for e in entries[1:]]
        if links != ids:
            return False
        before = first.seq - 1  # (0: seq 1, no backlink; else the predecessor must be stored)
        if before and (before > stored_max or first.prev not in self.store.ids_at(CID(log[0]), log[1], before)):
            return False
        try:
            last.verify_signature()
        except InvalidEntry:
            return False  # (the general path verifies it again and reports it)
        report.signatures_checked += 1
        accepted.extend(entries)
        return True

    def _authenticate(self, entries: list[Entry], report: IngestReport, single: bool = False) -> set[bytes]:
        """Raw ids in this author's run whose signature is valid or vouched for by a valid
        successor's backlink.  Entries sharing a sequence number are verified one by one
        (``single``: the caller knows that no two do)."""
        per_seq: dict[int, int] = defaultdict(int)
        if not single:
            for entry in entries:
                per_seq[entry.seq] += 1
        authentic: set[bytes] = set()
        vouched: set[bytes] = set()
        each = self.verify == "each"
        for entry in reversed(entries):
            key = entry.id.raw
            if (each or key not in vouched or (not single and per_seq[entry.seq] > 1)) \
                    and not self._verified(entry, report):
                continue
            authentic.add(key)
            if entry.prev is not None:
                vouched.add(entry.prev.raw)
        return authentic

    def _check_chain(
        self,
        commons: CID,
        author: bytes,
        entries: list[Entry],
        authentic: set[bytes],
        accepted: list[Entry],
        forks: list[tuple[CID, bytes, int]],
        report: IngestReport,
        stored_max: int,
    ) -> None:
        at_seq: dict[int, list[bytes]] = {}

        def ids_at(seq: int) -> list[bytes]:
            found = at_seq.get(seq)
            if found is None:
                found = at_seq[seq] = (
                    [c.raw for c in self.store.ids_at(commons, author, seq)] if seq <= stored_max else []
                )
            return found

        for entry in entries:
            key = entry.id.raw
            if key not in authentic:
                continue
            if entry.seq > 1:
                before = ids_at(entry.seq - 1)
                if not before:
                    self._reject(report, SequenceGap(
                        f"Entry {entry.id} is seq {entry.seq}, but its author's seq "
                        f"{entry.seq - 1} is missing."
                    ))
                    continue
                assert entry.prev is not None  # decode_entry guarantees a backlink after seq 1
                if entry.prev.raw not in before:
                    self._reject(report, BacklinkMismatch(
                        f"Entry {entry.id} (seq {entry.seq}) links to {entry.prev}, which is not "
                        f"its author's seq {entry.seq - 1}."
                    ))
                    continue
            siblings = ids_at(entry.seq)
            if siblings:
                # A fork: keep both sides as evidence, each verified on its own.
                if self.verify != "each":
                    report.signatures_checked += 1
                    try:
                        entry.verify_signature()
                    except InvalidEntry as error:
                        self._reject(report, error)
                        continue
                    for sibling_raw in siblings:
                        sibling = self.store.get(CID(sibling_raw))
                        if sibling is not None:
                            report.signatures_checked += 1
                            sibling.verify_signature()
                forks.append((commons, author, entry.seq))
            siblings.append(key)
            accepted.append(entry)


def decode_all(raws: Iterable[bytes]) -> list[Entry | InvalidEntry]:
    """Each raw entry decoded (:func:`~p2pcommons.entry.decode_entry`), or the error that
    refuses it, in order.  Pure: it reads no store, so it can run ahead of the batch before."""
    results: list[Entry | InvalidEntry] = []
    append = results.append
    for raw in raws:
        try:
            append(decode_entry(raw))
        except InvalidEntry as error:
            append(error)
    return results


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch.

    A batch keeps thousands of decoded entries (a dozen objects each) alive until it is
    stored, so they all survive into the oldest generation and trigger full collections
    that rescan every object in the process: a fifth or more of the ingest time.  None of
    them is part of a reference cycle (they are freed by reference counting when the batch
    ends), so nothing is lost by collecting after the batch instead of during it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _seq_and_id(entry: Entry) -> tuple[int, bytes]:
    return (entry.seq, entry.id.raw)


def ingest(
    store: Store,
    raws: Iterable[bytes],
    *,
    commons: CID | None = None,
    verify: VerifyMode = "segment",
    atomic: bool = False,
    one_transaction: bool = False,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[IngestReport], None] | None = None,
    outsiders: Limits | None = None,
    clock: Callable[[], float] = time.time,
    decode_ahead: bool = False,
) -> IngestReport:
    """Validate and store a stream of raw entries in bounded batches.

    With ``atomic=True`` everything happens in one transaction and the first invalid entry
    aborts it, leaving the store exactly as it was.  ``one_transaction=True`` also commits
    once (one fsync) but rejects invalid entries and keeps the rest, as a sync does.
    ``decode_ahead``: decode the next batch in a thread while one is checked and stored
    (see :func:`_decoded_ahead`; the ingest process, which has a core for it).
    """
    ingestor = Ingestor(store, commons=commons, verify=verify, atomic=atomic, outsiders=outsiders, clock=clock)
    total = IngestReport()
    iterator = iter(raws)

    def batches() -> Iterator[list[bytes]]:
        while batch := list(islice(iterator, batch_size)):
            yield batch

    # Collect cycles once at the end rather than after each batch: on resuming, the
    # collector would otherwise scan the batch's entries while they are still referenced.
    with _gc_paused(), (store.transaction() if atomic or one_transaction else contextlib.nullcontext()):
        if decode_ahead:
            decoded_batches: Iterator[list[Entry | InvalidEntry]] = _decoded_ahead(batches())
        else:
            decoded_batches = map(decode_all, batches())
        for decoded in decoded_batches:
            part = ingestor.add_decoded(decoded)
            del decoded
            total.merge(part)
            if on_batch:
                on_batch(part)
            del part
    return total


def _decoded_ahead(batches: Iterator[list[bytes]]) -> Iterator[list[Entry | InvalidEntry]]:
    """:func:`decode_all` of each batch, the next one decoded in a thread while the caller
    checks and stores the one it was given.

    Why: storing a batch is largely SQLite's work, which runs without the GIL (a block of
    rows is one step); decoding is Python's.  Overlapped, the ingest process uses the time
    its SQL statements run to decode the next batch, instead of one after the other.  The
    decoding is pure (no store, no shared state but its bounded caches), so the results and
    their order are those of decoding in line; at most two batches are decoded at a time."""
    # (Imported here: every command that writes an entry imports this module, issue 18.)
    from concurrent.futures import ThreadPoolExecutor

    batch = next(batches, None)
    if batch is None:
        return
    ahead = decode_all(batch)
    with ThreadPoolExecutor(1, thread_name_prefix="decode-ahead") as pool:
        for batch in batches:
            future = pool.submit(decode_all, batch)
            yield ahead  # (closed here: leaving the pool waits for the batch in hand)
            ahead = future.result()
    yield ahead
