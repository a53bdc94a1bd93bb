"""Version vectors at insert (store schema 8, ``p2pcommons/vectors.py``): what they cost.

    python bench/vectors.py -n 100000                  # the 12-author history
    python bench/vectors.py -n 100000 --authors 10000  # 10,000 authors
    python bench/vectors.py --joins 10000              # 10,000 joins on the genesis, then 1,000 late joiners

Stores the entries in a fresh store in batches of 1,000 in log order (as a sync or a bundle
delivers them) and prints, beside the same run's floors (raw Ed25519 verify, entry decode,
SQLite insert into the store's layout) and the load average:

* the insert's CPU time per entry, clocks and vectors included;
* what the vectors hold: bytes and slots per entry of ``entries.vv``, against the slots of
  the whole vectors (the mean over a sample of entries: what storing them whole would
  cost), and the rows a read walks (mean and most);
* reads with cold caches (a new connection): ``Store.in_past`` and ``Store.vector`` over
  random entries, microseconds each;
* how far back in the fold's order each row's base sorts (:func:`base_distances`).

The histories are ``bench/fold.py``'s (``P2PC_BENCH_CACHE`` keeps them signed).  Nothing
is asserted: the figures go into ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from fold import build_history, build_joins  # bench/ is not a package: its own directory
from sync import decode_rate, load_average, sqlite_insert_rate, verify_rate


def late_joiners(entries: list[Entry], count: int) -> list[Entry]:
    """``count`` newcomers after ``entries``, each writing three entries, its first naming the
    latest head (which has seen every join before it through a member's log)."""
    genesis = entries[0]
    out: list[Entry] = []
    member = Signer(b"\x02" * 32)
    # A member who sees every join, 16 named per entry (an entry's most).
    head: Entry | None = None
    joins = entries[1:]
    for seq, at in enumerate(range(0, len(joins), 16), start=1):
        head = sign_entry(member, commons=genesis.id, seq=seq, prev=None if head is None else head.id, kind="note",
                          deps=[j.id for j in joins[at:at + 16]], body={}, timestamp=1_700_000_100_000 + seq)
        out.append(head)
    assert head is not None
    for i in range(count):
        signer = Signer((10_000_000 + i).to_bytes(32, "big"))
        prev: Entry | None = None
        for seq in range(1, 4):
            prev = sign_entry(signer, commons=genesis.id, seq=seq, prev=None if prev is None else prev.id,
                              kind="note", deps=[head.id] if prev is None else [], body={"i": i},
                              timestamp=1_700_000_200_000 + i)
            out.append(prev)
        head = prev
    return out


def whole_slots(store: Store, sample: list[Entry]) -> float:
    sizes = []
    for entry in sample:
        vector = store.vector(entry.id)
        if vector is not None:
            sizes.append(len(vector))
    return statistics.mean(sizes) if sizes else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=12)
    parser.add_argument("--joins", type=int, default=0, help="only this: N joins on the genesis, then late joiners")
    parser.add_argument("--late", type=int, default=1000, help="late joiners after --joins")
    args = parser.parse_args()

    if args.joins:
        entries = build_joins(args.joins)
        entries += late_joiners(entries, args.late)
        what = f"{args.joins:,} joins on the genesis, a member naming them all, {args.late:,} late joiners"
    else:
        entries = build_history(args.n, args.authors)[0]
        what = f"{len(entries):,} entries by {args.authors:,} authors"
    raws = [e.raw for e in entries]
    with tempfile.TemporaryDirectory(prefix="p2pc-bench-vv-") as tmp:
        root = Path(tmp)
        print(f"history: {what}; load average {load_average()}")
        floors = (verify_rate(raws), decode_rate(raws), sqlite_insert_rate(raws, root))
        print(f"floors:  raw Ed25519 verify {floors[0]:,.0f}/s, decode {floors[1]:,.0f}/s, "
              f"SQLite insert {floors[2]:,.0f}/s; load average {load_average()}")
        in_log_order = sorted(entries, key=lambda e: (e.commons is not None, e.author, e.seq))
        path = root / "store.sqlite"
        with Store(path) as store:
            cpu = time.process_time()
            for at in range(0, len(in_log_order), 1000):
                store.insert(in_log_order[at:at + 1000])
            cpu = time.process_time() - cpu
            placed, vv_bytes = store._db.execute(
                "SELECT count(*), sum(length(vv)) FROM entries WHERE vv IS NOT NULL").fetchone()
            print(f"insert:  {cpu / len(entries) * 1e6:.1f} us CPU per entry (clocks and vectors included), "
                  f"{len(entries) / cpu:,.0f} entries/s; {placed:,} placed")
        with Store(path) as store:  # cold caches
            from p2pcommons.vectors import decode

            slots = walks = most = 0
            for (blob,) in store._db.execute("SELECT vv FROM entries WHERE vv IS NOT NULL"):
                slots += len(decode(bytes(blob)).flat) // 2
            rng = random.Random(7)
            sample = rng.sample(entries, min(1000, len(entries)))
            for entry in sample:
                walked = sum(1 for _ in store._vectors.walk(entry.id.raw))
                walks += walked
                most = max(most, walked)
            store._vectors.clear()
            whole = whole_slots(store, sample[:200])
            print(f"stored:  {vv_bytes / placed:.1f} bytes and {slots / placed:.2f} slots per entry; whole vectors "
                  f"would hold {whole:,.1f} slots per entry (mean over 200); a read walks {walks / len(sample):.1f} "
                  f"rows (most {most})")
            print(base_distances(store))
            store._vectors.clear()
            pairs = [(rng.choice(entries), rng.choice(entries)) for _ in range(10_000)]
            start = time.process_time()
            for earlier, later in pairs:
                store.in_past(earlier.id, later.id)
            past_us = (time.process_time() - start) / len(pairs) * 1e6
            store._vectors.clear()
            start = time.process_time()
            for entry in sample:
                store.vector(entry.id)
                store._vectors.clear()
            vector_us = (time.process_time() - start) / len(sample) * 1e6
            print(f"reads:   in_past {past_us:.1f} us, vector {vector_us:.1f} us (cold caches); "
                  f"load average {load_average()}")
        os.sync()


