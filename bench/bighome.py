"""Make a home that holds a big commons, for timing the CLI's queries and local writes.

    P2PC_BENCH_CACHE=/work/bench-cache python bench/bighome.py HOME -n 100000
    P2PC_BENCH_CACHE=/work/bench-cache python bench/bighome.py HOME -n 1000000 --fold

The commons is bench/fold.py's benchmark history (12 authors; with ``P2PC_BENCH_CACHE`` the
signed entries are read from its cache instead of being signed again).  The home's key is
one of the history's members (``--author``, 0 and 1 are the stewards, 2..11 members), so
``p2pc contribute`` and the other writes work as that member's next entry.  Entries go
through the ingest path in batches of ``--batch`` (every signature checked once, as a
bundle import does); ``--fold`` then runs ``p2pc state`` once, so the home also holds the
engine's checkpoint, as a home that has been used does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fold import build_history

from p2pcommons.home import Home
from p2pcommons.identity import create_identity
from p2pcommons.ingest import Ingestor
from p2pcommons.store import Store


def make_home(path: Path, n: int, *, author: int = 2, batch: int = 5000) -> Path:
    """Create ``path`` as a home holding the first ``n`` entries of the benchmark history,
    keyed as author number ``author`` of it.  Returns the path."""
    home = Home(path)
    if home.key_file.exists():
        raise SystemExit(f"{path} already holds an identity; give a new folder.")
    create_identity(home, seed=bytes([author + 1]) * 32)
    store = Store(home.store_file)
    try:
        raws: list[bytes] = []
        for raw in _history_raws(n):
            raws.append(raw)
            if len(raws) == batch:
                _ingest(store, raws)
                raws = []
        if raws:
            _ingest(store, raws)
    finally:
        store.close()
    return path


def _ingest(store: Store, raws: list[bytes]) -> None:
    with store.transaction():
        Ingestor(store, verify="segment", atomic=True, clock=None).add_batch(raws)


def _history_raws(n: int) -> Iterator[bytes]:
    """The history's signed entries: streamed from the cache file when there is one (a
    million decoded entries would not fit beside the store's work), else built."""
    cached = Path(os.environ.get("P2PC_BENCH_CACHE", "")) / f"history-{n}-12.bin"
    if os.environ.get("P2PC_BENCH_CACHE") and cached.exists():
        with cached.open("rb") as f:
            while header := f.read(4):
                yield f.read(int.from_bytes(header, "big"))
        return
    entries, _signers, _last = build_history(n)
    yield from (e.raw for e in entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("-n", type=int, default=100_000, help="entries (default 100,000)")
    parser.add_argument("--author", type=int, default=2, help="which of the 12 authors the home's key is")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--fold", action="store_true", help="run 'p2pc state' once (writes the checkpoint)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    make_home(args.home, args.n, author=args.author, batch=args.batch)
    print(f"stored {args.n:,} entries in {args.home} in {time.perf_counter() - t0:.1f} s")
    if args.fold:
        t0 = time.perf_counter()
        cli = "from p2pcommons.cli.app import main; main()"
        subprocess.run([sys.executable, "-c", cli, "--home", str(args.home), "state"], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"folded (p2pc state) in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
