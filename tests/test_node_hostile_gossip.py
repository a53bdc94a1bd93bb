"""Hostile gossip against a real daemon (a separate process, libp2p on 127.0.0.1): a peer
that announces heads nobody has, under the rate limit, and hangs up on every sync session
the daemon opens to fetch them (tests/test_node_hostile_peer.py, mode ``gossip``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.localnode import Daemon, founder

pytestmark = pytest.mark.network

HOSTILE = Path(__file__).with_name("test_node_hostile_peer.py")


def test_gossip_naming_unknown_heads_does_not_open_a_session_per_message(tmp_path: Path) -> None:
    """Each announcement names heads the daemon lacks, so each asks for a sync with the peer;
    the peer cuts every session short, so none is recorded.  The daemon used to open a
    session for nearly every message (40 for 40); after a failed or cut session it now waits
    (1 s, doubling) before the next one the gossip asks for.  Counted, not timed: 40
    messages over about 4 s leave room for a handful of sessions, never one per message."""
    home, commons, _ = founder(tmp_path, "victim")
    daemon = Daemon(home, tmp_path / "victim.log", sync_interval=600)
    try:
        peer = subprocess.run([sys.executable, str(HOSTILE), "gossip", daemon.addr(), str(commons)],
                              capture_output=True, text=True, timeout=180)
        assert peer.returncode == 0, peer.stdout + peer.stderr
        report = json.loads(peer.stdout.strip().splitlines()[-1])
        print("gossiping peer:", report)
        assert report["sent"] == 40 and not report["disconnected"], report
        assert 1 <= report["sessions"] <= 10, report
        assert daemon.alive()
    finally:
        daemon.stop()
