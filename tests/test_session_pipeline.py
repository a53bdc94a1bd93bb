"""The receiving session's pipeline (issue 18): groups are handed over ahead, acknowledged
after their reports and in order.

Two sessions over an in-memory stream, real stores.  The receiver's hand-over is observed
(never replaced: groups are stored by the same :class:`~p2pcommons.node.handoff.Handoff`
as a node's without its ingest process), and so are the ACK frames it writes.  Each
group's report is held back until the next group has been handed over (or everything
has): a session that waited for a report before handing over the next group would never
finish.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from p2pcommons.dagcbor import CID
from p2pcommons.ingest import Ingestor
from p2pcommons.node import session as session_module
from p2pcommons.node.handoff import Handoff, Outcome, StoredGroup
from p2pcommons.node.ingest_worker import ingest_scoped
from p2pcommons.node.session import PIPELINE_DEPTH, SessionResult, run_session
from p2pcommons.protocols import sync
from p2pcommons.store import Store
from tests.support.memstream import MemoryStream

from .test_node_ingest_process import _history


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


class Watched(MemoryStream):
    """The receiver's stream: notes the bytes of each ACK frame it writes."""

    def __init__(self, inner: Any, events: list[tuple[str, int]]) -> None:
        super().__init__(inner)
        self.events = events

    async def write(self, data: bytes) -> None:
        at = 0
        while at < len(data):  # (whole frames: the session writes what it queued)
            length, at = _uvarint(data, at)
            if data[at] == sync.ACK:
                self.events.append(("ack", _uvarint(data, at + 1)[0]))
            at += length
        await self.inner.send_all(data)


class HeldReports:
    """The receiver's hand-over, observed: each group's report waits until the next group
    is handed over (or every entry has been)."""

    def __init__(self, store: Store, total: int, events: list[tuple[str, int]]) -> None:
        self.total = total
        self.events = events
        self.handed_entries = 0
        self.groups = 0
        self.handed = trio.Event()

        async def store_here(commons: CID, entries: list[bytes]) -> Outcome:
            await trio.lowlevel.checkpoint()
            return ingest_scoped(store, commons, entries)

        self.handoff = Handoff(store_here)

    async def hand_over(self, commons: CID, entries: list[bytes]) -> StoredGroup:
        k = self.groups
        self.groups += 1
        self.handed_entries += len(entries)
        self.events.append(("hand", sum(len(e) for e in entries)))
        inner = await self.handoff.hand_over(commons, entries)
        self.handed.set()
        self.handed = trio.Event()
        owner = self

        class Held:
            async def report(self) -> Outcome:
                with trio.fail_after(10):  # (no next hand-over while this waits: the session is serial)
                    while owner.groups == k + 1 and owner.handed_entries < owner.total:
                        await owner.handed.wait()
                outcome = await inner.report()
                owner.events.append(("stored", k))
                return outcome

            async def discard(self) -> None:
                await inner.discard()

        return Held()


@pytest.mark.parametrize("coalesce", [6_000, 20_000])
def test_groups_are_handed_over_ahead_and_acknowledged_after_their_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coalesce: int) -> None:
    monkeypatch.setattr(session_module, "COALESCE_BYTES", coalesce)
    genesis, rest = _history(400)  # (every author a steward: no outsider bounds apply)
    history = [genesis, *rest]
    sender, receiver = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    events: list[tuple[str, int]] = []
    try:
        Ingestor(sender).add_batch([e.raw for e in history])
        Ingestor(receiver).add_batch([genesis.raw])
        held = HeldReports(receiver, len(rest), events)
        results = trio.run(_pair, sender, receiver, held, events)
        assert all(r.complete for r in results) and results[1].added == len(rest)
        assert receiver.count(genesis.id) == len(history)
    finally:
        sender.close()
        receiver.close()
    sizes = [n for kind, n in events if kind == "hand"]
    assert len(sizes) >= 4 and all(n <= coalesce for n in sizes)
    assert [n for kind, n in events if kind == "ack"] == sizes  # one ACK per group, in order
    handed = acked = stored = 0
    for kind, _ in events:
        handed += kind == "hand"
        stored += kind == "stored"
        acked += kind == "ack"
        assert acked <= stored  # acknowledged only once stored
        assert handed - acked <= PIPELINE_DEPTH


async def _pair(sender: Store, receiver: Store, held: HeldReports,
                events: list[tuple[str, int]]) -> list[SessionResult]:
    client, server = trio.testing.memory_stream_pair()
    results: list[SessionResult] = [SessionResult(), SessionResult()]

    def runner(store: Store) -> Callable[..., Any]:
        async def db(fn: Callable[..., Any], *args: Any) -> Any:
            await trio.lowlevel.checkpoint()
            return fn(store, *args)
        return db

    async def send() -> None:
        results[0] = await run_session(MemoryStream(server), runner(sender), initiator=False, stall_timeout=5,
                                       batch_bytes=2048)

    async def receive() -> None:
        results[1] = await run_session(Watched(client, events), runner(receiver), initiator=True,
                                       want=receiver.commons_ids(), stall_timeout=5, window=sync.MIN_WINDOW,
                                       ingest=held.hand_over)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        nursery.start_soon(receive)
    return results
