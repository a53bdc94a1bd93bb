"""Hostile peers against a real daemon (a separate process, libp2p on 127.0.0.1), driven by
tests/test_node_hostile_peer.py in its own process (test_node_integration.py has the others)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from p2pcommons.home import Home
from p2pcommons.node.notify import request
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


def test_a_banned_peer_that_redialled_during_its_disconnect_is_dropped(tmp_path: Path) -> None:
    """A peer answers the daemon's session with garbage (scored, dropped), redials the moment
    its connection drops, and sends garbage again (banned, dropped).  py-libp2p's disconnect
    forgets a connection opened while it closes the others (Node._disconnect): the daemon
    still served it but could not close it, so the banned peer stayed connected until it hung
    up itself (20 s in the hostile-peer test).  Three rounds (the redial lands inside the
    daemon's disconnect most times, not always: before the fix 2 of 3 single rounds kept
    their connection); every banned peer must be dropped (within its 15 s wait)."""
    home, _commons, _ = founder(tmp_path, "victim")
    daemon = Daemon(home, tmp_path / "victim.log", sync_interval=600)
    try:
        peer = subprocess.run([sys.executable, str(HOSTILE), "redial", daemon.addr()],
                              capture_output=True, text=True, timeout=300)
        assert peer.returncode == 0, peer.stdout + peer.stderr
        rounds = json.loads(peer.stdout.strip().splitlines()[-1])["rounds"]
        print("redialling peers:", rounds)
        assert len(rounds) == 3 and all(r["first_dropped"] for r in rounds), rounds
        assert all(r["dropped_s"] is not None for r in rounds), rounds  # still connected after 15 s: the bug
        status = request(Home(home), {"cmd": "status"}, timeout=10)
        for r in rounds:
            banned = [p for p in status["peers"] if p["peer_id"] == r["peer_id"]]
            assert banned and banned[0]["banned"] and not banned[0]["connected"], banned
        assert daemon.alive()
    finally:
        daemon.stop()
