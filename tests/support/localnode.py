"""Driving one home through real ``p2pc`` processes and a real daemon (issue 11 tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from p2pcommons.node.notify import request
from tests.support.cli_json import unwrap
from tests.support.polling import wait_for  # the one sync polling helper, re-exported for the tests

P2PC = [sys.executable, "-c", "from p2pcommons.cli.app import main; main()"]
ENV = {**os.environ, "P2PC_NO_PROGRESS": "1"}


def run(home: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Any:
    result = subprocess.run([*P2PC, *args, "--home", str(home), "--json"], capture_output=True, text=True,
                            timeout=timeout, env={**ENV, **(env or {})})
    # with --json a failing command's sentence (and its result) is on stdout, not stderr
    assert result.returncode == 0, (args, result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    return unwrap(result.stdout)


def founder(tmp_path: Path, name: str = "a") -> tuple[Path, CID, bytes]:
    home = tmp_path / name
    run(home, "init")
    commons = CID.parse(run(home, "commons", "create", "race")["commons"])
    key = load_identity(Home(home)).signer.public_key
    return home, commons, key


class Daemon:
    """A ``p2pc node start --foreground`` process for one home."""

    def __init__(self, home: Path, log: Path, *, bootstrap: Sequence[str] = (), sync_interval: float = 30.0,
                 env: dict[str, str] | None = None, wrap: Sequence[str] = ()) -> None:
        """``wrap``: a command the daemon runs under (e.g. ``unshare --time …``)."""
        self.home = home
        args = [*wrap, *P2PC, "node", "start", "--foreground", "--home", str(home), "--listen", "/ip4/127.0.0.1/tcp/0",
                "--sync-interval", str(sync_interval), "-v"]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL,
                                         env={**ENV, **(env or {})})
        self.log = log
        wait_for(self.ready, 60, "the daemon to start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def addr(self) -> str:
        return str(request(Home(self.home), {"cmd": "status"}, timeout=10)["addrs"][0])

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {self.log.read_text()[-3000:]}")
        try:
            request(Home(self.home), {"cmd": "ping"}, timeout=5)
        except Exception:
            return False
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


