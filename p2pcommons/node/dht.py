"""Discovery beyond address records: py-libp2p's Kademlia DHT with each commons id as a
provider key (opt-in: ``--dht`` or ``[network] dht = true``).

Address records (:mod:`.exchange`) reach the members a node has heard of through the
commons' entries; the DHT finds members it has not heard of yet — two newcomers who joined
through different inviters, say — as long as both are connected, directly or through other
DHT nodes, to a common overlay (bootstrap nodes are the usual way in).  Each node:

* runs the DHT in server mode and adds every peer it connects to to its routing table;
* announces itself as a provider of every commons it holds (at start, when it first has a
  peer, and every :data:`PROVIDE_INTERVAL`);
* looks up the providers of each commons every :data:`LOOKUP_INTERVAL` and dials those it is
  not connected to (the dial is paced like every other: no more than
  :data:`MAX_DIALS_PER_PASS` per pass).

What the DHT returns is untrusted: a provider is only an address to try; the connection's
Noise handshake proves the peer id, and sync checks everything it sends.  The overlay speaks
py-libp2p's ``/ipfs/kad/1.0.0`` protocol but only with peers this node connects to (its
bootstrap nodes and members): it does not join the public IPFS DHT unless given an IPFS
bootstrap node.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import trio

from .eventlog import peer_line_level

if TYPE_CHECKING:
    from .daemon import Node

log = logging.getLogger("p2pcommons.node")

PROVIDE_INTERVAL = 600.0
LOOKUP_INTERVAL = 5.0
MAX_DIALS_PER_PASS = 8
MAX_PROVIDERS = 20
QUERY_TIMEOUT = 10.0


class CommonsDHT:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.dht: Any = None
        self._provided: dict[str, float] = {}
        self.found: dict[str, set[str]] = {}  # commons id → provider peer ids (for status)

    async def run(self) -> None:
        from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
        from libp2p.tools.anyio_service import background_trio_service

        self.dht = KadDHT(self.node.host, DHTMode.SERVER, enable_random_walk=False)
        async with background_trio_service(self.dht):
            for _ in range(10**9):  # bounded in count; each pass waits LOOKUP_INTERVAL
                with contextlib.suppress(Exception):
                    await self._pass()
                await trio.sleep(LOOKUP_INTERVAL)

    async def _pass(self) -> None:
        connected = self.node.host.get_connected_peers()
        for peer in connected:
            with contextlib.suppress(Exception):
                await self.dht.add_peer(peer)
        if not connected:
            return
        held = [str(c) for c in await self.node.held_commons()]
        now = time.monotonic()
        for key in held:
            if now - self._provided.get(key, -PROVIDE_INTERVAL) >= PROVIDE_INTERVAL:
                with trio.move_on_after(QUERY_TIMEOUT), contextlib.suppress(Exception):
                    if await self.dht.provide(key):
                        self._provided[key] = now
        dials = 0
        for key in held:
            providers: list[Any] = []
            with trio.move_on_after(QUERY_TIMEOUT), contextlib.suppress(Exception):
                providers = await self.dht.find_providers(key, MAX_PROVIDERS)
            for info in providers:
                peer_id = info.peer_id.to_base58()
                self.found.setdefault(key, set()).add(peer_id)
                if (peer_id == self.node.peer_id or peer_id in self.node.connected_peers()
                        or self.node.is_banned(peer_id) or dials >= MAX_DIALS_PER_PASS):
                    continue
                dials += 1
                for addr in [str(a) for a in info.addrs][:4]:
                    full = addr if "/p2p/" in addr else f"{addr}/p2p/{peer_id}"
                    try:
                        await self.node.connect(full)
                    except Exception as exc:
                        log.debug("DHT provider %s not at %s (%s)", peer_id, addr, type(exc).__name__)
                        continue
                    log.log(peer_line_level(), "connected to %s, found in the DHT for %s", peer_id, key)
                    self.node.request_sync(peer_id)
                    break

    def status(self) -> dict[str, Any]:
        return {"enabled": True, "routing_table": self.dht.get_routing_table_size() if self.dht else 0,
                "providers": {k: sorted(v) for k, v in self.found.items()}}


__all__ = ["CommonsDHT"]
