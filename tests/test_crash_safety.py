"""Crash safety: ``kill -9`` a write-heavy process at random moments, then check the store.

Each cycle starts a real child process that either imports a bundle or writes a burst of
contributions, kills it with SIGKILL after a random number of its progress reports, and
then checks: the SQLite file and every entry verify, every entry the child had reported
written is there, and a bundle import is all-or-nothing and completes on restart.
Counts: P2PC_CRASH_CYCLES (default half the hypothesis profile's examples: 50, 5 at ``quick``).
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from p2pcommons.author import create_commons
from p2pcommons.bundle import import_bundle, write_bundle
from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.identity import create_identity
from p2pcommons.ingest import ingest
from p2pcommons.store import Store
from p2pcommons.verify import verify_store

from .support.histories import linear_history, raws
from .support.signed import scaled

CYCLES = int(os.environ.get("P2PC_CRASH_CYCLES", scaled(0.5)))  # 50 at the default profile, 5 quick
CHILD = [sys.executable, "-m", "tests.support.crash_child"]
ROOT = Path(__file__).resolve().parent.parent


def _bundle(tmp_path: Path) -> tuple[Path, CID, int]:
    entries = linear_history(authors=20, per_author=250, label="crash")
    source = Store(tmp_path / "source.sqlite")
    ingest(source, raws(entries))
    path = tmp_path / "crash.bundle"
    with open(path, "wb") as out:
        write_bundle(source, entries[0].id, out, created=0)
    source.close()
    return path, entries[0].id, len(entries)


def _run_and_kill(args: list[str], kill_after: int) -> tuple[list[str], bool]:
    """Run the child, SIGKILL it after ``kill_after`` progress lines; return its lines and
    whether it finished before the kill."""
    child = subprocess.Popen(CHILD + args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("done"):
                break
            if len(lines) > kill_after:
                child.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError("the child made no progress within 60 s")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    return lines, "done" in lines


def test_kill_9_never_corrupts_or_loses_reported_writes(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("P2PC_CRASH_SEED", "20261125")))
    bundle, bundle_commons, bundle_size = _bundle(tmp_path)
    home = Home(tmp_path / "home")
    identity = create_identity(home)
    store = Store(home.store_file)
    own = create_commons(store, identity.signer, {"name": "own"}).id
    store.close()

    reported: set[str] = set()
    stats = {"import": 0, "contribute": 0, "killed": 0, "import_completed_before_kill": 0}
    for cycle in range(CYCLES):
        mode = "import" if cycle % 2 else "contribute"
        stats[mode] += 1
        if mode == "import":
            lines, finished = _run_and_kill(["import", str(home.path), str(bundle)], rng.randint(0, 3))
        else:
            lines, finished = _run_and_kill(
                ["contribute", str(home.path), str(own), "400"], rng.randint(1, 60)
            )
            reported.update(line.split()[1] for line in lines if line.startswith("wrote "))
        stats["killed"] += not finished

        store = Store(home.store_file)
        try:
            report = verify_store(store)
            assert report.ok, (cycle, report.problems)
            missing = [i for i in reported if not store.has(CID.parse(i))]
            assert not missing, f"cycle {cycle}: {len(missing)} reported writes lost"
            held = store.count(bundle_commons)
            assert held in (0, bundle_size), f"cycle {cycle}: a partial import of {held} entries"
            if mode == "import":
                stats["import_completed_before_kill"] += held == bundle_size
                with open(bundle, "rb") as source:  # restart: the import now completes
                    import_bundle(store, source)
                assert store.count(bundle_commons) == bundle_size
                store._db.execute("DELETE FROM entries WHERE log IN (SELECT log FROM logs WHERE commons=?)",
                                  (bundle_commons.raw,))
                store._db.execute("DELETE FROM logs WHERE commons=?", (bundle_commons.raw,))
                store._db.execute("DELETE FROM commons_counts WHERE commons=?", (bundle_commons.raw,))
                store._db.execute("DELETE FROM commons WHERE id=?", (bundle_commons.raw,))
                store._log_ids.clear()
        finally:
            store.close()
    print(f"\ncrash-safety: {CYCLES} kill -9 cycles {stats}, {len(reported)} reported writes all present")
    assert stats["killed"] >= CYCLES // 2


def test_disk_full_gives_a_clear_error_and_a_store_that_verifies(tmp_path: Path) -> None:
    import pytest

    from p2pcommons.errors import StoreError

    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        home = Home(mount / "home")
        identity = create_identity(home)
        store = Store(home.store_file)
        own = create_commons(store, identity.signer, {"name": "own"})
        entries = linear_history(authors=10, per_author=150, body_bytes=300, label="full")
        payload = io.BytesIO()
        scratch = Store(tmp_path / "scratch.sqlite")
        ingest(scratch, raws(entries))
        write_bundle(scratch, entries[0].id, payload, created=0)
        scratch.close()
        with pytest.raises(StoreError) as caught:
            import_bundle(store, io.BytesIO(payload.getvalue()))
        message = str(caught.value)
        assert "full" in message and message.endswith(".") and "\n" not in message
        store.close()
        store = Store(home.store_file)
        report = verify_store(store)
        assert report.ok, report.problems
        assert store.has(own.id) and store.count(entries[0].id) == 0
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


_ = (signal, time)
