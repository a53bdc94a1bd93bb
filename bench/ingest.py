"""Ingest benchmark: decode + verify + store signed entries, beside this machine's limits.

    python bench/ingest.py            # 100,000 entries, 100 authors, ~300-byte bodies
    python bench/ingest.py --quick    # 10,000 entries, 20 authors

Prints, all measured in the same run on one core:

* raw PyNaCl Ed25519 verifications per second (``crypto_sign_open`` on the entries' own
  signing bytes);
* raw SQLite batch inserts per second (the store's table layout and pragmas, one
  transaction per batch of 2048 rows, no validation);
* path (a): entries/s through ``ingest(verify="each")`` (one signature per entry) —
  target >= 60% of the raw verify rate;
* path (b): entries/s through ``import_bundle`` into a fresh store (segment verification:
  one signature per author run, hash links for the rest) — target >= 2x the raw verify
  rate.  Writing the bundle is timed separately and not counted.

Entries are generated deterministically (fixed seeds and timestamps) before any timing.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nacl.bindings

from p2pcommons.bundle import BundleHeader, import_bundle, write_bundle
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, decode_entry, sign_entry
from p2pcommons.ingest import IngestReport, ingest
from p2pcommons.store import Store

BATCH = 2048


def make_entries(n_entries: int, n_authors: int, body_bytes: int) -> list[Entry]:
    """A genesis and ``n_entries - 1`` contributions spread round-robin over the authors,
    each chained to its author's previous entry and depending on the genesis."""
    founder = Signer(hashlib.sha256(b"bench-founder").digest())
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis",
                         body={"name": "bench", "description": "ingest benchmark"}, timestamp=1)
    signers = [Signer(hashlib.sha256(b"bench-author-%d" % i).digest()) for i in range(n_authors)]
    heads: list[CID | None] = [None] * n_authors
    seqs = [0] * n_authors
    entries = [genesis]
    filler = "x" * max(0, body_bytes - 60)
    for i in range(n_entries - 1):
        a = i % n_authors
        seqs[a] += 1
        entry = sign_entry(
            signers[a], commons=genesis.id, seq=seqs[a], prev=heads[a], kind="contribution",
            body={"title": f"contribution {i}", "value": i % 97, "text": filler},
            deps=[genesis.id], timestamp=1_700_000_000_000 + i,
        )
        heads[a] = entry.id
        entries.append(entry)
    return entries


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


