"""Honest peers are not banned for the network's faults (issue 11, item 9).

Two real daemons in separate processes; every connection between them goes through a TCP
proxy process on 127.0.0.1 (tests/support/link_proxy.py) that breaks the first six links
mid-transfer: four silently (the proxy stops forwarding, so both daemons see a stall) and
two with a reset.  The sending daemon runs in a network namespace of its own (only its
loopback) on port P, and the proxy listens on 127.0.0.1:P in the test's namespace, joined
to it by a relay and a Unix socket: the receiver dials the address the sender announces in
its signed peer record (py-libp2p then ignores any other address for that peer), and that
address leads through the proxy.  Needs root and ``ip netns`` (skipped otherwise).
Before the fix each stall cost 30 points, so four of them banned the
honest peer for ten minutes and the nodes never converged; now the nodes converge, nobody
is banned and both scores stay at 0.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.test_node_integration import (  # noqa: F401  (the fixture)
    P2PC,
    NodeProc,
    _bulk_history,
    copy_genesis,
    nodes,
    same_state,
    wait_for,
)

pytestmark = pytest.mark.network

PROXY = Path(__file__).parent / "support" / "link_proxy.py"
PLAN = ["blackhole", "reset", "blackhole", "blackhole", "reset", "blackhole"]
THRESHOLD = 192 * 1024  # bytes from the sender through one link before it is cut
STALL = 1.0


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace with only its loopback, deleted afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    name = f"p2pc-link-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here ({made.stderr.strip()})")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_in(node: NodeProc, netns: str, port: int) -> None:
    """``node``'s daemon inside ``netns``, listening on that namespace's 127.0.0.1:port."""
    args = ["ip", "netns", "exec", netns, *P2PC, "node", "start", "--foreground", "--home", str(node.home),
            "--listen", f"/ip4/127.0.0.1/tcp/{port}", "--sync-interval", "1", "--stall-timeout", str(STALL), "-v"]
    with open(node.log, "ab") as log:
        node.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    node.addr = wait_for(node._status_or_none, 30, f"{node.name} to start")["addrs"][0]


def _lines(log: Path, key: str) -> list[dict[str, object]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if f'"{key}"' in line]


def _cuts(log: Path) -> list[dict[str, object]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if '"cut"' in line]


@pytest.mark.timeout(400)
def test_link_drops_mid_transfer_are_not_violations(nodes: Callable[[str], NodeProc], tmp_path: Path,  # noqa: F811
                                                     namespace: str) -> None:
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "flaky links")["commons"]
    _bulk_history(a, commons, 20_000)  # ~4 MB: every planned cut lands mid-transfer
    total = a.count(commons)
    copy_genesis(a, commons, b)
    port = free_port()
    start_in(a, namespace, port)

    socket_path, log, relay_log = tmp_path / "link.sock", tmp_path / "proxy.log", tmp_path / "relay.log"
    with open(relay_log, "wb") as out:
        relay = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, str(PROXY), "relay",
                                  str(socket_path), str(port)], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    with open(log, "wb") as out:
        proxy = subprocess.Popen([sys.executable, str(PROXY), "cut", str(port), str(socket_path), str(THRESHOLD),
                                  ",".join(PLAN)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: _lines(relay_log, "relay"), 20, "the relay to listen")
        wait_for(lambda: _lines(log, "port"), 20, "the proxy to listen")
        b.start(a.addr, sync_interval=1, stall=STALL)
        wait_for(lambda: b.count(commons) == total, 90, "b to catch up through the flaky link", interval=0.25)
        cuts = _cuts(log)
        assert len(cuts) >= 4, f"only {len(cuts)} links were cut mid-transfer: {cuts}"
        modes = [c["mode"] for c in cuts]
        assert modes.count("blackhole") >= 3, modes
        for node, other in ((a, b), (b, a)):
            other_id = other.status()["peer_id"]
            seen = {p["peer_id"]: p for p in node.status()["peers"]}.get(other_id)
            assert seen is None or (not seen["banned"] and seen["score"] == 0), (node.name, seen)
            assert node.p2pc_json("peer", "list")["bans"] == [], node.name
        assert b.stored_heads(commons) == a.stored_heads(commons)
        same_state([a, b], commons)
        print(f"\n{len(cuts)} links cut mid-transfer ({', '.join(str(m) for m in modes)}); "
              f"{total} entries converged; no ban, scores 0")
    finally:
        for process in (proxy, relay):
            process.kill()
            process.wait(timeout=10)