def base_distances(store: Store, far: int = 4096) -> str:
    """How far back, in the fold's ``(clock, id)`` order, each row's base sorts: if it is
    nearly always close, a fold reading the rows in that order could build each entry's
    vector from its base's, still held, plus the row's slots (docs/performance.md, session
    22), with no lookup of the entry's archived parents."""
    from p2pcommons.vectors import decode

    rows = store._db.execute(
        "SELECT n, id, log, seq, vv FROM entries WHERE clock IS NOT NULL ORDER BY clock, id").fetchall()
    position = {n: at for at, (n, _, _, _, _) in enumerate(rows)}
    by_seq = {(log, seq): n for n, _, log, seq, _ in rows}
    by_id = {bytes(eid): n for n, eid, _, _, _ in rows}
    distances = []
    for at, (_, _, log, _, blob) in enumerate(rows):
        if blob is None:
            continue
        row = decode(bytes(blob))
        base = by_seq.get((log, row.base_seq)) if row.base_seq else by_id.get(row.base or b"")
        if base is not None:
            distances.append(at - position[base])
    if not distances:
        return "bases:   none"
    distances.sort()
    beyond = len(distances) - sum(1 for d in distances if d <= far)
    return (f"bases:   a row's base sorts {statistics.median(distances):g} positions back (median), "
            f"{distances[len(distances) * 9 // 10]} (90th percentile), {distances[-1]:,} at most; "
            f"{beyond:,} of {len(distances):,} more than {far:,} back")


if __name__ == "__main__":
    main()
