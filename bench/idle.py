"""An idle daemon's memory: RSS, PSS and anonymous memory of ``p2pc node start`` on an empty home.

    python bench/idle.py                      # 5 runs, RSS read 3 s after the start
    python bench/idle.py --runs 9 --wait 30   # later in the daemon's life
    python bench/idle.py --no-ui              # with [ui] enabled = false

Each run makes a fresh home (``p2pc init``), starts the background daemon on 127.0.0.1
(what ``p2pc node start`` runs: ``python -m p2pcommons.node.launch``), waits ``--wait``
seconds, reads ``/proc/PID/smaps_rollup`` and stops it.  RSS counts every page the process
maps (the shared libraries too), PSS splits shared pages between the processes mapping them
(it falls while other Python processes run), anonymous memory is the process's own heap.
Prints each run with the load average, then the medians.  Asserts nothing (issue 18's target
is RSS <= 60 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = ("Rss", "Pss", "Anonymous")


def rollup(pid: int) -> dict[str, float]:
    """The daemon's smaps_rollup figures in MiB (/proc counts KiB)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in FIELDS:
                out[name] = int(rest.split()[0]) / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--wait", type=float, default=3.0, help="seconds between the start and the reading")
    parser.add_argument("--no-ui", action="store_true", help="[ui] enabled = false (no dashboard port)")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("p2pc"))
    env = {k: v for k, v in os.environ.items() if k != "P2PC_HOME"}
    figures: dict[str, list[float]] = {f: [] for f in FIELDS}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            subprocess.run([exe, "init", "--home", str(home)], check=True, stdout=subprocess.DEVNULL, env=env)
            if args.no_ui:
                config = home / "config.toml"
                config.write_text((config.read_text() if config.exists() else "") + "\n[ui]\nenabled = false\n")
            started = subprocess.run([exe, "node", "start", "--home", str(home), "--listen", "/ip4/127.0.0.1/tcp/0",
                                      "--json"], check=True, capture_output=True, text=True, env=env)
            pid = int(json.loads(started.stdout)["data"]["pid"])
            try:
                time.sleep(args.wait)  # the reading's moment, not a wait for a condition
                now = rollup(pid)
            finally:
                subprocess.run([exe, "node", "stop", "--home", str(home)], stdout=subprocess.DEVNULL, env=env)
            for f in FIELDS:
                figures[f].append(now[f])
            print(f"run {run + 1}: RSS {now['Rss']:.1f} MiB, PSS {now['Pss']:.1f}, anonymous {now['Anonymous']:.1f}; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"median of {args.runs} ({args.wait:g} s after the start{', no dashboard' if args.no_ui else ''}): "
          + ", ".join(f"{f} {statistics.median(v):.1f} MiB" for f, v in figures.items())
          + f"; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
