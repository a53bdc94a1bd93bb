"""Query tables: what ``p2pc state``, ``members`` and ``contributions`` print, kept in SQLite
beside the fold's checkpoint, so a process on its own answers without loading the fold.

Why: the engine's checkpoint (:mod:`.checkpoint`) is the whole fold; a CLI process that
resumes from it pays O(state) — 15 to 17 s at a million entries — to print a hundred members
or a page of contributions (issue 12).  When the engine persists the fold
(:func:`.engine._persist`), it also writes these tables from the same state:

* ``query_members``: one row per member, the ``p2pc members --json`` row;
* ``query_contributions``: one row per contribution, the ``p2pc contributions --json`` row,
  indexed by ``(status, time, id)`` so a page is a range read;
* ``query_summary``: one row per commons, ``p2pc state --json``'s document
  without the proposals (their counts instead), the rules, and the *position* the tables
  hold — the store's arrival number and entry count of the commons when they were written.

Writes are incremental: the writer remembers the packed contribution records it last wrote
(a shallow copy: the records are shared bytes, :class:`.compact.Contributions`) and writes
only the rows that differ; members are few and rewritten.  A table written by another
process (its ``writer`` token differs) is rewritten whole once.

Readers trust the tables only when they are *current*: no entry of the commons arrived
after the recorded arrival number and the commons' entry count is the recorded one (an
expiry deletes entries).  Otherwise :func:`read` returns None and the caller folds as before (and persists, which
makes the tables current again); ``p2pc verify`` drops them when it finds the fold wrong.
``p2pc contribute`` without a daemon checks the author's standing here and, when this is
enough to decide, adds its row itself (:func:`contributed`): the tables then say the entry
is not folded yet (``unfolded_count``), so ``p2pc state`` prints the hash of the last fold
with that note until a fold runs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .dagcbor import CID
from .identity import author_id_text

if TYPE_CHECKING:
    from .state.views import CommonsState
    from .store import Store

VERSION = 1

# (The summary is a table of its own, not a key of the store's ``cache`` table: that one is
# WITHOUT ROWID and holds the checkpoint, 100+ MB at a million entries, whose overflow pages
# SQLite reads whole to compare keys, so any lookup there costs half a second.)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS query_summary (
    commons BLOB PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS query_members (
    commons BLOB NOT NULL,
    key TEXT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (commons, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS query_contributions (
    commons BLOB NOT NULL,
    id BLOB NOT NULL,
    text_id TEXT NOT NULL,
    status TEXT NOT NULL,
    time INTEGER NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (commons, id)
) WITHOUT ROWID;
"""
# The contributions' secondary indexes (a page of a status, or of all, by time): by name, as a
# whole rewrite drops and builds them again (see ``write``).
_INDEXES: dict[str, str] = {
    "query_contributions_order": "query_contributions (commons, status, time, text_id)",
    "query_contributions_time": "query_contributions (commons, time, text_id)",
}
# A whole rewrite of at least this many rows builds the indexes after its rows, not with them.
REBUILD_ROWS = 4096


def _put_summary(store: Store, commons: CID, doc: dict[str, Any]) -> None:
    store.db.execute("INSERT OR REPLACE INTO query_summary (commons, doc) VALUES (?, ?)",
                     (commons.raw, json.dumps(doc, sort_keys=True)))


def drop(store: Store, commons: CID) -> None:
    """Forget the commons' tables (``p2pc verify`` found the fold wrong): the next command
    folds, and writes them again."""
    try:
        store.db.execute("DELETE FROM query_summary WHERE commons = ?", (commons.raw,))
    except sqlite3.Error:  # (no tables yet, or a busy store: the verify's next run finds it again)
        return


# --- rows: the --json shapes, built once for the tables and the views ------------------------


class AuthorIds:
    """Author ids (``z6Mk…``) each encoded once: a commons has few authors and many rows."""

    def __init__(self) -> None:
        self._ids: dict[bytes, str] = {}

    def __call__(self, key: bytes) -> str:
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = author_id_text(key)
        return found


def member_rows(st: CommonsState) -> list[tuple[str, dict[str, Any]]]:
    """``(hex key, row)`` of every member, sorted by key: ``p2pc members --json``'s rows."""
    rows = []
    for k, m in sorted(st.members.items()):
        keys = st.keys_of(bytes.fromhex(k))
        rows.append((k, {
            "author": author_id_text(bytes.fromhex(k)), "name": m["name"], "roles": m["roles"], "status": m["status"],
            "since": m["since"], "warning_count": m["warnings"],
            "keys": [{"author": author_id_text(x["key"]), "own": x["own"], "status": x["status"],
                      "forked_at": x["forked_at"]} for x in keys],
        }))
    return rows


