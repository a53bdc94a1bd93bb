"""Late entries through the store at a large size, without paying for an in-memory fold.

    P2PC_BENCH_CACHE=DIR python bench/late.py -n 1000000 --keep DIR [--authors 12]
        [--appends 50,3000] [--late 10000,1000,100000] [--profile FILE]

``bench/fold.py --store-order`` measures the same late entry after a fresh fold, but also
folds everything in memory and inserts the history on every run (at 1,000,000 entries about
fifteen minutes).  This keeps the store (``--keep``: built once from ``build_history``, in
log order, batches of 1,000, as that bench stores it) and works on a copy of it each run:

* a fresh node's fold of the stored commons through the engine (CPU-s, entries/s);
* per round of ``--appends``: that many entries appended by the members in turn (each
  through the store and the engine: median CPU per append), then one late entry per
  ``--late`` distance — a new author's contribution whose only dependency is the entry that
  many positions before the newest, so it sorts there — its wall time (insert included) and
  the fold's CPU, with the window the fold held after its archive's base (what a late
  stranger's entry replays).  A second, longer round shows the daemon's steady state.
* with ``--forks K``: a member's device restored from an old backup signs an archived seq
  again (its sibling sorts back there), then K more siblings of that key further on, then
  as many appends as the first round: the CPU of each (the first refolds: a fresh fold of
  the store, compare the first line), and the window the fold holds after them (a fork no
  longer switches eviction off);
* with ``--stranger-forks K``: K strangers, each signing a contribution (or, every other
  one, a join) that sorts half the history back (taken into the archive's base as a late
  stranger's entry), then a second entry at that seq: the CPU of each fork, and whether the
  fold refolded (it no longer does: the record comes out of the base state, a join's after
  a scan for device entries naming its key; on a tree before that, each fork folded the
  whole commons afresh).

Prints the load average beside every figure; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fold import author_signer, build_history, stranger_signer

from p2pcommons.dagcbor import CID
from p2pcommons.entry import decode_entry, sign_entry
from p2pcommons.state import engine
from p2pcommons.store import Store


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def kept_store(n: int, authors: int, keep: Path) -> Path:
    """The stored history (built on the first run), copied for this run's writes."""
    path = keep / f"late-{n}-{authors}.sqlite"
    if not path.exists():
        entries, _, _ = build_history(n, authors)
        by_log = sorted(entries, key=lambda e: (e.author, e.seq))
        del entries
        part = path.with_suffix(".part")
        store = Store(part)
        t0 = time.perf_counter()
        for i in range(0, len(by_log), 1000):
            store.insert(by_log[i:i + 1000])
        store.close()
        for ext in ("-wal", "-shm"):
            Path(f"{part}{ext}").unlink(missing_ok=True)
        part.replace(path)
        print(f"stored {n:,} entries in {time.perf_counter() - t0:.0f} s (once; kept in {keep})", flush=True)
    work = keep / f"work-{n}-{authors}.sqlite"
    for ext in ("", "-wal", "-shm"):
        Path(f"{work}{ext}").unlink(missing_ok=True)
    shutil.copyfile(path, work)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=12)
    parser.add_argument("--keep", required=True, help="folder keeping the stored history between runs")
    parser.add_argument("--appends", default="50,3000", help="rounds of member appends before the late entries")
    parser.add_argument("--late", default="10000,1000,100000", help="positions back of each round's late entries")
    parser.add_argument("--profile", default="", help="write a cProfile of the fresh fold (CPU time) here")
    parser.add_argument("--forks", type=int, default=0,
                        help="then a fork of an archived seq and this many more siblings")
    parser.add_argument("--stranger-forks", type=int, default=0,
                        help="then this many strangers each fork an archived contribution of theirs")
    args = parser.parse_args()
    keep = Path(args.keep)
    keep.mkdir(parents=True, exist_ok=True)
    store = Store(kept_store(args.n, args.authors, keep))
    (genesis,) = store.db.execute("SELECT id FROM entries WHERE clock = 0").fetchone()
    commons = CID(bytes(genesis))
    engine.forget()
    gc.collect()
    profile = cProfile.Profile(time.process_time) if args.profile else None
    c0, t0 = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    state = engine.current_state(store, commons, persist=False)
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    cpu = time.process_time() - c0
    print(f"fresh fold: {args.n / cpu:>10,.0f} entries/s of CPU through the store ({cpu:.2f} CPU-s, "
          f"{time.perf_counter() - t0:.1f} s wall for {args.n:,}, {args.authors} authors); state hash "
          f"{state.state_hash[:16]}; load average {_load()}", flush=True)
    def live_fold() -> Any:  # (a refold from scratch replaces the live fold: engine._feed)
        return next(live.folder for key, live in engine._live.items() if key[1] == commons.raw)

    folder = live_fold()

    signers = {s.public_key: s for s in map(author_signer, range(args.authors))}
    # Each member's head, the newest last: an append names the 14 newest, as
    # p2pcommons.author.current_deps does, so it sorts last (with 100 authors, 14 heads in
    # author order sorted it before the newest entries, and each append replayed them).
    found = []
    for author, log in store.db.execute("SELECT author, log FROM logs").fetchall():
        if bytes(author) in signers:
            eid, seq, clock = store.db.execute("SELECT id, seq, clock FROM entries WHERE log=? ORDER BY seq DESC "
                                               "LIMIT 1", (log,)).fetchone()
            found.append((int(clock), bytes(author), CID(bytes(eid)), int(seq)))
    heads: dict[bytes, tuple[CID, int]] = {author: (eid, seq) for _, author, eid, seq in sorted(found)}
    members = sorted(heads)
    t = 1_800_000_000_000
    strangers = 0
    for count in (int(x) for x in args.appends.split(",")):
        median, t = _appends(store, commons, [signers[m] for m in members], heads, count, t)
        print(f"after {count:,} appends: {median * 1e6:.0f} µs CPU median per append (fold only), "
              f"window held after the archive's base {len(folder.order):,} positions", flush=True)
        for back in (int(x) for x in args.late.split(",")):
            strangers += 1
            (anchor,) = store.db.execute("SELECT id FROM entries WHERE clock IS NOT NULL "
                                         "ORDER BY clock DESC, id DESC LIMIT 1 OFFSET ?", (back,)).fetchone()
            late = sign_entry(stranger_signer(strangers), commons=commons, seq=1, prev=None,
                              kind="contribution", body={"title": f"late {back}", "value": 1},
                              deps=[CID(bytes(anchor))], timestamp=t + strangers)
            window = len(folder.order)
            t0 = time.perf_counter()
            store.insert([late])
            c1 = time.process_time()
            engine.current_state(store, commons, persist=False)
            late_cpu = time.process_time() - c1
            folder = live_fold()
            print(f"  late entry {back:,} positions back: {(time.perf_counter() - t0) * 1000:.1f} ms through the "
                  f"store (insert included), {late_cpu * 1000:.1f} CPU-ms the fold (window {window:,}, refolds "
                  f"{folder.refolds}; target < 100 ms); load average {_load()}", flush=True)
    if args.forks:
        _forks(store, commons, signers, members, heads, args.forks, int(args.appends.split(",")[0]), t, live_fold)
    if args.stranger_forks:
        _stranger_forks(store, commons, args.stranger_forks, args.n // 2, t, live_fold,
                        [signers[m] for m in members], heads)
    store.close()
    engine.forget()


