"""Start-up and answer times of the CLI's hot commands on a home (issues 12 and 18).

    python bench/cli.py HOME                 # each hot command, 5 runs each, without a daemon
    python bench/cli.py HOME --daemon        # the same with a daemon running for HOME
    python bench/cli.py HOME --typer         # through the typer application (the old path)
    python bench/cli.py HOME --runs 9 --only contribute

Make a big home with ``bench/bighome.py``.  Runs are interleaved (command after command, then
again), and each figure is the median wall time and the median CPU time (user + system) of
the command's process; with ``--daemon`` the daemon's own CPU for the same runs is printed
beside it (from /proc), since it does the work.  The load average is printed before and after:
wall times on a shared machine mean little without it.  ``contribute`` writes a real entry on
each run.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "contribute": ["contribute", "--title", "bench", "--value", "1"],
    "state": ["state"],
    "members": ["members"],
    "contributions --status pending": ["contributions", "--status", "pending"],
}


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _daemon_pid(home: Path) -> int:
    from p2pcommons.node.notify import request

    return int(request(home, {"cmd": "ping"}, timeout=10)["pid"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--daemon", action="store_true", help="start a daemon for HOME first (stopped at the end)")
    parser.add_argument("--typer", action="store_true", help="run through the typer application")
    parser.add_argument("--only", action="append", choices=sorted(COMMANDS), help="only this command (repeatable)")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("p2pc"))
    base = ([sys.executable, "-c", "import sys; from p2pcommons.cli.app import get_app; get_app()(sys.argv[1:])"]
            if args.typer else [exe])
    env = {**os.environ, "P2PC_NO_PROGRESS": "1"}
    env.pop("P2PC_HOME", None)
    names = args.only or list(COMMANDS)
    daemon = None
    if args.daemon:
        subprocess.run([exe, "node", "start", "--home", str(args.home), "--listen", "/ip4/127.0.0.1/tcp/0"],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        daemon = _daemon_pid(args.home)
        subprocess.run([exe, "state", "--home", str(args.home)], check=True, stdout=subprocess.DEVNULL, env=env)
    print(f"home {args.home}, {'typer path' if args.typer else 'p2pc'}, daemon {'running' if daemon else 'none'}, "
          f"{args.runs} runs each; load average before {os.getloadavg()}")
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    daemon_cpus: dict[str, list[float]] = {n: [] for n in names}
    try:
        for _ in range(args.runs):
            for name in names:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                d0 = _process_cpu(daemon) if daemon else 0.0
                t0 = time.perf_counter()
                done = subprocess.run([*base, *COMMANDS[name], "--home", str(args.home)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, env=env)
                walls[name].append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if daemon:
                    daemon_cpus[name].append(_process_cpu(daemon) - d0)
                if done.returncode:
                    raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr.decode()[-400:]}")
                cpus[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    finally:
        if daemon:
            subprocess.run([exe, "node", "stop", "--home", str(args.home)], stdout=subprocess.DEVNULL, env=env)
    for name in names:
        extra = f", daemon CPU {statistics.median(daemon_cpus[name]):.3f} s" if daemon else ""
        print(f"{name:<32} wall {statistics.median(walls[name]):.3f} s, CPU {statistics.median(cpus[name]):.3f} s"
              f"{extra} (median of {args.runs})")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
