"""Sync and gossip benchmark: real nodes as separate processes on 127.0.0.1.

1. ``N`` entries (default 100,000; ``--entries``) from node A to a fresh node B over libp2p,
   beside the single-core floors measured in the same run (the whole ingest path, raw
   Ed25519 verify, entry decode, SQLite insert into the store's layout), the load average
   before and after, and both nodes' peak RSS during the sync (VmRSS sampled every 20 ms)
   and of B once its daemon has folded the commons state (its peak, VmHWM, and what it
   holds then, VmRSS, both read after B's persisted state head counts every entry and its
   ``node status`` says the state worker is done — the save included — polled with a
   deadline; B's daemon and ingest process PSS peaks during the sync are printed apart).  B stores large transfers
   in its ingest process (a child, on the second core): its RSS and CPU are printed apart
   and summed with the daemon's.
2. Gossip latency from one node to four others (separate processes, star topology): the
   time from a local write (store commit + notify_daemon) to the entry being stored at
   each receiver, p50 and p99.

``--load cpu|fsync|procs`` (``--load-workers K``) runs the floors and the sync beside that load
(bench/load.py: busy loops, fsync-heavy writers, many short-lived processes), so the sync
rate and the floors it is compared with come from the same run under the same conditions;
the load average is printed when the floors start, when they end and after the sync.  Raw
verify is measured again right after the sync, still under the load: ``sync_vs_verify`` is the
sync's rate over the mean of the two (both ratios are printed too).
``--gossip 0`` skips part 2.  ``--a-store FILE`` keeps the sender's prepared store between runs.

Prints figures; asserts nothing.
Usage: ``python bench/sync.py [--entries N] [--gossip K] [--load KIND [--load-workers K]]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nacl.bindings

from p2pcommons.author import append, create_commons
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer, sign_entry
from p2pcommons.home import Home
from p2pcommons.identity import create_identity, load_identity
from p2pcommons.ingest import Ingestor
from p2pcommons.node.notify import notify_daemon, request
from p2pcommons.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from load import DEFAULT_WORKERS, KINDS, background_load  # bench/ is not a package: its own directory

P2PC = [sys.executable, "-c", "from p2pcommons.cli.app import main; main()"]


def make_home(root: Path, name: str) -> Home:
    home = Home(root / name)
    create_identity(home)
    Store(home.store_file).close()
    return home


def history(n: int, authors: int = 10) -> tuple[CID, list[bytes]]:
    """A commons, then ``n`` entries by ``authors`` authors (deterministic: fixed keys and
    times).  With ``P2PC_BENCH_CACHE`` set to a folder, the signed entries are kept there
    (``sync-history-<n>.bin``) and read back on the next run: signing 1,000,000 entries takes
    minutes, the sync being measured less."""
    cache = os.environ.get("P2PC_BENCH_CACHE")
    path = Path(cache) / f"sync-history-{n}-{authors}.bin" if cache else None
    if path is not None and path.exists():
        data, raws, at = path.read_bytes(), [], 0
        while at < len(data):
            size = int.from_bytes(data[at:at + 4], "big")
            raws.append(data[at + 4:at + 4 + size])
            at += 4 + size
        from p2pcommons.entry import decode_entry

        return decode_entry(raws[0]).id, raws
    founder = Signer(hashlib.sha256(b"bench-founder").digest())
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", body={"name": "bench"},
                         timestamp=0)
    signers = [Signer(hashlib.sha256(f"bench-{i}".encode()).digest()) for i in range(authors)]
    raws = [genesis.raw]
    prev: dict[int, Any] = {}
    for i in range(n):
        k = i % authors
        entry = sign_entry(signers[k], commons=genesis.id, seq=i // authors + 1,
                           prev=prev.get(k), kind="contribution",
                           body={"title": f"entry {i}", "kind": "work", "value": 1, "note": "x" * 120},
                           timestamp=i)
        prev[k] = entry.id
        raws.append(entry.raw)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(b"".join(len(r).to_bytes(4, "big") + r for r in raws))
        partial.replace(path)
    return genesis.id, raws


def ingest_rate(raws: list[bytes], root: Path) -> float:
    """Single-core ingest (decode, hash links, one signature per segment, SQLite), as the
    sync receiver does it: batches of the sync batch size."""
    path = root / "ingest-probe.sqlite"
    with Store(path) as store:
        ingestor = Ingestor(store)
        start = time.perf_counter()
        batch: list[bytes] = []
        size = 0
        for raw in raws:
            batch.append(raw)
            size += len(raw)
            if size >= 256 * 1024:
                ingestor.add_batch(batch)
                batch, size = [], 0
        if batch:
            ingestor.add_batch(batch)
        elapsed = time.perf_counter() - start
    return len(raws) / elapsed


def verify_rate(raws: list[bytes], n: int = 5000) -> float:
    from p2pcommons.entry import decode_entry

    entries = [decode_entry(r) for r in raws[1:n + 1]]
    signed = [(e.sig + e.signing_bytes(), e.author) for e in entries]
    start = time.perf_counter()
    for message, key in signed:
        nacl.bindings.crypto_sign_open(message, key)
    return len(signed) / (time.perf_counter() - start)


def decode_rate(raws: list[bytes], n: int = 50_000) -> float:
    """Single-core entry decoding (the canonical-form checks included), no signature."""
    from p2pcommons.entry import decode_entry

    sample = raws[1:n + 1]
    start = time.perf_counter()
    for raw in sample:
        decode_entry(raw)
    return len(sample) / (time.perf_counter() - start)


def sqlite_insert_rate(raws: list[bytes], root: Path, n: int = 50_000, batch: int = 1000) -> float:
    """Single-core SQLite inserts into the store's own tables (unique random ids, the (log,
    seq) index, synchronous=FULL), one transaction per ``batch`` rows: no decoding, no checks."""
    from p2pcommons.entry import decode_entry

    rows = []
    for raw in raws[1:n + 1]:
        entry = decode_entry(raw)
        rows.append((entry.id.raw, 1 + entry.author[0] % 10, entry.seq, entry.kind, raw))
    with Store(root / "sqlite-probe.sqlite") as store:
        db = store._db
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR IGNORE INTO entries (id, log, seq, kind, raw) VALUES (?, ?, ?, ?, ?)",
                           rows[i:i + batch])
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
    return len(rows) / elapsed


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wait_for_fold(home: Home, commons: CID, count: int, deadline_s: float = 1800) -> float | None:
    """Seconds until ``home``'s daemon has folded and saved ``commons`` with ``count``
    entries and its state worker is done — the persisted state head counts them and
    ``node status`` says no fold runs or waits (the head is saved first: the checkpoint and
    the query tables after it, and memory read then missed the save) — or None if the
    deadline passed first."""
    from p2pcommons.state.engine import cached_head

    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        with contextlib.suppress(Exception), Store(home.store_file, reader=True) as store:
            head = cached_head(store, commons)
            if head is not None and int(head.get("count", 0)) >= count:
                worker = request(home, {"cmd": "status"}, timeout=30).get("state_worker")
                if worker is None or (not worker["folding"] and not worker["dirty_count"]):
                    return time.monotonic() - start
        time.sleep(0.2)
    return None


def wait_idle(pid: int, deadline_s: float = 120, quiet_cpu_s: float = 0.1) -> float:
    """Seconds until process ``pid`` used less than ``quiet_cpu_s`` of CPU in each of two
    consecutive seconds (or the deadline passed)."""
    start = time.monotonic()
    quiet = 0
    before = cpu_seconds(pid)
    while time.monotonic() - start < deadline_s and quiet < 2:
        time.sleep(1)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - before < quiet_cpu_s else 0
        before = now
    return time.monotonic() - start


def start_node(home: Home, *bootstrap: str, sync_interval: float = 600,
               extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    args = [*P2PC, "node", "start", "--foreground", "--home", str(home.path), "--listen", "/ip4/127.0.0.1/tcp/0",
            "--sync-interval", str(sync_interval), *extra]
    for addr in bootstrap:
        args += ["--bootstrap", addr]
    log = open(home.path / "node.log", "ab")  # noqa: SIM115 (closed with the process)
    # its own session, as `p2pc node start` gives a daemon: with the kernel's autogroups each
    # session shares the cores as one, so a node run in this script's session would share with
    # the other node and the floors' loop what a real node has to itself (and A, the sender, is
    # another machine in real use: here it must not take B's share)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request(home, {"cmd": "ping"}, timeout=1)
            return proc
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError(f"node exited: {(home.path / 'node.log').read_text()[-1000:]}") from None
            time.sleep(0.05)
    raise RuntimeError("node did not start")


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds ``pid`` (all its threads) spent on a CPU and waiting on a run queue (runnable,
    but another process had the core): beside the wall time, the rest it slept (I/O, a pipe)."""
    on_cpu = waiting = 0.0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns, wait_ns, _ = f.read().split()
                on_cpu += int(run_ns) / 1e9
                waiting += int(wait_ns) / 1e9
    return on_cpu, waiting


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    return peak_rss_mb(pid, "VmRSS")


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (the Python runtime, libraries) split between the
    processes that map them, so the daemon's and its ingest process's PSS add up fairly."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (a node's ingest process during a large sync), from each of
    its threads' ``children`` list (the sampler reads it every 20 ms: scanning all of /proc
    instead cost it a few ms a time, CPU taken from the sync it measures)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/task/{tid}/children") as f:
            found.extend(int(c) for c in f.read().split())
    return found


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_sync(root: Path, n: int, extra_b: tuple[str, ...] = (), load: str | None = None,
               load_workers: int | None = None, a_store: Path | None = None) -> dict[str, Any]:
    a = make_home(root, "a")
    b = make_home(root, "b")
    print(f"building {n:,} entries…", file=sys.stderr)
    commons, raws = history(n)
    if a_store is not None and a_store.exists():
        # A's store from an earlier run (entries and folded state): at a million entries,
        # preparing it takes longer than the sync
        shutil.copyfile(a_store, a.store_file)
        with Store(a.store_file) as store:
            assert store.count(commons) == n + 1, f"{a_store} does not hold this history"
    else:
        _prepare_a(a, commons, raws, n)
        if a_store is not None:
            with contextlib.closing(sqlite3.connect(a.store_file)) as src, \
                    contextlib.closing(sqlite3.connect(a_store)) as dst:
                src.backup(dst)
    with Store(b.store_file) as store:
        Ingestor(store).add_batch(raws[:1])  # b holds the commons' genesis: it wants it
    # from here to the end of the sync: the chosen load (if any) runs beside everything measured
    background = contextlib.ExitStack()
    load_info = background.enter_context(background_load(load, load_workers))
    with background:
        return _measure_sync(root, a, b, commons, raws, n, extra_b, load_info, background)


