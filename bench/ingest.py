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
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nacl.bindings

from p2pcommons.bundle import import_bundle, write_bundle
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, decode_entry, sign_entry
from p2pcommons.ingest import ingest
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


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def raw_verify_rate(sample: list[tuple[bytes, bytes]]) -> float:
    open_ = nacl.bindings.crypto_sign_open

    def run() -> None:
        for message, key in sample:
            open_(message, key)

    return rate(len(sample), timed(run))


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
        verify = raw_verify_rate(signed)
        sqlite_rate = raw_sqlite_rate(rows, base / "raw.sqlite")
        decode_rate = rate(len(raws), timed(lambda: [decode_entry(r) for r in raws]))

        store_a = Store(base / "each.sqlite")
        report_a = None

        def run_each() -> None:
            nonlocal report_a
            report_a = ingest(store_a, raws, verify="each", batch_size=BATCH)

        each_rate = rate(len(raws), timed(run_each))
        assert report_a is not None and report_a.added_count == len(raws), report_a
        assert report_a.signatures_checked == len(raws)

        bundle_path = base / "bench.p2pcb"
        with bundle_path.open("wb") as out:
            write_seconds = timed(lambda: write_bundle(store_a, commons, out, created=1))
        store_a.close()

        store_b = Store(base / "bundle.sqlite")
        result = None

        def run_bundle() -> None:
            nonlocal result
            with bundle_path.open("rb") as source:
                result = import_bundle(store_b, source)

        bundle_rate = rate(len(raws), timed(run_bundle))
        assert result is not None
        _header, report_b = result
        assert report_b.added_count == len(raws), report_b
        assert store_b.count() == len(raws)
        store_b.close()
        bundle_size = os.path.getsize(bundle_path)

    print(f"entries: {len(raws):,}  authors: {n_authors}  mean entry size: {mean_size:.0f} bytes  "
          f"bundle: {bundle_size / 1e6:.1f} MB (written in {write_seconds:.2f} s)")
    print(f"raw PyNaCl verify (1 core)      : {verify:>10,.0f} /s")
    print(f"raw SQLite batch insert          : {sqlite_rate:>10,.0f} rows/s")
    print(f"decode_entry alone               : {decode_rate:>10,.0f} entries/s")
    print(f"(a) ingest, verify each          : {each_rate:>10,.0f} entries/s  "
          f"= {each_rate / verify:.2f}x raw verify (target >= 0.60)  "
          f"[{report_a.signatures_checked:,} signatures]")
    print(f"(b) bundle import, segment verify: {bundle_rate:>10,.0f} entries/s  "
          f"= {bundle_rate / verify:.2f}x raw verify (target >= 2.00)  "
          f"[{report_b.signatures_checked:,} signatures]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