def _appends(store: Store, commons: CID, writers: list[Any], heads: dict[bytes, tuple[CID, int]], count: int,
             t: int) -> tuple[float, int]:
    """``count`` appends by ``writers`` in turn (:func:`_append`): the median CPU seconds of
    the fold per append, and the last entry's time."""
    costs = []
    for j in range(count):
        t += 1000
        costs.append(_append(store, commons, writers[j % len(writers)], heads, t))
    costs.sort()
    return costs[len(costs) // 2], t


def _append(store: Store, commons: CID, signer: Any, heads: dict[bytes, tuple[CID, int]], t: int,
            extra: CID | None = None) -> float:
    """One member's entry naming the 14 newest other heads (and ``extra``), through the
    store and the engine: the fold's CPU seconds."""
    author = signer.public_key
    prev, seq = heads[author]
    others = [head for key, (head, _) in heads.items() if key != author]
    entry = sign_entry(signer, commons=commons, seq=seq + 1, prev=prev, kind="contribution",
                       body={"title": f"append {t}", "value": 1},
                       deps=others[-14:] + ([] if extra is None else [extra]), timestamp=t)
    del heads[author]  # (re-inserted last: the dict keeps the heads newest last)
    heads[author] = (entry.id, seq + 1)
    store.insert([entry])
    c = time.process_time()
    engine.current_state(store, commons, persist=False)
    return time.process_time() - c


def _forks(store: Store, commons: CID, signers: dict[bytes, Any], members: list[bytes],
           heads: dict[bytes, tuple[CID, int]], more: int, appends: int, t: int, live_fold: Any) -> None:
    """A member's log forks at an archived seq (the sibling names what the original named,
    so it sorts beside it), then ``more`` siblings further on in that log, then ``appends``
    appends by the other members: the CPU of each step and the window held after."""
    forker = members[0]
    log = store.existing_log(commons, forker)
    rows = store.db.execute("SELECT raw FROM entries WHERE log = ? ORDER BY seq", (log,)).fetchall()
    mine = [decode_entry(bytes(raw)) for (raw,) in rows]
    picks = [mine[len(mine) * (i + 1) // (more + 3)] for i in range(more + 1)]
    for i, original in enumerate(picks):
        sibling = sign_entry(signers[forker], commons=commons, seq=original.seq, prev=original.prev,
                             kind="contribution", body={"title": f"restored from a backup {i}", "value": 1},
                             deps=list(original.deps), timestamp=original.time)
        store.insert([sibling])
        c = time.process_time()
        engine.current_state(store, commons, persist=False)
        cpu = time.process_time() - c
        folder = live_fold()
        what = "the key's first fork" if i == 0 else "a further sibling"
        print(f"  {what} at seq {original.seq:,} of {len(mine):,}: {cpu * 1000:,.1f} CPU-ms the fold "
              f"(refolds {folder.refolds}, window {len(folder.order):,}, archived {folder.evicted:,}); "
              f"load average {_load()}", flush=True)
    median, t = _appends(store, commons, [signers[m] for m in members if m != forker], heads, appends, t)
    folder = live_fold()
    print(f"  after the forks, {appends:,} appends: {median * 1e6:.0f} µs CPU median per append, "
          f"window held {len(folder.order):,} positions, archived {folder.evicted:,}; load average {_load()}",
          flush=True)


def _stranger_forks(store: Store, commons: CID, count: int, back: int, t: int, live_fold: Any,
                    members: list[Any], heads: dict[bytes, tuple[CID, int]]) -> None:
    """``count`` strangers each sign a contribution naming the entry ``back`` positions
    before the newest (so it sorts there, among archived positions), then a second entry at
    that seq naming the same: the CPU of each step, and whether the fold refolded.  Every
    other stranger's first entry is named as a dependency by a member's next entry in
    between (as a member node's next entry names the newest heads), so the fold asks the
    store whether any entry names it in its body (a scan of the stored entries)."""
    for k in range(count):
        signer = stranger_signer(10_000 + k)
        (anchor,) = store.db.execute("SELECT id FROM entries WHERE clock IS NOT NULL "
                                     "ORDER BY clock DESC, id DESC LIMIT 1 OFFSET ?", (back,)).fetchone()
        cpu = []
        kind = "contribution" if k % 2 == 0 else "join"
        for title in ("drive-by", "the other branch"):
            body: dict[str, Any] = {"title": title, "value": 1} if kind == "contribution" else {"name": title}
            entry = sign_entry(signer, commons=commons, seq=1, prev=None, kind=kind, body=body,
                               deps=[CID(bytes(anchor))], timestamp=t + k)
            store.insert([entry])
            before = live_fold()
            c = time.process_time()
            engine.current_state(store, commons, persist=False)
            cpu.append(time.process_time() - c)
            seen = k % 4 >= 2
            if seen and not cpu[1:]:
                t += 1000
                _append(store, commons, members[k % len(members)], heads, t, extra=entry.id)
        folder = live_fold()
        how = "folded afresh" if folder is not before else f"no refold (voided {getattr(folder, 'voided', '?')})"
        named = ", named by a member as a dependency" if seen else ""
        print(f"  stranger {k + 1}: {kind} {back:,} positions back{named} {cpu[0] * 1000:,.1f} CPU-ms, its fork "
              f"{cpu[1] * 1000:,.1f} CPU-ms the fold, {how}; window {len(folder.order):,}, "
              f"archived {folder.evicted:,}; load average {_load()}", flush=True)


if __name__ == "__main__":
    main()
