"""Peers and the daemon: removing a peer from a running node, bans across restarts (and
lifting one), and reconnecting after a peer restarts.  Real nodes as separate processes on 127.0.0.1; every
wait polls a condition with a deadline.

Run as a script, this file is a misbehaving peer with a fixed identity (so it can come
back after the node restarts): ``python test_node_peers.py garbage|probe ADDR SEED_HEX``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if __name__ != "__main__":
    from tests.test_node_integration import NodeProc, converged, copy_genesis, nodes, wait_for

    __all__ = ["nodes"]  # the fixture
    pytestmark = pytest.mark.network


def _misbehave(mode: str, target: str, seed_hex: str) -> None:
    """``garbage``: twice open a sync stream and send a frame that is not HELLO
    (each costs -60; the ban comes at -100).  ``probe``: connect and report whether
    the node drops us at once.  Prints one JSON line."""
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

    key_pair = create_new_key_pair(bytes.fromhex(seed_hex))
    host = new_host(key_pair=key_pair, sec_opt={NOISE_ID: Noise(key_pair, new_x25519().private_key)},
                    connection_config=ConnectionConfig(max_connections_per_peer=1))
    info = info_from_p2p_addr(Multiaddr(target))
    report: dict[str, Any] = {"peer_id": host.get_id().to_base58(), "steps": []}

    async def hang_up(stream: Any) -> None:
        await stream.close()

    host.set_stream_handler(sync.PROTOCOL_ID, hang_up)

    async def dropped_within(seconds: float) -> bool:
        return bool(await poll_until(lambda: info.peer_id not in host.get_connected_peers(), seconds, interval=0.02))

    async def run() -> None:
        async with host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            if mode == "garbage":
                for _ in range(2):
                    try:
                        with trio.fail_after(10):
                            await host.connect(info)
                            stream = await host.new_stream(info.peer_id, [sync.PROTOCOL_ID])
                        # a complete frame that is not HELLO: a protocol violation at once
                        await stream.write(sync.frame(sync.DONE, os.urandom(64)))
                        with trio.move_on_after(10):
                            while await stream.read(65536):
                                pass
                        report["steps"].append("sent")
                    except Exception as exc:
                        report["steps"].append(f"refused ({type(exc).__name__})")
                    await dropped_within(10)
            else:
                try:
                    with trio.fail_after(10):
                        await host.connect(info)
                    report["dropped"] = await dropped_within(10)
                except Exception as exc:
                    report["dropped"] = True
                    report["refused"] = type(exc).__name__
            await host.close()

    trio.run(run)
    print(json.dumps(report))


def _run_misbehaving(mode: str, target: str, seed: bytes) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, mode, target, seed.hex()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _peer(node: NodeProc, peer_id: str) -> dict[str, Any] | None:
    found = [p for p in node.status()["peers"] if p["peer_id"] == peer_id]
    return found[0] if found else None


def _peer_id(addr: str) -> str:
    return addr.rsplit("/p2p/", 1)[1]


# --- tests ----------------------------------------------------------------------------------


def test_peer_remove_tells_the_running_daemon(nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    a.start(sync_interval=60, listen=("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/0"))
    first, second = a.status()["addrs"][:2]
    a_id = _peer_id(first)
    for addr in (first, second):
        b.p2pc("peer", "add", addr)
    b.start(sync_interval=60)  # maintains both addresses from its peer book
    wait_for(lambda: a_id in b.status()["connected"] and len(b.status()["maintained"]) == 2, 20,
             "b to connect to a and maintain both addresses")

    # one address of two: the other still reaches a, so the connection stays
    partial = b.p2pc_json("peer", "remove", first)
    assert partial["addrs"] == [first] and partial["stopped"] == [first], partial
    assert partial["dropped"] is False and partial["kept_by"] == [second], partial
    assert b.status()["maintained"] == [second]
    assert a_id in b.status()["connected"]
    text = b.p2pc("node", "status").stdout
    assert f"keeps     {second}" in text and first not in text, text

    # the peer id: every address goes and the live connection is dropped
    full = b.p2pc_json("peer", "remove", a_id)
    assert full["addrs"] == [second] and full["stopped"] == [second], full
    assert full["dropped"] is True and full["daemon"] is True, full
    status = b.status()
    assert status["maintained"] == [] and a_id not in status["connected"], status
    b_id = status["peer_id"]
    wait_for(lambda: b_id not in a.status()["connected"], 10, "a to see b gone")
    assert b.p2pc_json("peer", "list")["peers"] == []
    missing = b.p2pc("peer", "remove", a_id, check=False)
    assert missing.returncode == 2 and "No peer" in missing.stderr, missing.stderr

    # without a daemon: only the peer book changes
    b.stop()
    b.p2pc("peer", "add", first)
    offline = b.p2pc_json("peer", "remove", first)
    assert offline["addrs"] == [first] and offline["daemon"] is False and offline["dropped"] is False


def test_a_ban_survives_a_restart(nodes: Callable[[str], NodeProc]) -> None:
    a = nodes("a")
    commons = a.p2pc_json("commons", "create", "orchard")["commons"]
    assert commons
    a.start(sync_interval=60, stall=2)
    seed = os.urandom(32)
    attack = _run_misbehaving("garbage", a.addr, seed)
    bad = attack["peer_id"]
    banned = wait_for(lambda: (p := _peer(a, bad)) is not None and p["banned"] and p, 10, "a to ban the peer")
    assert banned["score"] <= -100, banned
    bans_file = Path(a.home) / "bans.json"
    assert os.stat(bans_file).st_mode & 0o777 == 0o600
    assert bad in json.loads(bans_file.read_text())["bans"]

    a.stop()
    listed = a.p2pc_json("peer", "list")["bans"]  # no daemon needed to see bans
    assert [b["peer_id"] for b in listed] == [bad]
    a.start(sync_interval=60, stall=2)
    restored = _peer(a, bad)
    assert restored is not None and restored["banned"] and restored["score"] <= -100, restored
    probe = _run_misbehaving("probe", a.addr, seed)
    assert probe["peer_id"] == bad and probe["dropped"], probe

    # Lifting the ban early: the running daemon forgets it (and the score), and so does the file.
    lifted = a.p2pc_json("peer", "unban", bad)
    assert lifted == {"peer_id": bad, "lifted": True, "daemon": True}, lifted
    fresh = _peer(a, bad)
    assert fresh is not None and not fresh["banned"] and fresh["score"] == 0, fresh
    assert a.p2pc_json("peer", "list")["bans"] == []
    probe = _run_misbehaving("probe", a.addr, seed)
    assert probe["peer_id"] == bad and not probe["dropped"], probe
    again = a.p2pc("peer", "unban", bad, check=False)
    assert again.returncode != 0 and "is not banned" in again.stderr, again


def test_reconnects_and_syncs_after_the_peer_restarts(nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "meadow")["commons"]
    copy_genesis(a, commons, b)
    # Long sync intervals and a does not know b: what reconnects is b's maintain task, and
    # what syncs is the sync it requests on reconnection.
    a.start(sync_interval=60)
    port = a.addr.split("/")[4]
    b.start(a.addr, sync_interval=60)
    a_id = _peer_id(a.addr)
    wait_for(lambda: a_id in b.status()["connected"], 20, "b to connect to a")

    a.kill9()
    wait_for(lambda: a_id not in b.status()["connected"], 20, "b to notice a is gone")
    a.p2pc("contribute", "--title", "written while b was cut off", "--commons", commons)
    a.start(sync_interval=60, listen=(f"/ip4/127.0.0.1/tcp/{port}",))
    assert a.addr.split("/")[4] == port
    # well inside maintain's 60 s safety-net re-check: the disconnect notification woke it
    wait_for(lambda: a_id in b.status()["connected"], 20, "b to reconnect to the restarted a")
    wait_for(converged([a, b], commons), 20, "b to sync what a wrote while it was down")
    # b runs with -v, under which the disconnect is the one event line (p2pcommons.events)
    assert f"peer …{a_id[-8:]} disconnected" in b.log.read_text()

    # a graceful stop and start again (SIGTERM: the connection is closed, not reset)
    a.stop()
    wait_for(lambda: a_id not in b.status()["connected"], 20, "b to notice a stopped")
    a.p2pc("contribute", "--title", "written during the second outage", "--commons", commons)
    a.start(sync_interval=60, listen=(f"/ip4/127.0.0.1/tcp/{port}",))
    wait_for(converged([a, b], commons), 30, "b to reconnect and sync again")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for tests.support
    _misbehave(sys.argv[1], sys.argv[2], sys.argv[3])
