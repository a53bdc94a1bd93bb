"""The trio adapter around :class:`p2pcommons.protocols.sync.SyncSession`.

It moves bytes between a libp2p stream (anything with ``read(n)``, ``write(data)`` and
``close()``) and the state machine, and does the store work through the node's single
store worker thread, so decoding, hashing, signature checks and SQLite run off the trio
thread while the network keeps moving.  Three tasks per session:

* the reader reads bounded chunks (every read under a stall deadline) and dispatches events;
* the ingester validates and stores received batches (:class:`p2pcommons.ingest.Ingestor`,
  scoped to the batch's commons; the node runs large groups in its ingest process, see
  :mod:`.ingest_worker`) and acknowledges each one afterwards: acknowledgements are the
  credit, so a slow store slows the sender instead of filling memory;
* the sender streams the planned batches while credit allows.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import trio

from p2pcommons.dagcbor import CID
from p2pcommons.errors import (
    BacklinkMismatch,
    InvalidEntry,
    NetworkError,
    ProtocolViolation,
    SequenceGap,
)
from p2pcommons.ingest import IngestReport
from p2pcommons.protocols import sync
from p2pcommons.store import Store

from . import replica
from .budget import OFFERED_WINDOW, SUMMARY_EXPANSION, MemoryBudget, Share
from .handoff import Handoff, StoredGroup
from .ingest_worker import ingest_scoped

log = logging.getLogger("p2pcommons.node.sync")

READ_CHUNK = 64 * 1024
PREFETCH_BATCHES = 4
COALESCE_BYTES = 1024 * 1024
# Groups handed over and not yet acknowledged: two, so the ingest process has the next group
# in hand while it commits one (:mod:`.handoff`).
PIPELINE_DEPTH = 2
# One frame (at most sync.MAX_FRAME, ~1 MiB) must arrive whole within this many stall
# deadlines (60 s by default: ≥ ~17 KB/s), so a peer trickling bytes cannot hold a session.
FRAME_DEADLINE_FACTOR = 3
T = TypeVar("T")


class Stream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class StoreRunner(Protocol):
    """Runs a function with the store in the node's one store worker thread."""

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T: ...


class PeerClosed(Exception):
    """The peer went away mid-session (a crash or a restart, not misbehaviour): nothing is
    lost, the next session resumes."""


class Stalled(NetworkError):
    """The peer stopped sending or reading for longer than the deadline allows.

    Not a protocol violation: a link that dropped without a reset looks exactly like this,
    so the session ends and the connection is dropped, but the peer is not scored down
    (protocols/sync.md §3; issue 11 item 9)."""


@dataclass
class SessionResult:
    """What one session did; ``caught_up`` means we hold everything the peer announced."""

    complete: bool = False
    caught_up: bool = False
    stopped: str | None = None
    received_entries: int = 0
    received_bytes: int = 0
    added: int = 0
    declined: int = 0  # outsiders' entries beyond what this node stores (p2pcommons.outsiders)
    sent_entries: int = 0
    announced: tuple[int, int] = (0, 0)
    new_commons: set[CID] = field(default_factory=set)
    touched: set[CID] = field(default_factory=set)
    # per shared commons, (entries the peer lacks, entries we lack) as far as the session
    # knows at its end: what `p2pc node status` shows (the peer's summaries are not kept)
    behind: dict[CID, tuple[int, int]] = field(default_factory=dict)
    # entries we received but could not place in our logs (a fork branch whose base we lack):
    # the peer sends the rest in the next session, which should come soon
    rejected: int = 0


class _Receiving:
    """What the ingester knows of the received batches: bytes queued (not yet in a group),
    bytes not yet acknowledged (queued, or in a group being stored), whether the peer is
    done; ``changed`` fires when any of it does."""

    def __init__(self) -> None:
        self.queued = 0
        self.unacked = 0
        self.largest = 0  # the largest batch received
        self.peer_done = False
        self.changed = _Signal()


