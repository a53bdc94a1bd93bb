"""Memory benchmark: what a folded commons costs to hold, table by table, and a daemon's RSS.

    python bench/memory.py -n 100000              # 100 authors, about half contributions
    python bench/memory.py -n 1000000 --store     # + RSS of a fresh process folding it from a store

Prints, for one in-memory fold (``Folder`` + ``bulk()``) of ``bench/fold.py``'s history
with ``--authors`` authors (100 by default, as issue 12's target says):

* per table of the state: its rows, the bytes it takes (tracemalloc of the table rebuilt
  alone from its checkpoint rows: strings and ids included, nothing shared with the entries)
  and bytes per row — contributions, distributions (the ledger's lines: one share per member
  each), usage, ...;
* the whole state's bytes, and per entry;
* what the fold holds besides its state (per-entry bookkeeping, snapshots);
* the process's RSS after the fold (the entries list still held: an upper bound).

``P2PC_BENCH_TRACE=N`` prints the N lines whose allocations the daemon holds most after the fold.

With ``--store``: the entries are inserted in a temporary store, then a fresh child process
(nothing else loaded) folds them through the engine as a daemon does, drops everything but
the engine's live fold, and reports its RSS after the fold has finished, and its peak.

``P2PC_BENCH_CACHE`` (see bench/fold.py) keeps the signed history between runs; ``--keep DIR``
keeps the store too (a fold from the store only writes its local archive table).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fold import build_history

from p2pcommons.entry import Entry, decode_stored
from p2pcommons.state import Folder
from p2pcommons.state.fold import bulk


def rss_mib() -> float:
    """The process's resident set now (MiB), from /proc."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table_sizes(state: Any) -> list[tuple[str, int, int]]:
    """Per table and sequence of ``state``: (name, rows, bytes of the table rebuilt alone)."""
    import cbor2

    from p2pcommons.state.records import SEQUENCES, TABLES

    rows: list[tuple[str, int, int]] = []
    for table in TABLES:
        items = getattr(state, table.name)
        blob = cbor2.dumps([table.row(k, v) for k, v in items.items()])
        gc.collect()
        tracemalloc.start()
        with bulk():
            copy = table.make(map(table.unrow, cbor2.loads(blob)))
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del copy
        rows.append((table.name, len(items), size))
    for sequence in SEQUENCES:
        items = getattr(state, sequence.name)
        blob = cbor2.dumps([sequence.row(x) for x in items])
        gc.collect()
        tracemalloc.start()
        with bulk():
            copy = getattr(sequence, "make", list)(sequence.unrow(r) for r in cbor2.loads(blob))
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del copy
        rows.append((sequence.name, len(items), size))
    return rows


