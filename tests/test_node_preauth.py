"""Pre-authentication limits (issue 17, item 5; advisory GHSA-hmjq-g7pp-rw3x).

A stranger process opens raw TCP connections to a real daemon, announces a 1 GiB
multistream message and streams zeros.  The daemon must stay within a stated memory bound
(psutil RSS sampled during the attack), hang up on the stranger, and keep serving an
honest peer (a write on one node still reaches the other).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from p2pcommons.node import preauth
from tests.test_node_integration import NodeProc, converged, copy_genesis, wait_for
from tests.test_node_integration import nodes as nodes  # the fixture
from tests.test_reliability_hostile import RssSampler

pytestmark = pytest.mark.network

FLOODER = Path(__file__).parent / "support" / "varint_flooder.py"
# What the attack may add to the daemon's RSS: far below what the flooder sends (4 × up to
# 256 MiB) and what an unbounded read keeps, above allocator noise.
RSS_BOUND = 48 * 1024 * 1024


def test_multistream_reader_is_bounded_before_the_handshake() -> None:
    assert preauth.install()
    from libp2p.protocol_muxer import multiselect_communicator
    from libp2p.utils import varint

    assert multiselect_communicator.read_delim is not varint.read_delim


@pytest.mark.timeout(180)
def test_an_oversized_multistream_varint_does_not_grow_memory_and_honest_peers_are_served(
        nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "garden")["commons"]
    copy_genesis(a, commons, b)
    a.start(sync_interval=1)
    b.start(a.addr, sync_interval=1)
    wait_for(converged([a, b], commons), 30, "the honest nodes to converge first")
    assert a.proc is not None
    port = a.addr.split("/tcp/")[1].split("/")[0]
    sampler = RssSampler(a.proc.pid)
    result = subprocess.run([sys.executable, str(FLOODER), "127.0.0.1", port],
                            capture_output=True, text=True, timeout=120)
    growth = sampler.stop()
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(c["closed"] for c in report["connections"]), report  # the node hung up on each
    assert growth < RSS_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB under the flood ({report})"
    b.p2pc("contribute", "--title", "after the flood", "--commons", commons)
    wait_for(converged([a, b], commons), 30, "a write after the flood to reach the attacked node")
