"""The ingest child process: real process, real SQLite file, real signatures.

A large sync hands its groups to :mod:`p2pcommons.node.ingest_worker`; these tests drive
that child through :class:`p2pcommons.node.ingest_process.IngestProcess` directly: what it
stores, how rejections come back (same types, same messages), and what happens when the
child dies, idles, or cannot open the store.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest
import trio

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.errors import BadSignature, MalformedEntry, WrongCommons
from p2pcommons.ingest import Ingestor
from p2pcommons.node.ingest_process import IngestProcess
from p2pcommons.node.ingest_worker import IngestWorkerFailed, encode_message, rebuild_error
from p2pcommons.store import Store
from tests.support.polling import poll_for, wait_until

SIGNERS = [Signer(hashlib.sha256(b"ingest-process-%d" % i).digest()) for i in range(3)]


def _history(n: int) -> tuple[Entry, list[Entry]]:
    # every author a founder: these tests are about the child, not about outsiders' bounds
    genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis",
                         body={"name": "child", "stewards": [s.public_key for s in SIGNERS]}, timestamp=1)
    entries: list[Entry] = []
    prev: dict[int, CID] = {}
    for i in range(n):
        k = i % len(SIGNERS)
        seq = i // len(SIGNERS) + (2 if k == 0 else 1)
        entry = sign_entry(SIGNERS[k], commons=genesis.id, seq=seq, prev=prev.get(k, genesis.id if k == 0 else None),
                           kind="contribution", body={"title": f"t{i}", "kind": "work", "value": 1},
                           timestamp=10 + i)
        prev[k] = entry.id
        entries.append(entry)
    return genesis, entries


def _store_with(path: Path, *raws: bytes) -> None:
    with Store(path) as store:
        Ingestor(store).add_batch(list(raws))


def test_child_stores_a_group_and_reports_counts(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(300)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path))

    async def main() -> tuple[int, int, bool, int, bool]:
        report, new = await child.ingest(genesis.id, [e.raw for e in entries])
        again, _ = await child.ingest(genesis.id, [e.raw for e in entries[:10]])
        running = child.running
        await child.aclose()
        return report.added_count, again.duplicates, new, len(report.rejected), running

    added, duplicates, new, rejected, running = trio.run(main)
    assert (added, duplicates, new, rejected, running) == (300, 10, False, 0, True)
    assert not child.running
    with Store(path) as store:
        assert store.count(genesis.id) == 301
        assert all(store.has(e.id) for e in entries)


def test_a_group_larger_than_a_chunk_is_stored_whole(tmp_path: Path) -> None:
    """Chains cross the decoding chunks of one group; the group is still one transaction."""
    from p2pcommons.node.ingest_worker import CHUNK_ENTRIES, ingest_scoped

    path = tmp_path / "store.sqlite"
    genesis, entries = _history(CHUNK_ENTRIES * 2 + 7)
    _store_with(path, genesis.raw)
    with Store(path) as store:
        report, new = ingest_scoped(store, genesis.id, [e.raw for e in entries])
        assert (report.added_count, report.rejected, new) == (len(entries), [], False)
        assert store.count(genesis.id) == len(entries) + 1
    bad = entries[-1].raw.replace(b"\x65title", b"\x65titlf")  # a signed field changed
    with Store(tmp_path / "other.sqlite") as store:
        Ingestor(store).add_batch([genesis.raw])
        report, _ = ingest_scoped(store, genesis.id, [e.raw for e in entries[:-1]] + [bad])
        assert report.added_count == len(entries) - 1 and len(report.rejected) == 1


def test_child_reports_a_new_commons(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(5)
    Store(path).close()
    child = IngestProcess(str(path))

    async def main() -> bool:
        try:
            _, new = await child.ingest(genesis.id, [genesis.raw] + [e.raw for e in entries])
            return new
        finally:
            await child.aclose()

    assert trio.run(main) is True


def test_rejections_come_back_typed_with_their_messages(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(6)
    stranger = sign_entry(SIGNERS[1], commons=CID.of(b"elsewhere"), seq=1, prev=None, kind="note", body={})
    _store_with(path, genesis.raw)
    assert entries[-1].raw.count(b"t5") == 1
    tampered = entries[-1].raw.replace(b"t5", b"t9")  # a signed field changed: the signature fails
    child = IngestProcess(str(path))

    async def main() -> list[Exception]:
        try:
            report, _ = await child.ingest(
                genesis.id, [e.raw for e in entries[:-1]] + [bytes(tampered), b"\xa1garbage", stranger.raw]
            )
            assert report.added_count == 5
            return list(report.rejected)
        finally:
            await child.aclose()

    rejected = trio.run(main)
    kinds = sorted(type(e).__name__ for e in rejected)
    assert kinds == sorted([BadSignature.__name__, MalformedEntry.__name__, WrongCommons.__name__]), rejected
    assert all(str(e).endswith(".") and "\n" not in str(e) for e in rejected)


def test_a_dead_child_is_reported_then_replaced(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(20)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path))

    async def main() -> None:
        raws = [e.raw for e in entries]
        await child.ingest(genesis.id, raws[:5])
        # The pipe breaks during a request (here: our end of the child's stdout closes, so its
        # reply never arrives): a typed error, the child is killed, and the next request gets
        # a new child.  (Ingest is idempotent: the daemon stores such a group again itself.)
        assert child._proc is not None and child._proc.stdout is not None
        await child._proc.stdout.aclose()
        with pytest.raises(IngestWorkerFailed, match="went away"):
            await child.ingest(genesis.id, raws[5:10])
        first = await child.ingest(genesis.id, raws[5:10])  # a new child
        assert first[0].added_count + first[0].duplicates == 5
        # A child killed between requests: its death is noticed before the next request (a
        # new child takes it) or during it (the typed error) — which one is a race.
        assert child._proc is not None
        child._proc.kill()
        try:
            second = await child.ingest(genesis.id, raws[10:15])
        except IngestWorkerFailed as exc:
            assert "went away" in str(exc)
            second = await child.ingest(genesis.id, raws[10:15])
        assert second[0].added_count + second[0].duplicates == 5
        assert child._proc is not None
        child._proc.kill()
        await child._proc.wait()  # a child already known dead is replaced without an error
        third = await child.ingest(genesis.id, raws[15:])
        assert third[0].added_count == 5
        await child.aclose()

    trio.run(main)
    with Store(path) as store:
        assert store.count(genesis.id) == 21


def test_a_child_that_cannot_open_the_store_fails_clearly(tmp_path: Path) -> None:
    genesis, entries = _history(3)
    child = IngestProcess(str(tmp_path / "missing-dir" / "store.sqlite"))

    async def main() -> None:
        try:
            await child.ingest(genesis.id, [e.raw for e in entries])
        finally:
            await child.aclose()

    with pytest.raises(IngestWorkerFailed):
        trio.run(main)


def test_an_idle_child_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(3)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path), idle_timeout=0.2)

    async def main() -> bool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child.run_idle_reaper)
            await child.ingest(genesis.id, [e.raw for e in entries])
            was_running = child.running
            await wait_until(lambda: not child.running, 10, "the idle child to be stopped")
            nursery.cancel_scope.cancel()
        return was_running

    assert trio.run(main) is True
    assert not child.running


def test_rebuild_error_keeps_the_family() -> None:
    assert type(rebuild_error("BadSignature", "x.")) is BadSignature
    assert type(rebuild_error("NoSuchError", "y.")).__name__ == "InvalidEntry"
    assert type(rebuild_error("StoreError", "z.")).__name__ == "InvalidEntry"  # not an entry error


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A SIGKILLed daemon takes its ingest process with it, mid-group: the group it was
    storing is not committed (closing stdin alone would let the child finish it)."""
    import os
    import signal
    import subprocess
    import sys

    path = tmp_path / "store.sqlite"
    genesis, entries = _history(20_000)
    _store_with(path, genesis.raw)
    group = tmp_path / "group.bin"
    group.write_bytes(encode_message((genesis.id.raw, [e.raw for e in entries])))
    script = (
        "import sys, trio\n"
        "from p2pcommons.node.ingest_process import IngestProcess\n"
        "async def main():\n"
        f"    child = IngestProcess({str(path)!r})\n"
        "    await child.prewarm()\n"
        f"    await child._proc.stdin.send_all(open({str(group)!r}, 'rb').read())\n"
        "    print(child._proc.pid, flush=True)\n"
        "    await trio.sleep_forever()\n"
        "trio.run(main)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)  # while the child decodes the 20,000 entries
        parent.wait(timeout=10)

        def gone() -> bool:
            try:
                return Path(f"/proc/{child_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            except FileNotFoundError:
                return True

        poll_for(gone, 10, interval=0.01)
        assert gone(), "the ingest process outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
    with Store(path) as store:
        assert store.count(genesis.id) == 1, "the child kept writing after its parent died"


def test_the_childs_write_ahead_log_is_checkpointed_in_bounded_steps(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The child checkpoints its log every ``CHECKPOINT_PAGES`` pages, not SQLite's 1,000
    (one checkpoint per group, a third of a commit's CPU, before): its connection says so,
    and with a small interval the log grows past a group's pages, then is copied into the
    file and reused, never growing much beyond the interval (with 1,000 it would hold all
    twelve groups)."""
    from p2pcommons.node import ingest_worker

    path = tmp_path / "store.sqlite"
    genesis, entries = _history(1200)
    _store_with(path, genesis.raw)
    with ingest_worker.open_store(path) as store:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == ingest_worker.CHECKPOINT_PAGES > 1000
    monkeypatch.setattr(ingest_worker, "CHECKPOINT_PAGES", 60)
    wal = path.with_name(path.name + "-wal")
    sizes = []
    with ingest_worker.open_store(path) as store:
        page = store.db.execute("PRAGMA page_size").fetchone()[0]
        for start in range(0, len(entries), 100):
            ingest_worker.ingest_scoped(store, genesis.id, [e.raw for e in entries[start:start + 100]], None)
            sizes.append((wal.stat().st_size - 32) // (page + 24))  # frames: a 32-byte header, 24 per frame
        assert store.count(genesis.id) == 1201
    group = max(b - a for a, b in itertools.pairwise(sizes) if b > a)
    assert max(sizes) <= 60 + 2 * group  # (a reused log's growth understates a group's pages)
    assert max(sizes) > group  # several groups' pages before a checkpoint


def test_the_childs_page_cache_is_sized_to_each_group(tmp_path: Path) -> None:
    """A group's random ids dirty about one id-index page per entry once the store is large
    (a million entries), and a page evicted before the commit is written twice: the child
    sizes its cache to the group it is storing (at least its old 8 MiB, at most
    ``CACHE_MAX_MIB``, its memory counting towards the node's), and shrinks it again after."""
    from p2pcommons.node import ingest_worker

    low = ingest_worker.CACHE_MIB * 256  # pages of 4 KiB
    high = ingest_worker.CACHE_MAX_MIB * 256
    assert ingest_worker.cache_pages_for(1) == ingest_worker.cache_pages_for(1000) == low
    assert low < ingest_worker.cache_pages_for(2450) >= 2450 * 1.25 < high  # a 1 MiB group of 430-byte entries
    assert ingest_worker.cache_pages_for(10**6) == high
    assert ingest_worker.cache_pages_for(10**6, page_size=8192) == high // 2  # bounded in bytes
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(1700)
    _store_with(path, genesis.raw)
    with ingest_worker.open_store(path) as store:
        def cache_size() -> int:
            return int(store.db.execute("PRAGMA cache_size").fetchone()[0])

        report, _ = ingest_worker.ingest_group(store, genesis.id, [e.raw for e in entries[:1650]], None)
        assert report.added_count == 1650
        assert cache_size() == ingest_worker.cache_pages_for(1650) > low
        report, _ = ingest_worker.ingest_group(store, genesis.id, [e.raw for e in entries[1650:]], None)
        assert report.added_count == 50 and cache_size() == low
        assert store.count(genesis.id) == 1701
        # a store this small keeps the shortest checkpoint interval: its log is reused sooner
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == ingest_worker.CHECKPOINT_PAGES


def test_the_childs_checkpoint_interval_grows_with_the_store() -> None:
    """Half the store's pages, from 8,192 to 32,768 (a large store's random index pages
    come back group after group: a longer interval copies each into the file once)."""
    from p2pcommons.node import ingest_worker

    assert ingest_worker.checkpoint_pages_for(0) == ingest_worker.checkpoint_pages_for(16384) == 8192
    assert ingest_worker.checkpoint_pages_for(40000) == 20000
    assert ingest_worker.checkpoint_pages_for(10**6) == ingest_worker.CHECKPOINT_MAX_PAGES == 32768


def test_the_child_outlives_the_thread_that_started_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """trio starts a process from a worker thread of its cache, and that thread exits after
    idling (10 s).  Linux's parent-death signal follows the thread that forked, not the
    process: armed with it, the child was SIGKILLed mid-sync whenever the daemon's worker
    threads went quiet (its group failed, was stored again in the daemon and a new child
    started cold: the 43 vs 29 µs per entry of issue 18).  The child must watch the daemon
    process instead.  (Here the threads idle out after 0.3 s instead of 10.)"""
    import threading

    import trio._core._thread_cache as thread_cache

    monkeypatch.setattr(thread_cache, "IDLE_TIMEOUT", 0.3)
    path = tmp_path / "store.sqlite"
    genesis, entries = _history(10)
    _store_with(path, genesis.raw)
    child = IngestProcess(str(path))
    threads_before = threading.active_count()

    async def main() -> tuple[int, int, int]:
        try:
            await child.ingest(genesis.id, [e.raw for e in entries[:5]])  # started: its watch is armed
            assert child._proc is not None
            pid = child._proc.pid
            await wait_until(lambda: threading.active_count() <= threads_before, 10,
                             "the worker thread that started the child to retire", interval=0.02)
            report, _ = await child.ingest(genesis.id, [e.raw for e in entries[5:]])
            assert child._proc is not None
            return pid, child._proc.pid, report.added_count
        finally:
            await child.aclose()

    first, second, added = trio.run(main)
    assert (second, added, child.starts) == (first, 5, 1)


def test_the_child_runs_in_its_own_session(tmp_path: Path) -> None:
    """The scheduler's autogroups share the cores between sessions first: in the daemon's
    session the child and the daemon feeding it split one share, and under load the child
    waited for a core most of a sync (issue 18).  Its own session also keeps a terminal's
    Ctrl-C, meant for the daemon, from interrupting it mid-group."""
    import os

    path = tmp_path / "store.sqlite"
    Store(path).close()
    child = IngestProcess(str(path))

    async def main() -> tuple[int, int]:
        try:
            await child.prewarm()
            assert child._proc is not None
            return child._proc.pid, os.getsid(child._proc.pid)
        finally:
            await child.aclose()

    pid, session = trio.run(main)
    assert session == pid != os.getsid(0)
