"""Background load for the benchmarks: competing processes started beside a measurement.

Why: a sync's rate on a quiet machine says little about a machine shared with test suites,
builds and other daemons (issue 18 saw the lead over Hypercore fall from 3.3x to 0.7-1.1x on
such a machine).  ``bench/sync.py --load KIND`` runs the whole measurement, floors included,
inside one of these loads, so the sync rate and the single-core floors it is compared with
come from the same conditions.

Kinds (each worker a separate process, in its own session, killed with its group at exit):

- ``cpu``: busy loops (``--load-workers``, default 6), the scheduler's share of each core;
- ``fsync``: writers appending 4 KiB and calling fsync in a loop (default 2), contention for
  the disk's flush queue the store's commits wait on;
- ``procs``: loops starting short-lived Python processes one after another (default 4),
  what a test suite or build does: fork/exec, imports, page faults, short CPU bursts.

Every worker stops by itself after ``seconds`` or when the process that started it is gone,
so a killed benchmark leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

KINDS = ("cpu", "fsync", "procs")
DEFAULT_WORKERS = {"cpu": 6, "fsync": 2, "procs": 4}

# each worker: bounded in time, and stops when its parent (the benchmark) is gone
_PRELUDE = (
    "import os, sys, time\n"
    "parent, deadline = os.getppid(), time.monotonic() + float(sys.argv[1])\n"
    "def alive():\n"
    "    return time.monotonic() < deadline and os.getppid() == parent\n"
)
_WORKERS = {
    "cpu": _PRELUDE + (
        "while alive():\n"
        "    for _ in range(200_000):\n"
        "        pass\n"
    ),
    "fsync": _PRELUDE + (
        "path, block = sys.argv[2], b'x' * 4096\n"
        "with open(path, 'wb') as f:\n"
        "    while alive():\n"
        "        f.write(block)\n"
        "        f.flush()\n"
        "        os.fsync(f.fileno())\n"
        "        if f.tell() >= 64 * 1024 * 1024:\n"
        "            f.seek(0)\n"
        "            f.truncate()\n"
    ),
    "procs": _PRELUDE + (
        "import subprocess\n"
        "while alive():\n"
        "    subprocess.run([sys.executable, '-c', 'import json, sqlite3, hashlib'], check=False)\n"
    ),
}


@contextlib.contextmanager
def background_load(kind: str | None, workers: int | None = None, seconds: float = 3600) -> Iterator[dict[str, object]]:
    """Run ``workers`` processes of load ``kind`` for the duration of the block (none if
    ``kind`` is None).  Yields a description of the load for the benchmark's report."""
    if kind is None:
        yield {"kind": None}
        return
    if kind not in KINDS:
        raise ValueError(f"unknown load {kind!r}; choose one of {', '.join(KINDS)}")
    count = workers if workers is not None else DEFAULT_WORKERS[kind]
    scratch = Path(tempfile.mkdtemp(prefix="p2pc-load-"))
    procs = []
    try:
        for i in range(count):
            args = [sys.executable, "-c", _WORKERS[kind], str(seconds), str(scratch / f"w{i}")]
            procs.append(subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        yield {"kind": kind, "workers": count}
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=10)
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()


__all__ = ["DEFAULT_WORKERS", "KINDS", "background_load"]
