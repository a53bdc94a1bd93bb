"""A child process that validates and stores received entries, so a large sync uses both cores.

Why a process: CPython runs Python code on one core at a time.  In the daemon the trio
thread moves bytes (Noise decryption, Yamux, frame parsing) while the store thread decodes,
checks and stores entries; both are mostly Python, so as threads they take turns and a big
sync ran at about the speed of one core.  Moved to a child process, the ingest runs on the
second core beside the network, with its own SQLite connection (the store already takes
writers from several processes: the CLI writes while the daemon runs).

The child imports only the store and the ingest path (no trio, no libp2p), starts on the
first large batch and exits when the daemon closes its stdin, dies, or leaves it idle.
Validation is the same :class:`~p2pcommons.ingest.Ingestor` as everywhere else.

Wire (stdin/stdout of the child, both ways): a 4-byte big-endian length, then a pickle.
Request ``(commons id bytes, [raw entry, ...])``; reply ``("ok", added, duplicates,
[(error class name, message), ...], commons_is_new, declined, deferred)`` or ``("error", class name,
message)``.  The child screens outsiders' entries (:mod:`p2pcommons.outsiders`) with the
bounds of the home's config.toml, like the daemon.
Pickle is safe here: both ends are this program, over a private pipe.

Requests may come before the reply to the one before (the daemon hands a group over while
the child stores the previous one): the child reads them in a thread as they come, stores
them one at a time in order, and replies in that order, each reply only once the group is
durable (:func:`serve`).
"""

from __future__ import annotations

import os
import pickle
import queue
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from p2pcommons import errors
from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.ingest import IngestReport, ingest
from p2pcommons.outsiders import Limits
from p2pcommons.store import Store

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 64 * 1024 * 1024


# Entries decoded and checked at once within a group (see ``ingest_scoped``): each chunk pays
# its own lookups (a log's top seq, the commons), one signature per author's run, one outsider
# screen and one INSERT round, so a group is cut into as few chunks as this allows, of equal
# size (a sync's ~2,400-entry group into two, not 1,200 + 1,200 + a few).  Two, not one:
# the next chunk is decoded while one is stored (``decode_ahead``); and ~1,500 decoded
# entries are held at a time (two while decoding ahead).
CHUNK_ENTRIES = 1536


NETWORK_DEFAULTS = Limits()

# The child's SQLite connection: a page cache sized to each group (``cache_pages_for``), and a
# write-ahead log checkpointed into the database file once it holds 8,192 pages (32 MiB)
# instead of SQLite's 1,000, up to 32,768 (128 MiB) in a large store
# (``checkpoint_pages_for``).  Why: a group's random ids dirty one leaf page of the id index
# per entry once the index outgrows the group (a million entries: 1.05 pages per entry), all
# written to the log at the commit; each checkpoint copies the pages dirtied since the last
# one into the file and fsyncs it (a checkpoint per group at SQLite's 1,000 pages, a third
# of the commit's CPU).  In a large store the same index pages come back group after group,
# so a longer interval copies each once for a dozen groups (1M entries through the child:
# 39.6 µs per entry against 44.5 at 8,192); in a small one it gains nothing and a log that
# keeps growing into new file blocks instead of being reused cost more (100k: 1-3 µs).  The
# log stays bounded, at most half the database file (its file keeps its largest size while
# the daemon holds the store open), and what the daemon reads meanwhile is the same (WAL
# readers see committed pages wherever they are).
CACHE_MIB = 8
CHECKPOINT_PAGES = 8192
CHECKPOINT_MAX_PAGES = 32768

# The page cache for one group: every page the group dirties stays in it until the commit
# (a page evicted before is written to the log mid-transaction, read back when touched
# again and written again at the commit), so it holds about one id-index leaf per entry
# plus the indexes' inner pages and the table's new pages.  Bounded both ways: at least
# ``CACHE_MIB`` (what the child always had), at most ``CACHE_MAX_MIB`` (the child's memory
# counts towards the node's during a sync: issue 18's 120 MB for daemon and child).  A
# 1 MiB group of the benchmark's 430-byte entries (2,450) asks for 14 MiB.
CACHE_PAGES_PER_ENTRY = 1.25
CACHE_SPARE_PAGES = 512
CACHE_MAX_MIB = 24


