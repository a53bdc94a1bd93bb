"""The hot commands with a daemon running (protocols/control.md §4, ``query`` and ``append``):
the daemon answers from its live fold, with exactly what the command prints without a daemon,
and ``p2pc contribute`` is signed and stored by the daemon with the home's key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from p2pcommons.node.notify import request
from p2pcommons.store import Store
from tests.support.cli import EXE, subprocess_env
from tests.support.localnode import Daemon, founder

pytestmark = pytest.mark.network

READS = (["state"], ["members"], ["contributions"], ["contributions", "--status", "pending"])


def _p2pc(home: Path, *args: str) -> Any:
    done = subprocess.run([EXE, *args, "--home", str(home), "--json"], capture_output=True, text=True, timeout=120,
                          env=subprocess_env())
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout)


def test_the_daemon_answers_the_hot_commands_as_the_cli_does(tmp_path: Path) -> None:
    home, commons, key = founder(tmp_path)
    for n in range(3):
        _p2pc(home, "contribute", "--title", f"local {n}", "--value", str(n + 1))
    alone = {tuple(args): _p2pc(home, *args) for args in READS}
    daemon = Daemon(home, tmp_path / "a.log")
    try:
        # the reads, answered by the daemon (asked directly, then through the CLI)
        reply = request(Home(home), {"cmd": "query", "what": "members", "commons": str(commons)}, timeout=30)
        assert {"commons": reply["data"]["commons"], "members": reply["data"]["members"]} == \
            alone[("members",)]["data"]
        for args in READS:
            assert _p2pc(home, *args) == alone[tuple(args)], args
        # a contribution through the daemon: stored, signed with the home's key, the usual reply
        written = _p2pc(home, "contribute", "--title", "through the daemon", "--value", "4")["data"]
        assert written["commons"] == str(commons) and written["seq"] == 5  # genesis, three, this one
        with Store(Home(home).store_file, reader=True) as store:
            entry = store.get(CID.parse(written["id"]))
        assert entry is not None and entry.author == key and entry.body["title"] == "through the daemon"
        pending = _p2pc(home, "contributions", "--status", "pending")["data"]["contributions"]
        assert [row["title"] for row in pending][-1] == "through the daemon"
    finally:
        daemon.stop()
    # the same answers without the daemon
    assert _p2pc(home, "contributions")["data"]["contributions"][-1]["id"] == written["id"]


def test_with_a_daemon_the_hot_commands_do_not_fold(tmp_path: Path) -> None:
    """The point: a CLI process with a daemon running loads no fold (at a million entries
    loading the checkpoint alone takes seconds)."""
    home, _commons, _key = founder(tmp_path)
    daemon = Daemon(home, tmp_path / "a.log")
    try:
        probe = (
            "import sys\n"
            "from p2pcommons.cli.fast import main\n"
            "home = sys.argv[1]\n"
            "for args in (['contribute', '-t', 'x'], ['state'], ['members'], ['contributions', '-s', 'pending']):\n"
            "    sys.argv = ['p2pc', *args, '--home', home]\n"
            "    try:\n"
            "        main()\n"
            "    except SystemExit as e:\n"
            "        assert e.code in (0, None), (args, e.code)\n"
            "print(sorted(m for m in sys.modules if m.startswith('p2pcommons.state')))\n"
        )
        done = subprocess.run([sys.executable, "-c", probe, str(home)], capture_output=True, text=True, timeout=120,
                              env=subprocess_env())
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]"
        assert load_identity(Home(home)) is not None
    finally:
        daemon.stop()
