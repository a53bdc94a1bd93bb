"""Fold benchmark: the commons state machine over a large, realistic history.

    python bench/fold.py            # 100,000 entries, 12 authors
    python bench/fold.py --quick    # 10,000 entries
    python bench/fold.py --joins 5000,10000,30000   # concurrent joins beside ordinary folds
    python bench/fold.py --store-order -n 100000    # a fresh node, entries received in log order
                                                    # (beside the same run's floors: SQLite read,
                                                    # decode, the fold alone, Ed25519 verify)

Prints, measured in one run on one core:

* full fold: entries/s for a fold from scratch (intake + ordering + application), then the
  state hash (canonical encoding + SHA-256) timed separately — target >= 50,000 entries/s;
* append: the cost of applying one more entry that sorts last (the common case for a live
  node), median over many appends, without and with computing the state hash — target < 1 ms;
* late entry: the cost of an entry inserted ~10,000 positions back (it restores the nearest
  snapshot before its position and replays from there);
* memory, at half and all of the entries: tracemalloc peak of a fold that holds everything
  and of an evicting fold (``Folder(archive=…)``, the archive in a temporary store, as the
  engine's live fold does), what each holds beyond its state and snapshots, and the state's
  own size — "bounded by the state" means the evicting fold's "w/o state" column grows only
  with the state's records, not with the entry count: its one growing part, "(index)", holds
  one small int per archived entry that took effect and that later entries may name (a
  contribution, proposal, join, grant, resource, sanction — each also a record in the state);
  the rest is the window after the archive (∝ the snapshot interval);
* the evicting fold's speed (entries/s, archive writes included);
* the store-backed engine: first fold from the store, appends through the store, and a
  new process resuming from the persisted checkpoint.

With ``--joins``, only this: per size N, a fold of N joins that each depend only on the
genesis (N new authors, as in a busy open commons) beside the same run's fold of an ordinary
N-entry history, entries/s for each (best of ``--repeat``) and the tracemalloc peak of each
fold (one more pass).  The joins must fold at the ordinary rate: what an entry costs must
not grow with the number of authors (version vectors, ``p2pcommons.causal``).

The history: 2 founding stewards and 10 members who joined and were admitted; members
contribute, reviewers review, stewards propose and vote, members use a rivalrous resource,
occasional distributions.  Each author writes with deps on the other authors' heads, as
p2pcommons.author.append does.  Entries are built (signed) before any timing.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

from p2pcommons.dagcbor import CID, encode
from p2pcommons.entry import Entry, Signer, decode_stored, sign_entry
from p2pcommons.state import Folder, genesis_body
from p2pcommons.state.fold import bulk


def stranger_signer(k: int = 0) -> Signer:
    """The ``k``-th late entry's author: a key no history's author has.  (``b"\\xee" * 32``
    was author 237's with more than 237 authors: at 10,000 its "late entry" was a fork of
    that member's join, which refolds everything, 48 s, instead of a stranger's entry.)"""
    return Signer(hashlib.sha256(b"p2pcommons bench: late stranger %d" % k).digest())


def author_signer(i: int) -> Signer:
    """Author ``i``'s key (the first 255 as the cached histories were signed; beyond, for
    ``--authors 10000``, a seed that is the index itself)."""
    return Signer(bytes([i + 1]) * 32 if i < 255 else (i + 1).to_bytes(32, "big"))


def build_history(n: int, authors: int = 12) -> tuple[list[Entry], list[Signer], dict[bytes, Entry]]:
    """The benchmark history (deterministic: fixed seeds and times).  With ``P2PC_BENCH_CACHE``
    set to a folder, the signed entries are kept there and read back on the next run, so a
    1,000,000-entry history is signed once (about six minutes) rather than on every run."""
    cache = os.environ.get("P2PC_BENCH_CACHE")
    if not cache:
        return _build_history(n, authors)
    path = Path(cache) / f"history-{n}-{authors}.bin"
    signers = [author_signer(i) for i in range(authors)]
    if path.exists():
        entries = [decode_stored(raw) for raw in _read_frames(path.read_bytes())]
        last = {e.author: e for e in entries}
        return entries, signers, last
    entries, signers, last = _build_history(n, authors)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(b"".join(len(e.raw).to_bytes(4, "big") + e.raw for e in entries))
    partial.replace(path)
    return entries, signers, last


def _read_frames(data: bytes) -> list[bytes]:
    frames, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        frames.append(data[i + 4:i + 4 + size])
        i += 4 + size
    return frames


def _build_history(n: int, authors: int) -> tuple[list[Entry], list[Signer], dict[bytes, Entry]]:
    signers = [author_signer(i) for i in range(authors)]
    stewards = signers[:2]
    water = {"name": "water", "rivalrous": True, "quota": 1000, "period": 86400, "unit": "l"}
    body = genesis_body("bench", founders=[s.public_key for s in stewards], resources=[water])
    t = 1_700_000_000_000
    genesis = sign_entry(stewards[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=t)
    commons = genesis.id
    water_id = CID.of(encode(water))
    entries = [genesis]
    last: dict[bytes, Entry] = {stewards[0].public_key: genesis}
    contributions: list[CID] = []
    proposals: list[CID] = []

    def write(signer: Signer, kind: str, body: dict[str, Any], extra: list[CID] = ()) -> Entry:  # type: ignore[assignment]
        nonlocal t
        t += 1000
        prev = last.get(signer.public_key)
        deps = [e.id for a, e in last.items() if a != signer.public_key][:14]
        deps += [x for x in extra if x not in deps]
        entry = sign_entry(signer, commons=commons, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind=kind, body=body, deps=deps, timestamp=t)
        last[signer.public_key] = entry
        entries.append(entry)
        return entry

    for member in signers[2:]:
        join = write(member, "join", {"name": "m"})
        write(stewards[0], "admission", {"join": join.id}, [join.id])
    i = 0
    while len(entries) < n:
        i += 1
        r = i % 20
        if r < 9:
            signer = signers[2 + (i + i // 20) % (authors - 2)]
            contributions.append(write(signer, "contribution", {"title": f"work {i}", "kind": "code", "value": 3}).id)
        elif r < 13 and contributions:
            target = contributions.pop(0)
            write(stewards[i % 2], "review", {"contribution": target, "verdict": "accept"}, [target])
        elif r < 17:
            signer = signers[2 + (i + i // 20) % (authors - 2)]
            write(signer, "resource_use", {"resource": water_id, "amount": 1 + i % 7})
        elif r == 17:
            proposals.append(write(stewards[0], "rule_proposal", {"changes": {"values.code": 100 + i % 50}}).id)
        elif r == 18 and proposals:
            target = proposals.pop(0)
            write(stewards[1], "vote", {"proposal": target, "choice": "yes"}, [target])
        else:
            write(stewards[i % 2], "distribution", {"amount": 1000, "currency": "EUR"})
    return entries[:n], signers, last


def state_size(folder: Folder) -> int:
    """Bytes the folded state takes on its own (strings and ids included, nothing shared with
    the entries): tracemalloc of a copy rebuilt from its checkpoint form."""
    import cbor2

    from p2pcommons.state.checkpoint import _dump_state, _load_state

    assert folder.state is not None
    blob = cbor2.dumps(_dump_state(folder.state))
    gc.collect()
    tracemalloc.start()
    with bulk():
        copy = _load_state(cbor2.loads(blob))  # the decoded document is freed; the copy owns its data
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del copy
    return size


def _evicting_fold(entries: list[Entry], commons: CID, store: Any) -> Folder:
    from p2pcommons.state.archive import StoreArchive

    folder = Folder(commons, archive=StoreArchive(store, commons))
    with bulk():
        for i, entry in enumerate(entries, 1):
            folder.add(entry)
            if i % 2048 == 0:
                folder.run()
        folder.run()
    return folder


def bench_memory(entries: list[Entry], commons: CID) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """Per size (half and all of ``entries``): tracemalloc peak of the holding fold, peak and
    held-afterwards of the evicting fold (archive in a temporary store), the state's size."""
    import tempfile
    from pathlib import Path

    from p2pcommons.store import Store

    global evict_rate
    rows = []
    for size in (len(entries) // 2, len(entries)):
        part = entries[:size]
        folder = Folder(commons)
        with bulk():
            for entry in part:
                folder.add(entry)
            folder.run()
        st_bytes = state_size(folder)
        hash_hold = folder.result().state_hash
        del folder
        gc.collect()
        tracemalloc.start()
        folder = Folder(commons)
        with bulk():
            for entry in part:
                folder.add(entry)
            folder.run()
        _, hold_peak = tracemalloc.get_traced_memory()
        hold_rest = _without_state(folder)
        tracemalloc.stop()
        del folder
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "a.sqlite")
            store._db.execute("PRAGMA synchronous=OFF")
            store.insert(part)
            gc.collect()
            tracemalloc.start()
            folder = _evicting_fold(part, commons, store)
            ev_held, ev_peak = tracemalloc.get_traced_memory()
            assert folder.result().state_hash == hash_hold
            before_index = tracemalloc.get_traced_memory()[0]
            folder.refs.clear()
            folder._cache.clear()
            gc.collect()
            ev_index = before_index - tracemalloc.get_traced_memory()[0]
            ev_rest = _without_state(folder)
            tracemalloc.stop()
            del folder
            if size == len(entries):  # the best of three runs, as for the holding fold
                for _ in range(3):
                    gc.collect()
                    t0 = time.perf_counter()
                    _evicting_fold(part, commons, store)
                    evict_rate = max(evict_rate, size / (time.perf_counter() - t0))
            store.close()
        rows.append((size, hold_peak, hold_rest, ev_peak, ev_held, ev_rest, ev_index, st_bytes))
    return rows


