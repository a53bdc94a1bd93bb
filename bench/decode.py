"""Decode benchmark: what one entry costs to decode, beside a plain ``cbor2.loads`` of it.

    P2PC_BENCH_CACHE=/work/bench-cache python bench/decode.py   # 20,000 entries of bench/fold.py's history
    python bench/decode.py -n 5000

Prints, per entry, CPU time (``time.process_time``, the best of many short rounds run in
turn, so other processes on a shared machine disturb the figures as little as they can):

* ``cbor2.loads``: a plain decode of the entry's bytes, with no checks (the floor);
* ``decode_stored``: an entry read back from the store (the state fold's decoder);
* ``decode_entry``: a received entry (sync, gossip, bundles), canonical form proven while
  parsing;
* the reference path ``_decode_entry_checked``, which proves canonical form by re-encoding
  the entry and comparing (what ``decode_entry`` did for every entry before);

each also as a multiple of ``cbor2.loads``, and the load average the run saw.  The entries
are bench/fold.py's history (``P2PC_BENCH_CACHE`` reads it from its cache folder).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fold import build_history

from p2pcommons.entry import _decode_entry_checked, decode_entry, decode_stored


def best_per_entry(functions: dict[str, Callable[[bytes], Any]], raws: list[bytes], rounds: int) -> dict[str, float]:
    """Seconds per entry for each function: the best round, rounds interleaved."""
    best = dict.fromkeys(functions, float("inf"))
    chunks = [raws[i:i + 2000] for i in range(0, len(raws), 2000)]
    gc.disable()
    try:
        for r in range(rounds):
            chunk = chunks[r % len(chunks)]
            for name, function in functions.items():
                t0 = time.process_time()
                for raw in chunk:
                    function(raw)
                best[name] = min(best[name], (time.process_time() - t0) / len(chunk))
    finally:
        gc.enable()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000, help="entries (a prefix of a 100,000-entry history)")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    entries, _, _ = build_history(100_000 if os.environ.get("P2PC_BENCH_CACHE") else args.n)
    raws = [e.raw for e in entries[:args.n]]
    print(f"{len(raws):,} entries, {sum(map(len, raws)) / len(raws):.0f} bytes on average")
    functions: dict[str, Callable[[bytes], Any]] = {
        "cbor2.loads": cbor2.loads,
        "decode_stored": decode_stored,
        "decode_entry": decode_entry,
        "reference (re-encodes)": _decode_entry_checked,
    }
    best = best_per_entry(functions, raws, args.rounds)
    floor = best["cbor2.loads"]
    for name, seconds in best.items():
        print(f"{name:24s} {seconds * 1e6:7.2f} us per entry  {seconds / floor:5.2f}x cbor2.loads")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
