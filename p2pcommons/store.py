"""The local store: SQLite in WAL mode, entries kept as their exact signed bytes.

The store checks nothing about entries (that is :mod:`p2pcommons.ingest`'s job); it keeps
them durably and answers queries.  Layout notes:

* ``entries`` uses an integer rowid (``n``, arrival order) with a unique index on the
  36-byte id, rather than the random id as primary key: random primary keys make every
  insert touch a random B-tree page of the table itself, about 2.5x slower.
* Authors' logs are numbered in ``logs`` so the per-entry index is (small int, seq).
* Causal facts are computed at insert, in the same transaction (:meth:`Store._plan`):
  ``entries.clock`` is the Lamport clock, NULL while a parent is missing (those entries
  wait in ``waiting``); a partial index gives a commons in the state fold's ``(clock, id)``
  order, and ``placed_late`` numbers the entries placed after they were stored (their last
  missing parent came), so the state engine offers its fold placed entries only, found by
  arrival number or by that number (:meth:`Store.feed_mark`, :meth:`Store.placed_since`).
  The fold still computes its own records, so these decide the order it reads in and what
  waits in the store: a stale clock (an entry whose parent an outsiders' expiry later
  deleted) costs a replay, never a wrong state.
* ``synchronous=FULL``: a commit has reached the disk (the WAL is fsynced) before it
  returns, so a command that reports an entry written has made it durable.
* Readers never wait on a writer: WAL lets them read the last committed snapshot, opening
  a store that already has the current schema writes nothing, and a store opened with
  ``reader=True`` (read-only commands) only *tries* its incidental writes (the state
  cache, the fold's archive): it gives up at once, instead of waiting, when a writer holds
  the lock.  Writers wait ``busy_timeout`` seconds (``P2PC_STORE_BUSY_TIMEOUT``, default
  30) for the write lock before failing with :class:`StoreBusy`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from . import causal
from .dagcbor import CID, links_in
from .entry import Entry, decode_entry, decode_stored
from .errors import InvalidEntry, StoreBusy, StoreError, system_error
from .vectors import MissingVector, VectorIndex, based_on

# 2: the outsiders' tables (insiders, vouched, outsider_logs), and entries that today's decoder
# refuses (a time or an amount beyond the bounds of protocols/entry.md §3) cut out of their logs.
# 3: per-commons entry and author counts (commons_counts), kept in the transaction that
# inserts or deletes entries, so listing the commons never counts entries.
# 4: causal facts computed at insert: ``entries.clock`` (the Lamport clock, NULL while a
# parent is missing) and the ``waiting`` tables, so the state fold reads a commons in
# ``(clock, id)`` order straight from the store (see :meth:`Store.in_order`).
# 5: the ``cache`` table has rowids.  As a WITHOUT ROWID table its rows (a big commons'
# fold checkpoint is over 100 MB) lived in the key's b-tree, and finding even a small key
# read the big rows' overflow pages: 0.1-0.7 s per lookup at a million entries, against
# microseconds through a rowid table's key index (:meth:`Store._cache_with_rowids`).
# 6: entries are found by id through two tables of their own (``ids``, ``new_ids``), not a
# unique index on ``entries.id``: see ``_IDS_STATEMENTS``.
# 7: ``placed_late``, the entries placed after they were stored, numbered (see ``_CAUSAL_SCHEMA``).
# 8: ``entries.vv``, each placed entry's version vector as a skip difference, computed at
# insert with its clock, and ``vv_named``, which rows name another log's entry as their base
# (:mod:`p2pcommons.vectors`): the store answers "is X in Y's causal past" (:meth:`Store.in_past`).
# 9: ``entries_devices``, a partial index of the device entries (few), so the fold asks
# whether one names a key without reading every entry (:meth:`Store.names_key`).
SCHEMA_VERSION = 10

# Bind bytes as they are, through an adapter found at once.  With none registered, Python
# 3.11's sqlite3 looks for one on every bytes parameter the slow way (``__adapt__`` on its
# protocol type: an AttributeError message formatted and dropped each time), about 1,200
# instructions per id or entry bound, several per stored entry.  ``bytes(b)`` is ``b``.
sqlite3.register_adapter(bytes, bytes)
BUSY_TIMEOUT_ENV = "P2PC_STORE_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 30.0
# Test-only: cap the database at its current size (SQLite's max_page_count), so "the disk
# is full" can be provoked honestly on one process's connections.
MAX_PAGES_ENV = "P2PC_TEST_MAX_PAGE_COUNT"


def busy_timeout_default() -> float:
    """The write-lock wait in seconds: ``P2PC_STORE_BUSY_TIMEOUT`` if set and valid, else 30."""
    try:
        value = float(os.environ.get(BUSY_TIMEOUT_ENV, ""))
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT
    return value if 0 <= value <= 3600 else DEFAULT_BUSY_TIMEOUT

_BUSY_SNAPSHOT = 517  # SQLITE_BUSY_SNAPSHOT: a write from a connection whose open read is out of date

_ENTRIES_TABLE = """CREATE TABLE IF NOT EXISTS entries (
    n INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    log INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    raw BLOB NOT NULL,
    clock INTEGER,
    vv BLOB
)"""
_ENTRIES_BY_LOG = "CREATE INDEX IF NOT EXISTS entries_by_log ON entries (log, seq)"
_ENTRIES_BY_CLOCK = "CREATE INDEX IF NOT EXISTS entries_by_clock ON entries (clock, id) WHERE clock IS NOT NULL"
# The kinds :meth:`Store.names_key` finds through an index of their own (rare kinds only).
_INDEXED_KINDS = ("device",)
_ENTRIES_DEVICES = "CREATE INDEX IF NOT EXISTS entries_devices ON entries (log) WHERE kind = 'device'"
# Schema 10: which stored entries name which entries in their body (not their parents): a
# row per link, keyed by 8 bytes of the linked id's digest (``_NAMED_KEY``) and the naming
# entry's row number.  Why: the state fold asks whether any entry names a stranger's entry
# before it takes that entry's effect out (:meth:`Store.entries_naming`); it was a scan of
# every stored entry's bytes, 1.8 s at a million entries.  Most entries name nothing in
# their body (contributions, joins), so the table holds a row for a review, a vote, a
# reference: about 16 bytes each, small enough to stay in the page cache at a million
# entries though its keys are random.
_NAMED_TABLE = ("CREATE TABLE IF NOT EXISTS named (target BLOB NOT NULL, n INTEGER NOT NULL, "
                "PRIMARY KEY (target, n)) WITHOUT ROWID")
_NAMED_KEY = slice(4, 12)  # (a 36-byte id: 4 bytes of CID prefix, then the sha-256 digest)
# A 36-byte CID link as DAG-CBOR writes it: tag 42, a byte string of 37, the 0 prefix.
_LINK_MARK = b"\xd8\x2a\x58\x25\x00"


def named_keys(entry: Entry) -> set[bytes]:
    """The keys under which ``named`` lists ``entry``: one per entry id its body links to.
    Its parents and commons are links too; counting the link marks in its bytes against them
    tells, without walking the body, that most entries link to nothing else."""
    parents = len(entry.dep_ids) + (entry.prev is not None) + (entry.commons is not None)
    if entry.raw.count(_LINK_MARK) <= parents:
        return set()
    return {link[_NAMED_KEY] for link in links_in(entry.body) if len(link) == 36}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS logs (
    log INTEGER PRIMARY KEY,
    commons BLOB NOT NULL,
    author BLOB NOT NULL,
    max_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (commons, author)
);
{_ENTRIES_TABLE};
{_ENTRIES_BY_LOG};
{_ENTRIES_DEVICES};
{_NAMED_TABLE};
CREATE TABLE IF NOT EXISTS forks (
    log INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (log, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commons (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS insiders (
    commons BLOB NOT NULL,
    author BLOB NOT NULL,
    PRIMARY KEY (commons, author)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vouched (
    id BLOB PRIMARY KEY,
    commons BLOB NOT NULL,
    admits INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outsider_logs (
    log INTEGER PRIMARY KEY,
    commons BLOB NOT NULL,
    stored REAL NOT NULL,
    first INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS outsider_logs_by_commons ON outsider_logs (commons, stored);
CREATE TABLE IF NOT EXISTS commons_counts (
    commons BLOB PRIMARY KEY,
    entries INTEGER NOT NULL,
    authors INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Schema 4 (after ``entries.clock`` exists): the (clock, id) order, and the entries waiting for
# parents: per waiting entry its parents' ids (packed), and one missing parent it watches.
_CAUSAL_SCHEMA = f"""
{_ENTRIES_BY_CLOCK};
CREATE TABLE IF NOT EXISTS waiting (
    id BLOB PRIMARY KEY,
    parents BLOB NOT NULL,
    genesis INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS waiting_for (
    parent BLOB NOT NULL,
    id BLOB NOT NULL,
    PRIMARY KEY (parent, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS placed_late (
    k INTEGER PRIMARY KEY,
    id BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS vv_named (
    base BLOB NOT NULL,
    id BLOB NOT NULL,
    PRIMARY KEY (base, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vv_forked (
    log INTEGER PRIMARY KEY
);
"""
# Schema 7: ``placed_late`` numbers the entries placed after they were stored (woken when
# their last missing parent came, :meth:`Store._wake`), in the order they were placed.  Why:
# the state engine offers its fold only placed entries, so it finds new ones by two cursors
# — arrival numbers for entries placed at insert, these numbers for the rest — and a fold
# never holds an entry waiting for a parent (a bundle taken log by log left most of its
# entries waiting in the fold, each read and decoded twice).
# Schema 6: where each stored entry is, by id, in two tables: ``new_ids`` takes the ids
# inserted since the last merge, ``ids`` the rest; a merge moves the first into the second
# (:meth:`Store._merge_ids_if_due`).  Why: entry ids are hashes, so a unique index on them
# takes each new entry at a random place.  Once it outgrows the page cache (a million
# entries: 64 MiB of index against the ingest process's 14 MiB of cache), every entry of a
# group read one leaf of it and wrote that leaf back at the commit (2,588 log pages per
# group of 2,450), and the sync's rate fell to 71-80 % of its rate at 100k.  ``new_ids`` stays
# small enough to be cached, and a merge writes each leaf of ``ids`` once for many entries
# (it inserts them in id order).  The triggers keep both tables exact whoever writes
# ``entries``: a row inserted is in ``new_ids``, a row deleted leaves both; and, the unique
# index gone, an entry stored already is ignored as before (``INSERT OR IGNORE``), found by
# its log and seq, which its id fixes (a hash of them among the rest), through the
# ``(log, seq)`` index, a neighbour of the log's last entries.
_IDS_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS ids (id BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS new_ids (id BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ids_merged (upto INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS entries_stored_once BEFORE INSERT ON entries "
    "WHEN EXISTS (SELECT 1 FROM entries WHERE log = new.log AND seq = new.seq AND id = new.id) "
    "BEGIN SELECT RAISE(IGNORE); END",
    "CREATE TRIGGER IF NOT EXISTS entries_id_added AFTER INSERT ON entries "
    "BEGIN INSERT INTO new_ids (id, n) VALUES (new.id, new.n); END",
    "CREATE TRIGGER IF NOT EXISTS entries_id_deleted AFTER DELETE ON entries "
    "BEGIN DELETE FROM new_ids WHERE id = old.id; DELETE FROM ids WHERE id = old.id; END",
    # Schema 8: the logs that have held two entries at one seq (never forgotten), whoever
    # stored them: the version vectors skip merging a parent only on other logs
    # (:meth:`p2pcommons.vectors.VectorIndex.place`).
    "CREATE TRIGGER IF NOT EXISTS entries_fork_seen AFTER INSERT ON entries "
    "WHEN EXISTS (SELECT 1 FROM entries WHERE log = new.log AND seq = new.seq AND n != new.n) "
    "BEGIN INSERT OR IGNORE INTO vv_forked (log) VALUES (new.log); END",
)
# Merge ``new_ids`` into ``ids`` once it holds an eighth of ``ids``, within these bounds:
# a merge costs about one write per leaf of ``ids``, so it waits for many entries per leaf;
# ``new_ids`` takes random inserts too, so it must stay cacheable.
_MERGE_IDS_MIN = 1 << 16
_MERGE_IDS_MAX = 1 << 18


# A reader's marks (:meth:`Store.feed_mark`): the last arrival number, the last late placement
# number and the commons' (``?3``) entry count, one row.
_MARKS = ("(SELECT (SELECT max(n) FROM entries) AS n, (SELECT max(k) FROM placed_late) AS k, "
          "(SELECT entries FROM commons_counts WHERE commons = ?3) AS stored)")


def _row_of(param: str) -> str:
    """SQL for the row number of the entry whose id is ``param`` (NULL if none)."""
    return f"(SELECT n FROM new_ids WHERE id = {param} UNION ALL SELECT n FROM ids WHERE id = {param} LIMIT 1)"


_CLOCK_CACHE_MAX = 1 << 16  # clocks of recently stored entries (a batch's parents are mostly recent)

# Recount every commons' entries and non-empty logs (the schema 3 migration; O(entries), once).
_RECOUNT = (
    "INSERT INTO commons_counts (commons, entries, authors) "
    "SELECT logs.commons, count(*), count(DISTINCT logs.log) FROM entries JOIN logs ON logs.log = entries.log "
    "GROUP BY logs.commons"
)


# Entry rows per multi-row INSERT (:meth:`Store._insert_entry_rows`): 7 parameters each,
# well under SQLite's limit on a statement's parameters (999 before 3.32).
_ROWS_PER_INSERT = 128
# A stored entry as the fold reads it: its bytes, its id, its version vector row (None: none).
FoldRow = tuple[bytes, bytes, bytes | None]
_PAGE_ROWS = 1000  # rows per statement of a long read (one that other work interleaves with)
_LAST_ROW_NUMBER = 2**63 - 1  # the largest rowid (``entries.n``): SQLite numbers new rows max + 1 below it
_INSERT_ONE = "INSERT OR IGNORE INTO entries (id, log, seq, kind, raw, clock, vv) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_BLOCK = ("INSERT OR IGNORE INTO entries (id, log, seq, kind, raw, clock, vv) VALUES "
                 + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * _ROWS_PER_INSERT))


_CLOCK_BY_ID = f"SELECT clock FROM entries WHERE n = {_row_of('?1')}"
_SET_CLOCK_BY_ID = f"UPDATE entries SET clock = ?1, vv = ?3 WHERE n = {_row_of('?2')}"
_VECTOR_BY_ID = f"SELECT log, seq, vv FROM entries WHERE n = {_row_of('?1')}"
_RAW_BY_ID = f"SELECT raw FROM entries WHERE n = {_row_of('?1')}"
_VECTOR_PAGE = 1000  # entries whose vectors are computed and written per statement (a wake, a migration)


def _parents(entry: Entry) -> list[bytes]:
    """The raw ids an entry names as parents (its deps and its prev)."""
    parents = list(entry.dep_ids)
    if entry.prev is not None:
        parents.append(entry.prev.raw)
    return parents


def _pack_ids(ids: list[bytes]) -> bytes:
    """Entry ids as one blob (every id is a 36-byte CID: :class:`~.dagcbor.CID`)."""
    return b"".join(ids)


def _unpack_ids(blob: bytes) -> list[bytes]:
    return [blob[at:at + 36] for at in range(0, len(blob), 36)]


class _Waiting:
    """The waiting tables as read by one connection at one ``data_version``: per waiting
    entry its parents and whether it is a genesis; per missing parent, who watches it.
    Why in memory: entries arriving in log order (as sync and bundles deliver them) wait
    for other authors' logs, and placing one log wakes long chains; reading them back a
    statement at a time cost 10x the insert itself."""

    __slots__ = ("rows", "version", "watchers")

    def __init__(self, version: int) -> None:
        self.version = version
        self.rows: dict[bytes, tuple[list[bytes], bool]] = {}
        self.watchers: dict[bytes, list[bytes]] = {}


# (Row types are NamedTuples, not dataclasses: ``dataclasses`` imports ``inspect``, about
# 10 ms of every command's start-up, issue 18.)


class Head(NamedTuple):
    """The newest entry (or entries, if the log forked at its tip) of one author's log."""

    author: bytes
    seq: int
    id: CID


class Fork(NamedTuple):
    commons: CID
    author: bytes
    seq: int
    ids: tuple[CID, ...]


class CommonsInfo(NamedTuple):
    id: CID
    name: str
    created: int
    entries: int
    authors: int


class StoredRow(NamedTuple):
    """One stored entry as the store indexes it, for the audit (``p2pc verify``), which
    re-derives all of it from ``raw`` and compares."""

    id: bytes
    seq: int
    raw: bytes
    commons: bytes
    author: bytes
    log: int


class Store:
    """One SQLite file.  Not thread-safe: use from one thread at a time.

    ``reader``: the process only reads (a read-only command); writes of derived data are
    attempted without waiting and fail with :class:`StoreBusy` at once if a writer holds
    the lock (callers skip caching then).  ``busy_timeout``: seconds a write waits for the
    lock (default :func:`busy_timeout_default`).
    """

    def __init__(self, path: Path | str, *, cache_mib: int = 32, reader: bool = False,
                 busy_timeout: float | None = None) -> None:
        self.path = Path(path)
        self.reader = reader
        self.busy_timeout = busy_timeout_default() if busy_timeout is None else busy_timeout
        self._wait = self.busy_timeout  # the write-lock wait now in force
        self._clocks: dict[bytes, int] = {}  # id -> clock of recently placed entries
        self._waiting: _Waiting | None = None
        self._absent: set[bytes] = set()  # ids found not stored while planning one batch
        self._vectors = VectorIndex(self._vector_row_by_id, self._vector_rows_at, self._prev_of)
        self._forked: set[int] | None = None  # ``vv_forked``, read once per data version
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            # Current schema in WAL mode (persistent): open without writing anything, so
            # opening never waits on (or fails because of) a writer.
            mode = str(self._db.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode != "wal":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=OFF")
            # 32 MiB of page cache by default (SQLite's is 2 MiB): the unique index on random
            # entry ids is touched all over by every batch, and re-reading its pages dominated
            # large imports.  Memory is only used as the store grows; a long-lived process
            # that mostly reads (the daemon's own connections) asks for less.
            self._db.execute(f"PRAGMA cache_size={-1024 * max(1, cache_mib)}")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The store {self.path} was written by a newer p2pcommons (schema {version})."
                )
            if version != SCHEMA_VERSION:
                self._db.executescript(_SCHEMA)
                columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(entries)")}
                if "clock" not in columns:  # schema 1-3: the causal facts' column (schema 4)
                    self._db.execute("ALTER TABLE entries ADD COLUMN clock INTEGER")
                if "vv" not in columns:  # schema 1-7: the version vectors' column (schema 8)
                    self._db.execute("ALTER TABLE entries ADD COLUMN vv BLOB")
                self._db.executescript(_CAUSAL_SCHEMA)
                if version == 1:
                    self._cut_undecodable_logs()
                self._fill_counts(place=0 < version < 4, vectors=4 <= version < 8, named=0 < version < 10)
            max_pages = os.environ.get(MAX_PAGES_ENV)
            if max_pages and max_pages.isdigit():
                self._db.execute(f"PRAGMA max_page_count={int(max_pages)}")
        except sqlite3.Error as exc:
            # A damaged file is StoreCorrupt, a read-only home HomeNotWritable (one sentence each).
            raise (system_error(exc, f"The store {self.path}") or StoreError(
                f"The store {self.path} cannot be opened ({exc}).")) from None
        self._log_ids: dict[tuple[bytes, bytes], int] = {}
        self._in_transaction = False

    # --- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for modules that keep derived tables of their own in the store's
        file (``state/tables.py``: the CLI's query tables).  Entries, logs and their indexes
        are written only through this class."""
        return self._db

    @contextlib.contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Writes inside wait at most ``seconds`` (and never longer than the store's busy
        timeout) for the write lock: for work that may as well be dropped and redone later
        (the daemon's gossip), so it does not hold up the daemon's other store work."""
        before = self._wait
        self._wait = min(seconds, before)
        self._db.execute(f"PRAGMA busy_timeout={int(self._wait * 1000)}")
        try:
            yield
        finally:
            self._wait = before
            with contextlib.suppress(sqlite3.Error):
                self._db.execute(f"PRAGMA busy_timeout={int(before * 1000)}")

    @contextlib.contextmanager
    def _no_wait(self) -> Iterator[None]:
        """For a reader: attempt a write without waiting for the lock (restored after)."""
        if not self.reader:
            yield
            return
        with self.waiting_at_most(0):
            yield

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """One atomic, durable unit of work (BEGIN IMMEDIATE: the write lock is taken
        first, so everything read inside is what the commit will be applied to; the commit
        is fsynced before this returns).  Nested calls join the outer transaction.

        ``durable=False``, for local derived data that is rebuilt when lost (the state
        fold's archive): the commit is atomic but not fsynced.  Why that is safe: in WAL
        mode a crash can only lose a *suffix* of the commits, so no durable commit after it
        (entries, a checkpoint) can survive without it; and a fresh fold evicts to the
        archive about once per 2,000 entries, each fsync costing wall time for nothing."""
        if self._in_transaction:
            yield
            return
        if not durable:
            before = int(self._db.execute("PRAGMA synchronous").fetchone()[0])
            self._db.execute(f"PRAGMA synchronous={min(before, 1)}")  # (NORMAL, or OFF if it was)
            try:
                with self.transaction():
                    yield
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute(f"PRAGMA synchronous={before}")
            return
        try:
            with self._no_wait():
                self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) == _BUSY_SNAPSHOT:
                # (no wait happened: a read still open on this connection saw an older
                # version of the store than another connection has since committed)
                raise StoreBusy(
                    f"The store {self.path} changed while this process was still reading it; try again."
                ) from None
            if "locked" in str(exc) or "busy" in str(exc):
                waited = f" for more than {self._wait:g} s" if self._wait else ""
                raise StoreBusy(
                    f"The store {self.path} is busy: another process held its write lock{waited}."
                ) from None
            raise StoreError(f"The store is busy or read-only ({exc}).") from None
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._in_transaction = False
            self._log_ids.clear()  # may name logs the rollback removed
            self._clocks.clear()  # may name entries the rollback removed
            self._vectors.clear()  # likewise, and log numbers the rollback took back
            self._forked = None
            self._waiting = None
            self._archive_ready = False  # the rollback may have removed the archive tables
            # SQLite may have rolled back already (a full disk, an I/O error): the original
            # error is the one to report.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._in_transaction = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._log_ids.clear()
            self._clocks.clear()
            self._vectors.clear()
            self._forked = None
            self._waiting = None
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise StoreError(f"The store could not save the changes ({exc}).") from None

    # --- writing --------------------------------------------------------------------

    def log_id(self, commons: CID, author: bytes) -> int:
        """The number of (commons, author)'s log, created on first use."""
        key = (commons.raw, author)
        found = self._log_ids.get(key)
        if found is not None:
            return found
        row = self._db.execute(
            "SELECT log FROM logs WHERE commons=? AND author=?", key
        ).fetchone()
        if row is None:
            row = self._db.execute(
                "INSERT INTO logs (commons, author) VALUES (?, ?) RETURNING log", key
            ).fetchone()
        self._log_ids[key] = row[0]
        return int(row[0])

    def insert(self, entries: Sequence[Entry], forks: Iterable[tuple[CID, bytes, int]] = ()) -> None:
        """Store already-validated entries (and fork evidence) in one transaction.

        Idempotent: entries already stored are ignored.
        """
        try:
            with self.transaction():
                rows: list[tuple[bytes, int, int, str, bytes]] = []
                new: list[tuple[bytes, list[bytes], bool]] = []  # (id, parents, is a genesis)
                commons_of: dict[int, bytes] = {}
                named: dict[bytes, set[bytes]] = {}  # id -> its body's links' keys (only entries with some)
                max_seq: dict[int, int] = {}
                last: tuple[bytes, bytes] | None = None
                log = 0
                top = 0
                for entry in entries:
                    commons = entry.commons
                    eid = entry.id.raw
                    key = (eid if commons is None else commons.raw, entry.author)  # batches come grouped by log
                    if key != last:
                        if last is not None and top > max_seq.get(log, 0):
                            max_seq[log] = top
                        log = self.log_id(entry.commons_id, entry.author)
                        commons_of[log] = key[0]
                        last = key
                        top = 0
                    seq = entry.seq
                    rows.append((eid, log, seq, entry.kind, entry.raw))
                    keys = named_keys(entry)
                    if keys:
                        named[eid] = keys
                    prev = entry.prev
                    new.append((eid, list(entry.dep_ids) if prev is None else [*entry.dep_ids, prev.raw],
                                commons is None))
                    if seq > top:
                        top = seq
                    if commons is None:  # a genesis entry
                        name = entry.body.get("name")
                        self._db.execute(
                            "INSERT OR IGNORE INTO commons (id, name, created) VALUES (?, ?, ?)",
                            (eid, name if isinstance(name, str) else "", entry.time),
                        )
                if last is not None and top > max_seq.get(log, 0):
                    max_seq[log] = top
                self._insert_rows(rows, commons_of, new, named)
                self._db.executemany(
                    "UPDATE logs SET max_seq = max(max_seq, ?) WHERE log = ?",
                    [(seq, log) for log, seq in max_seq.items()],
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO forks (log, seq) VALUES (?, ?)",
                    [(self.log_id(c, a), s) for c, a, s in forks],
                )
        except sqlite3.Error as exc:
            raise StoreError(f"The store could not save entries ({exc}).") from None

    def _insert_rows(self, rows: list[tuple[bytes, int, int, str, bytes]], commons_of: dict[int, bytes],
                     new: list[tuple[bytes, list[bytes], bool]], named: dict[bytes, set[bytes]]) -> None:
        """Insert entry rows (in order) and add what was new to the commons' counts
        (``new``: per row, the entry's id, parents and whether it is a genesis) and to
        ``named`` (``named``: the ``named`` keys of the rows' entries that have some).  The usual
        batch holds only new entries (the ingest path drops those already stored): then
        SQLite's row count equals the distinct rows and the counts come from the rows
        themselves.  Otherwise this call's rows are taken out again and the entries not yet
        stored are inserted alone (their clocks planned again), so nothing is counted twice.

        Why not a savepoint to undo them: inside the group's transaction a savepoint makes
        SQLite copy every page the insert then touches, first, to a statement journal (a
        temporary file): for a sync's group, about one id-index leaf per entry, 4 KiB
        written for each, 1.5 µs per entry of the ingest child's CPU.  Taking the rows out
        needs nothing kept: they are exactly the entries rows numbered after the last one
        before the insert (a new row's ``n`` is the largest plus one: SQLite picks another
        only once ``n`` reaches 2^63 - 1, where the savepoint is taken instead)."""
        facts = {eid: (parents, genesis) for eid, parents, genesis in new}
        if len(facts) == len(rows):  # (the usual batch: no entry twice)
            unique = rows
        else:
            unique = list({row[0]: row for row in rows}.values())
            new = [(row[0], *facts[row[0]]) for row in unique]
        if not unique:
            return
        empty = {log for log in commons_of if not self._log_has_entries(log)}
        last = self._db.execute("SELECT max(n) FROM entries").fetchone()[0] or 0
        numbered = last < _LAST_ROW_NUMBER - len(unique)
        if not numbered:
            self._db.execute("SAVEPOINT insert_rows")
        plan = self._plan(new, facts)
        vectors = self._vector_rows(unique, plan, facts)
        added = self._insert_entry_rows(unique, plan, vectors)
        if added != len(unique):  # some were stored already: only the others go in
            if numbered:
                self._db.execute("DELETE FROM entries WHERE n > ?", (last,))
            else:
                self._db.execute("ROLLBACK TO insert_rows")
            self._vectors.discard()  # (computed for rows just taken out)
            stored = self.which_exist(row[0] for row in unique)
            unique = [row for row in unique if row[0] not in stored]
            plan = self._plan([(row[0], *facts[row[0]]) for row in unique])
            vectors = self._vector_rows(unique, plan, facts)
            self._insert_entry_rows(unique, plan, vectors)
        if named:
            self._name(unique, named, last if numbered else None)
        if not numbered:
            self._db.execute("RELEASE insert_rows")
        self._forked = None  # (the trigger may have noted forks among the rows)
        self._record_named(vectors)
        self._merge_ids_if_due(last + len(unique))
        self._settle(plan, facts)
        per_commons: dict[bytes, list[int]] = {}
        for log, added in Counter(map(itemgetter(1), unique)).items():  # (rows per log)
            counts = per_commons.setdefault(commons_of[log], [0, 0])
            counts[0] += added
            counts[1] += log in empty
        for commons_raw, (entries, authors) in per_commons.items():
            self._bump_counts(commons_raw, entries, authors)

    def _name(self, rows: list[tuple[bytes, int, int, str, bytes]], named: dict[bytes, set[bytes]],
              last: int | None) -> None:
        """Write the ``named`` rows of entry rows just inserted: numbered ``last + 1`` on, in
        order, or (``last`` None, row numbers near their end) looked up by id."""
        if last is None:
            numbers = {eid: int(self._db.execute(f"SELECT {_row_of('?1')}", (eid,)).fetchone()[0])
                       for eid in named}
        else:
            numbers = {row[0]: last + 1 + at for at, row in enumerate(rows) if row[0] in named}
        self._db.executemany("INSERT OR IGNORE INTO named (target, n) VALUES (?, ?)",
                             [(key, n) for eid, n in numbers.items() for key in named[eid]])

    def _insert_entry_rows(self, rows: list[tuple[bytes, int, int, str, bytes]],
                           plan: list[tuple[bytes, int | None, bytes | None]],
                           vectors: dict[bytes, tuple[bytes | None, bytes | None]]) -> int:
        """INSERT OR IGNORE ``rows`` (each with its planned clock and vector row) in their
        order; the number stored.  Written as multi-row statements of ``_ROWS_PER_INSERT`` rows (the rest one
        by one): one call and one step per block instead of one per row, and SQLite runs a
        step without the GIL.  Rows go in in the same order (``n`` is the arrival order)."""
        params: list[object] = []
        extend = params.extend
        append = params.append
        no_vector = (None, None)
        vector_of = vectors.get
        for row, (_, clock, _) in zip(rows, plan, strict=True):
            extend(row)
            append(clock)
            append(vector_of(row[0], no_vector)[0])
        db = self._db
        width = _ROWS_PER_INSERT * 7
        whole = len(params) - len(params) % width
        added = 0
        for at in range(0, whole, width):
            added += db.execute(_INSERT_BLOCK, params[at:at + width]).rowcount
        if whole < len(params):
            rest = params[whole:]
            added += db.executemany(_INSERT_ONE, [rest[at:at + 7] for at in range(0, len(rest), 7)]).rowcount
        return added

    def _plan(self, new: Sequence[tuple[bytes, list[bytes], bool]],
              facts: dict[bytes, tuple[list[bytes], bool]] | None = None,
              ) -> list[tuple[bytes, int | None, bytes | None]]:
        """The causal facts of entries about to be stored: ``(id, parent ids, is a genesis)``
        -> per entry, in the same order, ``(id, clock, None)`` if every parent is placed
        (stored earlier, or anywhere in this batch and placed itself), else ``(id, None, a
        missing parent)``.  Reads only; :meth:`_settle` records it once the rows are in.

        An entry's clock is ``1 + max`` over its parents' clocks (a genesis 0, an entry
        naming no parent 1: ``protocols/commons.md``), fixed once every parent is placed.
        Within the batch the placement is done in memory, whatever the order of the batch:
        an entry whose parent comes later in it waits only here, and is written once with
        its clock.  Why: batches come grouped by log (ingest groups a batch by author), so
        an entry often precedes the other author's entry it names; written first without a
        clock it cost a waiting row, its watch, and an UPDATE of its wide row later.
        An entry with a parent not placed at the end of the batch waits (``waiting``),
        watching one missing parent (``waiting_for``); placing that parent looks at it
        again, so every stored entry whose parents are all stored has its clock, whatever
        order they arrived in (a property test checks it against a computation from
        scratch).  Costs a lookup per parent (recent clocks are cached; the waiting tables
        are mirrored in memory, see :class:`_Waiting`), and one batched write per table.
        ``facts``: ``new`` as a dict ``id -> (parents, is a genesis)`` if the caller has it
        (copied, not built again)."""
        if len(self._clocks) > _CLOCK_CACHE_MAX:
            self._clocks.clear()
        waiting = self._waiting_tables()
        planned: dict[bytes, int] = {}
        self._absent = set()
        # in the batch, not placed yet
        pending = dict(facts) if facts is not None else {eid: (parents, genesis) for eid, parents, genesis in new}
        missing_at: dict[bytes, bytes] = {}
        local: dict[bytes, list[bytes]] = {}  # a pending parent -> batch entries waiting for it
        cache_get = self._clocks.get
        planned_get = planned.get
        for eid, parents, genesis in new:
            if eid not in pending:
                continue  # placed already, woken by a parent earlier in the batch
            # The usual entry: every parent placed already (recently, or earlier in the batch);
            # the same clock as _clock_from's, without the call.  Else _clock_from decides.
            floor = -1 if genesis and not parents else 0
            for parent in parents:
                found = cache_get(parent)
                if found is None:
                    found = planned_get(parent)
                    if found is None:
                        break
                if found > floor:
                    floor = found
            else:
                planned[eid] = floor + 1
                del pending[eid]
                if local:
                    self._wake_planned(eid, local, pending, planned, missing_at, waiting)
                continue
            clock, missing = self._clock_from(parents, genesis, waiting, planned, pending)
            if missing is not None:
                missing_at[eid] = missing
                if missing in pending:
                    local.setdefault(missing, []).append(eid)
                continue
            planned[eid] = clock
            del pending[eid]
            self._wake_planned(eid, local, pending, planned, missing_at, waiting)
        return [(eid, planned[eid], None) if eid in planned else (eid, None, missing_at[eid])
                for eid, _, _ in new]

    def _wake_planned(self, eid: bytes, local: dict[bytes, list[bytes]], pending: dict[bytes, tuple[list[bytes], bool]],
                      planned: dict[bytes, int], missing_at: dict[bytes, bytes], waiting: _Waiting) -> None:
        """:meth:`_plan`: ``eid`` was just planned; plan the batch's entries that waited for
        it (transitively)."""
        stack = [eid]
        while stack:
            for watcher in local.pop(stack.pop(), ()):
                if watcher not in pending:
                    continue
                w_parents, w_genesis = pending[watcher]
                clock, missing = self._clock_from(w_parents, w_genesis, waiting, planned, pending)
                if missing is None:
                    planned[watcher] = clock
                    del pending[watcher]
                    missing_at.pop(watcher, None)
                    stack.append(watcher)
                else:
                    missing_at[watcher] = missing
                    if missing in pending:
                        local.setdefault(missing, []).append(watcher)

    def _settle(self, plan: list[tuple[bytes, int | None, bytes | None]],
                facts: dict[bytes, tuple[list[bytes], bool]]) -> None:
        """Record a plan whose rows were just stored (their clocks with them): the waiting
        entries and what they watch, and wake those that waited for the placed ones."""
        waiting = self._waiting_tables()
        watches: list[tuple[bytes, bytes]] = []
        waits: list[tuple[bytes, bytes, int]] = []
        placed: list[bytes] = []
        clocks = self._clocks
        for eid, clock, missing in plan:
            if missing is None:
                assert clock is not None
                clocks[eid] = clock
                placed.append(eid)
            else:
                parents, genesis = facts[eid]
                waits.append((eid, _pack_ids(parents), int(genesis)))
                watches.append((missing, eid))
                waiting.rows[eid] = (parents, genesis)
                waiting.watchers.setdefault(missing, []).append(eid)
        if waits:
            self._db.executemany("INSERT OR REPLACE INTO waiting (id, parents, genesis) VALUES (?, ?, ?)", waits)
            self._db.executemany("INSERT OR IGNORE INTO waiting_for (parent, id) VALUES (?, ?)", watches)
        if placed and waiting.watchers:
            self._wake(placed, waiting)

    # --- version vectors (schema 8, :mod:`p2pcommons.vectors`) ------------------------

    def _vector_row_by_id(self, entry_id: bytes) -> tuple[int, int, bytes | None] | None:
        row = self._db.execute(_VECTOR_BY_ID, (entry_id,)).fetchone()
        if row is None:
            return None
        return int(row[0]), int(row[1]), None if row[2] is None else bytes(row[2])

    def _vector_rows_at(self, log: int, seq: int) -> list[tuple[bytes, bytes | None]]:
        return [(bytes(eid), None if vv is None else bytes(vv)) for eid, vv in self._db.execute(
            "SELECT id, vv FROM entries WHERE log = ? AND seq = ?", (log, seq))]

    def _prev_of(self, entry_id: bytes) -> bytes | None:
        """A stored entry's ``prev`` id, from its bytes (None: it has none, or is not stored)."""
        row = self._db.execute(_RAW_BY_ID, (entry_id,)).fetchone()
        if row is None:
            return None
        try:
            prev = decode_entry(bytes(row[0])).prev
        except InvalidEntry:
            return None
        return None if prev is None else prev.raw

    def _logs_and_seqs(self, ids: list[bytes]) -> dict[bytes, tuple[int, int]]:
        """``id -> (log, seq)`` of stored entries, a statement per 400 ids."""
        out: dict[bytes, tuple[int, int]] = {}
        for at in range(0, len(ids), 400):
            chunk = ids[at:at + 400]
            marks = ",".join("?" * len(chunk))
            for eid, log, seq in self._db.execute(
                    f"SELECT id, log, seq FROM entries WHERE n IN (SELECT n FROM new_ids WHERE id IN ({marks}) "
                    f"UNION ALL SELECT n FROM ids WHERE id IN ({marks}))", (*chunk, *chunk)):
                out[bytes(eid)] = (int(log), int(seq))
        return out

    def _known_clock(self, entry_id: bytes) -> int:
        """A placed entry's clock (recently placed ones from the cache)."""
        clock = self._clocks.get(entry_id)
        if clock is None:
            row = self._db.execute(_CLOCK_BY_ID, (entry_id,)).fetchone()
            clock = -1 if row is None or row[0] is None else int(row[0])
        return clock

    def _vector_rows(self, rows: list[tuple[bytes, int, int, str, bytes]],
                     plan: list[tuple[bytes, int | None, bytes | None]],
                     facts: dict[bytes, tuple[list[bytes], bool]],
                     ) -> dict[bytes, tuple[bytes | None, bytes | None]]:
        """The vector rows of the entries a plan places, computed in ``(clock, id)`` order
        (every parent before its children): per id, ``(row, the other log's entry it names
        as its base)`` (:meth:`~p2pcommons.vectors.VectorIndex.place`)."""
        self._vectors.begin()
        planned = {eid: clock for eid, clock, _ in plan if clock is not None}
        if not planned:
            return {}
        where = {row[0]: (row[1], row[2]) for row in rows}
        forked = self._forked_logs() | self._may_fork(rows)
        known = self._known_clock

        def clock_of(entry_id: bytes) -> int:
            found = planned.get(entry_id)
            return known(entry_id) if found is None else found

        place = self._vectors.place
        out: dict[bytes, tuple[bytes | None, bytes | None]] = {}
        for eid in sorted(planned, key=lambda e: (planned[e], e)):
            log, seq = where[eid]
            out[eid] = place(eid, log, seq, facts[eid][0], clock_of, forked)
        return out

    def _forked_logs(self) -> set[int]:
        """The logs known to have held two entries at one seq (``vv_forked``)."""
        if self._forked is None:
            self._forked = {int(log) for (log,) in self._db.execute("SELECT log FROM vv_forked")}
        return self._forked

    def _may_fork(self, rows: list[tuple[bytes, int, int, str, bytes]]) -> set[int]:
        """The logs a batch about to be stored may fork (``vv_forked`` notes them only once
        the rows are in): two of its entries at one seq, or one at a seq the log held
        already (reached before this batch: ``logs.max_seq``)."""
        lowest: dict[int, int] = {}
        seen: set[tuple[int, int]] = set()
        out: set[int] = set()
        for _, log, seq, _, _ in rows:
            if (log, seq) in seen:
                out.add(log)
            seen.add((log, seq))
            if seq < lowest.get(log, seq + 1):
                lowest[log] = seq
        for log, seq in lowest.items():
            row = self._db.execute("SELECT max_seq FROM logs WHERE log = ?", (log,)).fetchone()
            if row is not None and seq <= int(row[0]):
                out.add(log)
        return out

    def _record_named(self, vectors: dict[bytes, tuple[bytes | None, bytes | None]]) -> None:
        """Note which stored rows name another log's entry as their base (``vv_named``)."""
        named = [(base, eid) for eid, (_, base) in vectors.items() if base is not None]
        if named:
            self._db.executemany("INSERT OR IGNORE INTO vv_named (base, id) VALUES (?, ?)", named)

    def _rebase_on(self, log: int, cut: int) -> None:
        """Before a log's entries from seq ``cut`` on are deleted: the rows based on them (of
        other logs: ``vv_named``) get their whole vector, with no base, so every entry kept
        stays readable and exact.  (Rows based on the log's own entries are on the same chain
        above them: deleted too.)"""
        doomed = {bytes(eid): vv for eid, vv in self._db.execute(
            "SELECT id, vv FROM entries WHERE log = ? AND seq >= ?", (log, cut))}
        if not doomed:
            return
        dependents = [bytes(eid) for base in doomed for (eid,) in self._db.execute(
            "SELECT id FROM vv_named WHERE base = ?", (base,)) if bytes(eid) not in doomed]
        rows: list[tuple[bytes | None, bytes]] = []
        for eid in dependents:
            try:
                rows.append((self._vectors.whole_row(eid), eid))
            except MissingVector:
                rows.append((None, eid))  # (cannot be read: none, rather than a wrong one)
        self._db.executemany(f"UPDATE entries SET vv = ?1 WHERE n = {_row_of('?2')}", rows)
        self._db.executemany("DELETE FROM vv_named WHERE base = ?", [(base,) for base in doomed])
        self._db.executemany("DELETE FROM vv_named WHERE base = ? AND id = ?", [
            (base, eid) for eid, vv in doomed.items()
            if vv is not None and (base := based_on(bytes(vv))) is not None])
        self._vectors.clear()

    def _vectors_all(self) -> None:
        """Schema 8 migration (inside the caller's transaction; after the clocks): every
        placed entry's vector row, computed in ``(clock, id)`` order, a page at a time."""
        self._db.execute("UPDATE entries SET vv = NULL")
        self._db.execute("DELETE FROM vv_named")
        self._db.execute("INSERT OR IGNORE INTO vv_forked (log) "
                         "SELECT log FROM entries GROUP BY log, seq HAVING count(*) > 1")
        self._forked = None
        forked = self._forked_logs()
        self._vectors.clear()
        for page in self._placed_pages(_VECTOR_PAGE):
            self._vectors.begin()
            vectors: dict[bytes, tuple[bytes | None, bytes | None]] = {}
            for eid, log, seq, raw, _ in page:
                try:
                    entry = decode_entry(bytes(raw))
                except InvalidEntry:
                    continue  # (as the fold: never taken)
                vectors[bytes(eid)] = self._vectors.place(bytes(eid), int(log), int(seq), _parents(entry),
                                                          self._known_clock, forked)
            self._db.executemany(f"UPDATE entries SET vv = ?1 WHERE n = {_row_of('?2')}",
                                 [(blob, eid) for eid, (blob, _) in vectors.items()])
            self._record_named(vectors)
        self._vectors.begin()

    def _placed_pages(self, size: int) -> Iterator[list[tuple[bytes, int, int, bytes, int]]]:
        """Every placed entry's ``(id, log, seq, raw, clock)``, in the fold's ``(clock, id)``
        order, ``size`` rows a page, each page a finished statement (the caller may write
        between pages: no read stays open)."""
        clock, last = -1, b""
        while True:
            page = self._db.execute(
                "SELECT id, log, seq, raw, clock FROM entries WHERE clock IS NOT NULL "
                "AND clock >= ?1 AND (clock > ?1 OR id > ?2) ORDER BY clock, id LIMIT ?3",
                (clock, last, size)).fetchall()
            if not page:
                return
            yield page
            clock, last = int(page[-1][4]), bytes(page[-1][0])

    def vector(self, entry_id: CID) -> dict[int, int] | None:
        """An entry's version vector: log number (:meth:`log_id`) -> the highest seq of that
        log in its causal past, itself included.  None: the entry is not stored, waits for a
        parent, or its past lost an entry (deleted before schema 8 computed it)."""
        try:
            return dict(causal.items(self._vectors.vector(entry_id.raw)))
        except MissingVector:
            return None

    def vector_rows(self, entry_id: bytes) -> Iterator[tuple[bytes, tuple[int, ...]]]:
        """The rows a read of an entry's vector visits, the entry's first, then its base's
        and so on: ``(id, [log, seq, …])``, the slots where each exceeds its base's (the first
        value found for a log is the entry's).  A reader that holds some visited entry's
        vector stops there and sets the slots found over it (the state fold's archive,
        whose records keep no vector).  Raises :class:`~p2pcommons.vectors.MissingVector`
        where an entry has no vector (:meth:`vector`)."""
        for visited, _, _, row in self._vectors.walk(entry_id):
            yield visited, row.flat

    def log_authors(self, commons: CID) -> dict[int, bytes]:
        """Log number -> author, for every log of a commons (a log's number never changes)."""
        return {int(log): bytes(author) for log, author in
                self._db.execute("SELECT log, author FROM logs WHERE commons = ?", (commons.raw,))}

    def in_past(self, earlier: CID, later: CID) -> bool | None:
        """Whether ``earlier`` is in ``later``'s causal past (an entry is in its own); None
        if either has no vector (:meth:`vector`).  Where ``earlier``'s log forked at its seq,
        this says whether ``later`` saw *an* entry at that seq of the log."""
        found = self._vector_row_by_id(earlier.raw)
        if found is None or found[2] is None:
            return None
        try:
            return self._vectors.slot(later.raw, found[0]) >= found[1]
        except MissingVector:
            return None

    def _clock_from(self, parents: list[bytes], genesis: bool, waiting: _Waiting,
                    planned: dict[bytes, int] | None = None,
                    pending: dict[bytes, tuple[list[bytes], bool]] | None = None) -> tuple[int, bytes | None]:
        """``(clock, None)`` if every parent is placed, else ``(0, a missing parent)``
        (``planned``: clocks of entries of the batch being stored placed so far;
        ``pending``: the batch's entries not placed yet)."""
        floor = -1 if genesis and not parents else 0
        cache = self._clocks
        absent = self._absent
        for parent in parents:
            clock = cache.get(parent)
            if clock is None and planned:
                clock = planned.get(parent)
            if clock is None:
                if parent in waiting.rows or parent in absent or (pending is not None and parent in pending):
                    return 0, parent
                row = self._db.execute(_CLOCK_BY_ID, (parent,)).fetchone()
                if row is None or row[0] is None:
                    absent.add(parent)
                    return 0, parent
                clock = int(row[0])
            if clock > floor:
                floor = clock
        return floor + 1, None

    def _wake(self, frontier: list[bytes], waiting: _Waiting) -> None:
        """Place the entries that waited for the ones just placed (transitively), in memory
        (the mirror), then write what changed in one batched statement per table."""
        consumed: list[tuple[bytes]] = []
        placed: list[tuple[int, bytes]] = []
        parents_of: dict[bytes, list[bytes]] = {}
        watches: list[tuple[bytes, bytes]] = []
        stack = list(frontier)
        while stack:
            parent = stack.pop()
            watchers = waiting.watchers.pop(parent, None)
            if not watchers:
                continue
            consumed.append((parent,))
            for eid in watchers:
                row = waiting.rows.get(eid)
                if row is None:
                    continue  # (deleted meanwhile)
                clock, missing = self._clock_from(row[0], row[1], waiting)
                if missing is None:
                    del waiting.rows[eid]
                    self._clocks[eid] = clock
                    placed.append((clock, eid))
                    parents_of[eid] = row[0]
                    stack.append(eid)
                else:
                    watches.append((missing, eid))
                    waiting.watchers.setdefault(missing, []).append(eid)
        db = self._db
        db.executemany("DELETE FROM waiting_for WHERE parent = ?", consumed)
        # Their vectors in ``(clock, id)`` order (each after its parents), a page at a time:
        # a page's rows are written before the next page reads them.  (In the order they
        # were woken, depth first, an entry's parents had often been placed tens of
        # thousands of entries before it, out of every cache: a store read per parent named,
        # 357,000 for a 100-author history stored log by log.)
        placed.sort()
        forked = self._forked_logs()  # (the rows are in: forks among them noted)
        for at in range(0, len(placed), _VECTOR_PAGE):
            self._vectors.begin()
            updates: list[tuple[int, bytes, bytes | None]] = []
            vectors: dict[bytes, tuple[bytes | None, bytes | None]] = {}
            page = placed[at:at + _VECTOR_PAGE]
            where = self._logs_and_seqs([eid for _, eid in page])
            for clock, eid in page:
                found = where.get(eid)
                vectors[eid] = (None, None) if found is None else self._vectors.place(
                    eid, found[0], found[1], parents_of[eid], self._known_clock, forked)
                updates.append((clock, eid, vectors[eid][0]))
            db.executemany(_SET_CLOCK_BY_ID, updates)
            self._record_named(vectors)
        db.executemany("DELETE FROM waiting WHERE id = ?", [(eid,) for _, eid in placed])
        db.executemany("INSERT INTO placed_late (id) VALUES (?)", [(eid,) for _, eid in placed])
        # (A watch on a parent placed later in this same wake was consumed with it.)
        gone = {parent for (parent,) in consumed}
        db.executemany("INSERT OR IGNORE INTO waiting_for (parent, id) VALUES (?, ?)",
                       [watch for watch in watches if watch[0] not in gone])

    def _waiting_tables(self) -> _Waiting:
        """The in-memory mirror of the waiting tables, read again if another connection
        committed since it was read (``PRAGMA data_version``) or a rollback undid writes."""
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        mirror = self._waiting
        if mirror is None or mirror.version != version:
            self._vectors.forget_rows()  # (another connection may have rebased some: _rebase_on)
            self._forked = None
            mirror = _Waiting(version)
            for eid, packed, genesis in self._db.execute("SELECT id, parents, genesis FROM waiting"):
                mirror.rows[bytes(eid)] = (_unpack_ids(bytes(packed)), bool(genesis))
            for parent, eid in self._db.execute("SELECT parent, id FROM waiting_for"):
                mirror.watchers.setdefault(bytes(parent), []).append(bytes(eid))
            self._waiting = mirror
        return mirror

    def _place_all(self) -> None:
        """Schema 4 migration: the causal facts of every stored entry, computed once (inside
        the caller's transaction), as if the entries had arrived in their arrival order."""
        self._db.execute("UPDATE entries SET clock = NULL")
        self._db.execute("DELETE FROM waiting")
        self._db.execute("DELETE FROM waiting_for")
        self._clocks.clear()
        self._waiting = None
        cursor = self._db.execute("SELECT id, raw FROM entries ORDER BY n")
        while True:
            rows = cursor.fetchmany(2048)
            if not rows:
                break
            batch: list[tuple[bytes, list[bytes], bool]] = []
            for eid, raw in rows:
                try:
                    entry = decode_entry(bytes(raw))
                except InvalidEntry:
                    continue  # (left unplaced: the fold never takes it either)
                batch.append((bytes(eid), _parents(entry), entry.commons is None))
            plan = self._plan(batch)
            self._db.executemany(_SET_CLOCK_BY_ID,  # (vectors after: :meth:`_vectors_all`)
                                 [(clock, eid, None) for eid, clock, _ in plan if clock is not None])
            self._settle(plan, {eid: (parents, genesis) for eid, parents, genesis in batch})

    def _forget_placed(self, ids: Iterable[bytes]) -> None:
        """Deleted entries leave the waiting tables (and the clock cache)."""
        self._clocks.clear()
        self._waiting = None
        for eid in ids:
            self._db.execute("DELETE FROM waiting WHERE id = ?", (eid,))

    def in_order(self, commons: CID) -> Iterator[bytes]:
        """The commons' entries in the fold's order, ``(clock, id)`` as placed at insert,
        then those still waiting for a parent (in arrival order): a reader that takes them
        in this order never sees an entry before one that sorts earlier, so it never has to
        go back."""
        for raw, _, _ in self.in_order_rows(commons):
            yield raw

    def in_order_rows(self, commons: CID, upto: tuple[int, int] | None = None) -> Iterator[FoldRow]:
        """:meth:`in_order` with each entry's stored id and version vector row: ``(raw, id,
        vv)``.  The id was written at insert from the entry's hash (:meth:`insert` takes only
        decoded entries), so the fold's read path takes it rather than hashing each entry
        again (:func:`~p2pcommons.entry.decode_stored`); the vector row (None: none, see
        :meth:`vector`) lets an evicting fold build an entry's vector from its base's without
        a read (:meth:`p2pcommons.state.archive.StoreArchive.vector`).  ``upto``: only the entries placed as of
        marks ``(arrival number, late placement number)`` (the engine's first fold,
        :meth:`feed_mark`; those placed since come with its next marks).

        The placed entries are read a page at a time, each page one finished statement that
        starts after the last ``(clock, id)`` read, so no read stays open between pages.  Why:
        the engine's fold writes its archive between batches on this same connection, and a
        read left open kept the connection on its old snapshot; once another connection (the
        daemon's store thread, the ingest process) committed, that write failed at once with
        SQLITE_BUSY, and the whole fold with it — at a million entries a 30 s fold that any
        gossip arriving meanwhile failed.  The marks make the pages one consistent read: an
        entry's clock, once placed, never changes, and one placed after the marks is left out
        by them."""
        query = (
            # CROSS JOIN keeps entries as the outer loop: the (clock, id) index in order.
            "SELECT entries.raw, entries.id, entries.vv, entries.clock FROM entries CROSS JOIN logs "
            "ON logs.log = entries.log "
            "WHERE entries.clock IS NOT NULL AND logs.commons = ?1 AND entries.n <= ?2 "
            + ("" if upto is None else "AND entries.id NOT IN (SELECT id FROM placed_late WHERE k > ?3) ")
            + "AND entries.clock >= ?4 AND (entries.clock > ?4 OR entries.id > ?5) "
            "ORDER BY entries.clock, entries.id LIMIT ?6")
        n_mark, k_mark = (_LAST_ROW_NUMBER, 0) if upto is None else upto
        clock, last = -1, b""
        while True:
            page = self._db.execute(query, (commons.raw, n_mark, k_mark, clock, last, _PAGE_ROWS)).fetchall()
            yield from ((raw, entry_id, vv) for raw, entry_id, vv, _ in page)
            if len(page) < _PAGE_ROWS:
                break
            _, last, _, clock = page[-1]
        if upto is None:
            yield from self._db.execute(
                "SELECT entries.raw, entries.id, entries.vv FROM waiting CROSS JOIN entries "
                f"ON entries.n = {_row_of('waiting.id')} JOIN logs ON logs.log = entries.log "
                "WHERE logs.commons = ?1 ORDER BY entries.n", (commons.raw,)).fetchall()

    def feed_mark(self, commons: CID) -> tuple[int, int, int]:
        """``(last arrival number, last late placement number, the commons' entry count)``,
        read in one snapshot (one statement): where a reader of the placed entries
        (:meth:`in_order_rows`) stops, and how many entries of the commons the store held there
        — those it does not read then wait for a parent the store lacks.  (A first read;
        :meth:`placed_since` reads the next marks with what follows them.)"""
        row = self._db.execute(f"SELECT * FROM {_MARKS}", (None, None, commons.raw)).fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    def placed_forks(self, commons: CID, upto: tuple[int, int]) -> dict[bytes, int]:
        """Per key of ``commons`` whose log forked among the entries placed as of marks
        ``upto`` (:meth:`feed_mark`; two of them at one seq), its lowest such seq: what a fold
        of those entries finds when it has taken them all.  Forks are rare, so this reads only
        the logs ``vv_forked`` names (every log that ever held two entries at one seq, noted
        by a trigger whoever stored them) and their entries."""
        n_mark, k_mark = upto
        found: dict[bytes, int] = {}
        for author, seq in self._db.execute(
                "SELECT logs.author, entries.seq FROM vv_forked JOIN logs ON logs.log = vv_forked.log "
                "JOIN entries ON entries.log = vv_forked.log "
                "WHERE logs.commons = ? AND entries.clock IS NOT NULL AND entries.n <= ? "
                "AND entries.id NOT IN (SELECT id FROM placed_late WHERE k > ?) "
                "GROUP BY entries.log, entries.seq HAVING count(*) > 1", (commons.raw, n_mark, k_mark)):
            key = bytes(author)
            if seq < found.get(key, 2**63):
                found[key] = int(seq)
        return found

    def placed_since(self, commons: CID, after_n: int, after_k: int,
                     ) -> tuple[tuple[int, int, int], Iterator[FoldRow]]:
        """What a reader that took the commons' placed entries up to marks ``(after_n,
        after_k)`` has not taken: the new marks (as :meth:`feed_mark` reads them), and
        ``(raw, id)`` of the entries placed since, in the fold's ``(clock, id)`` order —
        those that arrived after ``after_n``, placed at insert or since, and those that arrived
        by then and were placed after ``after_k`` (their missing parent came).  One statement,
        so one snapshot, finds the marks and the entries' row numbers in that order: an entry
        placed meanwhile is either among them and behind the marks, or in neither.  The
        entries themselves are then read a page at a time, by row number, each page one
        finished statement (why no read may stay open: :meth:`in_order_rows`)."""
        found = self._db.execute(
            f"SELECT marks.n, marks.k, marks.stored, late.n FROM {_MARKS} AS marks"
            " LEFT JOIN ("
            " SELECT entries.n, entries.id, entries.clock FROM entries CROSS JOIN logs ON logs.log = entries.log"
            " WHERE entries.n > ?1 AND entries.clock IS NOT NULL AND logs.commons = ?3"
            " UNION ALL"
            " SELECT entries.n, entries.id, entries.clock FROM placed_late CROSS JOIN entries"
            f" ON entries.n = {_row_of('placed_late.id')} JOIN logs ON logs.log = entries.log"
            " WHERE placed_late.k > ?2 AND entries.n <= ?1 AND logs.commons = ?3"
            ") AS late ON 1 ORDER BY late.clock, late.id", (after_n, after_k, commons.raw)).fetchall()
        n, k, stored = found[0][:3]
        marks = (int(n or 0), int(k or 0), int(stored or 0))
        numbers = array("q", [row[3] for row in found if row[3] is not None])
        del found
        return marks, self._rows_numbered(numbers)

    def _rows_numbered(self, numbers: Sequence[int]) -> Iterator[FoldRow]:
        """``(raw, id, vv)`` of the entries with these row numbers, in this order, a page at a
        time (one that is no longer stored is left out)."""
        for start in range(0, len(numbers), _PAGE_ROWS):
            chunk = numbers[start:start + _PAGE_ROWS]
            if len(chunk) == 1:
                page = self._db.execute("SELECT raw, id, vv FROM entries WHERE n = ?", (chunk[0],)).fetchall()
                yield from page
                continue
            by_number = {n: (raw, entry_id, vv) for n, raw, entry_id, vv in self._db.execute(
                f"SELECT n, raw, id, vv FROM entries WHERE n IN ({','.join('?' * len(chunk))})", tuple(chunk))}
            for n in chunk:
                row = by_number.get(n)
                if row is not None:
                    yield row

    def held_ids(self, commons: CID) -> list[bytes]:
        """Ids of the commons' entries waiting for a parent the store lacks."""
        return [bytes(r[0]) for r in self._db.execute(
            f"SELECT waiting.id FROM waiting CROSS JOIN entries ON entries.n = {_row_of('waiting.id')} "
            "JOIN logs ON logs.log = entries.log WHERE logs.commons = ? ORDER BY entries.n", (commons.raw,))]

    def in_order_from(self, commons: CID, clock: int, entry_id: bytes, limit: int) -> list[bytes]:
        """Up to ``limit`` of the commons' placed entries from position ``(clock, id)`` on,
        in ``(clock, id)`` order: one range read for a replay's next bodies."""
        rows = self._db.execute(
            "SELECT entries.raw FROM entries CROSS JOIN logs ON logs.log = entries.log "
            "WHERE entries.clock IS NOT NULL AND (entries.clock, entries.id) >= (?, ?) AND logs.commons = ? "
            "ORDER BY entries.clock, entries.id LIMIT ?", (clock, entry_id, commons.raw, limit)).fetchall()
        return [bytes(raw) for (raw,) in rows]

    def clock_of(self, entry_id: CID) -> int | None:
        """An entry's clock as placed at insert (None: not stored, or waiting for a parent)."""
        row = self._db.execute(_CLOCK_BY_ID, (entry_id.raw,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def waiting_ids(self) -> set[bytes]:
        """Entries stored but waiting for a parent (not placed)."""
        return {bytes(r[0]) for r in self._db.execute("SELECT id FROM entries WHERE clock IS NULL")}

    def last_arrival(self) -> int:
        """The newest arrival number in the store (0: empty)."""
        row = self._db.execute("SELECT max(n) FROM entries").fetchone()
        return int(row[0] or 0)

    def _log_has_entries(self, log: int) -> bool:
        return self._db.execute("SELECT 1 FROM entries WHERE log = ? LIMIT 1", (log,)).fetchone() is not None

    def _bump_counts(self, commons_raw: bytes, entries: int, authors: int) -> None:
        """Add to one commons' counts (call inside the transaction that changed its entries)."""
        self._db.execute(
            "INSERT INTO commons_counts (commons, entries, authors) VALUES (?, ?, ?) ON CONFLICT(commons) "
            "DO UPDATE SET entries = entries + excluded.entries, authors = authors + excluded.authors",
            (commons_raw, entries, authors),
        )

    def _delete_from(self, commons_raw: bytes, log: int, cut: int) -> None:
        """Delete a log's entries from seq ``cut`` on, keeping the commons' counts (and the
        other entries' vectors readable: :meth:`_rebase_on`)."""
        self._rebase_on(log, cut)
        deleted = self._db.execute(
            "DELETE FROM entries WHERE log = ? AND seq >= ? RETURNING id, n, raw", (log, cut)).fetchall()
        ids = [bytes(r[0]) for r in deleted]
        self._unname((bytes(entry_id), int(n), bytes(raw)) for entry_id, n, raw in deleted)
        self._forget_placed(ids)
        removed = len(ids)
        if removed > 0:
            self._bump_counts(commons_raw, -removed, 0 if self._log_has_entries(log) else -1)

    def _unname(self, deleted: Iterable[tuple[bytes, int, bytes]]) -> None:
        """Take deleted entries (``(id, row number, bytes)``) out of ``named``."""
        rows: list[tuple[bytes, int]] = []
        for entry_id, n, raw in deleted:
            with contextlib.suppress(InvalidEntry):  # (one that no longer decodes was never named)
                rows.extend((key, n) for key in named_keys(decode_stored(raw, entry_id)))
        self._db.executemany("DELETE FROM named WHERE target = ? AND n = ?", rows)

    def _name_all(self) -> None:
        """Schema 10 migration (inside the caller's transaction): ``named`` filled from every
        stored entry, each decoded once (an entry that no longer decodes names nothing: it
        is never folded).  (100,000 entries: about a second, once.)"""
        after = 0
        while True:
            page = self._db.execute("SELECT n, id, raw FROM entries WHERE n > ? ORDER BY n LIMIT ?",
                                    (after, _PAGE_ROWS * 10)).fetchall()
            if not page:
                return
            rows: list[tuple[bytes, int]] = []
            for n, entry_id, raw in page:
                with contextlib.suppress(InvalidEntry):
                    rows.extend((key, n) for key in named_keys(decode_stored(bytes(raw), bytes(entry_id))))
            self._db.executemany("INSERT OR IGNORE INTO named (target, n) VALUES (?, ?)", rows)
            after = int(page[-1][0])

    def _fill_counts(self, *, place: bool = False, vectors: bool = False, named: bool = False) -> None:
        """Schema 3 migration: count every commons' entries once, and record the new version
        in the same transaction (a crash in between leaves the old version: counted again).
        ``place``: the schema 4 migration too (:meth:`_place_all`), in the same transaction;
        and the schema 5 and 6 ones (:meth:`_cache_with_rowids`, :meth:`_index_ids`).
        ``vectors`` (implied by ``place``): the schema 8 one (:meth:`_vectors_all`); ``named``:
        the schema 10 one (:meth:`_name_all`)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._index_ids()
            if place:
                self._place_all()
            if place or vectors:
                self._vectors_all()
            if named:
                self._name_all()
            self._cache_with_rowids()
            self._db.execute("DELETE FROM commons_counts")
            self._db.execute(_RECOUNT)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def _index_ids(self) -> None:
        """Schema 6 migration (inside the caller's transaction): ``entries`` rebuilt without
        its unique index on ``id`` (SQLite cannot drop a constraint's index), rows and row
        numbers kept, and every stored id put in ``ids`` (see ``_IDS_STATEMENTS``).  A fresh
        store only gets the tables.  (A million entries: seconds, once.)"""
        found = self._db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'").fetchone()
        rebuilt = found is not None and "UNIQUE" in str(found[0]).upper()
        if rebuilt:
            self._db.execute("ALTER TABLE entries RENAME TO entries_unique_id")
            self._db.execute(_ENTRIES_TABLE)
            self._db.execute("INSERT INTO entries (n, id, log, seq, kind, raw, clock, vv) "
                             "SELECT n, id, log, seq, kind, raw, clock, vv FROM entries_unique_id ORDER BY n")
            self._db.execute("DROP TABLE entries_unique_id")  # (and its indexes: made again below)
            self._db.execute(_ENTRIES_BY_LOG)
            self._db.execute(_ENTRIES_BY_CLOCK)
            self._db.execute(_ENTRIES_DEVICES)
        for statement in _IDS_STATEMENTS:
            self._db.execute(statement)
        if rebuilt:  # (the id tables were made just now, in this transaction: empty)
            self._db.execute("INSERT INTO ids (id, n) SELECT id, n FROM entries ORDER BY id")
            self._ids_merged_upto(int(self._db.execute("SELECT coalesce(max(n), 0) FROM entries").fetchone()[0]))

    def _merge_ids_if_due(self, last: int) -> None:
        """Move ``new_ids`` into ``ids`` once it holds about an eighth as many (see
        ``_MERGE_IDS_MIN``), inside the caller's transaction.  ``last``: the highest row
        number now.  How many ``new_ids`` holds is told without counting: every row number in
        it is above ``ids_merged.upto``, the highest when it was last merged (new rows are
        numbered max + 1); deleted rows only make a merge come early."""
        row = self._db.execute("SELECT upto FROM ids_merged").fetchone()
        upto = 0 if row is None else int(row[0])
        if last - upto < max(_MERGE_IDS_MIN, min(_MERGE_IDS_MAX, upto // 8)):
            return
        self._db.execute("INSERT INTO ids (id, n) SELECT id, n FROM new_ids")  # (in id order: the key's)
        self._db.execute("DELETE FROM new_ids")
        self._ids_merged_upto(last)

    def _ids_merged_upto(self, last: int) -> None:
        """Record that ``ids`` holds every id numbered up to ``last`` (one row)."""
        self._db.execute("DELETE FROM ids_merged")
        self._db.execute("INSERT INTO ids_merged (upto) VALUES (?)", (last,))

    def _cache_with_rowids(self) -> None:
        """Schema 5 migration (inside the caller's transaction): a ``cache`` table made
        WITHOUT ROWID by an earlier version is rebuilt as a rowid table, rows kept (the
        fold's checkpoint stays valid: no refold after the upgrade)."""
        found = self._db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cache'").fetchone()
        if found is None or "WITHOUT ROWID" not in str(found[0]).upper():
            return
        self._db.execute("ALTER TABLE cache RENAME TO cache_without_rowid")
        self._db.execute("CREATE TABLE cache (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self._db.execute("INSERT INTO cache (key, value) SELECT key, value FROM cache_without_rowid")
        self._db.execute("DROP TABLE cache_without_rowid")

    def tip(self, commons: CID, author: bytes) -> tuple[int, list[CID]]:
        """The author's real newest position, read from the entries themselves: ``(seq,
        ids at that seq)``, ``(0, [])`` for an empty log.  Call inside :meth:`transaction`
        before writing the author's next entry.  ``logs.max_seq`` is only an index (a
        damaged or hand-edited one would make a writer reuse a seq and fork its own log),
        so it is corrected here when it disagrees with the entries."""
        assert self._in_transaction, "tip() must be read inside the write transaction"
        log = self.existing_log(commons, author)
        if log is None:
            return 0, []
        rows = self._db.execute(
            "SELECT seq, id FROM entries WHERE log = ? AND seq = (SELECT max(seq) FROM entries WHERE log = ?)",
            (log, log),
        ).fetchall()
        seq = int(rows[0][0]) if rows else 0
        indexed = self._db.execute("SELECT max_seq FROM logs WHERE log = ?", (log,)).fetchone()
        if indexed is None or int(indexed[0]) != seq:
            self._db.execute("UPDATE logs SET max_seq = ? WHERE log = ?", (seq, log))
        return seq, [CID(bytes(r[1])) for r in rows]

    def put_cache(self, key: str, value: bytes) -> None:
        with self._no_wait():
            self._db.execute("INSERT OR REPLACE INTO cache (key, value) VALUES (?, ?)", (key, value))

    def get_cache(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM cache WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete_cache(self, prefix: str) -> None:
        with self._no_wait():
            self._db.execute("DELETE FROM cache WHERE key >= ? AND key < ?", (prefix, prefix + "\uffff"))

    # --- reading --------------------------------------------------------------------

    def has(self, entry_id: CID) -> bool:
        return self._db.execute(f"SELECT {_row_of('?1')}", (entry_id.raw,)).fetchone()[0] is not None

    def which_exist(self, ids: Iterable[bytes]) -> set[bytes]:
        """The subset of raw entry ids already stored (queried in chunks)."""
        found: set[bytes] = set()
        chunk: list[bytes] = []
        for raw_id in ids:
            chunk.append(raw_id)
            if len(chunk) == 500:
                found.update(self._exists_chunk(chunk))
                chunk = []
        if chunk:
            found.update(self._exists_chunk(chunk))
        return found

    def _exists_chunk(self, chunk: list[bytes]) -> Iterator[bytes]:
        marks = ",".join("?" * len(chunk))
        for (raw_id,) in self._db.execute(f"SELECT id FROM new_ids WHERE id IN ({marks}) "
                                           f"UNION ALL SELECT id FROM ids WHERE id IN ({marks})", chunk + chunk):
            yield bytes(raw_id)

    def get_raw(self, entry_id: CID) -> bytes | None:
        row = self._db.execute(f"SELECT raw FROM entries WHERE n = {_row_of('?1')}", (entry_id.raw,)).fetchone()
        return None if row is None else bytes(row[0])

    def get(self, entry_id: CID) -> Entry | None:
        raw = self.get_raw(entry_id)
        return None if raw is None else decode_entry(raw)

    def find_by_prefix(self, text: str) -> list[CID]:
        """Entry ids whose text form starts with ``text`` (for short ids typed by people)."""
        try:
            exact = CID.parse(text)
        except Exception:
            exact = None
        if exact is not None and self.has(exact):
            return [exact]
        matches = []
        for (raw_id,) in self._db.execute("SELECT id FROM entries"):
            cid = CID(bytes(raw_id))
            if str(cid).startswith(text):
                matches.append(cid)
                if len(matches) > 20:
                    break
        return matches

    def ids_at(self, commons: CID, author: bytes, seq: int) -> list[CID]:
        """Every stored entry at one position of one log (two or more means a fork)."""
        log = self.existing_log(commons, author)
        if log is None:
            return []
        rows = self._db.execute("SELECT id FROM entries WHERE log=? AND seq=?", (log, seq))
        return [CID(bytes(r[0])) for r in rows]

    def max_seq(self, commons: CID, author: bytes) -> int:
        row = self._db.execute(
            "SELECT max_seq FROM logs WHERE commons=? AND author=?", (commons.raw, author)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def existing_log(self, commons: CID, author: bytes) -> int | None:
        """The number of (commons, author)'s log, if the store has one (never creates it)."""
        key = (commons.raw, author)
        if key in self._log_ids:
            return self._log_ids[key]
        row = self._db.execute("SELECT log FROM logs WHERE commons=? AND author=?", key).fetchone()
        return None if row is None else int(row[0])

    def heads(self, commons: CID) -> list[Head]:
        """Per author, the entry (or fork siblings) at the highest sequence number held."""
        rows = self._db.execute(
            "SELECT logs.author, entries.seq, entries.id FROM logs JOIN entries "
            "ON entries.log = logs.log AND entries.seq = logs.max_seq "
            "WHERE logs.commons = ? ORDER BY logs.author, entries.id",
            (commons.raw,),
        )
        return [Head(bytes(a), int(s), CID(bytes(i))) for a, s, i in rows]

    def recent_heads(self, commons: CID, *, exclude_author: bytes | None = None, limit: int = 16) -> list[CID]:
        """Heads of the logs in ``commons`` whose newest entry arrived most recently.

        Outsiders' logs held on probation (``outsider_logs``) are left out: a local entry
        that depended on one would wait wherever that log was refused or has expired."""
        rows = self._db.execute(
            "SELECT logs.author, max(entries.n), entries.id FROM logs JOIN entries "
            "ON entries.log = logs.log AND entries.seq = logs.max_seq "
            "WHERE logs.commons = ? AND logs.log NOT IN (SELECT log FROM outsider_logs) "
            "GROUP BY logs.log ORDER BY max(entries.n) DESC",
            (commons.raw,),
        )
        result = []
        for author, _n, raw_id in rows:
            if exclude_author is not None and bytes(author) == exclude_author:
                continue
            result.append(CID(bytes(raw_id)))
            if len(result) == limit:
                break
        return result

    def forks(self, commons: CID | None = None) -> list[Fork]:
        query = (
            "SELECT logs.commons, logs.author, forks.seq, forks.log FROM forks "
            "JOIN logs ON logs.log = forks.log"
        )
        params: tuple[bytes, ...] = ()
        if commons is not None:
            query += " WHERE logs.commons = ?"
            params = (commons.raw,)
        result = []
        query += " ORDER BY logs.commons, logs.author, forks.seq"
        for c, a, s, log in self._db.execute(query, params).fetchall():
            ids = tuple(
                CID(bytes(r[0]))
                for r in self._db.execute(
                    "SELECT id FROM entries WHERE log=? AND seq=? ORDER BY id", (log, s)
                )
            )
            result.append(Fork(CID(bytes(c)), bytes(a), int(s), ids))
        return result

    # --- the audit (p2pc verify): what is stored, read as stored, nothing cached ------------

    def quick_check(self) -> str:
        """SQLite's own check of the file (``PRAGMA quick_check``): ``"ok"`` or its first
        finding. Raises ``sqlite3.DatabaseError`` when the file is too damaged to be checked."""
        return str(self._db.execute("PRAGMA quick_check").fetchone()[0])

    def stored_rows(self) -> Iterator[StoredRow]:
        """Every stored entry with the commons, author, log and seq it is indexed under, each
        log in sequence order, streamed (memory stays flat whatever the store holds)."""
        cursor = self._db.execute(
            "SELECT entries.id, entries.seq, entries.raw, logs.commons, logs.author, entries.log "
            "FROM entries JOIN logs ON logs.log = entries.log ORDER BY entries.log, entries.seq"
        )
        while rows := cursor.fetchmany(1000):
            for entry_id, seq, raw, commons, author, log in rows:
                yield StoredRow(bytes(entry_id), int(seq), bytes(raw), bytes(commons), bytes(author), int(log))

    def id_table_faults(self) -> tuple[int, int]:
        """``(entries not found by their id, rows of ids/new_ids naming no entry)``, for the
        audit (``p2pc verify``): the triggers keep both at 0 (``_IDS_STATEMENTS``), but the
        audit trusts nothing derived.  A wrong row number counts on both sides; two stored
        rows with one id count as one not found (an id table holds each id once)."""
        unfound = self._db.execute(
            "SELECT count(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM new_ids WHERE id = e.id AND n = e.n) "
            "AND NOT EXISTS (SELECT 1 FROM ids WHERE id = e.id AND n = e.n)").fetchone()[0]
        naming_none = "count(*) FROM {} t WHERE NOT EXISTS (SELECT 1 FROM entries WHERE n = t.n AND id = t.id)"
        stray = self._db.execute(
            f"SELECT (SELECT {naming_none.format('new_ids')}) + (SELECT {naming_none.format('ids')}) "
            "+ (SELECT count(*) FROM new_ids WHERE id IN (SELECT id FROM ids))").fetchone()[0]
        return int(unfound), int(stray)

    def named_faults(self) -> tuple[int, int] | None:
        """``(rows of named, rows the stored entries' bodies give)`` if the two differ, else
        None, for the audit (``p2pc verify``): a missing row would let the state fold
        take out a stranger's entry that another entry names, so the audit trusts nothing
        derived.  Compared as a sum of the rows' hashes, in a page of entries at a time (no
        set of every row in memory)."""
        def row_hash(target: bytes, n: int) -> int:
            return int.from_bytes(hashlib.blake2b(target + n.to_bytes(8, "big"), digest_size=8).digest(), "big")

        stored = [0, 0]
        after = 0
        while True:
            page = self._db.execute("SELECT n, id, raw FROM entries WHERE n > ? ORDER BY n LIMIT ?",
                                    (after, _PAGE_ROWS)).fetchall()
            if not page:
                break
            for n, entry_id, raw in page:
                with contextlib.suppress(InvalidEntry):  # (the audit reports those entries itself)
                    for key in named_keys(decode_stored(bytes(raw), bytes(entry_id))):
                        stored[0] += 1
                        stored[1] += row_hash(key, int(n))
            after = int(page[-1][0])
        listed = [0, 0]
        for target, n in self._db.execute("SELECT target, n FROM named"):
            listed[0] += 1
            listed[1] += row_hash(bytes(target), int(n))
        if listed[0] == stored[0] and listed[1] % 2**64 == stored[1] % 2**64:
            return None
        return listed[0], stored[0]

    def vector_faults(self) -> int:
        """How many placed entries hold a version vector that is not what their parents'
        stored vectors give (merged, with the entry's own seq), or none though every parent
        has one, or one whose rows do not read.  Read from the rows, the caches dropped; in
        the fold's order, a page at a time.  (An entry with a parent that has no vector, or
        is no longer stored, is not compared: nothing stored says what it should be.)"""
        self._vectors.clear()
        index = self._vectors
        # (As at insert, a parent the newest parent's vector reaches is not merged unless its
        # log forked: here the forks as stored, not the derived ``vv_forked``.)
        forked = {int(log) for (log,) in self._db.execute(
            "SELECT DISTINCT log FROM (SELECT log FROM entries GROUP BY log, seq HAVING count(*) > 1)")}
        faults = 0
        for page in self._placed_pages(_PAGE_ROWS):
            if len(self._clocks) > _CLOCK_CACHE_MAX:
                self._clocks.clear()
            for eid, log, seq, raw, placed_at in page:
                self._clocks[bytes(eid)] = int(placed_at)  # (parents' clocks, read in this order)
                try:
                    parents = _parents(decode_entry(bytes(raw)))
                    vectors = []
                    if parents:
                        newest = parents[0] if len(parents) == 1 else max(parents, key=self._known_clock)
                        top = index.vector(newest)
                        vectors.append(top)
                        for parent in parents:
                            if parent != newest:
                                p_log, p_seq = index.position(parent)
                                if p_log in forked or causal.get(top, p_log) < p_seq:
                                    vectors.append(index.vector(parent))
                    merged = causal.merge_all(vectors)
                except (InvalidEntry, MissingVector, ValueError):
                    continue
                expected = merged if causal.get(merged, log) >= seq else causal.put(merged, log, seq)
                try:
                    stored = index.vector(bytes(eid))
                except (MissingVector, ValueError):
                    faults += 1
                    continue
                # (Equal slot for slot, both ways: shared subtrees are not walked.)
                if not (causal.covers(stored, expected) and causal.covers(expected, stored)):
                    faults += 1
        self._vectors.clear()
        return faults

    def stored_fork_count(self) -> int:
        """How many (log, seq) positions hold more than one entry: the forks as stored,
        whatever the ``forks`` table (the evidence kept for them) says."""
        return int(self._db.execute(
            "SELECT count(*) FROM (SELECT log, seq FROM entries GROUP BY log, seq HAVING count(*) > 1)"
        ).fetchone()[0])

    def commons_ids(self) -> list[CID]:
        """The commons held, oldest first, without their counts (O(commons))."""
        return [CID(bytes(r[0])) for r in self._db.execute("SELECT id FROM commons ORDER BY created, id")]

    def commons_list(self) -> list[CommonsInfo]:
        """The commons held with their entry and author counts, read from ``commons_counts``
        (kept by every insert and delete), so this costs O(commons), not O(entries)."""
        return [
            CommonsInfo(CID(bytes(cid)), name, created, int(entries), int(authors))
            for cid, name, created, entries, authors in self._db.execute(
                "SELECT c.id, c.name, c.created, coalesce(n.entries, 0), coalesce(n.authors, 0) FROM commons c "
                "LEFT JOIN commons_counts n ON n.commons = c.id ORDER BY c.created, c.id"
            ).fetchall()
        ]

    def counts(self) -> dict[CID, tuple[int, int]]:
        """``(entries, authors with entries)`` per commons, from the kept counts."""
        return {CID(bytes(c)): (int(e), int(a)) for c, e, a in self._db.execute(
            "SELECT commons, entries, authors FROM commons_counts WHERE entries > 0")}

    def has_commons(self, commons: CID) -> bool:
        return self._db.execute("SELECT 1 FROM commons WHERE id=?", (commons.raw,)).fetchone() is not None

    def count(self, commons: CID | None = None) -> int:
        """How many entries the store (or one commons) holds, from the kept counts."""
        if commons is None:
            return int(self._db.execute("SELECT coalesce(sum(entries), 0) FROM commons_counts").fetchone()[0])
        row = self._db.execute("SELECT entries FROM commons_counts WHERE commons = ?", (commons.raw,)).fetchone()
        return 0 if row is None else int(row[0])

    def log_count(self, commons: CID, author: bytes) -> int:
        """How many entries one author's log holds.  A log without fork evidence holds
        exactly seqs 1..max_seq (ingest refuses gaps; deletions cut a suffix and lower
        max_seq), so that is read from ``logs`` at once; a forked log is counted over the
        (log, seq) index.  Why: the outsiders' screen asks this per author per stored batch,
        and counting a log's entries each time grew with the log (a quarter of a 100,000
        entry sync's store time)."""
        log = self.existing_log(commons, author)
        if log is None:
            return 0
        if self._db.execute("SELECT 1 FROM forks WHERE log = ? LIMIT 1", (log,)).fetchone() is None:
            row = self._db.execute("SELECT max_seq FROM logs WHERE log = ?", (log,)).fetchone()
            return 0 if row is None else int(row[0])
        return int(self._db.execute("SELECT count(*) FROM entries WHERE log = ?", (log,)).fetchone()[0])

    def log_after_size(self, commons: CID, author: bytes, after_seq: int) -> tuple[int, int]:
        """How many entries, and how many bytes, one author's log holds above ``after_seq``
        (what ``iter_raw(commons, author=author, after_seq=after_seq)`` yields), counted by
        SQLite over the (log, seq) index without reading the entries into Python."""
        log = self.existing_log(commons, author)
        if log is None:
            return 0, 0
        count, nbytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(raw)), 0) FROM entries WHERE log = ? AND seq > ?",
            (log, after_seq),
        ).fetchone()
        return int(count), int(nbytes)

    def iter_raw(
        self,
        commons: CID | None = None,
        *,
        author: bytes | None = None,
        kind: str | None = None,
        after_seq: int = 0,
        order: str = "arrival",
    ) -> Iterator[bytes]:
        """Stored entries' bytes, streamed.

        ``order="arrival"`` yields in arrival order; ``order="log"`` yields each author's
        log in sequence order (a causally valid order for chain checks).  ``after_seq``
        skips entries at or below that sequence number (with ``author``: the part of a log
        a peer already holds, never read, thanks to the (log, seq) index).
        """
        clauses = []
        params: list[object] = []
        if commons is not None:
            clauses.append("logs.commons = ?")
            params.append(commons.raw)
        if author is not None:
            clauses.append("logs.author = ?")
            params.append(author)
        if kind is not None:
            clauses.append("entries.kind = ?")
            params.append(kind)
        if after_seq:
            clauses.append("entries.seq > ?")
            params.append(after_seq)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        order_by = "entries.n" if order == "arrival" else "logs.log, entries.seq, entries.id"
        cursor = self._db.execute(
            f"SELECT entries.raw FROM entries JOIN logs ON logs.log = entries.log{where} ORDER BY {order_by}",
            params,
        )
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                return
            for (raw,) in rows:
                yield bytes(raw)

    def iter_log_clocked(self, commons: CID, author: bytes, after_seq: int = 0,
                         chunk: int = 1000) -> Iterator[tuple[int | None, bytes]]:
        """``(clock, raw bytes)`` of one author's entries above ``after_seq``, in log order
        (seq, then id), the clock as placed at insert (None: waiting for a parent).  For a
        sender merging logs by clock (``p2pcommons.node.replica``); ``chunk``: rows read
        at a time (a merge holds one chunk per log).

        Each chunk is one finished statement, the next one found from the last row's (seq,
        id): no cursor stays open between chunks.  Why: a sender takes its batches one at a
        time in the daemon's store thread, with that thread's writes in between; an open
        cursor kept the connection on an old snapshot, and once another connection (the
        state worker, the ingest process) committed, each of those writes failed at once
        with SQLITE_BUSY."""
        log = self.existing_log(commons, author)
        if log is None:
            return
        rows = self._db.execute(
            "SELECT clock, raw, seq, id FROM entries WHERE log = ? AND seq > ? ORDER BY seq, id LIMIT ?",
            (log, after_seq, chunk)).fetchall()
        while rows:
            for clock, raw, _, _ in rows:
                yield (None if clock is None else int(clock)), bytes(raw)
            if len(rows) < chunk:
                return
            _, _, seq, entry_id = rows[-1]
            rows = self._db.execute(
                "SELECT clock, raw, seq, id FROM entries WHERE log = ?1 AND seq >= ?2 AND (seq > ?2 OR id > ?3) "
                "ORDER BY seq, id LIMIT ?4", (log, seq, entry_id, chunk)).fetchall()

    def iter_entries(self, commons: CID | None = None, **kwargs: object) -> Iterator[Entry]:
        for raw in self.iter_raw(commons, **kwargs):  # type: ignore[arg-type]
            yield decode_entry(raw)

    def arrived_after(self, commons: CID, after: int) -> bool:
        """Whether any entry of the commons was stored after arrival number ``after`` (one
        rowid range probe: cheap when few or none did)."""
        return self._db.execute(
            "SELECT 1 FROM entries CROSS JOIN logs ON logs.log = entries.log "
            "WHERE entries.n > ? AND logs.commons = ? LIMIT 1", (after, commons.raw)).fetchone() is not None

    # --- outsiders: who may store what (p2pcommons/outsiders.py keeps the policy) ----------
    # ``insiders``: authors this store has seen become members of a commons (the genesis
    # author and stewards; the author of a join an insider admitted), never removed.
    # ``vouched``: ids an insider's entry names that are not stored yet (``admits``: the id
    # is a join the insider admitted).  ``outsider_logs``: non-members' logs stored on
    # probation from the network, with the time of their last stored entry (they expire).

    def insiders_among(self, commons: CID, authors: Iterable[bytes]) -> set[bytes]:
        """The given authors that are insiders of ``commons``.  A store from before the
        table existed counts every author it holds a log of (nothing held is ever limited)."""
        wanted = list(set(authors))
        if not wanted:
            return set()
        source = "insiders WHERE" if self.insiders_ready(commons) else "logs WHERE max_seq > 0 AND"
        found: set[bytes] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(bytes(r[0]) for r in self._db.execute(
                f"SELECT author FROM {source} commons = ? AND author IN ({marks})", (commons.raw, *chunk)))
        return found

    def insiders_ready(self, commons: CID) -> bool:
        row = self._db.execute("SELECT 1 FROM insiders WHERE commons = ? LIMIT 1", (commons.raw,)).fetchone()
        return row is not None

    def add_insiders(self, commons: CID, authors: Iterable[bytes]) -> None:
        """Record insiders (first backfilling a store from before the table) and take their
        logs off probation."""
        authors = list(authors)
        if not self.insiders_ready(commons):
            self._db.execute("INSERT OR IGNORE INTO insiders (commons, author) SELECT commons, author FROM logs "
                             "WHERE commons = ? AND max_seq > 0", (commons.raw,))
        self._db.executemany("INSERT OR IGNORE INTO insiders (commons, author) VALUES (?, ?)",
                             [(commons.raw, a) for a in authors])
        self._db.executemany(
            "DELETE FROM outsider_logs WHERE log = (SELECT log FROM logs WHERE commons=? AND author=?)",
            [(commons.raw, a) for a in authors])

    def vouched_among(self, ids: Iterable[bytes]) -> dict[bytes, bool]:
        """Of these raw ids, the ones an insider named: id -> whether it was admitted.
        Usually nothing is vouched for (a vouch lasts until the entry arrives): then one
        probe answers, instead of a query per 500 ids of every stored batch."""
        found: dict[bytes, bool] = {}
        if self._db.execute("SELECT 1 FROM vouched LIMIT 1").fetchone() is None:
            return found
        chunk: list[bytes] = []
        for raw_id in [*ids, None]:
            if raw_id is not None:
                chunk.append(raw_id)
            if chunk and (raw_id is None or len(chunk) == 500):
                marks = ",".join("?" * len(chunk))
                for i, admits in self._db.execute(f"SELECT id, admits FROM vouched WHERE id IN ({marks})", chunk):
                    found[bytes(i)] = bool(admits)
                chunk = []
        return found

    def add_vouched(self, commons: CID, ids: Iterable[tuple[bytes, bool]]) -> None:
        self._db.executemany("INSERT INTO vouched (id, commons, admits) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
                             "SET admits = max(admits, excluded.admits)",
                             [(i, commons.raw, int(a)) for i, a in ids])

    def drop_vouched(self, ids: Iterable[bytes]) -> None:
        self._db.executemany("DELETE FROM vouched WHERE id = ?", [(i,) for i in ids])

    def author_of(self, entry_id: bytes) -> bytes | None:
        row = self._db.execute("SELECT logs.author FROM entries JOIN logs ON logs.log = entries.log "
                               f"WHERE entries.n = {_row_of('?1')}", (entry_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def outsider_entries(self, commons: CID) -> int:
        """How many entries on probation ``commons`` holds."""
        return int(self._db.execute("SELECT count(*) FROM outsider_logs o JOIN entries e ON e.log = o.log "
                                    "AND e.seq >= o.first WHERE o.commons = ?", (commons.raw,)).fetchone()[0])

    def probation_start(self, commons: CID, author: bytes) -> int | None:
        """The first seq of (commons, author)'s log on probation, if it is."""
        row = self._db.execute("SELECT o.first FROM outsider_logs o JOIN logs l ON l.log = o.log "
                               "WHERE l.commons = ? AND l.author = ?", (commons.raw, author)).fetchone()
        return None if row is None else int(row[0])

    def has_outsider_logs(self, commons: CID) -> bool:
        return self._db.execute("SELECT 1 FROM outsider_logs WHERE commons = ? LIMIT 1",
                                (commons.raw,)).fetchone() is not None

    def put_on_probation(self, commons: CID, firsts: dict[bytes, int], now: float) -> None:
        """Mark outsiders' logs as on probation from seq ``firsts[author]``, as of ``now``
        (the time of their last stored entry)."""
        self._db.executemany("INSERT INTO outsider_logs (log, commons, stored, first) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT(log) DO UPDATE SET stored = excluded.stored, "
                             "first = excluded.first",
                             [(self.log_id(commons, a), commons.raw, now, f) for a, f in firsts.items()])

    def release_probation(self, commons: CID, authors: Iterable[bytes]) -> None:
        self._db.executemany(
            "DELETE FROM outsider_logs WHERE log = (SELECT log FROM logs WHERE commons=? AND author=?)",
            [(commons.raw, a) for a in authors])

    def pin_logs_of(self, ids: Iterable[bytes]) -> None:
        """Take the logs holding these entries off probation (an insider's entry needs them)."""
        self._db.executemany(
            f"DELETE FROM outsider_logs WHERE log = (SELECT log FROM entries WHERE n = {_row_of('?1')})",
            [(i,) for i in ids])

    def expire_outsider_logs(self, before: float,
                             cut_at: Callable[[CID, bytes, int], int | None]) -> set[CID]:
        """For every log on probation whose last entry was stored before ``before`` (a
        wall-clock time): delete its entries from seq ``cut_at(commons, author, first)`` on,
        or (None) take it off probation.  Returns the commons that lost entries; their
        cached commons state is dropped in the same transaction (it counted those entries)."""
        affected: set[CID] = set()
        with self.transaction():
            rows = self._db.execute(
                "SELECT o.log, o.commons, l.author, o.first FROM outsider_logs o JOIN logs l ON l.log = o.log "
                "WHERE o.stored < ?", (before,)).fetchall()
            for log, commons_raw, author, first in rows:
                commons = CID(bytes(commons_raw))
                cut = cut_at(commons, bytes(author), int(first))
                self._db.execute("DELETE FROM outsider_logs WHERE log = ?", (log,))
                if cut is None:
                    continue
                self._delete_from(bytes(commons_raw), int(log), cut)
                self._db.execute("DELETE FROM forks WHERE log = ? AND seq >= ?", (log, cut))
                self._db.execute("UPDATE logs SET max_seq = ? WHERE log = ?", (cut - 1, log))
                affected.add(commons)
            for commons_id in affected:
                self.delete_cache(f"state/{commons_id}/")
        return affected

    def _cut_undecodable_logs(self) -> None:
        """Upgrade from schema 1: cut every log at its first entry that the decoder now refuses.

        Why: a store written before the bounded numbers (protocols/entry.md §3) may hold an
        entry with a time or an amount beyond them (a hostile author's: no honest client
        wrote one). Decoding it now raises, and every fold of its commons would fail for
        good. Such an entry, and its author's later entries (which chain through it), are
        no longer held, exactly as if they had never arrived; entries of others that depend
        on them wait, as for any missing dependency. The cached states go: they counted them.
        Runs once, when a schema 1 store is first opened."""
        cuts: dict[int, int] = {}
        for log, seq, raw in self._db.execute("SELECT log, seq, raw FROM entries"):
            if seq >= cuts.get(log, seq + 1):
                continue
            try:
                decode_entry(bytes(raw))
            except InvalidEntry:
                cuts[log] = seq
        if not cuts:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for log, cut in cuts.items():
                self._db.execute("DELETE FROM entries WHERE log = ? AND seq >= ?", (log, cut))
                self._db.execute("DELETE FROM forks WHERE log = ? AND seq >= ?", (log, cut))
                self._db.execute("UPDATE logs SET max_seq = ? WHERE log = ?", (cut - 1, log))
            self._db.execute("DELETE FROM cache")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # --- the state fold's archive (local derived data, never replicated) ------------------
    # Rows are keyed by a *space*: one per live fold (commons id + a random token), so two
    # processes folding the same commons (a daemon and a CLI command) never share rows;
    # ``fold_archive_owner`` records which process owns a space, so dead ones are dropped.
    # A row is a *segment*: the records of a run of consecutive seqs of one log, encoded by
    # p2pcommons.state.archive.  Why: an author's archived seqs are always a prefix of their
    # log, so segments append in key order (cheap B-tree writes, one row per run instead of
    # one per entry), and an entry's record is found through its (log, seq).  Except where a
    # log forked: two entries share a seq there, so the records of a forked key from its fork
    # point on are rows of their own in ``fold_forked``, found by id (``ordinal``: how many
    # records the space held before it, so a checkpoint's archive can be cut back to its count).

    _ARCHIVE_SCHEMA = (
        "DROP TABLE IF EXISTS fold_archive;"  # the per-entry layout of earlier versions (a cache)
        "CREATE TABLE IF NOT EXISTS fold_segments (space BLOB NOT NULL, log INTEGER NOT NULL, "
        "first INTEGER NOT NULL, count INTEGER NOT NULL, aidx INTEGER NOT NULL, records BLOB NOT NULL, "
        "PRIMARY KEY (space, log, first)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS fold_forked (space BLOB NOT NULL, id BLOB NOT NULL, aidx INTEGER NOT NULL, "
        "seq INTEGER NOT NULL, ordinal INTEGER NOT NULL, records BLOB NOT NULL, "
        "PRIMARY KEY (space, id)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS fold_archive_owner (space BLOB PRIMARY KEY, pid INTEGER NOT NULL) WITHOUT ROWID;"
    )

    def _archive_table(self) -> None:
        if not getattr(self, "_archive_ready", False):
            names = {str(r[0]) for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE name IN ('fold_segments', 'fold_forked', 'fold_archive_owner', "
                "'fold_archive')")}
            if names != {"fold_segments", "fold_forked", "fold_archive_owner"}:
                with self._no_wait():  # only writes when the tables are missing or outdated
                    if self._in_transaction:  # executescript would COMMIT the caller's transaction
                        for statement in filter(None, (s.strip() for s in self._ARCHIVE_SCHEMA.split(";"))):
                            self._db.execute(statement)
                    else:
                        self._db.executescript(self._ARCHIVE_SCHEMA)
            self._archive_ready = True

    def archive_open(self, space: bytes, pid: int, copy_from: bytes | None = None) -> None:
        """Register a new space owned by process ``pid`` (with a copy of another's rows)."""
        self._archive_table()
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO fold_archive_owner (space, pid) VALUES (?, ?)", (space, pid))
            if copy_from is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO fold_segments SELECT ?, log, first, count, aidx, records "
                    "FROM fold_segments WHERE space=?", (space, copy_from))
                self._db.execute(
                    "INSERT OR REPLACE INTO fold_forked SELECT ?, id, aidx, seq, ordinal, records "
                    "FROM fold_forked WHERE space=?", (space, copy_from))

    def archive_spaces(self) -> list[tuple[bytes, int]]:
        """``(space, owner pid)`` of every registered space."""
        self._archive_table()
        return [(bytes(s), int(p)) for s, p in self._db.execute("SELECT space, pid FROM fold_archive_owner")]

    def archive_drop(self, space: bytes) -> None:
        """Delete a space and its rows."""
        self._archive_table()
        with self.transaction():
            self._db.execute("DELETE FROM fold_segments WHERE space=?", (space,))
            self._db.execute("DELETE FROM fold_forked WHERE space=?", (space,))
            self._db.execute("DELETE FROM fold_archive_owner WHERE space=?", (space,))

    def archive_put(self, space: bytes, segments: Sequence[tuple[int, int, int, int, bytes]],
                    forked: Sequence[tuple[bytes, int, int, int, bytes]] = ()) -> None:
        """Segments of records a state fold evicted from memory: ``(log, first seq, count,
        author index, encoded records)`` (see p2pcommons.state.archive); and records of forked
        keys from their fork point on, one each: ``(id, author index, seq, ordinal, encoded
        record)``."""
        self._archive_table()
        with self.transaction(durable=False):  # (derived data: see transaction)
            self._db.executemany(
                "INSERT OR REPLACE INTO fold_segments (space, log, first, count, aidx, records) "
                "VALUES (?, ?, ?, ?, ?, ?)", [(space, *segment) for segment in segments])
            if forked:
                self._db.executemany(
                    "INSERT OR REPLACE INTO fold_forked (space, id, aidx, seq, ordinal, records) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [(space, *row) for row in forked])

    def archive_find_forked(self, space: bytes, entry_id: bytes) -> tuple[int, int, bytes] | None:
        """``(author index, seq, encoded record)`` of a forked key's archived entry, or None."""
        self._archive_table()
        row = self._db.execute("SELECT aidx, seq, records FROM fold_forked WHERE space=? AND id=?",
                               (space, entry_id)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))

    def archive_forked(self, space: bytes) -> Iterator[tuple[bytes, int, int]]:
        """``(id, author index, seq)`` of every archived entry of a forked key (a scan)."""
        self._archive_table()
        for raw, aidx, seq in self._db.execute("SELECT id, aidx, seq FROM fold_forked WHERE space=?", (space,)):
            yield bytes(raw), int(aidx), int(seq)

    def archive_find(self, space: bytes, entry_id: bytes) -> tuple[int, int, int, bytes] | None:
        """``(index in the segment, author index, first seq, encoded records)`` of the segment
        that would hold a stored entry's record (by the entry's log and seq), or None."""
        self._archive_table()
        row = self._db.execute(
            "SELECT e.seq - s.first, s.aidx, s.first, s.records FROM entries e JOIN fold_segments s "
            "ON s.space = ?1 AND s.log = e.log AND s.first = (SELECT max(first) FROM fold_segments "
            f"WHERE space = ?1 AND log = e.log AND first <= e.seq) WHERE e.n = {_row_of('?2')} "
            "AND e.seq < s.first + s.count", (space, entry_id)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]), bytes(row[3]))

    def archive_of_log(self, space: bytes, commons: CID, author: bytes, aidx: int, seq: int
                       ) -> list[tuple[int, bytes]]:
        """``(first seq, encoded records)`` of the segments of ``author``'s log that hold
        records from ``seq`` on, then ``(seq, encoded record)`` of that key's forked records
        from ``seq`` on (one each; ``aidx``: its author index in this space)."""
        self._archive_table()
        found = [(int(first), bytes(blob)) for first, blob in self._db.execute(
            "SELECT s.first, s.records FROM logs l JOIN fold_segments s ON s.space = ? AND s.log = l.log "
            "WHERE l.commons = ? AND l.author = ? AND s.first + s.count > ?", (space, commons.raw, author, seq))]
        found += [(int(at), bytes(blob)) for at, blob in self._db.execute(
            "SELECT seq, records FROM fold_forked WHERE space = ? AND aidx = ? AND seq >= ?", (space, aidx, seq))]
        return found

    def entries_naming(self, commons: CID, entry_id: bytes, except_author: bytes) -> list[tuple[bytes, bytes]]:
        """``(raw, id)`` of the commons' stored entries, but for ``except_author``'s, that
        ``named`` lists as linking to ``entry_id`` in their body (a few rows read; a key is 8
        bytes of the id, so a caller that must be sure decodes them)."""
        return [(bytes(raw), bytes(found)) for raw, found in self._db.execute(
                "SELECT entries.raw, entries.id FROM named CROSS JOIN entries ON entries.n = named.n "
                "CROSS JOIN logs ON logs.log = entries.log "
                "WHERE named.target = ? AND logs.commons = ? AND logs.author != ?",
                (entry_id[_NAMED_KEY], commons.raw, except_author))]

    def names_key(self, commons: CID, kind: str, key: bytes) -> bool:
        """Whether a stored entry of ``kind`` in the commons holds the bytes ``key``: for a
        kind with an index of its own (``_INDEXED_KINDS``: a few rows read), else one scan of
        the commons' entries."""
        if kind in _INDEXED_KINDS:  # (the kind written out: a partial index serves only its literal)
            return self._db.execute(
                f"SELECT 1 FROM entries CROSS JOIN logs ON logs.log = entries.log WHERE entries.kind = '{kind}' "
                "AND logs.commons = ? AND instr(entries.raw, ?) > 0 LIMIT 1", (commons.raw, key)).fetchone() is not None
        return self._db.execute(
            "SELECT 1 FROM entries CROSS JOIN logs ON logs.log = entries.log WHERE logs.commons = ? "
            "AND entries.kind = ? AND instr(entries.raw, ?) > 0 LIMIT 1", (commons.raw, kind, key)
        ).fetchone() is not None

    def archive_kind(self, entry_id: bytes) -> str | None:
        """A stored entry's kind, without decoding it."""
        row = self._db.execute(f"SELECT kind FROM entries WHERE n = {_row_of('?1')}", (entry_id,)).fetchone()
        return None if row is None else str(row[0])

    def archive_segments(self, space: bytes, *, records: bool = True) -> Iterator[tuple[int, int, int, bytes]]:
        """``(author index, first seq, count, encoded records)`` of every segment (a scan: for
        summaries and listings, not per entry; without ``records``, empty bytes for them).
        Not the frames (rows with a negative ``log`` that archives before segment version 5
        wrote: p2pcommons.state.archive)."""
        self._archive_table()
        column = "records" if records else "x''"
        for aidx, first, count, blob in self._db.execute(
                f"SELECT aidx, first, count, {column} FROM fold_segments WHERE space=? AND log > 0", (space,)):
            yield int(aidx), int(first), int(count), bytes(blob)

    def archive_count(self, space: bytes) -> int:
        self._archive_table()
        return int(self._db.execute("SELECT coalesce(sum(count), 0) FROM fold_segments WHERE space=?",
                                    (space,)).fetchone()[0]) + self.archive_forked_count(space)

    def archive_forked_count(self, space: bytes) -> int:
        self._archive_table()
        return int(self._db.execute("SELECT count(*) FROM fold_forked WHERE space=?", (space,)).fetchone()[0])

    def archive_clear(self, space: bytes) -> None:
        self._archive_table()
        with self._no_wait():
            self._db.execute("DELETE FROM fold_segments WHERE space=?", (space,))
            self._db.execute("DELETE FROM fold_forked WHERE space=?", (space,))

    def archive_truncate(self, space: bytes, commons: CID, upto: dict[bytes, int], evicted: int) -> None:
        """Keep, per author, only the records up to seq ``upto[author]`` (none for an author
        not named), and of forked keys' records the first ``evicted`` archived.  Segments never
        straddle such a point: the fold writes one batch of segments per eviction, and ``upto``
        is where an earlier eviction ended."""
        self._archive_table()
        with self.transaction():
            self._db.execute("DELETE FROM fold_forked WHERE space=? AND ordinal>=?", (space, evicted))
            logs = self._db.execute("SELECT DISTINCT log FROM fold_segments WHERE space=?", (space,)).fetchall()
            for (log,) in logs:
                row = self._db.execute("SELECT author FROM logs WHERE log=? AND commons=?",
                                       (log, commons.raw)).fetchone()
                keep = 0 if row is None else upto.get(bytes(row[0]), 0)
                self._db.execute("DELETE FROM fold_segments WHERE space=? AND log=? AND first>?", (space, log, keep))