def _prepare_a(a: Home, commons: CID, raws: list[bytes], n: int) -> None:
    with Store(a.store_file) as store:
        Ingestor(store).add_batch(raws[:1])
        for i in range(1, len(raws), 5000):
            Ingestor(store).add_batch(raws[i:i + 5000])
        assert store.count(commons) == n + 1
        # A is a node that has been running: its commons state is folded and persisted (a
        # daemon folds after every write).  Its entries were stored behind its back here, so
        # fold them now: otherwise A's daemon folds all n at start-up, beside the sync it
        # serves, and the run measures that fold (7.4 CPU-s of A's 8.5 at 100,000 entries).
        from p2pcommons.state.engine import current_state, forget

        current_state(store, commons, persist=True)
        forget()


def _time_split(name: str, splits: list[tuple[float, float]], elapsed: float) -> dict[str, float]:
    """A process's (or processes') time during the sync, as shares of its wall time."""
    on_cpu, waiting = sum(s[0] for s in splits), sum(s[1] for s in splits)
    return {f"{name}_on_cpu_share": round(on_cpu / elapsed, 2), f"{name}_runqueue_share": round(waiting / elapsed, 2)}


def _measure_sync(root: Path, a: Home, b: Home, commons: CID, raws: list[bytes], n: int,
                  extra_b: tuple[str, ...], load_info: dict[str, Any],
                  background: contextlib.ExitStack) -> dict[str, Any]:
    """The floors and the sync, inside the load; ``background`` is closed (the load stopped)
    as soon as the sync's time is taken, before B's state fold is waited for."""
    load_before = load_average()
    ingest = ingest_rate(raws, root)
    verify = verify_rate(raws)
    decode = decode_rate(raws)
    sqlite_rate = sqlite_insert_rate(raws, root)
    load_floors = load_average()
    procs = [start_node(a)]
    try:
        addr = request(a, {"cmd": "status"})["addrs"][0]
        # A resumes its folded state at start (seconds at a million entries, under load more):
        # a sync opened meanwhile missed B's 5 s stream-open timeout, and B's scheduler then
        # synced in the background while the run timed nothing.  Start once A is idle.
        a_idle = wait_idle(procs[0].pid)
        procs.append(start_node(b, extra=extra_b))
        cpu_before = [cpu_seconds(p.pid) for p in procs]
        sampling = threading.Event()
        peaks = [0.0, 0.0]
        child_peak = [0.0, 0.0, 0.0]  # B's ingest process; B's daemon + it (RSS, then PSS)
        pss_peak = [0.0, 0.0]  # B's daemon, B's ingest process (PSS, each on its own)
        child_cpu: dict[int, float] = {}
        child_sched: dict[int, tuple[float, float]] = {}
        b_sched_before = schedstat(procs[1].pid)

        def sample() -> None:  # VmRSS every 20 ms while the sync runs (the fold comes after)
            while not sampling.is_set():
                for k, proc in enumerate(procs):
                    peaks[k] = max(peaks[k], rss_mb(proc.pid))
                own = rss_mb(procs[1].pid)
                own_pss = pss_mb(procs[1].pid)
                kids = kids_pss = 0.0
                for pid in children(procs[1].pid):
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        kids += rss_mb(pid)
                        kids_pss += pss_mb(pid)
                        child_cpu[pid] = cpu_seconds(pid)
                        child_sched[pid] = schedstat(pid)
                child_peak[0] = max(child_peak[0], kids)
                child_peak[1] = max(child_peak[1], own + kids)
                child_peak[2] = max(child_peak[2], own_pss + kids_pss)
                pss_peak[0] = max(pss_peak[0], own_pss)
                pss_peak[1] = max(pss_peak[1], kids_pss)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        try:
            for attempt in range(1, 6):
                try:
                    reply = request(b, {"cmd": "sync", "addr": addr, "timeout": 600}, timeout=650)
                    if next(iter(reply["peers"].values()), None) is None:
                        raise RuntimeError(f"B's session failed: {reply}")
                    break
                except Exception as exc:
                    # B could not connect (a sender opening a million-entry store on a loaded
                    # machine missed the 5 s connect timeout, which ended a run): try again,
                    # timing from the new attempt; anything later than a connect fails the run.
                    if attempt == 5 or time.perf_counter() - start > 30:
                        raise
                    print(f"sync attempt {attempt} failed early ({exc}); again", file=sys.stderr)
                    time.sleep(1)
                    start = time.perf_counter()
        except Exception:
            for home in (a, b):  # the nodes' own account of the failure (their homes are deleted after)
                print(f"--- {home.path.name}'s node.log (last lines)", file=sys.stderr)
                print((home.path / "node.log").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            elapsed = time.perf_counter() - start
            load_after = load_average()
            sampling.set()
            sampler.join()
            # the verify floor again, right after the sync and under the same load: a load
            # shifts within a minute (other processes come and go), and a floor taken only
            # before the sync was once 3x what the sync's own processes were getting
            verify_after = verify_rate(raws)
            background.close()
        verify_mean = (verify + verify_after) / 2
        b_sched = schedstat(procs[1].pid)
        cpu_a, cpu_b = (cpu_seconds(p.pid) - before for p, before in zip(procs, cpu_before, strict=True))
        result = next(iter(reply["peers"].values()))
        # B's hand-off chain: how many groups its ingest process stored, and for how long it had
        # one (busy_s: hand-over to reply, as the daemon saw it) out of the sync's wall time
        child = request(b, {"cmd": "status"}).get("ingest_process", {})
        handoff = {"groups": child.get("groups"), "child_starts": child.get("starts"),
                   "entries_per_group": round(child["entries"] / child["groups"])
                   if child.get("groups") else None, "child_busy_s": child.get("busy_s"),
                   "child_busy_share": round(child["busy_s"] / elapsed, 2) if child.get("busy_s") else None,
                   "b_cores_busy": round((cpu_b + sum(child_cpu.values())) / elapsed, 2),
                   # where the time went while the sync ran: on a core, runnable but waiting for
                   # one (the load took it), or asleep (waiting for I/O, the pipe, the network)
                   **_time_split("child", [child_sched[p] for p in child_sched], elapsed),
                   **_time_split("b_daemon", [(b_sched[0] - b_sched_before[0], b_sched[1] - b_sched_before[1])],
                                 elapsed)}
        rss_a, rss_b = peaks
        # the sync's own figures now: waiting for B's fold below can take minutes on a loaded machine
        print("synced " + json.dumps({
            "entries": n, "seconds": round(elapsed, 2), "sync_entries_per_s": round(n / elapsed),
            "raw_verify_per_s": round(verify), "raw_verify_per_s_after_sync": round(verify_after),
            "sync_vs_verify": round(n / elapsed / verify_mean, 2),
            "sync_vs_verify_before": round(n / elapsed / verify, 2),
            "sync_vs_verify_after": round(n / elapsed / verify_after, 2), "load": load_info,
            "single_core_ingest_per_s": round(ingest), "raw_decode_per_s": round(decode),
            "raw_sqlite_insert_per_s": round(sqlite_rate), "load_avg_before": load_before,
            "load_avg_after_floors": load_floors, "load_avg_after_sync": load_after,
            "a_idle_after_s": round(a_idle, 1), "cpu_s_a": round(cpu_a, 2), "cpu_s_b": round(cpu_b, 2),
            "cpu_s_b_ingest_process": round(sum(child_cpu.values()), 2),
            "us_cpu_per_entry_b_ingest_process": round(sum(child_cpu.values()) / n * 1e6, 1),
            # the receiver's memory during the sync (issue 18: daemon + ingest process PSS <= 120 MB),
            # here too: the final line comes only after B's fold, minutes at a million entries
            "peak_pss_mb_b_daemon_plus_ingest_process": round(child_peak[2], 1),
            "peak_pss_mb_b_daemon": round(pss_peak[0], 1), "peak_pss_mb_b_ingest_process": round(pss_peak[1], 1),
            "handoff": handoff}), flush=True)
        # how many times B folded during the sync (a daemon before state_worker: None)
        worker_after_sync = request(b, {"cmd": "status"}).get("state_worker")
        # B folds the commons state once the sync has paused: read its memory after that.
        cpu_b_synced = cpu_seconds(procs[1].pid)
        fold_wait = wait_for_fold(b, commons, n + 1)
        cpu_b_fold = cpu_seconds(procs[1].pid) - cpu_b_synced
        rss_b_fold = peak_rss_mb(procs[1].pid)
        rss_b_held = rss_mb(procs[1].pid)  # what the daemon holds with the commons folded
        # and its PSS with its ingest process (if that has not yet stopped, idle): the fold done
        pss_b_held = pss_mb(procs[1].pid) + sum(pss_mb(pid) for pid in children(procs[1].pid))
    finally:
        stop(procs)
    with Store(b.store_file) as store:
        got = store.count(commons)
    return {
        "entries": n, "received": result and result["received"], "stored_at_b": got - 1,
        "seconds": round(elapsed, 2), "sync_entries_per_s": round(n / elapsed),
        "single_core_ingest_per_s": round(ingest), "raw_verify_per_s": round(verify),
        "raw_verify_per_s_after_sync": round(verify_after), "sync_vs_verify": round(n / elapsed / verify_mean, 2),
        "load": load_info,
        "raw_decode_per_s": round(decode), "raw_sqlite_insert_per_s": round(sqlite_rate),
        "load_avg_before": load_before, "load_avg_after_floors": load_floors, "load_avg_after_sync": load_after,
        "peak_rss_mb_a_during_sync": round(rss_a, 1), "peak_rss_mb_b_during_sync": round(rss_b, 1),
        "peak_rss_mb_b_ingest_process": round(child_peak[0], 1),
        "peak_rss_mb_b_daemon_plus_ingest_process": round(child_peak[1], 1),
        "peak_pss_mb_b_daemon_plus_ingest_process": round(child_peak[2], 1),
        "peak_pss_mb_b_daemon": round(pss_peak[0], 1), "peak_pss_mb_b_ingest_process": round(pss_peak[1], 1),
        "b_state_worker_after_sync": worker_after_sync,
        "peak_rss_mb_b_after_state_fold": round(rss_b_fold, 1),
        "rss_mb_b_after_state_fold": round(rss_b_held, 1),
        "pss_mb_b_daemon_plus_ingest_process_after_state_fold": round(pss_b_held, 1),
        "handoff": handoff,
        "b_fold_seen_after_s": None if fold_wait is None else round(fold_wait, 1),
        "cpu_s_b_fold_after_sync": round(cpu_b_fold, 2),
        "cpu_s_a": round(cpu_a, 2), "cpu_s_b": round(cpu_b, 2),
        "cpu_s_b_ingest_process": round(sum(child_cpu.values()), 2),
    }


def bench_gossip(root: Path, messages: int) -> dict[str, Any]:
    homes = [make_home(root, f"g{i}") for i in range(5)]
    identity = load_identity(homes[0])
    with Store(homes[0].store_file) as store:
        genesis = create_commons(store, identity.signer, {"name": "gossip"})
    for home in homes[1:]:
        with Store(home.store_file) as store:
            Ingestor(store).add_batch([genesis.raw])
    procs = [start_node(homes[0])]
    latencies: list[float] = []
    try:
        hub = request(homes[0], {"cmd": "status"})["addrs"][0]
        procs += [start_node(h, hub) for h in homes[1:]]
        deadline = time.monotonic() + 30
        while len(request(homes[0], {"cmd": "status"})["connected"]) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2)  # let the gossipsub mesh form (heartbeat 1 s)
        readers = [Store(h.store_file) for h in homes[1:]]
        writer = Store(homes[0].store_file)
        for i in range(messages):
            entry = append(writer, identity.signer, genesis.id, "contribution",
                           {"title": f"g{i}", "kind": "work", "value": 1})
            t0 = time.perf_counter()
            notify_daemon(homes[0])
            pending = set(range(len(readers)))
            limit = time.perf_counter() + 10
            while pending and time.perf_counter() < limit:
                for k in list(pending):
                    if readers[k].has(entry.id):
                        latencies.append(time.perf_counter() - t0)
                        pending.discard(k)
                time.sleep(0.001)
            if pending:
                latencies.extend([float("inf")] * len(pending))
            time.sleep(0.05)
        for r in readers:
            r.close()
        writer.close()
    finally:
        stop(procs)
    finite = sorted(latencies)
    p50 = statistics.median(finite) * 1000
    p99 = finite[min(len(finite) - 1, int(len(finite) * 0.99))] * 1000
    return {"messages": messages, "deliveries": len(latencies), "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1), "lost": sum(1 for x in latencies if x == float("inf"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--gossip", type=int, default=100)
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--a-store", type=Path,
                        help="sender's store for this history: read from this file if it exists, else "
                        "prepared and written there (a 1M-entry sender takes long to prepare)")
    parser.add_argument("--no-ingest-process", action="store_true",
                        help="run B with --no-ingest-process (one process, one core for the ingest)")
    parser.add_argument("--load", choices=KINDS,
                        help="run the floors and the sync beside this load: cpu (busy loops), fsync "
                        "(fsync-heavy writers) or procs (many short-lived processes); see bench/load.py")
    parser.add_argument("--load-workers", type=int,
                        help=f"processes of load (default {', '.join(f'{k} {v}' for k, v in DEFAULT_WORKERS.items())})")
    args = parser.parse_args()
    # a SIGTERM (timeout, Ctrl-C's cousin) unwinds like an exception: the nodes and the load stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="p2pc-bench-"))
    try:
        if not args.skip_sync:
            figures = bench_sync(root, args.entries, ("--no-ingest-process",) if args.no_ingest_process else (),
                                 args.load, args.load_workers, args.a_store)
            print("sync   " + json.dumps(figures))
        if args.gossip > 0:
            figures = bench_gossip(root, args.gossip)
            print("gossip " + json.dumps(figures))
        print(f"(cpu count {os.cpu_count()})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