def _without_state(folder: Folder) -> int:
    """What the fold holds once its state and snapshots are dropped (tracemalloc running):
    the per-entry bookkeeping and everything else beyond the state."""
    folder.state = None
    folder.snap_states.clear()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


evict_rate = 0.0


def build_joins(n: int) -> list[Entry]:
    """A genesis and ``n`` joins by ``n`` new authors, each depending only on the genesis."""
    founder = Signer(b"\x01" * 32)
    t = 1_700_000_000_000
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=t,
                         body=genesis_body("joins", founders=[founder.public_key], membership="open"))
    entries = [genesis]
    for i in range(n):
        signer = Signer((i + 2).to_bytes(32, "big"))
        entries.append(sign_entry(signer, commons=genesis.id, seq=1, prev=None, kind="join", body={"name": f"j{i}"},
                                  deps=[genesis.id], timestamp=t + 1 + i))
    return entries


def build_admitted_joins(n: int) -> list[Entry]:
    """``build_joins(n)``, then the founder's admission of each join (in an approval
    commons needing one approval): ``2n`` entries, ``n`` joins pending at the first admission."""
    founder = Signer(b"\x01" * 32)
    t = 1_700_000_000_000
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=t,
                         body=genesis_body("admitted", founders=[founder.public_key]))
    entries = [genesis]
    for i in range(n):
        signer = Signer((i + 2).to_bytes(32, "big"))
        entries.append(sign_entry(signer, commons=genesis.id, seq=1, prev=None, kind="join", body={"name": f"j{i}"},
                                  deps=[genesis.id], timestamp=t + 1 + i))
    prev = genesis
    for join in entries[1:n + 1]:
        prev = sign_entry(founder, commons=genesis.id, seq=prev.seq + 1, prev=prev.id, kind="admission",
                          body={"join": join.id}, deps=[join.id], timestamp=t + n + prev.seq)
        entries.append(prev)
    return entries