class Timing:
    """Wall-clock and CPU (this process) seconds of one run."""

    def __init__(self, fn: Callable[[], object]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.result = fn()
        self.wall = time.perf_counter() - wall
        self.cpu = time.process_time() - cpu


def timed(fn: Callable[[], object]) -> float:
    return Timing(fn).wall


def raw_verify_rate(sample: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """Raw Ed25519 verifications per second: (wall-clock, CPU time)."""
    open_ = nacl.bindings.crypto_sign_open

    def run() -> None:
        for message, key in sample:
            open_(message, key)

    timing = Timing(run)
    return rate(len(sample), timing.wall), rate(len(sample), timing.cpu)


def raw_sqlite_rate(rows: list[tuple[bytes, int, int, str, bytes]], path: Path) -> float:
    """Batch inserts into the store's entries layout (integer rowid, unique blob id)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE entries (n INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, log INTEGER NOT NULL,"
        " seq INTEGER NOT NULL, kind TEXT NOT NULL, raw BLOB NOT NULL)"
    )
    db.execute("CREATE INDEX entries_by_log ON entries (log, seq)")

    def run() -> None:
        for start in range(0, len(rows), BATCH):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO entries (id, log, seq, kind, raw) VALUES (?, ?, ?, ?, ?)",
                rows[start:start + BATCH],
            )
            db.execute("COMMIT")

    seconds = timed(run)
    db.close()
    return rate(len(rows), seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entries instead of 100,000")
    parser.add_argument("--entries", type=int, default=None)
    parser.add_argument("--authors", type=int, default=None)
    parser.add_argument("--body", type=int, default=300, help="approximate body size in bytes")
    args = parser.parse_args(argv)
    n_entries = args.entries or (10_000 if args.quick else 100_000)
    n_authors = args.authors or (20 if args.quick else 100)

    print(f"generating {n_entries:,} entries ({n_authors} authors, ~{args.body}-byte bodies)...",
          file=sys.stderr)
    entries = make_entries(n_entries, n_authors, args.body)
    raws = [e.raw for e in entries]
    commons = entries[0].id
    mean_size = sum(map(len, raws)) / len(raws)
    signed = [(e.sig + e.signing_bytes(), e.author) for e in entries[:20_000]]
    rows = [(e.id.raw, i % 100, e.seq, e.kind, e.raw) for i, e in enumerate(entries)]
    # Keep only bytes from here on: a hundred thousand live Entry objects would make the
    # cyclic garbage collector rescan them during every timed run below.
    del entries
    gc.collect()

    with tempfile.TemporaryDirectory(prefix="p2pc-bench-") as tmp:
        base = Path(tmp)
        # The raw verify rate is measured before, between and after the paths and the
        # median is used: on a shared machine the rate drifts with other load.
        verify_rates = [raw_verify_rate(signed)]
        sqlite_rate = raw_sqlite_rate(rows, base / "raw.sqlite")

        def decode_all() -> None:
            for raw in raws:
                decode_entry(raw)

        decode = Timing(decode_all)

        store_a = Store(base / "each.sqlite")
        each = Timing(lambda: ingest(store_a, raws, verify="each", batch_size=BATCH))
        report_a = each.result
        assert isinstance(report_a, IngestReport) and report_a.added_count == len(raws), report_a
        assert report_a.signatures_checked == len(raws)
        verify_rates.append(raw_verify_rate(signed))

        bundle_path = base / "bench.p2pcbundle"
        with bundle_path.open("wb") as out:
            write_seconds = timed(lambda: write_bundle(store_a, commons, out, created=1))
        store_a.close()

        store_b = Store(base / "bundle.sqlite")

        def run_bundle() -> tuple[BundleHeader, IngestReport]:
            with bundle_path.open("rb") as source:
                return import_bundle(store_b, source)

        bundle = Timing(run_bundle)
        assert isinstance(bundle.result, tuple)
        report_b: IngestReport = bundle.result[1]
        assert report_b.added_count == len(raws), report_b
        assert store_b.count() == len(raws)
        store_b.close()
        bundle_size = os.path.getsize(bundle_path)
        verify_rates.append(raw_verify_rate(signed))

    verify = statistics.median(w for w, _c in verify_rates)
    verify_cpu = statistics.median(c for _w, c in verify_rates)
    n = len(raws)
    print(f"entries: {n:,}  authors: {n_authors}  mean entry size: {mean_size:.0f} bytes  "
          f"bundle: {bundle_size / 1e6:.1f} MB (written in {write_seconds:.2f} s)")
    print(f"raw PyNaCl verify, 1 core         : {verify:>9,.0f} /s wall-clock, {verify_cpu:,.0f} /s CPU time  "
          "(median of " + ", ".join(f"{w:,.0f}" for w, _c in verify_rates) + " wall)")
    print(f"raw SQLite batch insert           : {sqlite_rate:>9,.0f} rows/s  (store layout, {BATCH} rows/commit)")
    print(f"decode_entry alone                : {rate(n, decode.wall):>9,.0f} entries/s")
    print("                                    wall-clock                           "
          "CPU time of this process (vs raw verify CPU rate)")
    for label, timing, target, sigs in (
        ("(a) ingest, verify each          ", each, 0.60, report_a.signatures_checked),
        ("(b) bundle import, segment verify", bundle, 2.00, report_b.signatures_checked),
    ):
        wall, cpu = rate(n, timing.wall), rate(n, timing.cpu)
        print(f"{label} : {wall:>9,.0f} entries/s = {wall / verify:.2f}x raw verify   "
              f"{cpu:>9,.0f} entries/s = {cpu / verify_cpu:.2f}x   (target >= {target:.2f}x; "
              f"{sigs:,} signatures checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
