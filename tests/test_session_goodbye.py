"""A session that completes must not lose its last frames on the way out.

The responder counts itself complete once it has *queued* its last ACK and DONE; the
tasks still writing them were cancelled when the session finished, and a write cancelled
between taking the bytes and putting them on the wire (as a multiplexer's write is) lost
them: the initiator then read end-of-stream before its session was complete and
``p2pc sync`` exited 6 ("did not catch up"), one CI run in three, about one in ten under load by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import trio.testing

from p2pcommons.author import append, create_commons
from p2pcommons.home import Home
from p2pcommons.identity import create_identity
from p2pcommons.ingest import Ingestor
from p2pcommons.node.session import SessionResult, run_session
from p2pcommons.store import Store


class SlowWriteStream:
    """A stream whose write, like a multiplexer's, takes the bytes and then yields several
    times before they are on the wire (so a cancel in between loses them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def read(self, n: int | None = None) -> bytes:
        return bytes(await self.inner.receive_some(n))

    async def write(self, data: bytes) -> None:
        for _ in range(3):
            await trio.lowlevel.checkpoint()
        await self.inner.send_all(data)

    async def close(self) -> None:
        await self.inner.aclose()


def test_both_sides_complete_after_every_session(tmp_path: Path) -> None:
    identities = [create_identity(Home(tmp_path / n)) for n in ("a", "b")]
    stores = [Store(tmp_path / f"{n}.sqlite") for n in ("a", "b")]
    try:
        genesis = create_commons(stores[0], identities[0].signer, {"name": "goodbye"})
        Ingestor(stores[1]).add_batch([genesis.raw])
        for trial in range(40):
            # each side writes one entry the other lacks, so each side must ACK and be ACKed
            for side, store in enumerate(stores):
                append(store, identities[side].signer, genesis.id, "contribution",
                       {"title": f"t{trial}"}, force=True)
            results = trio.run(_pair, stores)
            for result in results:
                assert result.complete and result.caught_up, (trial, results)
    finally:
        for store in stores:
            store.close()


async def _pair(stores: list[Store]) -> list[SessionResult]:
    client, server = trio.testing.memory_stream_pair()
    results: list[SessionResult] = []

    def runner(store: Store) -> Callable[..., Any]:
        async def db(fn: Callable[..., Any], *args: Any) -> Any:
            await trio.lowlevel.checkpoint()
            return fn(store, *args)
        return db

    async def side(stream: Any, store: Store, initiator: bool) -> None:
        results.append(await run_session(SlowWriteStream(stream), runner(store), initiator=initiator,
                                         want=[c for c in store.commons_ids()], stall_timeout=5))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, client, stores[1], True)
        nursery.start_soon(side, server, stores[0], False)
    return results