def _timed_fold(entries: list[Entry], repeat: int) -> tuple[float, str]:
    best = float("inf")
    digest = ""
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        folder = Folder(entries[0].id)
        with bulk():
            for entry in entries:
                folder.add(entry)
            folder.run()
        best = min(best, time.perf_counter() - t0)
        digest = folder.result().state_hash
    return best, digest


def _fold_peak(entries: list[Entry]) -> int:
    gc.collect()
    tracemalloc.start()
    folder = Folder(entries[0].id)
    with bulk():
        for entry in entries:
            folder.add(entry)
        folder.run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del folder
    return peak


def bench_joins(sizes: list[int], repeat: int) -> None:
    """Concurrent joins beside an ordinary history of the same size, in one run."""
    print(f"{'entries':>8} {'joins/s':>10} {'ordinary/s':>11} {'ratio':>6} {'joins MiB':>10} {'ordinary MiB':>13}"
          f" {'admitted/s':>11}   (best of {repeat}; MiB: tracemalloc peak of the fold; admitted: the joins "
          f"and an admission of each, entries/s)")
    for n in sizes:
        joins = build_joins(n)
        ordinary, _, _ = build_history(n + 1)
        ordinary = ordinary[:n + 1]
        joins_s, _ = _timed_fold(joins, repeat)
        ordinary_s, _ = _timed_fold(ordinary, repeat)
        joins_peak = _fold_peak(joins)
        ordinary_peak = _fold_peak(ordinary)
        admitted = build_admitted_joins(n)
        admitted_s, _ = _timed_fold(admitted, repeat)
        print(f"{n:>8,} {n / joins_s:>10,.0f} {n / ordinary_s:>11,.0f} {ordinary_s / joins_s:>6.2f} "
              f"{joins_peak / 2**20:>10.1f} {ordinary_peak / 2**20:>13.1f} {2 * n / admitted_s:>11,.0f}", flush=True)


