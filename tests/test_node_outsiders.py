"""An outsider flood against a running daemon (issue 11, item 8), end to end.

A real daemon holds an invite-only commons; a stranger's real libp2p host
(tests/support/misbehaving_peer.py, mode ``flood``) syncs 30 fresh identities into it, each
a join and 19 contributions naming parents that exist nowhere (600 validly signed entries).
The daemon keeps one join per stranger and nothing else: no review queue of spam, no
megabytes held; the stranger is not scored for it (declining is not a violation); and the
founder's own work and a real member's still sync to a second node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from tests.test_node_integration import (  # noqa: F401  (the fixture)
    NodeProc,
    converged,
    copy_genesis,
    nodes,
    same_state,
    wait_for,
)

pytestmark = pytest.mark.network

PEER = Path(__file__).parent / "support" / "misbehaving_peer.py"


@pytest.mark.timeout(300)
def test_a_strangers_flood_keeps_only_their_joins(nodes: Callable[[str], NodeProc]) -> None:  # noqa: F811
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "members only", "--membership", "invite")["commons"]
    copy_genesis(a, commons, b)
    a.start(sync_interval=1)
    before = a.count(commons)
    done = subprocess.run([sys.executable, str(PEER), "flood", a.addr, commons, "30"],
                          capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["entries"] == 600, report
    wait_for(lambda: a.count(commons) - before >= 30, 30, "the strangers' joins to be stored")
    held = a.count(commons) - before
    assert held <= 30, f"the daemon stored {held} of a stranger's 600 entries"
    state = a.p2pc_json("state", "--commons", commons)
    assert state["contribution_counts"].get("pending", 0) == 0, state["contribution_counts"]
    status = {p["peer_id"]: p for p in a.status()["peers"]}
    flooder = status.get(report["peer_id"])
    assert flooder is None or (flooder["score"] == 0 and not flooder["banned"]), flooder
    # honest work still flows: the founder's contribution reaches a second node
    a.p2pc("contribute", "--title", "real work", "--commons", commons)
    b.start(a.addr, sync_interval=1)
    founder = load_identity(Home(a.home)).public_key
    wait_for(lambda: b.stored_heads(commons).get(founder) == 2, 60, "the founder's work to reach b")
    assert b.count(commons) - 1 <= 30 + 1
    print(f"\nflood: 600 entries from 30 strangers, {held} held (their joins), review queue empty")
