"""A daemon's live fold while a sync delivers a commons log by log.

    P2PC_BENCH_CACHE=DIR python bench/live.py [-n 100000] [--history outsiders|members] [--group 2450]
        [--first 1]   # the genesis alone first (a node that joined), e.g. with --group 100000: a bundle

A node that syncs stores what it receives one acknowledged group at a time, in the order the
sender sends it: log by log (each author's entries in turn), and folds after each group
(``engine.current_state``, as the daemon's state worker does).  Every log after the first
then sorts before what the fold has applied, and archived.  This measures that fold, beside
the same entries' fresh fold from the store (:func:`engine.current_state` of a new process
reading in ``(clock, id)`` order):

* ``--history outsiders``: ``bench/sync.py``'s history, 10 strangers' contributions in an
  open commons whose founder wrote only the genesis (no member bounds the eviction, and
  every later log is strangers' entries sorting back: ``Folder._late_strangers``);
* ``--history members``: ``bench/fold.py``'s history (12 members: contributions, reviews,
  votes, resource uses, distributions).

Prints CPU seconds of all the folds together, how many entries the fold archived, what it
still holds, the daemon's RSS afterwards (this process holds only the raw entries of one
group at a time besides the fold) and the state hash, with the load average.  Asserts
nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _log_order(raws: list[bytes]) -> list[bytes]:
    """The genesis, then each author's entries in seq order, author by author (as a sender
    walks its logs)."""
    from p2pcommons.entry import decode_entry

    keyed = []
    for at, raw in enumerate(raws):
        entry = decode_entry(raw)
        keyed.append((entry.commons is not None, entry.author, entry.seq, at))
    keyed.sort()
    return [raws[at] for *_, at in keyed]


def _history(kind: str, n: int) -> tuple[bytes, list[bytes]]:
    if kind == "outsiders":
        from sync import history

        commons, raws = history(n, 10)
        return commons.raw, raws
    from fold import build_history

    entries, _, _ = build_history(n, 12)
    return entries[0].id.raw, [e.raw for e in entries]


def _rss_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--history", choices=("outsiders", "members"), default="outsiders")
    parser.add_argument("--group", type=int, default=2450, help="entries stored, then folded, at a time")
    parser.add_argument("--persist", action="store_true",
                        help="save as the daemon does (on the first fold, then every tenth of the count)")
    parser.add_argument("--first", type=int, default=0,
                        help="store and fold this many first, alone (1: the genesis, as a node that joined)")
    args = parser.parse_args()

    from p2pcommons.dagcbor import CID
    from p2pcommons.entry import decode_entry
    from p2pcommons.state import engine
    from p2pcommons.store import Store

    commons_raw, raws = _history(args.history, args.n)
    commons = CID(commons_raw)
    ordered = _log_order(raws)
    del raws
    with tempfile.TemporaryDirectory(dir=os.environ.get("P2PC_BENCH_TMP")) as tmp:
        store = Store(Path(tmp) / "live.sqlite")
        gc.collect()
        cpu = 0.0
        state = None
        cuts = [0, *range(args.first or args.group, len(ordered), args.group)]
        for at, end in zip(cuts, [*cuts[1:], len(ordered)], strict=True):
            store.insert([decode_entry(raw) for raw in ordered[at:end]])
            c0 = time.process_time()
            state = engine.current_state(store, commons, persist=None if args.persist else False)
            cpu += time.process_time() - c0
        assert state is not None
        digest = state.state_hash
        folder = next(live.folder for key, live in engine._live.items() if key[1] == commons_raw)
        held = len(folder.meta)
        evicted = folder.evicted
        del ordered
        gc.collect()
        rss = _rss_mib()
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        first = f"the first {args.first:,} alone, then " if args.first else ""
        first = ("saved as the daemon saves, " if args.persist else "") + first
        print(f"live fold, {args.history}: {args.n:,} entries stored log by log, {first}in groups of {args.group:,}, "
              f"folded after each: {cpu:.2f} CPU-s ({args.n / cpu:,.0f} entries/s); archived {evicted:,}, "
              f"held {held:,}; RSS {rss} MiB after; state hash {digest[:16]}; load average {load}")
        store.close()
        engine.forget()


if __name__ == "__main__":
    main()