def in_memory(n: int, authors: int) -> None:
    t0 = time.perf_counter()
    entries, _, _ = build_history(n, authors)
    commons = entries[0].id
    kinds: dict[str, int] = {}
    for e in entries:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    print(f"history: {len(entries):,} entries, {authors} authors ({time.perf_counter() - t0:.1f} s to build or read); "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
    rss_entries = rss_mib()
    gc.collect()
    tracemalloc.start()
    cpu = time.process_time()
    folder = Folder(commons)
    with bulk():
        for entry in entries:
            folder.add(entry)
        folder.run()
    cpu = time.process_time() - cpu
    held, peak = tracemalloc.get_traced_memory()
    digest = folder.result().state_hash
    state = folder.state
    folder.state = None
    folder.snap_states.clear()
    gc.collect()
    without = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    folder.state = state
    print(f"fold: {cpu:.1f} CPU-s; tracemalloc: {held / 2**20:.1f} MiB held after it ({peak / 2**20:.1f} peak), of "
          f"which {(held - without) / 2**20:.1f} MiB state + snapshots, {without / 2**20:.1f} MiB the rest "
          f"({without / len(entries):.0f} B/entry: entry bodies, records, order); state hash {digest[:16]}")
    total = 0
    print(f"{'table':>14} {'rows':>10} {'MiB':>8} {'B/row':>7}")
    for name, count, size in table_sizes(state):
        total += size
        if count:
            print(f"{name:>14} {count:>10,} {size / 2**20:>8.1f} {size / count:>7.0f}")
    print(f"{'state':>14} {'':>10} {total / 2**20:>8.1f} {total / len(entries):>7.0f} B/entry")
    print(f"RSS {rss_mib():.0f} MiB after the fold (entries held: {rss_entries:.0f} MiB before it), "
          f"peak {peak_mib():.0f} MiB; load {os.getloadavg()[0]:.1f}")


def daemon_child(path: str, commons_hex: str) -> None:
    """A fresh process folding a stored commons through the engine, as a daemon does."""
    from p2pcommons.dagcbor import CID
    from p2pcommons.state.engine import current_state
    from p2pcommons.store import Store

    # (Opened as the daemon opens its state worker's store: 8 MiB of SQLite page cache, not
    # the 32 MiB a bulk import asks for, which a million-entry fold fills.)
    store = Store(Path(path), cache_mib=8)
    base = rss_mib()
    trace = os.environ.get("P2PC_BENCH_TRACE")
    if trace:
        tracemalloc.start()
    cpu = time.process_time()
    state = current_state(store, CID(bytes.fromhex(commons_hex)), persist=False)
    cpu = time.process_time() - cpu
    gc.collect()
    if trace:  # where what is held after the fold was allocated (slow: only on request)
        top = tracemalloc.take_snapshot().statistics("lineno")
        print(f"tracemalloc: {sum(s.size for s in top) / 2**20:.1f} MiB held after the fold; by line:")
        for stat in top[:int(trace)]:
            frame = stat.traceback[0]
            print(f"  {stat.size / 2**20:8.1f} MiB {stat.count:>9,} blocks  {frame.filename.split('/p2pcommons/')[-1]}"
                  f":{frame.lineno}")
        tracemalloc.stop()
    # (RSS and peak are read before the state hash below: building its canonical document,
    # about three times the state at a million entries, is not what a daemon holds.)
    print(f"daemon: {cpu:.1f} CPU-s to fold from the store; RSS {rss_mib():.0f} MiB after the fold (imports and "
          f"store open: {base:.0f} MiB), peak {peak_mib():.0f} MiB; state hash {state.state_hash[:16]}; load "
          f"{os.getloadavg()[0]:.1f}", flush=True)


def _batches(n: int, authors: int) -> Iterator[list[Entry]]:
    """The history in batches of 5,000 entries: streamed from ``P2PC_BENCH_CACHE`` when it
    holds it (in the order it was written: the store places clocks whatever the order, so
    the fold that follows does not depend on it), else built and sent in log order."""
    cache = os.environ.get("P2PC_BENCH_CACHE")
    path = None
    if cache:  # (a longer cached history of as many authors starts with this one: read its first n)
        found = [(int(p.name.split("-")[1]), p) for p in Path(cache).glob(f"history-*-{authors}.bin")]
        path = min(((size, p) for size, p in found if size >= n), default=(0, None))[1]
    if path is None:
        entries, _, _ = build_history(n, authors)
        by_log = sorted(entries, key=lambda e: (e.author, e.seq))
        del entries
        for i in range(0, len(by_log), 5000):
            yield by_log[i:i + 5000]
        return
    with path.open("rb") as f:
        batch: list[Entry] = []
        left = n
        while left and (header := f.read(4)):
            batch.append(decode_stored(f.read(int.from_bytes(header, "big"))))
            left -= 1
            if len(batch) == 5000:
                yield batch
                batch = []
        if batch:
            yield batch


def through_store(n: int, authors: int, keep: str | None = None) -> None:
    from p2pcommons.store import Store

    if keep:  # a store kept between runs (built on the first): a million entries take minutes to insert
        path = Path(keep) / f"memory-{n}-{authors}.sqlite"
        marker = path.with_suffix(".commons")
        if marker.exists():
            subprocess.run([sys.executable, __file__, "--child", str(path), marker.read_text()], check=True)
            return
    with tempfile.TemporaryDirectory(dir=os.environ.get("P2PC_BENCH_TMP")) as tmp:
        if not keep:
            path = Path(tmp) / "s.sqlite"
        store = Store(path)
        commons = None
        t0 = time.perf_counter()
        for batch in _batches(n, authors):
            if commons is None:  # (the genesis: first in a cached history, anywhere in a built one)
                commons = next((e.id for e in batch if e.kind == "genesis"), None)
            store.insert(batch)
        store.close()
        assert commons is not None
        print(f"stored {n:,} entries in {time.perf_counter() - t0:.0f} s", flush=True)
        if keep:
            marker.write_text(commons.raw.hex())
        gc.collect()
        subprocess.run([sys.executable, __file__, "--child", str(path), commons.raw.hex()], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=100)
    parser.add_argument("--store", action="store_true", help="also: RSS of a fresh process folding from a store")
    parser.add_argument("--store-only", action="store_true", help="only the fresh process folding from a store")
    parser.add_argument("--keep", metavar="DIR", help="keep the store in DIR and fold it again on later runs")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        daemon_child(*args.child)
        return
    if not args.store_only:
        in_memory(args.n, args.authors)
    if args.store or args.store_only:
        gc.collect()
        through_store(args.n, args.authors, args.keep)


if __name__ == "__main__":
    main()
