"""Every example in ``examples/`` runs end to end and converges (issue 6: CI runs each example).

Each example is run as its own process, as a reader would run it (``python examples/NAME.py``):
it starts three real nodes on 127.0.0.1 through the ``p2pc`` CLI and exits 0 only when all
nodes reach the same state hash. The examples create their node homes with
:func:`tempfile.mkdtemp`, so pointing ``TMPDIR`` at the test's own directory lets the test
check afterwards that no daemon was left running and no home left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from tests.support.polling import poll_for

pytestmark = pytest.mark.network

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ["wikipedia", "siuslaw_forest", "sensorica", "farm_hack", "offline_community", "enspiral_budget",
         "mutual_aid_fund", "atelier_paysan"]
CONVERGED = re.compile(r"^converged: 3 nodes, state_hash ([0-9a-f]{64}) in [0-9.]+ s$", re.MULTILINE)


def _leftovers(root: Path) -> list[str]:
    """Command lines of live processes that mention ``root`` (daemons an example forgot)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(root) in cmdline:
            found.append(f"{proc.pid}: {cmdline}")
    return found


@pytest.fixture
def short_root() -> Iterator[Path]:
    """A short directory for an example's homes: a control socket's path must fit in AF_UNIX's
    108 bytes, and pytest's per-worker temporary paths (…/popen-gw1/test_…) are long."""
    root = Path(tempfile.mkdtemp(prefix="p2pcx-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(script: Path, root: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run one example; on timeout, SIGTERM it first so its harness stops the daemons it started."""
    env = {**os.environ, "TMPDIR": str(root), "COLUMNS": "132"}
    env.pop("P2PC_EXAMPLE_KEEP", None)
    env.pop("P2PC_HOME", None)
    args = [sys.executable, str(script)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=script.parent.parent, stdin=subprocess.DEVNULL) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            pytest.fail(f"{script.name} timed out after {timeout} s:\n{out[-3000:]}\n{err[-2000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _assert_clean(root: Path) -> None:
    # `p2pc node stop` waits for the daemon to exit; allow a moment for the process table to catch up.
    poll_for(lambda: not _leftovers(root), 5)  # returns as soon as none is left
    leftovers = _leftovers(root)
    assert not leftovers, f"daemons left running: {leftovers}"
    assert not list(root.glob("p2pc-example-*")), "node homes left behind"


def test_every_example_is_tested() -> None:
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_converges(name: str, short_root: Path) -> None:
    started = time.monotonic()
    result = _run(EXAMPLES / f"{name}.py", short_root)
    elapsed = time.monotonic() - started
    print(f"{name}: exit {result.returncode} in {elapsed:.1f} s")
    tail = (result.stdout[-4000:] + "\n--- stderr ---\n" + result.stderr[-2000:])
    assert result.returncode == 0, tail
    assert CONVERGED.search(result.stdout), tail
    assert "✓" in result.stdout  # the scenario checked its own outcomes along the way
    _assert_clean(short_root)


def test_failing_scenario_exits_nonzero_and_stops_its_daemons(tmp_path: Path, short_root: Path) -> None:
    """A scenario that fails after starting daemons still stops them (try/finally in the harness)."""
    script = tmp_path / "failing.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(EXAMPLES)!r})\n"
        "from _harness import main, require\n"
        "def scenario(net):\n"
        "    a, b, c = net.nodes\n"
        "    net.found(a, 'doomed')\n"
        "    a.start()\n"
        "    b.json('import', '/nonexistent/bundle')\n"
        "sys.exit(main('failing', ['A', 'B', 'C'], scenario))\n",
        encoding="utf-8",
    )
    result = _run(script, short_root, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "example failed: B: p2pc import" in result.stdout.replace("\n", " "), result.stdout
    assert not CONVERGED.search(result.stdout)
    _assert_clean(short_root)


def test_terminated_scenario_stops_its_daemons(tmp_path: Path, short_root: Path) -> None:
    """SIGTERM (what a CI timeout sends first) unwinds through the harness's cleanup."""
    script = tmp_path / "stuck.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(EXAMPLES)!r})\n"
        "from _harness import main\n"
        "def scenario(net):\n"
        "    a = net.nodes[0]\n"
        "    net.found(a, 'stuck')\n"
        "    a.start()\n"
        "    print('READY', flush=True)\n"
        "    time.sleep(120)\n"  # deliberate: the scenario is stuck, still running when the test sends SIGTERM
        "sys.exit(main('stuck', ['A'], scenario))\n",
        encoding="utf-8",
    )
    env = {**os.environ, "TMPDIR": str(short_root)}
    env.pop("P2PC_EXAMPLE_KEEP", None)
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env,
                          stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # bounded: the script prints a few lines, then READY, then sleeps
            seen.append(line)
            if "READY" in line:
                break
        assert _leftovers(short_root), "the scenario's daemon should be running before the signal"
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("the scenario did not exit within 60 s of SIGTERM")
    assert proc.returncode != 0
    _assert_clean(short_root)
