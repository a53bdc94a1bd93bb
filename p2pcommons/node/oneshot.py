"""``p2pc sync`` without a daemon: a temporary node that dials, syncs and exits.

It reuses :class:`~p2pcommons.node.daemon.Node` (same host settings, same sessions, same
scoring) but runs no gossip, no control socket and no anti-entropy loop.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.identity import Identity
from p2pcommons.protocols import sync

from . import peers as peerbook
from .daemon import Node, NodeConfig
from .reach import CircuitDialer

log = logging.getLogger("p2pcommons.node")


async def oneshot_sync(
    home: Home,
    identity: Identity,
    addrs: Sequence[str],
    want: Sequence[CID],
    wait: bool,
    timeout: float,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Sync with each address once (retrying until ``timeout`` if ``wait``)."""
    from multiaddr import Multiaddr

    from .lean_imports import install

    install(mdns=False)  # before the host's first libp2p import: only the stacks a sync uses

    node = Node(NodeConfig(home=home, listen=()), identity)
    results: dict[str, Any] = {}
    unreachable: list[str] = []
    deadline = time.monotonic() + timeout
    node.host = node._build_host()
    node.circuits = CircuitDialer(node.host)  # dials /p2p-circuit addresses
    node.host.set_stream_handler(sync.PROTOCOL_ID, node._handle_sync_stream)  # peers may sync back
    touched: set[CID] = set()
    try:
        async with node.host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            with trio.move_on_after(timeout):
                # Round-robin over the addresses: an invite may carry several for one peer
                # (its LAN address, a relay circuit); a dead one must not use up the time.
                reached: set[str] = set()
                done: set[str] = set()
                for _round in range(10_000):
                    for addr in addrs:
                        if peerbook.peer_id_of(addr) in done:
                            continue
                        peer_id = None
                        result = None
                        try:
                            peer_id = await node.connect(addr)
                            result = await node.sync_now(peer_id, want, on_progress)
                        except Exception as exc:
                            log.debug("sync with %s failed: %s", addr, exc)
                        if peer_id is None:
                            continue
                        reached.add(addr)
                        if result is not None:
                            touched |= result.touched
                        if result is not None or peer_id not in results:
                            results[peer_id] = None if result is None else {
                                "caught_up": result.caught_up, "complete": result.complete,
                                "received": result.received_entries, "added": result.added,
                                "sent": result.sent_entries, "announced": list(result.announced),
                            }
                        if result is not None and result.caught_up:
                            done.add(peer_id)
                    if not wait or all(peerbook.peer_id_of(a) in done for a in addrs):
                        break
                    if time.monotonic() + 0.5 >= deadline:
                        break
                    await trio.sleep(0.5)
            unreachable.extend(a for a in addrs if a not in reached and peerbook.peer_id_of(a) not in results)
            with trio.CancelScope(shield=True), trio.move_on_after(5), contextlib.suppress(Exception):
                await node.host.close()
    finally:
        await node.ingest_process.aclose()
        node.store.close()
    if touched:
        with contextlib.suppress(Exception):
            await trio.to_thread.run_sync(_fold, home, touched)
    return {"peers": results, "unreachable": unreachable}


def _fold(home: Home, touched: set[CID]) -> None:
    """Bring the derived state up to date after new entries (if the state package exists)."""
    from .derived import current_state_fn

    current_state = current_state_fn()
    if current_state is None:
        return
    from p2pcommons.store import Store

    with Store(home.store_file) as store:
        for commons in touched:
            current_state(store, commons)
