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

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
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
from .store import Store

VerifyMode = Literal["segment", "each"]
DEFAULT_BATCH = 2048


@dataclass
class IngestReport:
    """What a batch (or, summed, a whole stream) did.  ``added`` holds the new entries of
    one batch only; a summed report keeps just the count, so memory stays bounded."""

    added: list[Entry] = field(default_factory=list)
    added_count: int = 0
    duplicates: int = 0
    rejected: list[InvalidEntry] = field(default_factory=list)
    forks: list[tuple[CID, bytes, int]] = field(default_factory=list)
    signatures_checked: int = 0

    @property
    def received(self) -> int:
        return self.added_count + self.duplicates + len(self.rejected)

    def merge(self, other: IngestReport) -> None:
        self.added_count += other.added_count
        self.duplicates += other.duplicates
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
    """

    def __init__(
        self,
        store: Store,
        *,
        commons: CID | None = None,
        verify: VerifyMode = "segment",
        atomic: bool = False,
    ) -> None:
        self.store = store
        self.commons = commons
        self.verify = verify
        self.atomic = atomic

    def _reject(self, report: IngestReport, error: InvalidEntry) -> None:
        if self.atomic:
            raise error
        report.rejected.append(error)

    def add_batch(self, raws: Iterable[bytes]) -> IngestReport:
        report = IngestReport()
        decoded: dict[CID, Entry] = {}
        for raw in raws:
            try:
                entry = decode_entry(raw)
            except InvalidEntry as error:
                self._reject(report, error)
                continue
            if entry.id in decoded:
                report.duplicates += 1
                continue
            decoded[entry.id] = entry
        if not decoded:
            return report
        stored = self.store.which_exist(cid.raw for cid in decoded)
        report.duplicates += len(stored)
        fresh = [e for e in decoded.values() if e.id.raw not in stored]

        known_commons = {e.id for e in fresh if e.is_genesis}
        groups: dict[tuple[CID, bytes], list[Entry]] = defaultdict(list)
        for entry in fresh:
            commons = entry.commons_id
            if self.commons is not None and commons != self.commons:
                self._reject(report, WrongCommons(
                    f"Entry {entry.id} belongs to commons {commons}, not {self.commons}."
                ))
                continue
            if commons not in known_commons:
                if not self.store.has_commons(commons):
                    self._reject(report, WrongCommons(
                        f"Entry {entry.id} belongs to commons {commons}, which this node does not hold."
                    ))
                    continue
                known_commons.add(commons)
            groups[(commons, entry.author)].append(entry)

        accepted: list[Entry] = []
        forks: list[tuple[CID, bytes, int]] = []
        for (commons, author), entries in groups.items():
            entries.sort(key=lambda e: (e.seq, e.id.raw))
            authentic = self._authenticate(entries, report)
            self._check_chain(commons, author, entries, authentic, accepted, forks, report)
        if accepted or forks:
            self.store.insert(accepted, forks)
        report.added.extend(accepted)
        report.added_count += len(accepted)
        report.forks.extend(forks)
        return report

    def _authenticate(self, entries: list[Entry], report: IngestReport) -> set[CID]:
        """Ids in this author's run whose signature is valid or vouched for by a valid
        successor's backlink.  Entries sharing a sequence number are verified one by one."""
        per_seq: dict[int, int] = defaultdict(int)
        for entry in entries:
            per_seq[entry.seq] += 1
        authentic: set[CID] = set()
        vouched: set[CID] = set()
        for entry in reversed(entries):
            individually = self.verify == "each" or per_seq[entry.seq] > 1
            if individually or entry.id not in vouched:
                report.signatures_checked += 1
                try:
                    entry.verify_signature()
                except InvalidEntry as error:
                    self._reject(report, error)
                    continue
            authentic.add(entry.id)
            if entry.prev is not None:
                vouched.add(entry.prev)
        return authentic

    def _check_chain(
        self,
        commons: CID,
        author: bytes,
        entries: list[Entry],
        authentic: set[CID],
        accepted: list[Entry],
        forks: list[tuple[CID, bytes, int]],
        report: IngestReport,
    ) -> None:
        stored_max = self.store.max_seq(commons, author)
        at_seq: dict[int, list[CID]] = {}

        def ids_at(seq: int) -> list[CID]:
            if seq not in at_seq:
                at_seq[seq] = self.store.ids_at(commons, author, seq) if seq <= stored_max else []
            return at_seq[seq]

        for entry in entries:
            if entry.id not in authentic:
                continue
            if entry.seq > 1:
                before = ids_at(entry.seq - 1)
                if not before:
                    self._reject(report, SequenceGap(
                        f"Entry {entry.id} is seq {entry.seq}, but its author's seq "
                        f"{entry.seq - 1} is missing."
                    ))
                    continue
                if entry.prev not in before:
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
                    for sibling_id in siblings:
                        sibling = self.store.get(sibling_id)
                        if sibling is not None:
                            report.signatures_checked += 1
                            sibling.verify_signature()
                forks.append((commons, author, entry.seq))
            siblings.append(entry.id)
            accepted.append(entry)


def ingest(
    store: Store,
    raws: Iterable[bytes],
    *,
    commons: CID | None = None,
    verify: VerifyMode = "segment",
    atomic: bool = False,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Validate and store a stream of raw entries in bounded batches.

    With ``atomic=True`` everything happens in one transaction and the first invalid entry
    aborts it, leaving the store exactly as it was.
    """
    ingestor = Ingestor(store, commons=commons, verify=verify, atomic=atomic)
    total = IngestReport()
    iterator = iter(raws)

    def batches() -> Iterator[list[bytes]]:
        while batch := list(islice(iterator, batch_size)):
            yield batch

    if atomic:
        with store.transaction():
            for batch in batches():
                part = ingestor.add_batch(batch)
                total.merge(part)
                if on_batch:
                    on_batch(part)
    else:
        for batch in batches():
            part = ingestor.add_batch(batch)
            total.merge(part)
            if on_batch:
                on_batch(part)
    return total
