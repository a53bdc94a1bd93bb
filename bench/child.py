"""Where a sync receiver's ingest process spends its CPU, stage by stage, per entry.

Replays what B's ingest process does in ``bench/sync.py``: the same signed history (10
authors), in groups of about 1 MiB of entry bytes (what the session coalesces into one
transaction), through :func:`p2pcommons.node.ingest_worker.ingest_group` with the network's outsider
bounds, into a fresh store holding only the genesis, through the child's connection (its
checkpoint interval: ``ingest_worker.open_store``; its page cache, sized to each group).
It also counts the pages each commit writes to the write-ahead log (the wal-index header):
what grows with the store, since a group's random ids land on as many index pages.  No network, no
pickling, no pipe: the child's own work only.

Each stage's CPU (``time.thread_time``, so other processes' load does not count) is summed
over the run by wrapping the functions that do it, and each SQL statement by wrapping the
store's connection.  Stages nest (``insert`` contains its SQL and ``insert.plan``); the
wrappers cost a fraction of a microsecond per call.  Compare runs by the ratio of a stage to
``decode`` in the same run: CPU time still varies with the machine's load (caches, clock).

``--process`` then replays the same groups through the real child
(:class:`p2pcommons.node.ingest_process.IngestProcess`: its own process and session, start-up,
pickled requests over a pipe, its watch on the parent) into another fresh store and prints
its CPU from ``/proc`` (user + system, all threads, start-up included), the figure
``bench/sync.py`` prints as ``us_cpu_per_entry_b_ingest_process``; it was 43 µs there against
29 µs here until the child stopped being killed and restarted mid-sync (issue 18).

Usage: ``P2PC_BENCH_CACHE=DIR python bench/child.py [--entries N] [--cache-mib M] [--checkpoint-pages P]
[--process | --process-only]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import p2pcommons.ingest as ingest_module
import p2pcommons.store as store_module
from p2pcommons.dagcbor import CID
from p2pcommons.ingest import Ingestor
from p2pcommons.node import ingest_worker
from p2pcommons.node.ingest_worker import open_store
from p2pcommons.outsiders import Limits
from p2pcommons.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from sync import history  # bench/ is not a package: its own directory

GROUP_BYTES = 1024 * 1024  # the session's COALESCE_BYTES

spent: dict[str, float] = {}


def _timed(owner: Any, name: str, label: str) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.thread_time() - start

    setattr(owner, name, wrapper)


class _TimedConnection:
    """The store's SQLite connection, each statement's CPU summed by its first words."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def _run(self, method: str, sql: str, *args: Any) -> Any:
        start = time.thread_time()
        try:
            return getattr(self._db, method)(sql, *args)
        finally:
            label = "sql " + " ".join(sql.split()[:4])[:40]
            spent[label] = spent.get(label, 0.0) + time.thread_time() - start

    def execute(self, sql: str, *args: Any) -> Any:
        return self._run("execute", sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._run("executemany", sql, *args)


def _log_frames(shm: Path) -> int:
    """Frames in the write-ahead log now (``mxFrame`` of the wal-index header, bytes 16-20 of
    the ``-shm`` file, native byte order): pages committed since the log last restarted."""
    with open(shm, "rb") as f:
        return int.from_bytes(f.read(20)[16:20], sys.byteorder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--cache-mib", type=int, default=None,
                        help="a fixed page cache (default: the child's, sized to each group)")
    parser.add_argument("--checkpoint-pages", type=int, default=None,
                        help="the child's wal_autocheckpoint (default: ingest_worker's)")
    parser.add_argument("--top", type=int, default=14, help="stages and statements to print")
    parser.add_argument("--process", action="store_true", help="also replay through the real child process")
    parser.add_argument("--process-only", action="store_true", help="only replay through the real child process")
    args = parser.parse_args()
    commons, raws = history(args.entries)
    groups: list[list[bytes]] = [[]]
    size = 0
    for raw in raws[1:]:
        groups[-1].append(raw)
        size += len(raw)
        if size >= GROUP_BYTES:
            groups.append([])
            size = 0
    if args.process_only:
        _print_the_child(args.entries, CID(commons.raw), raws[0], groups)
        return
    for owner, name, label in (
        (ingest_module, "decode_entry", "decode"), (ingest_module, "screen", "outsiders screen"),
        (ingest_module.Ingestor, "_authenticate", "authenticate"), (ingest_module.Ingestor, "_check_chain", "chain"),
        (store_module.Store, "insert", "insert"), (store_module.Store, "_plan", "insert.plan"),
        (store_module.Store, "_settle", "insert.settle"),
    ):
        _timed(owner, name, label)
    root = Path(tempfile.mkdtemp(prefix="p2pc-bench-child-"))
    try:
        with Store(root / "store.sqlite") as store:
            Ingestor(store).add_batch(raws[:1])
        with open_store(root / "store.sqlite") as store:
            # what the child does per request (an older tree: only ingest_scoped)
            ingest_group = getattr(ingest_worker, "ingest_group", ingest_worker.ingest_scoped)
            if args.cache_mib is not None:
                ingest_group = ingest_worker.ingest_scoped
                store.db.execute(f"PRAGMA cache_size={-1024 * args.cache_mib}")
            if args.checkpoint_pages is not None:
                store.db.execute(f"PRAGMA wal_autocheckpoint={args.checkpoint_pages}")
            store._db = _TimedConnection(store._db)  # type: ignore[assignment]
            load_before = [round(x, 2) for x in os.getloadavg()]
            cpu, wall = time.process_time(), time.perf_counter()
            shm = root / "store.sqlite-shm"
            frames, last = 0, _log_frames(shm)
            for group in groups:
                if group:
                    report, _ = ingest_group(store, CID(commons.raw), group, Limits())
                    assert report.added_count == len(group), report
                    now = _log_frames(shm)
                    frames += now - last if now >= last else now  # (below: the log restarted)
                    last = now
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.entries
    print(f"{n:,} entries in {sum(1 for g in groups if g)} groups: {cpu:.2f} CPU-s = {cpu / n * 1e6:.1f} µs per entry "
          f"({wall:.1f} s wall; load average {load_before} before, "
          f"{[round(x, 2) for x in os.getloadavg()]} after)")
    print(f"  pages written to the write-ahead log: {frames:,} = {frames / n:.2f} per entry "
          f"({frames / max(1, len(groups)):,.0f} per group's commit)")
    accounted = ("decode", "outsiders screen", "authenticate", "chain", "insert")
    rest = cpu - sum(spent.get(k, 0.0) for k in accounted)
    for label, seconds in [*sorted(spent.items(), key=lambda kv: -kv[1])[:args.top], ("rest of the ingest", rest)]:
        print(f"  {label:44s} {seconds:6.2f} CPU-s {seconds / n * 1e6:6.1f} µs/entry "
              f"{seconds / spent['decode']:5.2f}× decode")
    if args.process:
        _print_the_child(n, CID(commons.raw), raws[0], groups)


def _print_the_child(n: int, commons: CID, genesis: bytes, groups: list[list[bytes]]) -> None:
    load_before = [round(x, 2) for x in os.getloadavg()]
    cpu, starts = _through_the_child(commons, genesis, groups)
    print(f"through the child process: {cpu:.2f} CPU-s = {cpu / n * 1e6:.1f} µs per entry ({starts} start(s); "
          f"load average {load_before} before, {[round(x, 2) for x in os.getloadavg()]} after)")


def _through_the_child(commons: CID, genesis: bytes, groups: list[list[bytes]]) -> tuple[float, int]:
    """The groups through the real ingest child; its CPU-s (read before it exits) and starts."""
    import trio

    from p2pcommons.node.ingest_process import IngestProcess

    def cpu_of(pid: int) -> float:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    root = Path(tempfile.mkdtemp(prefix="p2pc-bench-child-"))
    try:
        with Store(root / "store.sqlite") as store:
            Ingestor(store).add_batch([genesis])
        child = IngestProcess(str(root / "store.sqlite"))

        async def run() -> float:
            try:
                for group in groups:
                    if group:
                        report, _ = await child.ingest(commons, group)
                        assert report.added_count == len(group), report
                assert child._proc is not None
                return cpu_of(child._proc.pid)
            finally:
                await child.aclose()

        return trio.run(run), child.starts
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
