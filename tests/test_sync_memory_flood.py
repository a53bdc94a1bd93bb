"""Summary floods cannot grow a node's memory (issue 11, item 7).

Why: a session kept every SUMMARY page a peer sent until the peer's summaries ended, so
one peer (no membership needed) grew a node by 767 MiB in 13 s, three by 1,153 MiB.  Now a
session plans from each page and drops it before reading on, charges what it holds to its
share of the node's sync memory budget, and a peer past the protocol's limits is cut off
and scored.  Here three hostile peers, each its own real libp2p process with a fresh
identity (tests/support/misbehaving_peer.py ``summary-flood``), flood a real daemon at
once while an honest node keeps syncing with it; psutil samples the daemon's RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pcommons.protocols import sync

from .test_node_integration import NodeProc, converged, copy_genesis, nodes, wait_for  # noqa: F401
from .test_reliability_hostile import RssSampler

pytestmark = pytest.mark.network

PEER = Path(__file__).parent / "support" / "misbehaving_peer.py"
FLOODERS = 3
PAGES = sync.MAX_SUMMARIES + 60  # past the limit on summaries per session: that ends each flood
HEADS = 1024                     # ~90 KB a page; the old code kept ~250 MiB per flooder
# Peak growth seen: 5-16 MiB on a moderately loaded machine, with or without the relay, DCUtR
# and AutoNAT services (each switched off in turn: 5.2, 6.7, 14.5 MiB; all on: 14.4, 15.6 MiB);
# 49-93 MiB once under a heavy load (the node reads slower than the flooders write, so more
# sits in buffers below the session); 856 MiB when summaries were unbounded.
RSS_GROWTH_LIMIT = 160 * 1024 * 1024


@pytest.mark.timeout(400)
def test_summary_floods_keep_memory_bounded_and_honest_sync_works(
        nodes: Callable[[str], NodeProc]) -> None:  # noqa: F811
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "floodplain")["commons"]
    copy_genesis(a, commons, b)
    a.start(sync_interval=1)
    b.start(a.addr, sync_interval=1)
    a.p2pc("contribute", "--title", "before", "--commons", commons)
    wait_for(converged([a, b], commons), 30, "the honest nodes to converge first")
    assert a.proc is not None
    sampler = RssSampler(a.proc.pid)
    try:
        floods = [subprocess.Popen([sys.executable, str(PEER), "summary-flood", a.addr, commons, str(PAGES),
                                    str(HEADS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(FLOODERS)]
        # honest work during the flood
        b.p2pc("contribute", "--title", "during", "--commons", commons)
        wait_for(converged([a, b], commons), 120, "the honest nodes to converge during the flood")
        reports: list[dict[str, Any]] = []
        for flood in floods:
            out, err = flood.communicate(timeout=300)
            assert flood.returncode == 0, out + err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        growth = sampler.stop()
        for flood in floods:
            if flood.poll() is None:
                flood.kill()
    for report in reports:
        print(f"\nflood: {report}")
    print(f"\nRSS of the flooded node: baseline {sampler.baseline / 2**20:.0f} MiB, "
          f"peak growth {growth / 2**20:.1f} MiB")
    status = a.status()
    peers = {p["peer_id"]: p for p in status["peers"]}
    for report in reports:
        assert report["result"] != "still open", report
        assert report["pages"] > sync.MAX_SUMMARIES - 10, report  # the node read on, page by page
        scored = peers.get(report["peer_id"])
        assert scored is not None and scored["score"] < 0 and not scored["connected"], (report, scored)
    assert a.proc is not None and a.proc.poll() is None, "the flooded node died"
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.0f} MiB under the flood"
    a.p2pc("contribute", "--title", "after", "--commons", commons)
    wait_for(converged([a, b], commons), 60, "the honest nodes to keep converging after the flood")
