"""A write-heavy child process for the crash-safety test; the parent kills it with SIGKILL.

It prints one line per durable step, flushed, so the parent knows what was reported
written before the kill:  ``wrote <id>`` after a local append has committed, and
``batch <n>`` as a bundle import progresses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from p2pcommons.author import append
from p2pcommons.bundle import import_bundle
from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from p2pcommons.store import Store


def main() -> None:
    mode, home_path = sys.argv[1], Path(sys.argv[2])
    home = Home(home_path)
    store = Store(home.store_file)
    print("ready", flush=True)
    if mode == "import":
        with open(sys.argv[3], "rb") as source:
            import_bundle(store, source, on_progress=lambda done, total: print(f"batch {done}", flush=True))
        print("done", flush=True)
    elif mode == "contribute":
        identity = load_identity(home)
        commons = CID.parse(sys.argv[3])
        for i in range(int(sys.argv[4])):
            entry = append(store, identity.signer, commons, "contribution", {"title": f"burst {i}", "value": 1})
            print(f"wrote {entry.id}", flush=True)
        print("done", flush=True)
    store.close()


if __name__ == "__main__":
    main()
