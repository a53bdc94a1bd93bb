"""Drive one sync session between two stores in memory, with no network.

Why it exists: the property tests (random chunking, random interleaving, stop and resume)
exercise the real session state machine, the real planner and the real ingest path, and
only the transport is replaced by byte buffers.  It mirrors what :mod:`p2pcommons.node.peer`
does over libp2p, step for step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from p2pcommons.dagcbor import CID
from p2pcommons.ingest import Ingestor
from p2pcommons.protocols import sync
from p2pcommons.store import Store

from . import replica


@dataclass
class Side:
    """One end: a store, its session, and its sending cursor."""

    store: Store
    session: sync.SyncSession
    want: Sequence[CID] | None = None
    plans: list[replica.Plan] = field(default_factory=list)
    planners: dict[CID, replica.Planner] = field(default_factory=dict)
    pending: Iterator[tuple[CID, list[bytes]]] | None = None
    next_batch: tuple[CID, list[bytes]] | None = None
    done: bool = False
    events: int = 0
    batches_handled: int = 0
    added: int = 0
    rejected: int = 0

    def summaries(self, asked: Sequence[CID] | None) -> list[sync.Summary]:
        if asked is None:
            commons = list(self.want) if self.want is not None else self.store.commons_ids()
        else:
            commons = [c for c in asked if self.store.has_commons(c)]
        return [page for c in commons for page in replica.summary_pages(self.store, c)]

    def _planner(self, commons: CID) -> replica.Planner:
        planner = self.planners.get(commons)
        if planner is None:
            planner = self.planners[commons] = replica.Planner(self.store, commons)
        return planner

    def _start_sending(self) -> None:
        self.plans = [self._planner(c).finish() for c in self.session.shared]
        self.planners.clear()
        self.session.send_totals(sum(p.entries for p in self.plans), sum(p.nbytes for p in self.plans))

        def gen() -> Iterator[tuple[CID, list[bytes]]]:
            for the_plan in self.plans:
                for batch in replica.batches(self.store, the_plan, batch_bytes=4096):
                    yield the_plan.commons, batch

        self.pending = gen()

    def pump_send(self) -> None:
        """Send as many batches as credit allows, then DONE when all are out."""
        if self.pending is None or self.done or self.session.stopped:
            return
        while True:
            if self.next_batch is None:
                self.next_batch = next(self.pending, None)
                if self.next_batch is None:
                    self.session.send_done()
                    self.done = True
                    return
            commons, batch = self.next_batch
            if not self.session.can_send(sum(len(e) for e in batch)):
                return
            self.session.send_batch(commons, batch)
            self.next_batch = None

    def handle(self, event: sync.Event) -> None:
        self.events += 1
        if isinstance(event, sync.PeerSummary):
            # plan from each page as it comes, then drop it (what the node does)
            commons = event.summary.commons
            if self.session.initiator or self.store.has_commons(commons):
                self._planner(commons).feed(event.summary)
            self.session.release_summary(event.nbytes)
        elif isinstance(event, sync.SummariesEnd):
            if not self.session.initiator:
                self.session.start(self.summaries(self.session.peer_commons))
            self._start_sending()
        elif isinstance(event, sync.Batch):
            self.batches_handled += 1
            report = Ingestor(self.store, commons=event.commons).add_batch(event.entries)
            self.added += report.added_count
            self.rejected += len(report.rejected)
            self.session.ack(event.nbytes)
        self.pump_send()


def run(a: Side, b: Side, *, rng: random.Random | None = None, stop_after: int | None = None,
        max_steps: int = 1_000_000) -> bool:
    """Exchange bytes until both sessions complete (True) or ``a`` stops after
    ``stop_after`` received batches (False).  Random chunk sizes and turn order if ``rng`` is given."""
    rng = rng or random.Random(0)
    a.session.start(a.summaries(None))
    buffers = {id(a): bytearray(), id(b): bytearray()}  # bytes in flight towards each side
    sides = (a, b)
    for _ in range(max_steps):
        for side, other in ((a, b), (b, a)):
            buffers[id(other)] += side.session.data_to_send()
        if a.session.complete and b.session.complete and not buffers[id(a)] and not buffers[id(b)]:
            return True
        if (a.session.stopped or b.session.stopped) and not buffers[id(a)] and not buffers[id(b)]:
            return False
        side = rng.choice(sides)
        if not buffers[id(side)]:
            side = b if side is a else a
        data = buffers[id(side)]
        if not data:
            raise RuntimeError("deadlock: neither side has anything to read")
        n = rng.randint(1, max(1, min(len(data), 3000)))
        chunk = bytes(data[:n])
        del data[:n]
        side.session.receive_data(chunk)
        while True:
            event = side.session.next_event()
            if event is sync.NEED_DATA:
                break
            assert isinstance(event, sync.Event)
            side.handle(event)
            if side is a and stop_after is not None and a.batches_handled >= stop_after and not a.session.stopped:
                a.session.stop("interrupted")
    raise RuntimeError("the session did not finish")