class _Signal:
    """A re-armable wake-up: ``fire()`` wakes every current waiter."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()


def _summaries(store: Store, commons: Sequence[CID], only_held: bool) -> list[sync.Summary]:
    result = []
    for c in commons:
        if only_held and not store.has_commons(c):
            continue
        result.extend(replica.summary_pages(store, c))
    return result


def _feed(store: Store, planners: dict[CID, replica.Planner], page: sync.Summary, only_held: bool) -> None:
    """Plan from one page of the peer's summary, then forget the page."""
    planner = planners.get(page.commons)
    if planner is None:
        if only_held and not store.has_commons(page.commons):
            return
        planner = planners[page.commons] = replica.Planner(store, page.commons)
    planner.feed(page)


def _plans(store: Store, shared: list[CID], planners: dict[CID, replica.Planner]) -> list[replica.Plan]:
    return [(planners.get(c) or replica.Planner(store, c)).finish() for c in shared]


async def _batches(db: StoreRunner, the_plan: replica.Plan, batch_bytes: int) -> AsyncIterator[list[bytes]]:
    """The plan's batches, each read from the store in the worker thread."""
    gen = await db(replica.batches, the_plan, batch_bytes)
    try:
        while True:
            batch = await db(_next_batch, gen)
            if batch is None:
                return
            yield batch
    finally:
        with trio.CancelScope(shield=True):
            await db(_close_gen, gen)


def _next_batch(_store: Store, gen: Iterator[list[bytes]]) -> list[bytes] | None:
    return next(gen, None)


def _close_gen(_store: Store, gen: Iterator[list[bytes]]) -> None:
    close = getattr(gen, "close", None)
    if close is not None:
        close()


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The one exception that matters from a session's task group: a protocol violation
    if there is one, else the first that is not a cancellation."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, ProtocolViolation):
            return exc
    for exc in leaves:
        if not isinstance(exc, trio.Cancelled):
            return exc
    return group


# Rejections an honest peer can cause only through a race with another session; the rest
# (bad signatures, bad encodings) are proof of a broken or hostile peer.
_BENIGN = (SequenceGap, BacklinkMismatch)


async def run_session(
    stream: Stream,
    db: StoreRunner,
    *,
    initiator: bool,
    want: Sequence[CID] = (),
    stall_timeout: float = 20.0,
    window: int = OFFERED_WINDOW,
    batch_bytes: int = sync.DEFAULT_BATCH_BYTES,
    on_progress: Callable[[int, int, int, int], None] | None = None,
    on_batch_stored: Callable[[set[CID]], Awaitable[None]] | None = None,
    ingest: Callable[[CID, list[bytes]], Awaitable[StoredGroup]] | None = None,
    on_totals: Callable[[int, int], None] | None = None,
    budget: MemoryBudget | None = None,
    stop: trio.Event | None = None,
    stop_reason: str = "",
) -> SessionResult:
    """Run one session to its end.  Raises ProtocolViolation when the peer misbehaves (the
    caller scores the peer and drops the connection); :class:`Stalled` on a deadline and
    :class:`PeerClosed` on an early end of stream, which are not the peer's proven fault.

    ``want``: the commons this side asks about (initiator only; the responder answers for
    the asked commons it holds).  ``on_progress(received, total, bytes, total_bytes)``.
    ``ingest(commons, entries)``: hands a received group over to be validated and stored
    (:mod:`.handoff`: the node hands large ones to its ingest process); by default they are
    stored in the store thread, one at a time.
    ``on_totals(entries, bytes)``: the peer announced what it will send.
    ``budget``: the node's memory budget for sync; this session charges what the peer makes
    it hold (summary pages being planned, batches waiting to be stored) to its share and
    ends with :class:`~.budget.OverBudget` (a violation) if the peer exceeds it.
    ``stop``: once set, this side ends the session with STOP (``stop_reason``) at the next
    frame boundary, before its HELLO if it is set already (the node's crossed sessions).
    """
    with (budget or MemoryBudget()).share() as share:
        return await _run_session(stream, db, share, initiator=initiator, want=want, stall_timeout=stall_timeout,
                                  window=window, batch_bytes=batch_bytes, on_progress=on_progress,
                                  on_batch_stored=on_batch_stored, ingest=ingest, on_totals=on_totals,
                                  stop=stop, stop_reason=stop_reason)