def bench_store_order(n: int, authors: int = 12) -> None:
    """A fresh node folding an ``n``-entry commons received in log order (each author's log
    in turn, as sync and bundles deliver them), through the store, beside the same run's
    in-memory fold of the same entries and the floors (:func:`_floors`); then one append and
    a late entry ~10,000 positions back, both through the store (insert + fold)."""
    import tempfile
    from pathlib import Path

    from p2pcommons.state.engine import current_state, forget
    from p2pcommons.store import Store

    t0 = time.perf_counter()
    entries, signers, last = build_history(n, authors)
    commons = entries[0].id
    print(f"built {len(entries):,} signed entries by {authors} authors in {time.perf_counter() - t0:.1f} s "
          "(not timed below)")
    by_log = sorted(entries, key=lambda e: (e.author, e.seq))
    gc.collect()
    t0 = time.perf_counter()
    c0 = time.process_time()
    folder = Folder(commons)
    with bulk():
        for entry in by_log:
            folder.add(entry)
        folder.run()
    memory_s = time.perf_counter() - t0
    memory_cpu = time.process_time() - c0
    digest = folder.result().state_hash
    back = min(10_000, n // 2)
    anchor = CID(folder.order[len(folder.order) - back][1])  # (the late entry's only dependency)
    t = max(e.time for e in entries)
    by_id = {e.id.raw: e for e in entries}
    by_clock = [by_id[key[1]] for key in folder.order]
    del folder, by_id
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.sqlite")
        t0 = time.perf_counter()
        for i in range(0, len(by_log), 1000):
            store.insert(by_log[i:i + 1000])
        insert_s = time.perf_counter() - t0
        store.close()
        print(_floors(by_clock, Path(tmp) / "s.sqlite", digest))
        # A fresh node holds none of the history while it folds: at 1M, the decoded entries
        # held here made the fold through the store about a quarter slower (101.7 CPU-s
        # against 78-79 in a process holding nothing else, same code, same store).
        del entries, by_log, by_clock
        forget()
        gc.collect()
        fresh_s, fresh_cpu, fresh_hash = _fresh_process_fold(Path(tmp) / "s.sqlite", commons)
        print(f"fresh node:  {n / fresh_cpu:>10,.0f} entries/s CPU through the store in a new process "
              f"({fresh_cpu:.2f} CPU-s, {fresh_s:.2f} s wall; target >= 50,000/s); same state hash: "
              f"{fresh_hash == digest}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        # The lines below fold again in this process, which has just folded everything in
        # memory and holds what that left in its allocator's heap; "fresh node" above is a
        # new node's figure (on a quiet machine the two agreed within 5 % at 100k; under
        # load one run gave 11.1 CPU-s here against 6.2-7.7 in a new process).
        store = Store(Path(tmp) / "s.sqlite")
        t0 = time.perf_counter()
        c0 = time.process_time()
        state = current_state(store, commons, persist=False)
        store_s = time.perf_counter() - t0
        store_cpu = time.process_time() - c0
        same = state.state_hash == digest
        print(f"log order:   {n / store_s:>10,.0f} entries/s through the store in this process "
              f"({store_s:.2f} s for {n:,}; target >= 50,000/s); in memory, same run: "
              f"{n / memory_s:,.0f} entries/s ({memory_s:.2f} s); "
              f"same state hash: {same}")
        print(f"             CPU: {n / store_cpu:,.0f} entries/s through the store ({store_cpu:.2f} CPU-s), "
              f"{n / memory_cpu:,.0f} entries/s in memory ({memory_cpu:.2f} CPU-s); load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"             (stored in batches of 1,000 in log order first: {insert_s:.2f} s, "
              f"{n / insert_s:,.0f} entries/s, clocks placed at insert)")
        author = signers[3]
        prev = last[author.public_key]
        costs, fold_costs = [], []
        for k in range(50):
            t += 1000
            # (The newest heads, as p2pcommons.author.current_deps names them: the entry then
            # sorts last.  The first 14 in author order, with 100 authors, sorted it before
            # the newest entries, and each append replayed them.)
            deps = [e.id for e in sorted((e for a, e in last.items() if a != author.public_key),
                                         key=lambda e: e.time, reverse=True)[:14]]
            entry = sign_entry(author, commons=commons, seq=prev.seq + 1, prev=prev.id, kind="contribution",
                               body={"title": f"append {k}", "value": 1}, deps=deps, timestamp=t)
            prev = entry
            last[author.public_key] = entry
            t0 = time.perf_counter()
            store.insert([entry])
            t1 = time.perf_counter()
            current_state(store, commons, persist=False)
            costs.append(time.perf_counter() - t0)
            fold_costs.append(time.perf_counter() - t1)
        print(f"append:      {statistics.median(costs) * 1e6:>10.0f} µs median per entry through the store, insert "
              f"(fsync) included; {statistics.median(fold_costs) * 1e6:.0f} µs of it the fold (target < 1 ms)")
        late = sign_entry(stranger_signer(), commons=commons, seq=1, prev=None, kind="contribution",
                          body={"title": "late", "value": 1}, deps=[anchor], timestamp=t + 1)
        t0 = time.perf_counter()
        store.insert([late])
        t1 = time.perf_counter()
        c1 = time.process_time()
        state = current_state(store, commons, persist=False)
        late_cpu = time.process_time() - c1
        late_s = time.perf_counter() - t0
        print(f"late entry:  {late_s * 1000:>10.1f} ms through the store ({(time.perf_counter() - t1) * 1000:.1f} ms "
              f"the fold, {late_cpu * 1000:.1f} CPU-ms) for an entry ~{back:,} positions back (target < 100 ms)")
        store.close()
        forget()


def _floors(by_clock: list[Entry], path: Path, digest: str) -> str:
    """The same run's floors, one core, CPU time, on the same entries: what a fold through
    the store cannot beat (reading the rows in the fold's order, decoding them), the fold's
    own logic (the same entries decoded in advance, taken in that order in memory), and
    raw Ed25519 verification, the machine's speed in units other benches use (a figure
    from a faster machine compares by its ratio to that)."""
    import sqlite3

    import nacl.bindings

    sample = [(e.sig + e.signing_bytes(), e.author) for e in by_clock[:5_000]]
    open_ = nacl.bindings.crypto_sign_open
    c0 = time.process_time()
    for message, key in sample:
        open_(message, key)
    verify = len(sample) / (time.process_time() - c0)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    c0 = time.process_time()
    rows = db.execute("SELECT id, raw FROM entries WHERE clock IS NOT NULL ORDER BY clock, id").fetchall()
    read = len(rows) / (time.process_time() - c0)
    db.close()
    raws = [(bytes(raw), bytes(eid)) for eid, raw in rows]
    del rows
    c0 = time.process_time()
    for raw, eid in raws:
        decode_stored(raw, eid)
    decode = len(raws) / (time.process_time() - c0)
    del raws
    gc.collect()
    commons = by_clock[0].id
    c0 = time.process_time()
    folder = Folder(commons)
    with bulk():
        folder.take_in_order(by_clock)
        folder.run()
    logic = len(by_clock) / (time.process_time() - c0)
    same = folder.result().state_hash == digest
    return (f"floors:      {read:>10,.0f} rows/s SQLite read in the fold's order, {decode:,.0f} entries/s decoded "
            f"(decode_stored), {logic:,.0f} entries/s the fold alone (decoded in advance, in memory, in that "
            f"order; same state hash: {same}); raw Ed25519 verify {verify:,.0f}/s (CPU, one core, this run)")


def _fresh_process_fold(path: Path, commons: CID) -> tuple[float, float, str]:
    """Fold the store at ``path`` in a new Python process, as a node that has just received
    it: (wall seconds, CPU seconds, state hash in hex), measured inside that process."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, __file__, "--fold-store", str(path), commons.raw.hex()],
                         check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    return float(figures["wall"]), float(figures["cpu"]), str(figures["hash"])


def _fold_store_here(path: str, commons_hex: str) -> None:
    """The new process of :func:`_fresh_process_fold`: one fold from the store, timed."""
    import json

    from p2pcommons.state.engine import current_state
    from p2pcommons.store import Store

    store = Store(Path(path))
    t0 = time.perf_counter()
    c0 = time.process_time()
    state = current_state(store, CID(bytes.fromhex(commons_hex)), persist=False)
    figures = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "hash": state.state_hash}
    store.close()
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entries instead of 100,000")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("--joins", default="", help="only the concurrent-joins case, at these sizes (5000,10000,…)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per fold in --joins (the best is shown)")
    parser.add_argument("--store-order", action="store_true",
                        help="only this: a fresh node folding -n entries received in log order, through the store")
    parser.add_argument("--authors", type=int, default=12,
                        help="authors writing the --store-order history (12 or 100 are cached in P2PC_BENCH_CACHE)")
    parser.add_argument("--fold-store", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fold_store:
        _fold_store_here(*args.fold_store)
        return
    if args.store_order:
        bench_store_order(args.n or 100_000, args.authors)
        return
    if args.joins:
        bench_joins([int(x) for x in args.joins.split(",")], args.repeat)
        return
    n = args.n or (10_000 if args.quick else 100_000)

    t0 = time.perf_counter()
    entries, signers, last = build_history(n)
    commons = entries[0].id
    print(f"built {len(entries):,} signed entries in {time.perf_counter() - t0:.1f} s (not timed below)")

    # Memory: separate passes under tracemalloc (which slows everything down), at two sizes.
    memory = bench_memory(entries, commons)

    # Full fold, timed: the best of three runs.
    fold_s = float("inf")
    for _ in range(3):
        gc.collect()
        t0 = time.perf_counter()
        folder = Folder(commons)
        with bulk():
            for entry in entries:
                folder.add(entry)
            folder.run()
        fold_s = min(fold_s, time.perf_counter() - t0)
    state = folder.result()
    t0 = time.perf_counter()
    digest = state.state_hash
    hash_s = time.perf_counter() - t0
    summary = state.summary()
    print(f"full fold:   {n / fold_s:>10,.0f} entries/s  ({fold_s:.2f} s for {n:,}; target >= 50,000/s)")
    print(f"state hash:  {hash_s * 1000:>10.1f} ms  (canonical encoding + sha256 of the whole state)")
    print(f"             contributions {summary['contributions']}, members {summary['members']}, "
          f"restarts {folder.restarts}, hash {digest[:16]}…")
    print("memory:      tracemalloc, MiB (the decoded entries, held by the caller, are not counted; the state "
          "alone is measured owning its strings and ids, as a resumed engine's does)")
    print(f"             {'entries':>8} {'holding: peak':>14} {'w/o state':>10} {'evicting: peak':>15} {'held':>6} "
          f"{'w/o state':>10} {'(index)':>8} {'state alone':>12}")
    for size, hold_peak, hold_rest, ev_peak, ev_held, ev_rest, ev_index, st_bytes in memory:
        print(f"             {size:>8,} {hold_peak / 2**20:>14.1f} {hold_rest / 2**20:>10.1f} {ev_peak / 2**20:>15.1f} "
              f"{ev_held / 2**20:>6.1f} {(ev_rest + ev_index) / 2**20:>10.1f} {ev_index / 2**20:>8.1f} "
              f"{st_bytes / 2**20:>12.1f}")
    (s1, _, h1, _, _, r1, i1, b1), (s2, _, h2, _, _, r2, i2, b2) = memory
    print(f"             beyond the state and its snapshots ('w/o state'), per entry between the two sizes: "
          f"holding {(h2 - h1) / (s2 - s1):.0f} B, evicting {(r2 + i2 - r1 - i1) / (s2 - s1):.0f} B = "
          f"{(i2 - i1) / (s2 - s1):.0f} B index of named entries + {(r2 - r1) / (s2 - s1):.0f} B other; "
          f"the state alone grows {(b2 - b1) / (s2 - s1):.0f} B per entry")
    print("             (the index: position and kind of each archived entry that took effect and that later ones "
          "may name — one per contribution, proposal, join, grant, resource or sanction in the state)")
    print(f"evicting:    {evict_rate:>10,.0f} entries/s for the evicting fold, best of three (archive in a store "
          f"table, applied in batches of 2,048; target >= 50,000/s)")

    # Appends: entries that sort last (written after seeing everything).
    t = entries[-1].time
    costs, costs_hash = [], []
    author = signers[3]
    prev = last[author.public_key]
    for k in range(200):
        t += 1000
        deps = [e.id for a, e in last.items() if a != author.public_key][:14]
        entry = sign_entry(author, commons=commons, seq=prev.seq + 1, prev=prev.id, kind="contribution",
                           body={"title": f"append {k}", "value": 1}, deps=deps, timestamp=t)
        prev = entry
        last[author.public_key] = entry
        t0 = time.perf_counter()
        folder.add(entry)
        folder.run()
        result = folder.result()
        t1 = time.perf_counter()
        if k % 20 == 0:
            _ = result.state_hash
            costs_hash.append(time.perf_counter() - t0)
        else:
            costs.append(t1 - t0)
    print(f"append:      {statistics.median(costs) * 1e6:>10.0f} µs median per entry (target < 1 ms); "
          f"with a fresh state hash {statistics.median(costs_hash) * 1000:.1f} ms")

    # A late entry ~10,000 positions back: a new author's entry whose only dependency is an
    # entry about 10,000 positions before the end, so it sorts there.
    back = min(10_000, n // 2)
    anchor_key = folder.order[len(folder.order) - back]
    anchor = CID(anchor_key[1])
    late_signer = stranger_signer()
    late = sign_entry(late_signer, commons=commons, seq=1, prev=None, kind="contribution",
                      body={"title": "late", "value": 1}, deps=[anchor], timestamp=t + 1)
    t0 = time.perf_counter()
    folder.add(late)
    folder.run()
    late_s = time.perf_counter() - t0
    position = folder.order.index(folder.meta[late.id.raw].key)
    print(f"late entry:  {late_s * 1000:>10.1f} ms for an entry {len(folder.order) - position:,} positions back "
          f"(restores the nearest snapshot, replays {len(folder.order) - position:,}+ entries)")
    check = Folder(commons)
    for entry in folder.entries.values():
        check.add(entry)
    same = check.result().state_hash == folder.result().state_hash
    print(f"incremental = full after all of the above: {same}")
    bench_engine(list(folder.entries.values()), commons, author, prev, last, t)


def bench_engine(entries: list[Entry], commons: CID, author: Signer, prev: Entry, last: dict[bytes, Entry],
                 t: int) -> None:
    """The store-backed engine: one-time fold, appends through the store, process restart."""
    import tempfile
    from pathlib import Path

    from p2pcommons.state.engine import current_state, forget
    from p2pcommons.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.sqlite")
        store.insert(entries)
        t0 = time.perf_counter()
        current_state(store, commons, persist=True)
        first_s = time.perf_counter() - t0
        costs = []
        for k in range(50):
            t += 1000
            # (The newest heads, as p2pcommons.author.current_deps names them: the entry then
            # sorts last.  The first 14 in author order, with 100 authors, sorted it before
            # the newest entries, and each append replayed them.)
            deps = [e.id for e in sorted((e for a, e in last.items() if a != author.public_key),
                                         key=lambda e: e.time, reverse=True)[:14]]
            entry = sign_entry(author, commons=commons, seq=prev.seq + 1, prev=prev.id, kind="contribution",
                               body={"title": f"engine {k}", "value": 1}, deps=deps, timestamp=t)
            prev = entry
            last[author.public_key] = entry
            store.insert([entry])
            t0 = time.perf_counter()
            current_state(store, commons, persist=False)
            costs.append(time.perf_counter() - t0)
        current_state(store, commons, persist=True)
        forget()
        t0 = time.perf_counter()
        state = current_state(store, commons, persist=False)
        resume_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _ = state.state_hash
        cached_s = time.perf_counter() - t0
        size = len(store.get_cache(f"state/{commons}/checkpoint") or b"")
        # Memory of a node's live fold: resume under tracemalloc; what stays held afterwards.
        forget()
        gc.collect()
        tracemalloc.start()
        state = current_state(store, commons, persist=False)
        held, resume_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        store.close()
        forget()
    print(f"engine:      {first_s:>10.2f} s to fold {len(entries):,} stored entries the first time (incl. reading "
          f"and decoding them, and writing the cache)")
    print(f"             {statistics.median(costs) * 1e6:>10.0f} µs median per appended entry through the store "
          f"(insert excluded; read new rows + decode + fold)")
    print(f"             {resume_s:>10.2f} s for a new process to resume from the checkpoint "
          f"({size / 2**20:.1f} MiB), {cached_s * 1000:.1f} ms for its state hash (cached)")
    print(f"             {held / 2**20:>10.1f} MiB held by the resumed live fold ({held / len(entries):.0f} B/entry, "
          f"state included), {resume_peak / 2**20:.1f} MiB peak while resuming (tracemalloc)")


if __name__ == "__main__":
    main()