def cache_pages_for(entries: int, page_size: int = 4096) -> int:
    """Pages of cache a group of ``entries`` entries needs (see ``CACHE_PAGES_PER_ENTRY``)."""
    wanted = int(entries * CACHE_PAGES_PER_ENTRY) + CACHE_SPARE_PAGES
    low, high = (mib * 1024 * 1024 // page_size for mib in (CACHE_MIB, CACHE_MAX_MIB))
    return max(low, min(high, wanted))


def checkpoint_pages_for(store_pages: int) -> int:
    """The log's checkpoint interval for a store of ``store_pages`` pages: half of it, from
    ``CHECKPOINT_PAGES`` to ``CHECKPOINT_MAX_PAGES`` (see there)."""
    return max(CHECKPOINT_PAGES, min(CHECKPOINT_MAX_PAGES, store_pages // 2))


def open_store(store_path: str | Path) -> Store:
    """The store as the ingest child uses it (see ``CHECKPOINT_PAGES``)."""
    store = Store(store_path, cache_mib=CACHE_MIB)
    store.db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
    return store


def ingest_group(store: Store, commons: CID, entries: list[bytes],
                 outsiders: Limits | None = NETWORK_DEFAULTS) -> tuple[IngestReport, bool]:
    """What the child does with one request: size the page cache to the group and the
    log's checkpoint interval to the store, then :func:`ingest_scoped`.  (A smaller group
    shrinks the cache again: SQLite frees the pages beyond the new size.)"""
    page_size = int(store.db.execute("PRAGMA page_size").fetchone()[0])
    store_pages = int(store.db.execute("PRAGMA page_count").fetchone()[0])
    store.db.execute(f"PRAGMA cache_size={cache_pages_for(len(entries), page_size)}")
    store.db.execute(f"PRAGMA wal_autocheckpoint={checkpoint_pages_for(store_pages)}")
    return ingest_scoped(store, commons, entries, outsiders, decode_ahead=True)


def ingest_scoped(store: Store, commons: CID, entries: list[bytes],
                  outsiders: Limits | None = NETWORK_DEFAULTS, *,
                  decode_ahead: bool = False) -> tuple[IngestReport, bool]:
    """Validate and store one group of a sync session's entries, all of one commons;
    also say whether the commons was new to this store (its genesis came in this group).
    Entries from the network: outsiders' are screened (default bounds unless given).

    One transaction (one fsync) per group, but decoded in chunks of equal size: a chunk's
    entries are freed once it is stored, which bounds the memory a large group needs (with
    ``decode_ahead``, the next chunk is decoded in a thread meanwhile: two at a time).
    Later chunks see earlier ones (same connection), so chains that span chunks check out."""
    had = store.has_commons(commons)
    chunks = -(-len(entries) // CHUNK_ENTRIES)
    report = ingest(store, entries, commons=commons, one_transaction=True,
                    batch_size=max(1, -(-len(entries) // max(1, chunks))), outsiders=outsiders,
                    decode_ahead=decode_ahead)
    return report, (not had and store.has_commons(commons))


def encode_message(value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


def rebuild_error(name: str, message: str) -> errors.InvalidEntry:
    """The rejection the child reported, as the same typed exception in this process."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.InvalidEntry)):
        cls = errors.InvalidEntry
    try:
        return cls(message)
    except TypeError:  # an error class with a richer constructor: keep the type's family
        return errors.InvalidEntry(message)


def report_from_reply(reply: tuple[Any, ...]) -> tuple[IngestReport, bool]:
    if reply[0] != "ok":
        _, name, message = reply
        raise IngestWorkerFailed(f"The ingest process failed ({name}: {message}).")
    _, added, duplicates, rejected, new_commons, declined, deferred = reply
    report = IngestReport(added_count=added, duplicates=duplicates,
                          rejected=[rebuild_error(n, m) for n, m in rejected], declined=declined, deferred=deferred)
    return report, new_commons


class IngestWorkerFailed(errors.P2PCError):
    """The ingest child process died or answered nonsense; the session ends, nothing
    stored is lost (each group is one transaction), and the next session starts a new one."""

    exit_code = 5


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    if not data:
        return None
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            return None
        data += more
    return data


def _read_requests(requests: IO[bytes], incoming: queue.Queue[tuple[bytes, list[bytes]] | None]) -> None:
    """Read and unpickle requests as they come, so the next group is in hand when the one
    before it is committed (the daemon sends it before that one's reply: two in flight)."""
    try:
        while True:
            head = _read_exact(requests, _LENGTH.size)
            if head is None:
                return
            (length,) = _LENGTH.unpack(head)
            if length > MAX_MESSAGE:
                return
            body = _read_exact(requests, length)
            if body is None:
                return
            commons_raw, entries = pickle.loads(body)
            del body
            incoming.put((commons_raw, entries))
    finally:
        incoming.put(None)


class LogSync:
    """``fsync`` of the store's write-ahead log, through a descriptor of its own.

    Why: the child commits a group with ``synchronous=NORMAL`` (SQLite writes the group's
    pages to the log and returns, no fsync) and makes it durable here, in another thread,
    while its main thread goes on with the next group.  One fsync of the log makes every
    commit written to it before durable, exactly what ``synchronous=FULL`` does at each
    commit; a checkpoint in between syncs the log and the database file itself.  The log
    is reopened if it was replaced (another inode at its path)."""

    def __init__(self, store_path: str | Path) -> None:
        self.path = f"{store_path}-wal"
        self._fd: int | None = None
        self._inode = -1
        self.syncs = 0

    def sync(self) -> None:
        inode = os.stat(self.path).st_ino
        if self._fd is None or inode != self._inode:
            self.close()
            self._fd = os.open(self.path, os.O_RDONLY)
            self._inode = os.fstat(self._fd).st_ino
        os.fsync(self._fd)
        self.syncs += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sync_log(store_path: str | Path) -> None:
    """Make every commit written to the store's log so far durable (see :class:`LogSync`)."""
    log = LogSync(store_path)
    try:
        log.sync()
    except FileNotFoundError:
        pass  # no log: every commit is in the database file, synced by its checkpoint
    finally:
        log.close()


def _exit_now() -> None:
    os._exit(1)


def reply_when_durable(sync: Callable[[], None], replies: IO[bytes],
                       outgoing: queue.Queue[tuple[Any, ...] | None], *,
                       on_failure: Callable[[], None] = _exit_now) -> None:
    """Send each reply once the log is synced, in the order the groups were stored.

    An "ok" reply makes the daemon acknowledge the group to the peer: it must not leave
    before the group is on disk (protocols/sync.md §6).  A failed sync leaves this group
    and the ones after it unconfirmed: the child exits without a reply, the daemon sees it
    go and stores those groups again itself (with a sync of its own before acknowledging)."""
    while (reply := outgoing.get()) is not None:
        if reply[0] == "ok":
            try:
                sync()
            except OSError as exc:
                print(f"p2pc ingest process: cannot sync the store's log ({exc})", file=sys.stderr)
                on_failure()
                return
        replies.write(encode_message(reply))
        replies.flush()


def serve(store_path: str, requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until stdin closes (the daemon stopped or died).

    Three threads, one group each at a time: the reader unpickles group k+2 while the main
    thread validates and commits group k+1 while the log is synced for group k and its
    reply written (:func:`reply_when_durable`): the commit's fsync no longer stops the
    child.  Replies keep the requests' order."""
    limits = Limits.from_config(Home(Path(store_path).parent).config())
    log = LogSync(store_path)
    incoming: queue.Queue[tuple[bytes, list[bytes]] | None] = queue.Queue(maxsize=1)
    outgoing: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
    with open_store(store_path) as store:
        store.db.execute("PRAGMA synchronous=NORMAL")  # made durable by ``log`` before each reply
        threading.Thread(target=_read_requests, args=(requests, incoming), name="requests", daemon=True).start()
        replier = threading.Thread(target=reply_when_durable, args=(log.sync, replies, outgoing), name="replies")
        replier.start()
        try:
            while (request := incoming.get()) is not None:
                commons_raw, entries = request
                del request
                try:
                    report, new_commons = ingest_group(store, CID(commons_raw), entries, limits)
                    reply: tuple[Any, ...] = (
                        "ok", report.added_count, report.duplicates,
                        [(type(e).__name__, str(e)) for e in report.rejected], new_commons, report.declined,
                        report.deferred,
                    )
                except Exception as exc:  # a store error: report it, the daemon ends the session
                    reply = ("error", type(exc).__name__, str(exc))
                del entries
                outgoing.put(reply)
        finally:
            outgoing.put(None)
            replier.join()
            log.close()


def _die_with_the_daemon() -> None:
    """SIGKILL this process as soon as the daemon dies: a killed node stops writing at once,
    as one process would (closing stdin alone would let the child finish its group).

    Not Linux's parent-death signal (``PR_SET_PDEATHSIG``): it follows the *thread* that
    forked, and trio starts a process from a worker thread of its cache, which exits after
    ten idle seconds; the child was then killed mid-sync, its group stored again by the
    daemon and a new child started cold (issue 18).  A thread of the child's own waits on
    the daemon process instead (a pidfd: readable once the process has exited; where there
    is none, its parent id is polled)."""
    parent = os.getppid()
    try:
        handle: int | None = os.pidfd_open(parent)
    except (AttributeError, OSError):  # not Linux (or before 5.3): poll the parent's id
        handle = None
    if parent == 1 or os.getppid() != parent:  # the daemon died before the watch was set
        sys.exit(0)
    threading.Thread(target=_watch_the_daemon, args=(parent, handle), name="daemon-watch", daemon=True).start()


def _watch_the_daemon(parent: int, handle: int | None) -> None:
    if handle is not None:
        select.select([handle], [], [])
    else:
        while os.getppid() == parent:
            time.sleep(0.25)
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    _die_with_the_daemon()
    try:
        serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
    except errors.P2PCError as exc:  # the store cannot be opened: one line for the daemon's log
        print(f"p2pc ingest process: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
