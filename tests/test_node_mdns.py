"""mDNS discovery between two network namespaces this test creates (never in the
machine's own namespace: there mDNS would multicast on every real interface).

Needs root and ``ip netns``; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_node_integration import P2PC, NodeProc, converged, copy_genesis, wait_for

pytestmark = pytest.mark.network


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    tag = uuid.uuid4().hex[:6]
    ns = (f"p2pc-{tag}-a", f"p2pc-{tag}-b")
    veth = (f"pa{tag}", f"pb{tag}")
    try:
        for name in ns:
            _ip("netns", "add", name)
        _ip("link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for i, (name, dev) in enumerate(zip(ns, veth, strict=True)):
            _ip("link", "set", dev, "netns", name)
            _ip("-n", name, "addr", "add", f"10.231.0.{i + 1}/24", "dev", dev)
            _ip("-n", name, "link", "set", dev, "up", "multicast", "on")
            _ip("-n", name, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        for name in ns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        pytest.skip(f"cannot create network namespaces here ({exc.stderr.decode().strip()})")
    try:
        yield ns
    finally:
        for name in ns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


class NsNode(NodeProc):
    """A node whose daemon runs inside a network namespace (its control socket is a file,
    so the test drives it from outside)."""

    netns = ""
    ip = ""

    def start(self, *bootstrap: str, sync_interval: float = 2.0, wait: bool = True, stall: float = 20) -> None:
        args = ["ip", "netns", "exec", self.netns, *P2PC, "node", "start", "--foreground", "--home",
                str(self.home), "--listen", f"/ip4/{self.ip}/tcp/0", "--mdns", "--sync-interval",
                str(sync_interval), "-v"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
        if wait:
            status = wait_for(self._status_or_none, 30, f"{self.name} to start")
            self.addr = status["addrs"][0]


def test_mdns_finds_the_peer_on_the_lan(two_namespaces: tuple[str, str], tmp_path: Path) -> None:
    made: list[NsNode] = []
    try:
        for i, ns in enumerate(two_namespaces):
            node = NsNode(tmp_path, f"lan{i}")
            node.netns, node.ip = ns, f"10.231.0.{i + 1}"
            made.append(node)
        a, b = made
        commons = a.p2pc_json("commons", "create", "lan party")["commons"]
        copy_genesis(a, commons, b)
        a.start()
        b.start()  # no bootstrap address: only mDNS can introduce them
        wait_for(lambda: a.status()["connected"] or b.status()["connected"], 30, "mDNS discovery")
        a.p2pc("contribute", "--title", "found you", "--commons", commons)
        wait_for(converged([a, b], commons), 20, "the entry to cross the LAN")
    finally:
        for node in made:
            node.stop()
