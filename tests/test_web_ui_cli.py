"""``p2pc ui`` and ``node status`` against real daemons (no browser needed): the daemon reports
its dashboard's address, ``p2pc ui`` adds the token, the token opens the page over real HTTP
on 127.0.0.1; with ``[ui] enabled = false`` there is no dashboard and ``p2pc ui`` says so."""

from __future__ import annotations

import http.cookiejar
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.localnode import ENV, P2PC, Daemon, run

pytestmark = pytest.mark.network


def _home(tmp_path: Path, ui: str) -> Path:
    home = tmp_path / "h"
    run(home, "init")
    run(home, "commons", "create", "Seed Library")
    with open(home / "config.toml", "a", encoding="utf-8") as out:
        out.write(f"\n[ui]\n{ui}\n")
    return home


def test_status_reports_the_dashboard_and_the_token_opens_it(tmp_path: Path) -> None:
    taken = socket.socket()  # the configured port is busy: the dashboard takes a free one
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    home = _home(tmp_path, f"port = {busy}")
    daemon = Daemon(home, tmp_path / "node.log")
    try:
        status = run(home, "node", "status")
        base = status["ui"]["url"]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/") and f":{busy}/" not in base
        human = subprocess.run([*P2PC, "node", "status", "--home", str(home)], capture_output=True, text=True,
                               env=ENV, timeout=60)
        assert f"dashboard {base}" in human.stdout
        url = run(home, "ui")["url"]
        token = (home / "ui.token").read_text().strip()
        assert url == f"{base}?token={token}" and (home / "ui.token").stat().st_mode & 0o777 == 0o600
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(url, timeout=60) as page:  # 303 with the cookie, then the overview
            html = page.read().decode()
            assert page.status == 200 and "token=" not in page.url
        state = run(home, "state")
        assert state["state_hash"] in html and "Seed Library" in html
        assert [c.name for c in jar] == [f"p2pc_ui_{base.rstrip('/').rsplit(':', 1)[1]}"]
    finally:
        daemon.stop()
        taken.close()


def test_no_dashboard_when_disabled(tmp_path: Path) -> None:
    home = _home(tmp_path, "enabled = false")
    daemon = Daemon(home, tmp_path / "node.log")
    try:
        assert run(home, "node", "status")["ui"] is None
        done = subprocess.run([*P2PC, "ui", "--home", str(home)], capture_output=True, text=True, env=ENV,
                              timeout=60)
        assert done.returncode == 6 and done.stderr.count("\n") == 1 and "[ui] enabled" in done.stderr, done
        assert not (home / "ui.token").exists()
    finally:
        daemon.stop()
