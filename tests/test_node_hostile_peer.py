"""A hostile peer, run as its own process by test_node_integration.py (no tests here).

It dials the target node with a real libp2p host and misbehaves three ways: garbage bytes
on the sync protocol, a well-framed session carrying an entry with a forged signature, and
an attempt to come back afterwards.  It prints one JSON line: its peer id, what happened at
each step, and whether the target cut it off.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any


async def wait_disconnected(host: Any, peer_id: Any, seconds: float) -> float | None:
    """Give the attacked node up to ``seconds`` to drop us (polled; returns early): how long
    it took (None: still connected)."""
    import trio

    from tests.support.polling import poll_until

    started = trio.current_time()
    dropped = await poll_until(lambda: peer_id not in host.get_connected_peers(), seconds)
    return round(trio.current_time() - started, 2) if dropped else None


def main() -> None:
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.network.config import ConnectionConfig
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as Noise
    from multiaddr import Multiaddr

    from p2pcommons.dagcbor import CID
    from p2pcommons.entry import Signer, sign_entry
    from p2pcommons.protocols import sync

    target, commons_text = sys.argv[1], sys.argv[2]
    commons = CID.parse(commons_text)
    key_pair = create_new_key_pair()
    host = new_host(key_pair=key_pair, sec_opt={NOISE_ID: Noise(key_pair, new_x25519().private_key)},
                    connection_config=ConnectionConfig(max_connections_per_peer=1))
    info = info_from_p2p_addr(Multiaddr(target))
    steps: dict[str, Any] = {}

    async def hang_up(stream: Any) -> None:
        # the target's anti-entropy will dial us back: answer by closing, so py-libp2p's
        # host does not crash on a failed negotiation
        await stream.close()

    host.set_stream_handler(sync.PROTOCOL_ID, hang_up)

    async def read_until_closed(stream: Any, timeout: float) -> str:
        with trio.move_on_after(timeout):
            try:
                for _ in range(1000):
                    data = await stream.read(65536)
                    if not data:
                        return "closed"
            except Exception as exc:
                return f"closed ({type(exc).__name__})"
        return "still open"

    async def run() -> None:
        async with host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            # 0. a stall: half a HELLO, then silence
            with trio.fail_after(10):
                await host.connect(info)
                stream = await host.new_stream(info.peer_id, [sync.PROTOCOL_ID])
            hello = sync.frame(sync.HELLO, b"\xa2avx01fwindow\x1a\x00@\x00\x00")
            await stream.write(hello[:5])
            started = trio.current_time()
            steps["stall"] = await read_until_closed(stream, 15)
            steps["stall_seconds"] = round(trio.current_time() - started, 1)
            steps["stall_dropped_s"] = await wait_disconnected(host, info.peer_id, 20)  # returns once dropped

            # 1. garbage on the sync protocol
            try:
                with trio.fail_after(10):
                    await host.connect(info)
                    stream = await host.new_stream(info.peer_id, [sync.PROTOCOL_ID])
                # A HELLO frame whose body is not CBOR: a proven violation every time.  (Random
                # bytes were flaky: when they began with a plausible frame length, the node
                # rightly waited for the rest and then saw a stall, which is not scored.)
                await stream.write(sync.frame(sync.HELLO, b"\xff" * 2000) + os.urandom(1000))
                steps["garbage"] = await read_until_closed(stream, 10)
            except Exception as exc:
                steps["garbage"] = f"refused ({type(exc).__name__})"
            steps["garbage_dropped_s"] = await wait_disconnected(host, info.peer_id, 20)  # returns once dropped
            steps["garbage_disconnected"] = info.peer_id not in host.get_connected_peers()

            # 2. a well-framed session carrying a forged entry
            forger = Signer(os.urandom(32))
            entry = sign_entry(forger, commons=commons, seq=1, prev=None, kind="contribution",
                               body={"title": "forged", "kind": "work", "value": 1})
            forged = bytearray(entry.raw)
            forged[-5] ^= 0xFF  # inside the signature bytes' tail region of the map
            session = sync.SyncSession(initiator=True)
            session.start([sync.Summary(commons)])
            try:
                with trio.fail_after(10):
                    await host.connect(info)
                    stream = await host.new_stream(info.peer_id, [sync.PROTOCOL_ID])
                await stream.write(session.data_to_send())
                with trio.fail_after(10):
                    while True:
                        session.receive_data(await stream.read(65536))
                        event = session.next_event()
                        while event is not sync.NEED_DATA:
                            if isinstance(event, sync.SummariesEnd):
                                break
                            event = session.next_event()
                        if isinstance(event, sync.SummariesEnd):
                            break
                session.send_totals(1, len(forged))
                session.send_batch(commons, [bytes(forged)])
                await stream.write(session.data_to_send())
                steps["forged"] = await read_until_closed(stream, 10)
            except Exception as exc:
                steps["forged"] = f"refused ({type(exc).__name__})"

            # 3. coming back: a banned peer gets nothing
            steps["forged_dropped_s"] = await wait_disconnected(host, info.peer_id, 20)
            try:
                with trio.fail_after(10):
                    await host.connect(info)
                    stream = await host.new_stream(info.peer_id, [sync.PROTOCOL_ID])
                    fresh = sync.SyncSession(initiator=True)
                    fresh.start([sync.Summary(commons)])
                    await stream.write(fresh.data_to_send())
                    data = await stream.read(65536)
                steps["return"] = "served" if data else "closed"
            except Exception as exc:
                steps["return"] = f"refused ({type(exc).__name__})"
            await host.close()

    trio.run(run)
    cut_off = (steps.get("stall", "").startswith("closed") and steps.get("garbage", "") != "still open"
               and steps.get("forged", "") != "still open" and steps.get("return") != "served")
    print(json.dumps({"peer_id": info and host.get_id().to_base58(), "steps": steps, "cut_off": cut_off}))


def redial() -> None:
    """Mode ``redial``: connect and answer the target's sync session (it syncs with a new
    peer at once) with garbage, a proven violation: the target scores us and drops the
    connection from its own task.  Redial the moment the connection drops (while the
    target's disconnect still runs), send garbage again (banned now), and note how long the
    target took to drop that second connection (None: still connected after 15 s).  Three
    rounds, each with a new key; prints the rounds' reports."""
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.network.config import ConnectionConfig
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as Noise
    from multiaddr import Multiaddr

    from p2pcommons.protocols import sync
    from tests.support.polling import poll_until

    info = info_from_p2p_addr(Multiaddr(sys.argv[2]))
    garbage = sync.frame(sync.HELLO, b"\xff" * 2000)  # not CBOR: a violation every time

    async def answer_with_garbage(stream: Any) -> None:
        with contextlib.suppress(Exception):
            await stream.write(garbage)
            await stream.read(65536)

    async def round_() -> dict[str, Any]:
        key_pair = create_new_key_pair()
        host = new_host(key_pair=key_pair, sec_opt={NOISE_ID: Noise(key_pair, new_x25519().private_key)},
                        connection_config=ConnectionConfig(max_connections_per_peer=1))
        host.set_stream_handler(sync.PROTOCOL_ID, answer_with_garbage)
        report: dict[str, Any] = {"peer_id": host.get_id().to_base58()}
        async with host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            with trio.fail_after(10):
                await host.connect(info)
            # a fine poll: the redial must come while the target's disconnect still runs
            report["first_dropped"] = await poll_until(lambda: info.peer_id not in host.get_connected_peers(), 15,
                                                       interval=0.002)
            try:
                with trio.fail_after(10):
                    await host.connect(info)
                    stream = await host.new_stream(info.peer_id, [sync.PROTOCOL_ID])
                await stream.write(garbage)
                report["second"] = "sent"
            except Exception as exc:
                report["second"] = f"refused ({type(exc).__name__})"
            report["dropped_s"] = await wait_disconnected(host, info.peer_id, 15)
            await host.close()
        return report

    async def run() -> None:
        rounds = [await round_() for _ in range(3)]
        print(json.dumps({"rounds": rounds}))

    trio.run(run)


def flood(paced: bool = False) -> None:
    """Join the commons' gossip topic and publish far more than the rate limit allows, until
    the target drops us (at most 20,000 messages or 60 s): the target scores each message
    beyond its limit in a second, so how many it takes depends on how fast this machine
    publishes and the target reads, and a fixed count (400 before) was too few under load.

    ``paced`` (mode ``gossip``): publish 40 announcements of heads nobody has, 10 a second
    (under the rate limit), hang up on every sync session the target opens to fetch them,
    and count those sessions (``sessions``), until the target has had 3 s without one."""
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.network.config import ConnectionConfig
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as Noise
    from libp2p.tools.anyio_service import background_trio_service
    from multiaddr import Multiaddr

    from p2pcommons import dagcbor
    from p2pcommons.dagcbor import CID
    from p2pcommons.protocols.gossip import topic_of
    from p2pcommons.protocols.sync import PROTOCOL_ID as PROTOCOL_ID_SYNC
    from tests.support.polling import poll_until

    target, commons = sys.argv[2], CID.parse(sys.argv[3])
    key_pair = create_new_key_pair()
    host = new_host(key_pair=key_pair, sec_opt={NOISE_ID: Noise(key_pair, new_x25519().private_key)},
                    connection_config=ConnectionConfig(max_connections_per_peer=1))
    router = GossipSub([PROTOCOL_ID_V11, PROTOCOL_ID], 6, 4, 12, heartbeat_interval=1,
                       spam_protection_enabled=False)
    pubsub = Pubsub(host, router)
    info = info_from_p2p_addr(Multiaddr(target))
    sent = 0
    sessions = 0

    async def hang_up(stream: Any) -> None:
        nonlocal sessions
        sessions += 1
        await stream.close()

    host.set_stream_handler(PROTOCOL_ID_SYNC, hang_up)

    async def publish_all(count: int) -> None:
        nonlocal sent
        for i in range(count):
            data = dagcbor.encode({"commons": commons, "entries": [],
                                   "heads": [[os.urandom(32), i + 1, commons]]})
            try:
                await pubsub.publish(topic_of(commons), data)
                sent += 1
            except Exception:
                return
            if paced:
                await trio.sleep(0.1)  # deliberate: 10 announcements a second, under the target's rate limit
            elif i % 20 == 0:
                if info.peer_id not in host.get_connected_peers():
                    return  # cut off: the target banned us
                await trio.sleep(0.01)  # deliberate: pacing the flood, a breather every 20 messages

    async def run() -> None:
        async with host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            async with background_trio_service(pubsub), background_trio_service(router):
                await pubsub.wait_until_ready()
                with trio.fail_after(10):
                    await host.connect(info)
                await pubsub.subscribe(topic_of(commons))
                # Flood once the victim is in our mesh for the topic (polled, bounded).
                await poll_until(lambda: info.peer_id in router.mesh.get(topic_of(commons), set()), 10)
                with trio.move_on_after(60):
                    await publish_all(40 if paced else 20_000)
                if paced:  # until the target opened no session for 3 s (bounded: 60 s)
                    for _ in range(20):
                        seen = sessions
                        await trio.sleep(3)  # deliberate: the quiet window that ends the count (3 s without a session)
                        if sessions == seen:
                            break
                else:
                    await wait_disconnected(host, info.peer_id, 20)  # returns as soon as we are dropped
                disconnected = info.peer_id not in host.get_connected_peers()
            await host.close()
        print(json.dumps({"peer_id": host.get_id().to_base58(), "sent": sent, "disconnected": disconnected,
                          "sessions": sessions}))

    trio.run(run)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for tests.support
    if sys.argv[1] in ("flood", "gossip"):
        flood(paced=sys.argv[1] == "gossip")
    elif sys.argv[1] == "redial":
        redial()
    else:
        main()