def contribution_row(entry_id: str, c: Any, time: int, text: AuthorIds) -> dict[str, Any]:
    """One ``p2pc contributions --json`` row (without the API's ``my_verdict``)."""
    return {"id": entry_id, "time": time, "author": text(c.author), "title": c.title, "kind": c.kind, "ref": c.ref,
            "claimed": c.claimed, "value": c.value, "status": c.status,
            "accepts": [text(a) for a in sorted(c.accepts)], "rejects": [text(a) for a in sorted(c.rejects)],
            "outside": c.outside}


def state_document(st: CommonsState, *, proposals: bool = True) -> dict[str, Any]:
    """``p2pc state --json`` of a folded state: the summary with author ids as z6Mk… text and
    every count named as one (``member_count``, not ``members``: docs/json.md), the proposals
    counted by status (``proposal_counts``) and, with ``proposals`` (``--full``), listed."""
    summary: dict[str, Any] = st.summary()
    stable = summary["stable"]
    who = AuthorIds()
    doc: dict[str, Any] = {
        "commons": summary["commons"],
        "name": summary["name"],
        "state_hash": summary["state_hash"],
        "valid": summary["valid"],
        "entry_count": summary["entries"],
        "waiting_count": summary["waiting"],
        "unfolded_count": 0,
        "member_count": summary["members"],
        "pending_join_count": len(st.canonical_part("joins")),
        "contribution_counts": summary["contributions"],
        "rules": summary["rules"],
        "stable": {
            "stable_entry_count": stable["stable_entries"],
            "tentative_entry_count": stable["tentative_entries"],
            "frontier": {who(bytes.fromhex(k)): v for k, v in stable["frontier"].items()},
            "held_back_by": [who(bytes.fromhex(k)) for k in stable["held_back_by"]],
            "retired": [who(bytes.fromhex(k)) for k in stable["retired"]],
        },
    }
    table = st.canonical_part("proposals")
    counts: dict[str, int] = {}
    for p in table.values():
        counts[p["status"]] = counts.get(p["status"], 0) + 1
    doc["proposal_counts"] = counts
    if proposals:
        doc["proposals"] = {
            cid: {**{k: v for k, v in p.items() if k not in ("yes", "no")},
                  "author": who(bytes.fromhex(p["author"])), "yes_count": len(p["yes"]), "no_count": len(p["no"])}
            for cid, p in table.items()
        }
    return doc


def summary_of(st: CommonsState) -> dict[str, Any]:
    """``p2pc state --json`` without ``--full`` (no ``proposals`` map: its counts)."""
    return state_document(st, proposals=False)


# --- writing (the engine, when it persists the fold) -----------------------------------------


class _Baseline:
    """What this process last wrote: the writer token and a copy of the contributions table
    as it was written (a copy-on-write copy of a compact table shares every row with the
    live one, so it costs what changed since, not a second table).  (A plain class: the
    readers of this module, the CLI's hot commands, must not pay for ``dataclasses``.)"""

    __slots__ = ("table", "token")

    def __init__(self, token: str, table: Mapping[CID, Any] | None = None) -> None:
        self.token = token
        self.table: Mapping[CID, Any] = {} if table is None else table


_baselines: dict[tuple[str, bytes], _Baseline] = {}


def _copy(table: Mapping[CID, Any]) -> Mapping[CID, Any]:
    """The table as it is now, for the next write's comparison."""
    from .state.compact import Packed  # (the fold's side only: the CLI's readers stay lean)

    return table.copy() if isinstance(table, Packed) else dict(table)


def _changes(table: Mapping[CID, Any], before: Mapping[CID, Any]) -> tuple[list[CID], list[CID]]:
    """Ids whose record differs from ``before``'s (or that it lacks), and ids only ``before``
    has: in O(changes) when both are compact tables sharing their rows (:meth:`Packed.delta`)."""
    from .state.compact import Packed

    if isinstance(table, Packed) and isinstance(before, Packed):
        return table.delta(before)
    missing = object()
    return ([cid for cid, c in table.items() if before.get(cid, missing) != c],
            [cid for cid in before if cid not in table])


