"""The daemon and the CLI under a locked or full store (issue 11, item 10).

* Gossip arriving while another process holds the store's write lock past the busy
  timeout, or while the database cannot grow (disk full), is logged and dropped; the
  daemon keeps running and converges once the store works again (anti-entropy sync).
* Read-only commands never wait on a writer; ``p2pc import -`` does not hold the write
  lock while it reads its input.

The busy timeout is shortened with ``P2PC_STORE_BUSY_TIMEOUT`` (no 30 s waits), and "disk
full" is SQLite's own SQLITE_FULL, provoked by capping the daemon's database at its
current size (``P2PC_TEST_MAX_PAGE_COUNT``, i.e. ``PRAGMA max_page_count``) after a
VACUUM emptied its free list: every insert that needs a new page fails exactly as on a
full disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import sqlite3
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pcommons.bundle import write_bundle
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry
from p2pcommons.home import Home
from p2pcommons.ingest import Ingestor
from p2pcommons.store import Store

from .support.histories import linear_history
from .support.localnode import ENV, P2PC, Daemon, founder, run, wait_for
from .support.signed import SIGNERS


@contextlib.contextmanager
def write_lock(store_file: Path) -> Iterator[sqlite3.Connection]:
    """Hold the store's write lock from this process (a writer that never finishes)."""
    db = sqlite3.connect(store_file, isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO cache (key, value) VALUES ('test/lock', x'00')")
        yield db
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        db.close()


def lock_is_free(store_file: Path) -> bool:
    db = sqlite3.connect(store_file, isolation_level=None, timeout=0)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def stored_heads(home: Path, commons: CID) -> dict[bytes, int]:
    with Store(Home(home).store_file) as store:
        return {h.author: h.seq for h in store.heads(commons)}


def joined_pair(tmp_path: Path, *, b_env: dict[str, str],
                prepare_b: object = None) -> tuple[Path, Path, CID, Daemon, Daemon]:
    """Home a (founder, daemon) and home b holding the genesis, its daemon connected to a."""
    a, commons, _ = founder(tmp_path, "a")
    b = tmp_path / "b"
    run(b, "init")
    with Store(Home(a).store_file) as store:
        genesis = store.get_raw(commons)
    assert genesis is not None
    with Store(Home(b).store_file) as store:
        assert not Ingestor(store).add_batch([genesis]).rejected
    if callable(prepare_b):
        prepare_b(b)
    da = Daemon(a, tmp_path / "a.log", sync_interval=2.0)
    db = Daemon(b, tmp_path / "b.log", bootstrap=[da.addr()], sync_interval=2.0, env=b_env)
    return a, b, commons, da, db


def gossip_failed(daemon: Daemon, words: str) -> bool:
    if not daemon.alive():
        raise RuntimeError(f"the daemon died: {daemon.log.read_text()[-3000:]}")
    return any("gossip for" in line and "not stored" in line and words in line
               for line in daemon.log.read_text().splitlines())


def contribute_until(home: Path, daemon: Daemon, words: str, title: str = "x") -> None:
    """Write on ``home`` until ``daemon`` has logged a gossip it could not store (bounded:
    the first announcements may go out before the gossip mesh between the two is formed)."""
    for attempt in range(20):
        # --force: a long title fills the store faster; the rules would refuse it (too long)
        run(home, "contribute", "--title", f"{title} {attempt}", "--force")
        with contextlib.suppress(AssertionError):
            wait_for(lambda: gossip_failed(daemon, words), 3, "a gossip the store refused")
            return
    raise AssertionError(f"no gossip reached the daemon: {daemon.log.read_text()[-3000:]}")


@pytest.mark.network
def test_gossip_while_the_store_is_locked_past_the_timeout(tmp_path: Path) -> None:
    a, b, commons, da, db = joined_pair(tmp_path, b_env={"P2PC_STORE_BUSY_TIMEOUT": "0.3"})
    try:
        with write_lock(Home(b).store_file):
            contribute_until(a, db, "busy")
            assert db.alive()
        wait_for(lambda: db.alive() and stored_heads(b, commons) == stored_heads(a, commons), 60,
                 "b to catch up once the lock is released")
        assert db.alive()
        assert run(b, "state", "--commons", str(commons))["entry_count"] == sum(stored_heads(a, commons).values())
    finally:
        db.stop()
        da.stop()


@pytest.mark.network
def test_gossip_while_the_disk_is_full(tmp_path: Path) -> None:
    def vacuum(home: Path) -> None:
        with sqlite3.connect(Home(home).store_file, isolation_level=None) as db:
            db.execute("VACUUM")
            assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0

    a, b, commons, da, db = joined_pair(tmp_path, b_env={"P2PC_TEST_MAX_PAGE_COUNT": "1"}, prepare_b=vacuum)
    try:
        # 20 KB titles: each entry needs overflow pages the capped database cannot add.
        contribute_until(a, db, "full", title="w" * 20_000)
        status = db.ready()  # still answers on its control socket
        assert status and db.alive()
        db.stop()
        assert db.proc.returncode == 0, db.log.read_text()[-3000:]
        db = Daemon(b, tmp_path / "b2.log", bootstrap=[da.addr()], sync_interval=2.0)  # room again
        wait_for(lambda: stored_heads(b, commons) == stored_heads(a, commons), 60, "b to catch up with room again")
    finally:
        db.stop()
        da.stop()


def _with_entries(tmp_path: Path, count: int) -> tuple[Path, CID, bytes]:
    home, commons, _ = founder(tmp_path, "src")
    for i in range(count):
        run(home, "contribute", "--title", f"entry {i} " + "z" * 200)
    bundle = tmp_path / "src.bundle"
    run(home, "export", "--commons", str(commons), "--output", str(bundle))
    return home, commons, bundle.read_bytes()


@pytest.mark.slow  # readers timed against a writer holding the lock many times: out of the fast loop, run by CI
def test_read_commands_never_wait_on_a_writer(tmp_path: Path) -> None:
    """With another process holding the write lock (and a writer's wait set to ten
    minutes, so any wait would hang the command), read-only commands still answer."""
    home, _, _ = _with_entries(tmp_path, 5)
    slow = {"P2PC_STORE_BUSY_TIMEOUT": "600"}
    with write_lock(Home(home).store_file):
        for args in (("state",), ("members",), ("ledger",), ("verify",), ("log",), ("commons", "list"),
                     ("commons", "show"), ("contributions",), ("rules", "show"), ("resource", "list")):
            done = subprocess.run([*P2PC, *args, "--home", str(home)], capture_output=True, text=True, timeout=60,
                                  env={**ENV, **slow})
            assert done.returncode == 0, (args, done.stderr)
        state = run(home, "state", env=slow, timeout=60)
        assert state["entry_count"] == 6
    # With the lock free again, the state is cached as before.
    assert run(home, "state")["state_hash"] == state["state_hash"]


def _pipe_backlog(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, "little")


def test_import_from_stdin_does_not_hold_the_write_lock_while_reading(tmp_path: Path) -> None:
    """A bundle several read chunks long, piped in half at a time: while the importer waits
    for the second half, the store's write lock stays free for other writers."""
    entries = linear_history(3, 100, body_bytes=1000, label="stdin")
    commons = entries[0].id
    with Store(tmp_path / "src.sqlite") as source:
        assert not Ingestor(source).add_batch([e.raw for e in entries]).rejected
        out = io.BytesIO()
        write_bundle(source, commons, out, created=0)
    data = out.getvalue()
    assert len(data) > 4 * 65536  # several of the bundle reader's chunks in each half
    home = tmp_path / "dst"
    run(home, "init")
    proc = subprocess.Popen([*P2PC, "import", "-", "--home", str(home), "--json"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert proc.stdin is not None
    try:
        half = len(data) // 2
        proc.stdin.write(data[:half])
        proc.stdin.flush()
        fd = proc.stdin.fileno()
        wait_for(lambda: _pipe_backlog(fd) == 0, 60, "the importer to read the first half")
        # The importer now waits for the rest of its input: the lock must stay free.
        for _ in range(20):
            assert lock_is_free(Home(home).store_file), "the import holds the write lock while reading stdin"
            assert proc.poll() is None
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        _, err = proc.communicate(data[half:], timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    with Store(Home(home).store_file) as store:
        assert store.count(commons) == len(entries)


def test_a_writer_past_the_busy_timeout_fails_in_one_sentence(tmp_path: Path) -> None:
    """A write command that cannot get the lock in time exits 5 with one sentence, writes
    nothing, and works once the lock is free."""
    home, commons, _ = founder(tmp_path)
    with write_lock(Home(home).store_file):
        done = subprocess.run([*P2PC, "contribute", "--title", "late", "--home", str(home)], capture_output=True,
                              text=True, timeout=60, env={**ENV, "P2PC_STORE_BUSY_TIMEOUT": "0.2"})
    assert done.returncode == 5, done.stderr
    assert "busy" in done.stderr and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert sum(stored_heads(home, commons).values()) == 1
    assert run(home, "contribute", "--title", "on time")["seq"] == 2


def test_a_readers_fold_survives_a_writer_taking_the_lock_mid_fold(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only command's first fold of a large commons archives evicted records in the
    store while the lock is free; a writer that takes the lock mid-fold must not make the
    command fail or wait: the fold is redone in memory.  (The writer is started at the
    worst moment, right after the fold registered its archive, by a hook on archive_open.)"""
    from p2pcommons.state import engine

    entries = linear_history(3, 1000, label="midfold")
    commons = entries[0].id
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        assert not Ingestor(store).add_batch([e.raw for e in entries]).rejected
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    opened = Store.archive_open

    def open_then_lock(self: Store, *args: object, **kwargs: object) -> None:
        opened(self, *args, **kwargs)  # type: ignore[arg-type]
        if not holder.in_transaction:
            holder.execute("BEGIN IMMEDIATE")
            holder.execute("INSERT OR REPLACE INTO cache (key, value) VALUES ('test/lock', x'00')")

    monkeypatch.setattr(Store, "archive_open", open_then_lock)
    puts: list[int] = []
    put = Store.archive_put

    def counted_put(self: Store, *args: object) -> None:
        puts.append(1)
        put(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "archive_put", counted_put)
    engine.forget()
    try:
        with Store(path, reader=True, busy_timeout=600) as reader:
            state = engine.current_state(reader, commons)
            assert puts, "the fold never tried to archive: the test does not exercise the case"
            assert holder.in_transaction
            assert state.state_hash == engine.rebuild(reader, commons).state_hash
            assert state.entry_count == len(entries)
    finally:
        engine.forget()
        with contextlib.suppress(sqlite3.Error):
            holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.network
def test_an_admission_that_met_a_locked_store_is_retried(tmp_path: Path) -> None:
    """The daemon's own write (an automatic admission) fails while another process holds
    the lock past the busy timeout: logged, the daemon lives, and it admits once the lock
    is free (a retried fold, no new arrival needed)."""
    from p2pcommons.entry import sign_entry
    from p2pcommons.identity import load_identity
    from p2pcommons.node.notify import request

    home, commons, _key = founder(tmp_path)
    me = load_identity(Home(home)).signer.public_key
    daemon = Daemon(home, tmp_path / "a.log", env={"P2PC_STORE_BUSY_TIMEOUT": "0.3"})
    try:
        join = sign_entry(SIGNERS[1], commons=commons, seq=1, prev=None, kind="join", body={}, deps=[commons])
        with Store(Home(home).store_file) as store:
            assert not Ingestor(store).add_batch([join.raw]).rejected
        with write_lock(Home(home).store_file):
            request(Home(home), {"cmd": "notify"}, timeout=30)
            wait_for(lambda: daemon.alive() and any("state update" in line and "busy" in line
                                                    for line in daemon.log.read_text().splitlines()),
                     60, "the admission to meet the lock")
            assert not any(e.kind == "admission" for e in _own(home, commons, me))
        wait_for(lambda: any(e.kind == "admission" for e in _own(home, commons, me)), 60, "the retried admission")
        assert daemon.alive()
    finally:
        daemon.stop()


def _own(home: Path, commons: CID, author: bytes) -> list[Entry]:
    with Store(Home(home).store_file) as store:
        return list(store.iter_entries(commons, author=author))


def test_a_send_in_progress_does_not_stop_its_thread_from_writing(tmp_path: Path) -> None:
    """A sync's sender reads its batches one at a time, in the daemon's store thread, with
    that thread's other work in between.  Before: it held a read cursor open across batches,
    so the connection kept an old snapshot; once another connection (the state worker, the
    ingest process) committed, every write of the store thread failed at once with
    SQLITE_BUSY, reported as "another process held its write lock for more than 30 s"
    (seen as a sender's inbound session ending 0.1 s after it started)."""
    from p2pcommons.node import replica
    from p2pcommons.protocols import sync

    history = linear_history(2, 2 * replica._MERGE_ROWS)  # more rows per log than one read
    genesis = history[0]
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        Ingestor(store).add_batch([e.raw for e in history])
        the_plan = replica.plan(store, genesis.id, sync.Summary(genesis.id))
        batches = replica.batches(store, the_plan, batch_bytes=4096)
        first = next(batches)
        with Store(path) as other, other.transaction():  # another connection commits
            other.put_cache("test/other", b"\x01")
        with store.transaction():  # the store thread's next write: must not fail
            store.put_cache("test/this", b"\x01")
        sent = first + [raw for batch in batches for raw in batch]
    assert sorted(sent) == sorted(e.raw for e in history)


def test_a_write_under_an_outdated_open_read_says_what_happened(tmp_path: Path) -> None:
    """SQLITE_BUSY_SNAPSHOT fails at once: it is not "another process held its write lock for
    more than 30 s" (what it was reported as), and it names no wait."""
    from p2pcommons.errors import StoreBusy

    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        Ingestor(store).add_batch([e.raw for e in linear_history(1, 50)])
        cursor = store.db.execute("SELECT raw FROM entries")
        cursor.fetchmany(1)  # a read left open on this connection
        with Store(path) as other, other.transaction():
            other.put_cache("test/other", b"\x01")
        with pytest.raises(StoreBusy, match="changed while this process was still reading it"), store.transaction():
            store.put_cache("test/this", b"\x01")
        cursor.close()
