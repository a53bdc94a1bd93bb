"""Where a sync session's received groups are stored, and in what order (issue 18).

A session hands each group over as soon as it has it and awaits the groups' reports one
by one, in the order it handed them over, acknowledging each after its report (the
acknowledgement is the peer's credit: it must follow the group's durability).  Handing
over early is what lets the ingest process (:mod:`.ingest_process`) overlap groups: it has
group k+1 in hand while it commits group k and syncs the store's log for it.

Two places store a group: the ingest process (large groups: the second core) and the
node's store thread (small groups, a node without the process, and a group whose process
died, stored again: ingest is idempotent).  The process stores at once, the store thread
only when the group's report is awaited, that is after every group handed over before it.
So that no group is stored before one handed over earlier (its entries' parents may be in
the earlier one: they would be refused as a gap, and synced again), a group goes to the
process only while no group handed to the store thread waits, and no group in the process
failed and waits to be stored again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from p2pcommons.dagcbor import CID
from p2pcommons.ingest import IngestReport

from .ingest_process import IngestProcess, Submitted
from .ingest_worker import IngestWorkerFailed

Outcome = tuple[IngestReport, bool]  # (the report, whether the commons was new to the store)
StoreHere = Callable[[CID, list[bytes]], Awaitable[Outcome]]


class StoredGroup(Protocol):
    """One group handed over: :meth:`report` once it is stored and durable, or
    :meth:`discard` if the session ends without asking (it may then be stored or not)."""

    async def report(self) -> Outcome: ...

    async def discard(self) -> None: ...


class Handoff:
    """Routes one node's received groups to its ingest process or its store thread.

    ``store_here(commons, entries)`` stores a group in the store thread; ``sync_log()`` makes
    the store's write-ahead log durable (after a group the process may have committed without
    syncing, stored again here); ``process``: None for a node that stores every group here;
    ``use_process(entries)``: whether a group of that many entries is worth the process."""

    def __init__(self, store_here: StoreHere, *, process: IngestProcess | None = None,
                 sync_log: Callable[[], Awaitable[None]] | None = None,
                 use_process: Callable[[int], bool] = lambda _entries: True,
                 on_fallback: Callable[[BaseException], None] | None = None) -> None:
        self.store_here = store_here
        self.process = process
        self.sync_log = sync_log
        self.use_process = use_process
        self.on_fallback = on_fallback
        self._here: set[_Here] = set()  # handed to the store thread, not yet stored (or discarded)
        self._in_process: set[_InProcess] = set()  # handed to the process, report not yet taken

    def _process_may_take(self) -> bool:
        return not self._here and not any(g.request.failed for g in self._in_process)

    async def hand_over(self, commons: CID, entries: list[bytes]) -> StoredGroup:
        """Hand one group over (to the process at once, if it takes it); await the result's
        :meth:`~StoredGroup.report` for its outcome, in hand-over order."""
        process = self.process
        if process is not None and self.use_process(len(entries)) and self._process_may_take():
            try:
                request = await process.submit(commons, entries)
            except (IngestWorkerFailed, OSError) as exc:
                if self.on_fallback is not None:
                    self.on_fallback(exc)
            else:
                group = _InProcess(self, process, request, commons, entries)
                self._in_process.add(group)
                return group
        here = _Here(self, commons, entries, after_process=False)
        self._here.add(here)
        return here


class _Here:
    """A group stored in the store thread when its report is awaited."""

    def __init__(self, owner: Handoff, commons: CID, entries: list[bytes], *, after_process: bool) -> None:
        self.owner = owner
        self.commons = commons
        self.entries = entries
        self.after_process = after_process

    async def report(self) -> Outcome:
        try:
            outcome = await self.owner.store_here(self.commons, self.entries)
            if self.after_process and self.owner.sync_log is not None:
                # the process may have committed this group without syncing the log (it syncs
                # after the commit, then replies): found here as duplicates, it must still be
                # durable before the peer is told it is stored
                await self.owner.sync_log()
            return outcome
        finally:
            self._forget()

    def _forget(self) -> None:
        self.owner._here.discard(self)
        self.entries = []

    async def discard(self) -> None:
        self._forget()


class _InProcess:
    """A group handed to the ingest process; stored again here if the process goes."""

    def __init__(self, owner: Handoff, process: IngestProcess, request: Submitted, commons: CID,
                 entries: list[bytes]) -> None:
        self.owner = owner
        self.process = process
        self.request = request
        self.commons = commons
        self.entries = entries

    async def report(self) -> Outcome:
        try:
            try:
                return await self.process.result(self.request)
            except (IngestWorkerFailed, OSError) as exc:
                if self.owner.on_fallback is not None:
                    self.owner.on_fallback(exc)
            return await _Here(self.owner, self.commons, self.entries, after_process=True).report()
        finally:
            self._forget()

    def _forget(self) -> None:
        self.owner._in_process.discard(self)
        self.entries = []

    async def discard(self) -> None:
        """Its reply would be next on the pipe for a group no one waits for: the process is
        stopped (its other groups fail and are stored again by their sessions)."""
        self._forget()
        await self.process.abandon(self.request)


__all__ = ["Handoff", "Outcome", "StoredGroup"]