async def _run_session(
    stream: Stream,
    db: StoreRunner,
    share: Share,
    *,
    initiator: bool,
    want: Sequence[CID],
    stall_timeout: float,
    window: int,
    batch_bytes: int,
    on_progress: Callable[[int, int, int, int], None] | None,
    on_batch_stored: Callable[[set[CID]], Awaitable[None]] | None,
    ingest: Callable[[CID, list[bytes]], Awaitable[StoredGroup]] | None,
    on_totals: Callable[[int, int], None] | None,
    stop: trio.Event | None = None,
    stop_reason: str = "",
) -> SessionResult:

    async def ingest_in_store_thread(commons: CID, entries: list[bytes]) -> tuple[IngestReport, bool]:
        return await db(ingest_scoped, commons, entries)

    store_group = ingest if ingest is not None else Handoff(ingest_in_store_thread).hand_over
    ingest_state = _Receiving()
    session = sync.SyncSession(initiator=initiator, window=window)
    result = SessionResult()
    write_lock = trio.Lock()
    credit = _Signal()
    finished = trio.Event()
    batches_send, batches_recv = trio.open_memory_channel[sync.Batch](1024)
    planners: dict[CID, replica.Planner] = {}
    plans_by_commons: dict[CID, replica.Plan] = {}
    rejected_in: dict[CID, int] = {}

    async def flush() -> None:
        async with write_lock:
            data = session.data_to_send()
            if data:
                with trio.move_on_after(stall_timeout) as scope:
                    await stream.write(data)
                if scope.cancelled_caught:
                    raise Stalled("The peer stopped reading for longer than the deadline allows.")
        if session.complete or session.stopped is not None:
            finished.set()

    async def reader_of_plans(plans: list[replica.Plan], out: trio.MemorySendChannel[tuple[CID, list[bytes]]]) -> None:
        """Read the next batches from the store while the current ones are on the wire."""
        async with out:
            # a batch must fit in the peer's window, or it could never be sent
            size = min(batch_bytes, session.peer_window or sync.MIN_WINDOW)
            for the_plan in plans:
                async for batch in _batches(db, the_plan, size):
                    await out.send((the_plan.commons, batch))

    async def sender(plans: list[replica.Plan], nursery: trio.Nursery) -> None:
        send_channel, receive_channel = trio.open_memory_channel[tuple[CID, list[bytes]]](PREFETCH_BATCHES)
        nursery.start_soon(reader_of_plans, plans, send_channel)
        async with receive_channel:
            async for commons, batch in receive_channel:
                nbytes = sum(len(e) for e in batch)
                while not session.can_send(nbytes):
                    if session.stopped is not None:
                        return
                    await credit.wait()
                if session.stopped is not None:
                    return
                session.send_batch(commons, batch)
                result.sent_entries += len(batch)
                await flush()
        if session.stopped is None:
            session.send_done()
            await flush()

    async def ingester() -> None:
        """Store received batches and acknowledge them, pipelined (:mod:`.handoff`).

        Batches that queued up go into one group (same commons, at most COALESCE_BYTES unless
        one batch is larger: one transaction, one fsync; the ingest process sizes its page
        cache to the group).  A group is handed over as soon as it is made, up to
        PIPELINE_DEPTH groups at a time, and acknowledged once its report says it is stored,
        in the order handed over.  While one group is being stored, the next is made only
        when a whole group's bytes have queued (a small one would cost a commit of its own),
        the peer has no credit left to send them, the peer is done, or the one being stored
        is done."""
        handed: deque[tuple[StoredGroup, CID, int]] = deque()
        room = trio.Semaphore(PIPELINE_DEPTH)
        handed_any = trio.Semaphore(0)  # one release per group handed over (the acker waits on it)

        def group_is_due(queued: int) -> bool:
            if not handed or queued + ingest_state.largest > COALESCE_BYTES or ingest_state.peer_done:
                return True  # (a whole group: another batch would not fit in it)
            return window - ingest_state.unacked < COALESCE_BYTES - queued  # no credit left for the rest

        async def maker() -> None:
            pending: sync.Batch | None = None
            while True:
                if pending is None:
                    try:
                        pending = await batches_recv.receive()
                    except trio.EndOfChannel:
                        handed_any.release()  # wakes the acker: nothing more comes
                        return
                    ingest_state.queued -= pending.nbytes
                await room.acquire()
                while not group_is_due(pending.nbytes + ingest_state.queued):
                    await ingest_state.changed.wait()
                group = [pending]
                pending = None
                size = group[0].nbytes
                while True:
                    try:
                        more = batches_recv.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    ingest_state.queued -= more.nbytes
                    if more.commons != group[0].commons or size + more.nbytes > COALESCE_BYTES:
                        pending = more
                        break
                    group.append(more)
                    size += more.nbytes
                commons = group[0].commons
                entries = [e for b in group for e in b.entries]
                del group
                handed.append((await store_group(commons, entries), commons, size))
                del entries
                handed_any.release()

        async def acker() -> None:
            while True:
                await handed_any.acquire()
                if not handed:
                    return  # (the maker's last release: the peer is done)
                stored, commons, size = handed[0]
                report, new_commons = await stored.report()
                handed.popleft()
                await after_group(report, new_commons, commons)
                session.ack(size)
                share.release(size)
                ingest_state.unacked -= size
                room.release()
                ingest_state.changed.fire()
                await flush()
                if on_progress is not None and session.peer_totals is not None:
                    got_entries, got_bytes = session.received
                    on_progress(got_entries, session.peer_totals[0], got_bytes, session.peer_totals[1])

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(maker)
                nursery.start_soon(acker)
        finally:
            with trio.CancelScope(shield=True):
                for stored, _, _ in handed:  # the session ends with groups in hand: no one waits for them
                    await stored.discard()
                handed.clear()

    async def after_group(report: IngestReport, new_commons: bool, commons: CID) -> None:
        hostile = [e for e in report.rejected if not isinstance(e, _BENIGN)]
        if hostile:
            raise ProtocolViolation(f"The peer sent an invalid entry: {hostile[0]}")
        if report.rejected:
            log.info("dropped %d entries that do not fit our logs: %s", len(report.rejected),
                     report.rejected[0])
            result.rejected += len(report.rejected)
            rejected_in[commons] = rejected_in.get(commons, 0) + len(report.rejected)
        result.added += report.added_count
        result.declined += report.declined
        if new_commons:
            result.new_commons.add(commons)
        if report.added_count:
            result.touched.add(commons)
            if on_batch_stored is not None:
                await on_batch_stored({commons})

    async def start_sending(nursery: trio.Nursery) -> None:
        if not initiator:
            mine = await db(_summaries, session.peer_commons, True)
            session.start(mine)
        plans = await db(_plans, session.shared, planners)
        planners.clear()
        plans_by_commons.update((p.commons, p) for p in plans)
        entries = sum(p.entries for p in plans)
        nbytes = sum(p.nbytes for p in plans)
        session.send_totals(entries, nbytes)
        await flush()
        nursery.start_soon(sender, plans, nursery)

    async def reader(nursery: trio.Nursery) -> None:
        from libp2p.network.stream.exceptions import StreamEOF  # heavy: only when a session runs

        frame_due: float | None = None  # a frame in progress must be whole by then
        while True:
            now = trio.current_time()
            timeout = stall_timeout if frame_due is None else max(0.0, min(stall_timeout, frame_due - now))
            with trio.move_on_after(timeout) as scope:
                try:
                    data = await stream.read(READ_CHUNK)
                except StreamEOF:
                    data = b""
            if scope.cancelled_caught:
                if frame_due is not None and trio.current_time() >= frame_due:
                    # a trickle resets the per-read deadline forever; a whole frame must arrive in time
                    raise Stalled("The peer took longer than the deadline allows to send one frame.")
                raise Stalled("The peer sent nothing for longer than the deadline allows.")
            if not data and not session.complete and session.stopped is None:
                raise PeerClosed("The peer closed the stream before the session ended.")
            session.receive_data(data)
            frames = 0
            while True:
                event = session.next_event()
                if event is sync.NEED_DATA:
                    break
                frames += 1
                if isinstance(event, sync.PeerSummary):
                    # plan from the page and drop it before reading on: one page held at a time
                    held = SUMMARY_EXPANSION * event.nbytes
                    share.charge(held, "summaries")
                    await db(_feed, planners, event.summary, not initiator)
                    share.release(held)
                    session.release_summary(event.nbytes)
                elif isinstance(event, sync.SummariesEnd):
                    await start_sending(nursery)
                elif isinstance(event, sync.Totals):
                    result.announced = (event.entries, event.bytes)
                    if on_totals is not None:
                        on_totals(event.entries, event.bytes)
                    if on_progress is not None:
                        on_progress(0, event.entries, 0, event.bytes)
                elif isinstance(event, sync.Batch):
                    share.charge(event.nbytes, "entries waiting to be stored")
                    batches_send.send_nowait(event)
                    ingest_state.queued += event.nbytes
                    ingest_state.unacked += event.nbytes
                    ingest_state.largest = max(ingest_state.largest, event.nbytes)
                    ingest_state.changed.fire()
                elif isinstance(event, sync.CreditGranted):
                    credit.fire()
                elif isinstance(event, sync.Stopped):
                    credit.fire()
                    finished.set()
                    return
                elif isinstance(event, sync.PeerDone):
                    batches_send.close()
                    ingest_state.peer_done = True
                    ingest_state.changed.fire()
                elif isinstance(event, sync.ConnectionClosed) and event.early:
                    raise PeerClosed("The peer closed the stream before the session ended.")
                elif isinstance(event, (sync.Complete, sync.ConnectionClosed)):
                    finished.set()
                    return
            if session.complete:
                finished.set()
                return
            if not data:
                finished.set()
                return
            if not session.buffered:
                frame_due = None
            elif frame_due is None or frames:
                frame_due = trio.current_time() + FRAME_DEADLINE_FACTOR * stall_timeout

    async def stopper(event: trio.Event) -> None:
        await event.wait()
        if not session.complete and session.stopped is None:
            session.stop(stop_reason)
            await flush()  # sends STOP and sets ``finished``

    async def _session_tasks() -> None:
        async with trio.open_nursery() as nursery:
            if stop is not None:
                if stop.is_set():
                    session.stop(stop_reason)  # nothing else goes out: STOP is the first frame
                    await flush()
                    return
                nursery.start_soon(stopper, stop)
            if initiator:
                mine = await db(_summaries, list(want), False)
                if session.stopped is None:
                    session.start(mine)
                del mine
                await flush()
            nursery.start_soon(reader, nursery)
            nursery.start_soon(ingester)
            await finished.wait()
            # Cancel only between writes: a write cancelled after taking the bytes from the
            # session (as a multiplexer's write can be) would lose the last ACK or DONE, and
            # the peer would read end-of-stream before its session completed.  What is still
            # queued goes out in the goodbye flush below.
            async with write_lock:
                nursery.cancel_scope.cancel()

    try:
        async def say_stop() -> None:
            # The node is shutting down: tell the peer, so it ends the session cleanly.
            with trio.CancelScope(shield=True), trio.move_on_after(1), contextlib.suppress(Exception):
                session.stop("shutting down")
                await stream.write(session.data_to_send())

        try:
            await _session_tasks()
        except BaseExceptionGroup as group:
            inner = _unwrap(group)
            if inner is group or isinstance(inner, trio.Cancelled):
                await say_stop()
                raise
            raise inner from None
        except trio.Cancelled:
            await say_stop()
            raise
        # Say goodbye: flush any last ACKs, then close our side.
        with trio.move_on_after(2):
            await flush()
    finally:
        with trio.move_on_after(2):
            with contextlib.suppress(Exception):  # the peer may be gone already
                await stream.close()
    result.complete = session.complete
    result.caught_up = session.caught_up
    result.stopped = session.stopped
    result.received_entries, result.received_bytes = session.received
    for commons, the_plan in plans_by_commons.items():
        they_lack, we_lack = the_plan.entries, the_plan.we_lack
        if result.complete:
            # everything planned arrived; what may still differ is what one side could not
            # place in its logs (a fork branch whose base it lacked): that side counts it
            # and syncs again at once
            they_lack, we_lack = 0, rejected_in.get(commons, 0)
        result.behind[commons] = (they_lack, we_lack)
    return result


__all__ = ["InvalidEntry", "PeerClosed", "SessionResult", "Stalled", "run_session"]