def ensure_schema(store: Store) -> None:
    """Create the tables if missing, inside the caller's transaction (statement by
    statement: ``executescript`` would commit it first)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            store.db.execute(statement)
    _create_indexes(store)


def _create_indexes(store: Store) -> None:
    for name, on in _INDEXES.items():
        store.db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


def write(store: Store, st: CommonsState, *, max_n: int, stored: int, key: tuple[str, bytes]) -> None:
    """Write the tables for state ``st``, which folds the commons' entries up to arrival
    number ``max_n`` (``stored``: the commons' entry count the store had then), only the
    rows that changed since this process last wrote them.  One transaction: readers see the
    old tables or the new ones."""
    commons = st.commons
    db = store.db
    old = _read_summary(store, commons)
    baseline = _baselines.get(key)
    if baseline is not None and (old is None or old.get("writer") != baseline.token):
        baseline = None  # another process wrote since: rewrite whole
    contributions = st.contribution_table()
    text = AuthorIds()
    with store.transaction():
        ensure_schema(store)
        pairs: Iterable[tuple[CID, Any]]
        rebuild = baseline is None and len(contributions) >= REBUILD_ROWS
        if rebuild:
            # A whole rewrite of many rows (the first save after a fresh fold): the rows'
            # times come in no order, so each row went into both time indexes at a random
            # page; an index built after the rows is one sort.  A million rows: 19 s of
            # SQLite's work before, 8 after (with the rows in id order, below).
            for name in _INDEXES:
                db.execute(f"DROP INDEX IF EXISTS {name}")
        if baseline is None:
            db.execute("DELETE FROM query_contributions WHERE commons = ?", (commons.raw,))
            # Every row, streamed (not listed first), in id order: the table's key, so each
            # row goes at the end of its B-tree (compact.Packed.pairs_by_id).
            by_id = getattr(contributions, "pairs_by_id", None)
            pairs = by_id() if by_id is not None else sorted(contributions.items(), key=lambda p: p[0].raw)
            removed: list[CID] = []
            import secrets  # (the writer's side only)

            baseline = _Baseline(secrets.token_hex(8))
        else:
            before = baseline.table
            differ, removed = _changes(contributions, before)
            dirty = {CID(bytes.fromhex(h)) for h in (old or {}).get("local", [])}
            seen = set(differ)
            changed = differ + [cid for cid in dirty if cid in contributions and cid not in seen]
            pairs = ((cid, contributions[cid]) for cid in changed)
            removed += [cid for cid in dirty if cid not in contributions and cid not in before]
        if removed:
            db.executemany("DELETE FROM query_contributions WHERE commons = ? AND id = ?",
                           [(commons.raw, cid.raw) for cid in removed])

        def rows() -> Iterator[tuple[bytes, bytes, str, str, int, str]]:
            # A generator: a whole rewrite (a million rows after a fresh fold) never holds
            # its rows at once (they were 385 MB as a list at a million entries).
            for cid, c in pairs:
                entry_id = str(cid)
                time = c.time or _entry_time(store, cid)
                yield (commons.raw, cid.raw, entry_id, c.status, time,
                       json.dumps(contribution_row(entry_id, c, time, text), sort_keys=True))

        db.executemany("INSERT OR REPLACE INTO query_contributions (commons, id, text_id, status, time, row) "
                       "VALUES (?, ?, ?, ?, ?, ?)", rows())
        if rebuild:
            _create_indexes(store)
        db.execute("DELETE FROM query_members WHERE commons = ?", (commons.raw,))
        db.executemany("INSERT INTO query_members (commons, key, row) VALUES (?, ?, ?)",
                       [(commons.raw, k, json.dumps(row, sort_keys=True)) for k, row in member_rows(st)])
        summary = summary_of(st)
        due = st.next_deadline()
        doc = {"version": VERSION, "writer": baseline.token, "max_n": max_n, "folded_max_n": max_n,
               "stored": stored, "local": [],
               "next_due": due, "summary": summary}
        _put_summary(store, commons, doc)
    baseline.table = _copy(contributions)
    _baselines[key] = baseline


def resumed(store: Store, commons: CID, contributions: Mapping[CID, Any], max_n: int,
            key: tuple[str, bytes]) -> None:
    """A fold was resumed from the checkpoint at arrival number ``max_n``: if the tables were
    written from that same fold (and only local contributions added since: those rows are
    rewritten anyway), its contributions are what the tables hold, so the next write can be
    incremental instead of whole (at a million entries, seconds)."""
    doc = _read_summary(store, commons)
    if doc is None or doc.get("folded_max_n") != max_n or not isinstance(doc.get("writer"), str):
        return
    _baselines[key] = _Baseline(doc["writer"], _copy(contributions))


def forget(key: tuple[str, bytes] | None = None) -> None:
    """Drop what this process remembers of the tables it wrote (all, or one commons')."""
    if key is None:
        _baselines.clear()
    else:
        _baselines.pop(key, None)


def _entry_time(store: Store, cid: CID) -> int:
    found = store.get(cid)
    return int(found.time) if found is not None else 0


# --- reading (the CLI) -----------------------------------------------------------------------


def _read_summary(store: Store, commons: CID) -> dict[str, Any] | None:
    try:
        found = store.db.execute("SELECT doc FROM query_summary WHERE commons = ?", (commons.raw,)).fetchone()
    except sqlite3.Error:  # (no tables yet)
        return None
    if found is None:
        return None
    raw = found[0]
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("version") == VERSION else None


_STATUSES = ("pending", "accepted", "rejected")


class Tables:
    """The current query tables of one commons (see :func:`read`)."""

    def __init__(self, store: Store, commons: CID, doc: dict[str, Any]) -> None:
        self.store = store
        self.commons = commons
        self.doc = doc

    @property
    def summary(self) -> dict[str, Any]:
        """``p2pc state --json`` without ``--full``."""
        return dict(self.doc["summary"])

    @property
    def rules(self) -> dict[str, Any]:
        return dict(self.doc["summary"].get("rules") or {})

    def members(self) -> list[dict[str, Any]]:
        """``p2pc members --json``'s rows, sorted by key."""
        return [json.loads(row) for (row,) in self.store.db.execute(
            "SELECT row FROM query_members WHERE commons = ? ORDER BY key", (self.commons.raw,))]

    def member(self, key: bytes) -> dict[str, Any] | None:
        found = self.store.db.execute("SELECT row FROM query_members WHERE commons = ? AND key = ?",
                                      (self.commons.raw, key.hex())).fetchone()
        return None if found is None else dict(json.loads(found[0]))

    def contribution_count(self, status: str | None = None) -> int:
        """How many contributions there are (with ``status``): the summary's counts, which
        are written with the rows, in the same transaction, from the same state (and kept
        by :func:`contributed`); counting the rows instead reads the whole index range, a
        tenth of a second of ``p2pc contributions --status pending`` at a million entries."""
        counts = self.doc["summary"].get("contribution_counts")
        if isinstance(counts, dict) and all(type(counts.get(s)) is int for s in _STATUSES):
            if status is None:
                return sum(int(counts[s]) for s in _STATUSES)
            if status in _STATUSES:
                return int(counts[status])
        if status is None:
            row = self.store.db.execute("SELECT count(*) FROM query_contributions WHERE commons = ?",
                                        (self.commons.raw,)).fetchone()
        else:
            row = self.store.db.execute("SELECT count(*) FROM query_contributions WHERE commons = ? AND status = ?",
                                        (self.commons.raw, status)).fetchone()
        return int(row[0])

    def contributions(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """``p2pc contributions --json``'s rows, oldest first (``(time, id)``), the first ``limit``."""
        where = "commons = ?" + ("" if status is None else " AND status = ?")
        args: list[Any] = [self.commons.raw] + ([] if status is None else [status])
        sql = f"SELECT row FROM query_contributions WHERE {where} ORDER BY time, text_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [json.loads(row) for (row,) in self.store.db.execute(sql, args)]


def read(store: Store, commons: CID) -> Tables | None:
    """The commons' query tables if they are current (see the module), else None."""
    doc = _read_summary(store, commons)
    if doc is None:
        return None
    try:
        if store.count(commons) != doc["stored"] or store.arrived_after(commons, int(doc["max_n"])):
            return None
        store.db.execute("SELECT 1 FROM query_members LIMIT 0")
    except (sqlite3.Error, KeyError, TypeError, ValueError):
        return None
    return Tables(store, commons, doc)


# --- a local contribution without a daemon ---------------------------------------------------

# The longest text field the contribution handler takes (state/handlers/common.py MAX_TEXT;
# tests/test_query_tables.py checks the two agree).  Only a gate: a longer one takes the fold's path.
MAX_TEXT = 1000
MAX_AMOUNT = 2**53


class NewContribution(NamedTuple):
    """A contribution's row as the tables hold it before the fold has seen it."""

    author: bytes
    title: str
    kind: str
    ref: str
    claimed: int
    value: int  # (0 until accepted: the value the review gives it)
    status: str = "pending"
    accepts: tuple[bytes, ...] = ()
    rejects: tuple[bytes, ...] = ()
    outside: bool = False


def may_contribute(tables: Tables, author: bytes, body: dict[str, Any]) -> str | None:
    """The id of the entry that made ``author`` a member (the genesis for a founder) if the
    tables alone decide that their contribution ``body`` (without ``refs``) takes effect —
    an active member writing with their own, active key, in a commons whose rules let
    members contribute, with no proposal's deadline pending (an entry dated after one
    closes it first: commons.md §2.2), its fields plainly valid — else None: the caller
    takes the fold's path, which decides every other case."""
    rules = tables.rules
    if not tables.summary.get("valid") or not rules or tables.doc.get("next_due") is not None:
        return None
    if rules.get("contribution", {}).get("policy") not in ("members", "anyone"):
        return None
    if set(body) - {"title", "kind", "value", "ref"}:
        return None
    for name in ("title", "kind", "ref"):
        value = body.get(name, "")
        if type(value) is not str or len(value) > MAX_TEXT or (name == "title" and name not in body):
            return None
    value = body.get("value", 1)
    if type(value) is not int or not 0 <= value <= MAX_AMOUNT:
        return None
    row = tables.member(author)
    if row is None or row["status"] != "active" or not isinstance(row.get("since"), str):
        return None
    own = [k for k in row["keys"] if k["own"]]
    if len(own) != 1 or own[0]["status"] != "active":
        return None
    return str(row["since"])


def contribute(store: Store, signer: Any, commons: CID, body: dict[str, Any]) -> Any | None:
    """``p2pc contribute`` without a daemon and without the fold: sign and store the
    contribution and add its row, in one write transaction, when the current tables decide
    it takes effect (:func:`may_contribute`); else None, nothing written (the caller takes
    :func:`p2pcommons.author.append`'s path: the fold's rule check).  The entry names the
    author's admission among its parents when it is not one already, so the admission is
    in its causal past (``standing``, commons.md §3) whatever the other heads are."""
    from . import ownlog
    from .author import append, current_deps
    from .entry import MAX_DEPS

    author = signer.public_key
    with store.transaction():
        tables = read(store, commons)
        since = None if tables is None else may_contribute(tables, author, body)
        if tables is None or since is None:
            return None
        extra: list[CID] = []
        if since != str(commons):
            admission = CID.parse(since)
            deps = current_deps(store, commons, author)
            if admission not in deps:
                if len(deps) >= MAX_DEPS:
                    return None
                extra.append(admission)
        entry = append(store, signer, commons, "contribution", body, force=True, extra_deps=extra)
        contributed(tables, entry.id, NewContribution(
            author, body["title"], body.get("kind", "work"), body.get("ref", ""), body.get("value", 1), 0),
            int(entry.time))
    ownlog.record(store, commons, author, entry.seq)
    return entry


def contributed(tables: Tables, entry_id: CID, c: NewContribution, time: int) -> None:
    """Add a contribution the caller has just stored, in its write transaction, to current
    tables: its row (pending), the counts, and the position (its arrival number).  The state
    hash and stability stay those of the last fold (``unfolded_count`` says how many entries
    they miss); the next persist of a fold rewrites the row whatever became of it."""
    store, commons = tables.store, tables.commons
    assert store.in_transaction
    entry_text = str(entry_id)
    row = contribution_row(entry_text, c, time, AuthorIds())
    store.db.execute("INSERT OR REPLACE INTO query_contributions (commons, id, text_id, status, time, row) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (commons.raw, entry_id.raw, entry_text, c.status, time, json.dumps(row, sort_keys=True)))
    doc = tables.doc
    summary = doc["summary"]
    summary["entry_count"] += 1
    summary["stable"]["tentative_entry_count"] += 1
    summary["contribution_counts"][c.status] += 1
    summary["unfolded_count"] = summary.get("unfolded_count", 0) + 1
    doc["local"] = [*doc.get("local", []), entry_id.raw.hex()]
    doc["max_n"] = store.last_arrival()
    doc["stored"] = store.count(commons)
    _put_summary(store, commons, doc)
