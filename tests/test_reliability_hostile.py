"""Hostile peers, the behaviours test_node_integration.py's hostile peer does not cover.

Why: issue 5 item 3 lists what a misbehaving peer may send.  The existing test covers a
stall, garbage bytes, a forged signature, a banned peer's return and a gossip flood; this
one adds, each from its own real libp2p process with a fresh identity
(tests/support/misbehaving_peer.py): non-canonical encodings, an oversized frame, a
truncated frame, a never-ending slow stream, entries for a commons the node does not hold,
and a fork.  Throughout, three honest daemons must stay up, cut off every peer that sent
invalid data (a closed stream, a negative score, no longer connected), store nothing of it,
keep their resident memory bounded (psutil RSS sampled during the attack), keep forks as
evidence, and keep converging with each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from .test_node_integration import NodeProc, converged, copy_genesis, nodes, same_state, wait_for  # noqa: F401

pytestmark = pytest.mark.network

PEER = Path(__file__).parent / "support" / "misbehaving_peer.py"
STALL = 2.0  # the target's per-read stall deadline in this test
RSS_GROWTH_LIMIT = 150 * 1024 * 1024  # generous: python + libp2p allocate in big arenas


def _misbehave(mode: str, target: NodeProc, commons: str, *extra: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, str(PEER), mode, target.addr, commons, *extra],
                            capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


class RssSampler:
    """Samples a process's RSS every 0.2 s in a thread (bounded by a stop flag and a count)."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.baseline = int(self.proc.memory_info().rss)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for _ in range(10_000):
            if self._stop.wait(0.2):
                return
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return int(self.peak - self.baseline)


@pytest.mark.timeout(400)
def test_misbehaving_peers_are_cut_off_and_honest_nodes_converge(nodes: Callable[[str], NodeProc]) -> None:  # noqa: F811
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    commons = a.p2pc_json("commons", "create", "commonsville")["commons"]
    copy_genesis(a, commons, b, c)
    a.start(sync_interval=1, stall=STALL)
    b.start(a.addr, sync_interval=1, stall=STALL)
    c.start(b.addr, sync_interval=1, stall=STALL)
    a.p2pc("contribute", "--title", "before", "--commons", commons)
    wait_for(converged([a, b, c], commons), 30, "the honest nodes to converge first")
    assert a.proc is not None
    sampler = RssSampler(a.proc.pid)
    held_before = a.count(commons)
    reports: dict[str, dict[str, Any]] = {}
    try:
        for mode in ("noncanonical", "oversized", "truncated", "foreign"):
            reports[mode] = _misbehave(mode, a, commons)
        reports["slow"] = _misbehave("slow", a, commons, str(STALL / 2), "45")
        reports["fork"] = _misbehave("fork", a, commons)
    finally:
        growth = sampler.stop()
    for mode, report in reports.items():
        print(f"\n{mode}: {report}")
    print(f"\nRSS of the attacked node: baseline {sampler.baseline / 2**20:.0f} MiB, "
          f"peak growth {growth / 2**20:.1f} MiB")

    status = a.status()
    peers = {p["peer_id"]: p for p in status["peers"]}
    for mode in ("noncanonical", "oversized", "truncated", "foreign", "slow"):
        report = reports[mode]
        assert report["result"] != "still open", (mode, report)
        scored = peers.get(report["peer_id"])
        if mode == "slow":  # a stall is how a dropped link looks: cut off, not scored (issue 11 item 9)
            assert scored is not None and scored["score"] == 0 and not scored["connected"], (mode, scored)
        elif mode != "truncated":  # an early end of stream is a broken connection, not proven malice
            assert scored is not None and scored["score"] < 0 and not scored["connected"], (mode, scored)
    slow_seconds = float(reports["slow"]["result"].split(" after ")[1].split(" s")[0])
    assert slow_seconds < 10 * STALL, f"a never-ending slow stream was cut only after {slow_seconds} s"
    # nothing of the invalid data was stored; the foreign commons was not adopted
    assert reports["foreign"]["foreign_commons"] not in {ci["id"] for ci in status["commons"]}
    # the fork is legitimate evidence: kept (both sides) and replicated to every honest node
    wait_for(lambda: all(n.count(commons) == held_before + 2 for n in (a, b, c)), 60,
             "both sides of the fork to be kept and replicated")
    assert all(n.proc is not None and n.proc.poll() is None for n in (a, b, c)), "an honest node died"
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.0f} MiB under attack"
    for node, title in ((a, "after 1"), (b, "after 2"), (c, "after 3")):
        node.p2pc("contribute", "--title", title, "--commons", commons)
    wait_for(converged([a, b, c], commons), 60, "honest nodes to keep converging after the attacks")
    wait_for(lambda: len({n.state_hash(commons) for n in (a, b, c)}) == 1, 60, "the same state_hash everywhere")
    print(f"\nhostile peers: 6 behaviours; honest nodes up, same state_hash, slow stream cut after {slow_seconds} s")
