"""A session's own side can end it with STOP when the node asks (``run_session(stop=...)``):
the node does so when its session with a peer crossed the peer's own (daemon ``_yields_to``).
Both sides end cleanly, nothing is a violation, and the side that stopped stores nothing
that arrives after its STOP."""

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
from tests.support.memstream import MemoryStream

REASON = "crossed: your session with me runs"


def _stores(tmp_path: Path, entries: int) -> list[Store]:
    identity = create_identity(Home(tmp_path / "a"))
    stores = [Store(tmp_path / f"{n}.sqlite") for n in ("a", "b")]
    genesis = create_commons(stores[0], identity.signer, {"name": "stop"})
    Ingestor(stores[1]).add_batch([genesis.raw])
    for i in range(entries):
        append(stores[0], identity.signer, genesis.id, "contribution", {"title": f"t{i}"}, force=True)
    return stores


async def _pair(stores: list[Store], preset: bool, stop_at_totals: bool) -> dict[str, SessionResult]:
    stop = trio.Event()
    if preset:
        stop.set()
    client, server = trio.testing.memory_stream_pair()
    results: dict[str, SessionResult] = {}

    def runner(store: Store) -> Callable[..., Any]:
        async def db(fn: Callable[..., Any], *args: Any) -> Any:
            await trio.lowlevel.checkpoint()
            return fn(store, *args)
        return db

    def totals(_entries: int, _nbytes: int) -> None:
        if stop_at_totals:
            stop.set()

    async def initiator() -> None:  # b: lacks everything, and stops its own session
        results["b"] = await run_session(MemoryStream(client), runner(stores[1]), initiator=True,
                                         want=stores[1].commons_ids(), stall_timeout=5, batch_bytes=2048,
                                         on_totals=totals, stop=stop, stop_reason=REASON)

    async def responder() -> None:
        results["a"] = await run_session(MemoryStream(server), runner(stores[0]), initiator=False, stall_timeout=5,
                                         batch_bytes=2048)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(initiator)
            nursery.start_soon(responder)
    return results


def test_stop_set_before_the_session_sends_only_stop(tmp_path: Path) -> None:
    stores = _stores(tmp_path, 20)
    try:
        results = trio.run(_pair, stores, True, False)
        assert results["b"].stopped == REASON and not results["b"].complete
        assert results["a"].stopped == "peer: " + REASON and not results["a"].complete
        assert results["b"].received_entries == 0 and results["b"].added == 0
        assert results["a"].sent_entries == 0
    finally:
        for store in stores:
            store.close()


def test_stop_during_the_session_ends_both_sides_cleanly(tmp_path: Path) -> None:
    stores = _stores(tmp_path, 200)
    try:
        results = trio.run(_pair, stores, False, True)
        assert results["b"].stopped == REASON and not results["b"].complete
        assert results["a"].stopped == "peer: " + REASON and not results["a"].complete
        assert results["b"].added < 200  # stopped before the end of the transfer
    finally:
        for store in stores:
            store.close()
