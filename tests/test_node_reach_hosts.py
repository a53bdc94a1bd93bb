"""Reach's libp2p parts with real hosts on 127.0.0.1 (no namespaces needed): the AutoNAT
dial-back really dials, and a relayed connection is reported as relayed.

Regression for two py-libp2p 0.8.1 defects: its AutoNAT server answered "reachable" for
an address where nothing listens whenever the asker was connected (``host.connect``
reused the connection), and dialling back through the swarm trimmed the asker's own
connection (one connection per peer)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.support.polling import wait_until

pytestmark = pytest.mark.network


def _host() -> Any:
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.custom_types import TProtocol
    from libp2p.network.config import ConnectionConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as Noise
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux

    key_pair = create_new_key_pair()
    return new_host(key_pair=key_pair, sec_opt={NOISE_ID: Noise(key_pair, new_x25519().private_key)},
                    muxer_opt={TProtocol(YAMUX_ID): Yamux},
                    connection_config=ConnectionConfig(max_connections_per_peer=1))


def _info(host: Any) -> Any:
    from libp2p.peer.peerinfo import PeerInfo

    return PeerInfo(host.get_id(), list(host.get_addrs()))


LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def test_autonat_dial_back_dials_afresh_and_keeps_the_askers_connection() -> None:
    from libp2p.host.autonat.pb.autonat_pb2 import Message
    from multiaddr import Multiaddr

    from p2pcommons.node.reach import _autonat_service

    async def run() -> None:
        server, asker = _host(), _host()
        service = _autonat_service(server)
        client = _autonat_service(asker)
        async with server.run([Multiaddr(LOOPBACK)]), asker.run([Multiaddr(LOOPBACK)]):
            try:
                with trio.fail_after(20):
                    await asker.connect(_info(server))
                    nowhere = Multiaddr("/ip4/127.0.0.1/tcp/1")  # nothing listens there
                    status, _ = await client.query_server(server.get_id(), [nowhere.to_bytes()])
                    assert status == Message.E_DIAL_ERROR  # 0.8.1's own server said OK
                    for _ in range(3):  # the real address: reachable, and the asker stays connected
                        status, addr = await client.query_server(
                            server.get_id(), [a.to_bytes() for a in asker.get_addrs()])
                        assert status == Message.OK and addr is not None
                    await trio.sleep(0.2)  # deliberate: time for a wrongful hang-up to show before asserting none came
                    assert server.get_id() in asker.get_connected_peers()
                    assert len(asker.get_network().connections[server.get_id()]) == 1
                    assert service is not None
            finally:
                await asker.close()
                await server.close()

    trio.run(run)


def test_a_relayed_connection_is_reported_relayed_and_carries_streams() -> None:
    from libp2p.custom_types import TProtocol
    from libp2p.tools.anyio_service import background_trio_service
    from multiaddr import Multiaddr

    from p2pcommons.node.reach import Reach, RelaySettings, connection_kinds

    echo = TProtocol("/p2pc-test/echo/1")

    async def handler(stream: Any) -> None:
        await stream.write(await stream.read(64))
        await stream.close()

    async def run() -> None:
        relay, home, visitor = _host(), _host(), _host()
        home_id = home.get_id().to_base58()

        async def members() -> set[str]:
            return {home_id}

        relay_reach = Reach(relay, RelaySettings(relay_service=True), members)
        home_reach = Reach(home, RelaySettings(), members)
        visitor_reach = Reach(visitor, RelaySettings(), members)
        home.set_stream_handler(echo, handler)
        async with relay.run([Multiaddr(LOOPBACK)]), home.run([Multiaddr(LOOPBACK)]), \
                visitor.run([Multiaddr(LOOPBACK)]), trio.open_nursery() as nursery:
            try:
                with trio.fail_after(30):
                    relay_reach.allowed.add(home_id)
                    async with background_trio_service(relay_reach.protocol), \
                            background_trio_service(home_reach.protocol):
                        await home.connect(_info(relay))
                        relay_id = relay.get_id().to_base58()
                        relay_addr = f"{relay.get_addrs()[0]}".split("/p2p/")[0] + f"/p2p/{relay_id}"
                        reservation = await home_reach._reserve(relay_id, relay_addr)
                        circuit = reservation.circuit_addrs(home_id)[0]
                        assert circuit.startswith(relay_addr) and circuit.endswith(f"/p2p-circuit/p2p/{home_id}")
                        await visitor_reach.circuits.dial_circuit(circuit)
                        assert connection_kinds(visitor)[home_id] == "relayed"
                        assert connection_kinds(visitor)[relay_id] == "direct"
                        stream = await visitor.new_stream(home.get_id(), [echo])
                        await stream.write(b"through the relay")
                        assert await stream.read(64) == b"through the relay"
                        await stream.close()
                        visitor_id = visitor.get_id().to_base58()
                        await wait_until(lambda: visitor_id in connection_kinds(home), 5,
                                         "the home side to register the inbound circuit")
                        assert connection_kinds(home)[visitor_id] == "relayed"
                        # a stranger (not a member of our commons) gets no slot on the relay
                        with pytest.raises(ConnectionError):
                            await visitor_reach._reserve(relay_id, relay_addr)
            finally:
                nursery.cancel_scope.cancel()
                for host in (visitor, home, relay):
                    await host.close()

    trio.run(run)
