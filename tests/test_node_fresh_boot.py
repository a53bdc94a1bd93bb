"""A daemon on a machine that booted moments ago (its monotonic clock near zero, as on a fresh
CI machine, a container or a laptop just switched on), in a Linux time namespace this test
creates: ``unshare --time --monotonic=-N`` sets the daemon's CLOCK_MONOTONIC back by N
seconds.  Needs root and a kernel with time namespaces; skipped otherwise.

The bug: a peer never synced counted as synced at monotonic 0, so a new connection was "due"
only once the machine's uptime passed the sync interval (600 s here): a node started in the
first ten minutes after boot did not sync with the peers it met.  CI hit it
(test_a_banned_peer_that_redialled_during_its_disconnect_is_dropped waited 15 s for a session
that never came, three rounds of three)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from p2pcommons.home import Home
from p2pcommons.node.notify import request
from tests.support.localnode import Daemon, founder, run, wait_for

pytestmark = pytest.mark.network

SYNC_INTERVAL = 600  # far longer than the test: a session it sees came from the new connection


def _fresh_boot() -> list[str]:
    """The wrapper that runs a command with a monotonic clock about 2 s after "boot"."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("time namespaces need root and util-linux's unshare")
    with open("/proc/uptime") as f:
        uptime = int(float(f.read().split()[0]))
    wrap = ["unshare", "--time", f"--monotonic=-{max(0, uptime - 2)}"]
    probe = subprocess.run([*wrap, sys.executable, "-c", "import time; print(time.monotonic())"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no time namespaces here: {probe.stderr.strip()}")
    assert float(probe.stdout) < 60, probe.stdout
    return wrap


def _peer(daemon_home: Path, peer_id: str) -> dict[str, Any] | None:
    status = request(Home(daemon_home), {"cmd": "status"}, timeout=10)
    return next((p for p in status["peers"] if p["peer_id"] == peer_id), None)


def test_a_node_started_just_after_boot_syncs_with_a_new_peer_at_once(tmp_path: Path) -> None:
    """A (a commons, started under a clock 2 s after boot) meets B (nothing held: B opens no
    session of its own), so only A's "sync at once with a new connection" can start one."""
    wrap = _fresh_boot()
    a_home, _commons, _ = founder(tmp_path, "a")
    b_home = tmp_path / "b"
    run(b_home, "init")
    a = Daemon(a_home, tmp_path / "a.log", sync_interval=SYNC_INTERVAL, wrap=wrap)
    b = None
    try:
        b = Daemon(b_home, tmp_path / "b.log", sync_interval=SYNC_INTERVAL, bootstrap=[a.addr()])
        b_id = request(Home(b_home), {"cmd": "status"}, timeout=10)["peer_id"]
        wait_for(lambda: (_peer(a_home, b_id) or {}).get("connected"), 30, "B to connect to A")
        synced = wait_for(lambda: (p := _peer(a_home, b_id)) is not None and p["syncs"] >= 1 and p, 20,
                          "A to sync with the peer that just connected")
        assert synced["last_sync_ago"] is not None and synced["last_sync_ago"] < 60, synced
    finally:
        if b is not None:
            b.stop()
        a.stop()
