"""Serializing a resumable fold, so a new process continues where the last one stopped.

A checkpoint holds everything :class:`~.fold.Folder` keeps except the entries themselves:
per-entry metadata (clock, version vector), outcomes, fork evidence, exclusions and the
state at the last applied position (its one snapshot).  Entries are loaded from the store
on demand (only a replay or an outcome query needs an old entry's body).  It is local
derived data in the store's cache table, never replicated; plain CBOR (no pickle), and a
checkpoint that does not parse is ignored and rebuilt.  Why: appending one entry from a
short-lived CLI process should not cost a fold of the whole history.  For an evicting fold it
holds only the window after the archived positions, the state at their end, the count of
archived records and the index of named archived entries (the archive itself is the store's
``fold_segments`` table, see :mod:`.archive`).  Snapshots other than the state are stored
as their difference from it (they share most records), so a checkpoint holds about one
state, and resuming peaks at about twice the state's memory rather than four times.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from io import BytesIO
from itertools import islice, repeat
from typing import IO, Any, NamedTuple

import cbor2

from .. import causal
from ..dagcbor import CID
from ..entry import Entry
from .compact import Distributions, Packed, Votes
from .fold import _PLAIN, Archive, Folder, _Exclusion, bulk
from .positions import ZERO_KEY as _ZERO_KEY
from .positions import Meta as _Meta
from .records import SEQUENCES, TABLES, VALUES, State

# 8: kind codes in ``refs`` follow handlers.NAMED_KINDS (checked on load); 9: an invalid
# genesis recorded by its path; 10: version vectors as persistent tries, written as
# differences (see _dump_meta), no longer dense per entry; 11: the devices table (issue 14);
# 12: pools and flows (the treasury); 13: floors (backdated entries); 14: the state's
# ``excluded`` table, void entries keyed by (removing entry, member); and the value equation
# (contributions' refs, distributions' equation and receipts; outcomes change: a `receipt`
# or a contribution's `refs` now take effect, a `values.decay` rule is refused, so a
# checkpoint written before must not be resumed — the node folds afresh); 15: no index of
# named archived entries (``refs``, with its ``kinds``): the archive answers.
VERSION = 15
KEEP = 1  # snapshots kept in a checkpoint besides the state at its end (each costs O(state))
_STATUS = ("applied", "rejected", "pending", "waiting")


class LazyEntries(MutableMapping[bytes, Entry]):
    """The fold's entry table, backed by a loader for entries it knows but has not loaded.

    Which entries it knows is read from the fold's own indexes (ready entries' metadata and
    the waiting table: every entry the fold took is in one of them), so the table adds no
    per-entry memory of its own once the loaded bodies are evicted."""

    def __init__(self, loader: Callable[[bytes], Entry | None], *indexes: Mapping[bytes, Any],
                 ahead: Callable[[int, bytes], list[Entry]] | None = None) -> None:
        self._indexes = indexes
        self._loaded: dict[bytes, Entry] = {}
        # The held bodies, read directly by the replayer (``Folder._apply``: a dict lookup in
        # C per applied entry, not a call of ``__getitem__``).  Read it, never write it.
        self.bodies = self._loaded
        self._loader = loader
        # Read-ahead: the entries from a position on, in the store's (clock, id) order.  A
        # replay asks for the bodies of consecutive positions; one range read serves the
        # next ones instead of a query each.  (The first index is the fold's ready entries'
        # records, whose first field is the clock.)
        self._ahead = ahead

    def read_ahead(self, ahead: Callable[[int, bytes], list[Entry]]) -> None:
        """Serve misses with a range read from the store's order (see ``__init__``)."""
        self._ahead = ahead

    def evict(self, keep: int = 0) -> None:
        """Drop loaded entry bodies but the ``keep`` loaded last: the fold has applied them,
        and a replay reloads them.  (The newest are the window a late entry replays, most
        often: kept, a replay decodes nothing; bounded, whatever the window.)"""
        loaded = self._loaded
        drop = len(loaded) - keep
        if drop <= 0:
            return
        if not keep:
            loaded.clear()
            return
        for key in list(islice(loaded, drop)):
            del loaded[key]

    def discard_many(self, keys: Iterable[bytes]) -> None:
        """Forget the loaded bodies of ``keys`` (the fold archived them): one call per
        eviction, not one per entry."""
        deque(map(self._loaded.pop, keys, repeat(None)), maxlen=0)

    def _knows(self, key: object) -> bool:
        # A loop, not any() over a generator (its frame cost more than the lookups): this
        # is asked for every entry the fold takes.
        for index in self._indexes:  # noqa: SIM110
            if key in index:
                return True
        return False

    def __getitem__(self, key: bytes) -> Entry:
        entry = self._loaded.get(key)
        if entry is not None:
            return entry
        if not self._knows(key):
            raise KeyError(key)
        record = self._indexes[0].get(key) if self._ahead is not None and self._indexes else None
        if record is not None:
            assert self._ahead is not None
            for ahead in self._ahead(record[0], key):
                raw = ahead.id.raw
                if raw not in self._loaded and self._knows(raw):
                    self._loaded[raw] = ahead
            entry = self._loaded.get(key)
            if entry is not None:
                return entry
        entry = self._loader(key)
        if entry is None:
            raise KeyError(key)
        self._loaded[key] = entry
        return entry

    def loaded(self, key: bytes) -> Entry | None:
        """The body if it is held now (None: it would be read from the store)."""
        return self._loaded.get(key)

    def one(self, key: bytes) -> Entry:
        """One entry's body, without reading ahead or keeping it (dating an entry needs one
        old parent's time, not the 256 entries after it)."""
        entry = self._loaded.get(key)
        if entry is None:
            entry = self._loader(key) if self._knows(key) else None
            if entry is None:
                raise KeyError(key)
        return entry

    def __setitem__(self, key: bytes, value: Entry) -> None:
        self._loaded[key] = value  # Folder.add then files it as ready or waiting

    def __delitem__(self, key: bytes) -> None:  # pragma: no cover - the fold never deletes
        self._loaded.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._loaded or self._knows(key)

    # The indexes are disjoint (an entry is ready or waiting) and cover every loaded entry.

    def __iter__(self) -> Iterator[bytes]:
        return iter(sorted(key for index in self._indexes for key in index))

    def __len__(self) -> int:
        return sum(len(index) for index in self._indexes)


# --- streaming: a checkpoint is written as it is encoded, never held whole -------------------
#
# At a million entries a checkpoint is hundreds of MB, and the document it encodes (a list
# per entry, a row per contribution) took several times that as Python objects: the first
# save after a fresh fold peaked at 1.8 GB.  So the big parts are iterables that say their
# length (:class:`_Rows`) and maps whose values may be such (:class:`_Map`); :func:`_write`
# writes exactly the bytes ``cbor2.dumps`` gives for the same document made of plain lists
# and dicts (definite lengths, items in order), a chunk of rows at a time, so :func:`load`
# reads either.


class _Rows(NamedTuple):
    """A CBOR array written row by row: ``length`` rows from ``rows`` (plain values)."""

    length: int
    rows: Iterable[Any]


class _Map(dict[str, Any]):
    """A CBOR map whose values :func:`_write` writes one by one (some may be :class:`_Rows`)."""


_CHUNK = 1024  # rows encoded by one cbor2 call


def cbor_head(major: int, length: int) -> bytes:
    """A CBOR item head (major type, length or value) in its shortest form, as cbor2 writes it."""
    if length < 24:
        return bytes([major << 5 | length])
    for code, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | code]) + length.to_bytes(size, "big")
    raise ValueError("length too large for CBOR")


def _write(out: IO[bytes], value: Any) -> None:
    if isinstance(value, _Rows):
        out.write(cbor_head(4, value.length))
        written = 0
        chunk: list[Any] = []
        for row in value.rows:
            chunk.append(row)
            if len(chunk) == _CHUNK:
                out.write(cbor2.dumps(chunk)[len(cbor_head(4, _CHUNK)):])
                written += _CHUNK
                chunk.clear()
        if chunk:
            out.write(cbor2.dumps(chunk)[len(cbor_head(4, len(chunk))):])
            written += len(chunk)
        if written != value.length:
            raise ValueError(f"a checkpoint part changed while it was written ({written} rows, not {value.length})")
    elif isinstance(value, _Map):
        out.write(cbor_head(5, len(value)))
        for key, item in value.items():
            out.write(cbor2.dumps(key))
            _write(out, item)
    else:
        out.write(cbor2.dumps(value))


def _plain(value: Any) -> Any:
    """The document :func:`_write` streams, as plain lists and dicts (tests compare the bytes)."""
    if isinstance(value, _Rows):
        return [_plain(row) for row in value.rows]
    if isinstance(value, _Map):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _stream_state(s: State) -> _Map:
    """:func:`_dump_state`, its tables and sequences as rows written one at a time."""
    doc = _Map({name: getattr(s, name) for name in VALUES})
    for table in TABLES:
        items = getattr(s, table.name)
        doc[table.name] = _Rows(len(items), map(table.row, items.keys(), items.values()))
    for sequence in SEQUENCES:
        values = getattr(s, sequence.name)
        doc[sequence.name] = _Rows(len(values), map(sequence.row, values))
    return doc


def _dump_state(s: State) -> dict[str, Any]:
    doc: dict[str, Any] = {name: getattr(s, name) for name in VALUES}
    for table in TABLES:
        doc[table.name] = [table.row(k, v) for k, v in getattr(s, table.name).items()]
    for sequence in SEQUENCES:
        doc[sequence.name] = [sequence.row(x) for x in getattr(s, sequence.name)]
    return doc


def _load_state(d: dict[str, Any]) -> State:
    s = State()
    for name in VALUES:
        setattr(s, name, d[name])
    for table in TABLES:
        setattr(s, table.name, table.make(map(table.unrow, d[table.name])))
    for sequence in SEQUENCES:
        setattr(s, sequence.name, sequence.make(sequence.unrow(x) for x in d[sequence.name]))
    s.derive()
    return s


def _dump_delta(snap: State, state: State) -> dict[str, Any]:
    """A snapshot as its difference from the state (a snapshot shares most records with
    it): per table the items that differ and the keys it lacks; per list the common prefix
    and the rest.  Why: a checkpoint holding two full states took twice the space and, while
    resuming, several times the state's memory at its peak."""
    doc: dict[str, Any] = {}
    for name in VALUES:
        mine_value = getattr(snap, name)
        doc[name] = None if mine_value == getattr(state, name) else mine_value
    for table in TABLES:
        mine: dict[Any, Any] = getattr(snap, table.name)
        theirs: dict[Any, Any] = getattr(state, table.name)
        changed = []
        if isinstance(mine, (Packed, Votes)) and type(theirs) is type(mine):  # (compared packed, by layer)
            differ, lacking = mine.delta(theirs)
            doc[table.name] = [[table.row(k, mine[k]) for k in differ], [table.key(k) for k in lacking]]
            continue
        else:
            for k, v in mine.items():
                w = theirs.get(k, _MISSING)
                if w is not v and w != v:
                    changed.append(table.row(k, v))
        doc[table.name] = [changed, [table.key(k) for k in theirs if k not in mine]]
    for sequence in SEQUENCES:
        items: list[Any] = getattr(snap, sequence.name)
        current: list[Any] = getattr(state, sequence.name)
        prefix = 0
        if isinstance(items, Distributions):  # (compared packed)
            prefix = items.same_prefix(current)
        else:
            for x, y in zip(items, current, strict=False):
                if x is not y and x != y:
                    break
                prefix += 1
        doc[sequence.name] = [prefix, [sequence.row(x) for x in items[prefix:]]]
    return doc


def _load_delta(d: dict[str, Any], state: State) -> State:
    """The snapshot :func:`_dump_delta` describes, sharing the state's records."""
    s = state.copy()
    for name in VALUES:
        if d[name] is not None:
            setattr(s, name, d[name])
    for table in TABLES:
        items: dict[Any, Any] = getattr(s, table.name)
        changed, absent = d[table.name]
        for key in absent:
            del items[table.unkey(key)]
        for row in changed:
            k, v = table.unrow(row)
            items[k] = v
    for sequence in SEQUENCES:
        prefix, rest = d[sequence.name]
        kept = getattr(state, sequence.name)[:prefix]  # (a slice of the state's: the same container type)
        kept.extend(sequence.unrow(x) for x in rest)
        setattr(s, sequence.name, kept)
    s.derive()
    return s


_MISSING: Any = object()


def _dump_snapshot(snap: State, state: State | None) -> list[Any]:
    return ["full", _dump_state(snap)] if state is None else ["delta", _dump_delta(snap, state)]


def _load_snapshot(doc: list[Any], state: State | None) -> State:
    form, body = doc
    if form == "delta":
        if state is None:
            raise ValueError("a snapshot stored as a difference needs the state")
        return _load_delta(body, state)
    return _load_state(body)


def dump(folder: Folder) -> bytes:
    """A checkpoint of ``folder`` after :meth:`Folder.run` (the state must be current)."""
    out = BytesIO()
    dump_to(folder, out)
    return out.getvalue()


def dump_to(folder: Folder, out: IO[bytes]) -> None:
    """:func:`dump`, written to ``out`` as it is encoded (see "streaming" above)."""
    with bulk():
        _write(out, _doc(folder))


def _row(m: _Meta) -> list[Any]:
    """One record on its own: its version vector as flat ``[index, seq, …]`` (non-zero slots)."""
    return [m[1], m[0], m[2], m[3], causal.diff(causal.EMPTY, m.vv)]


def _unrow(row: list[Any]) -> _Meta:
    raw, clock, aidx, seq, flat = row
    return tuple.__new__(_Meta, (clock, raw, aidx, seq, *causal.apply(causal.EMPTY, flat)))


def _dump_meta(folder: Folder) -> _Rows:
    """Every ready entry's record, its version vector written as its difference from the
    vector of the previous record of the same author in this list (usually its ``prev``: the
    slots it adds), so a checkpoint holds what the vectors add, not O(authors) per entry."""

    def rows() -> Iterator[list[Any]]:
        last: dict[int, causal.Vector] = {}
        for raw, m in folder.meta.items():
            vv = m.vv
            yield [raw, m[0], m[2], m[3], causal.diff(last.get(m[2], causal.EMPTY), vv)]
            last[m[2]] = vv

    return _Rows(len(folder.meta), rows())


def _last_key(folder: Folder) -> Any:
    return folder.order[folder.applied - 1] if folder.applied else _ZERO_KEY


class _Context:
    """What the loaders of one checkpoint share: decoded numbers (so equal ints are one
    object, as in a fold built entry by entry) and the fold's archive."""

    def __init__(self, archive: Archive | None) -> None:
        self.ints: dict[int, int] = {}
        self.archive = archive


class _Part(NamedTuple):
    """One part of a checkpoint: the :class:`~.fold.Folder` attributes it holds, how it is
    written, and how it is read back (in the order of ``_PARTS``: later parts may use
    earlier ones).  The one list of what a checkpoint holds: ``tests/test_state_kernel.py``
    checks that every attribute a Folder has is held here, rebuilt on load, configuration,
    or transient."""

    name: str
    holds: tuple[str, ...]
    dump: Callable[[Folder], Any]
    load: Callable[[Folder, Any, _Context], None]


def _load_authors(folder: Folder, authors: list[bytes], ctx: _Context) -> None:
    folder.authors = list(authors)
    folder.author_index = {a: i for i, a in enumerate(folder.authors)}


def _load_meta(folder: Folder, rows: list[list[Any]], ctx: _Context) -> None:
    # Decoding gives every number its own int object (28 bytes each above 256); a fold built
    # entry by entry shares them (a version vector copies its parents' references).  Share
    # them here too: otherwise a resumed fold takes several times the memory of a fresh one.
    meta = folder.meta
    one = ctx.ints.setdefault
    new = tuple.__new__
    # Each vector is rebuilt from the same author's previous one (see _dump_meta), sharing
    # its nodes, as a fold built entry by entry shares its parents'.
    last: dict[int, causal.Vector] = {}
    rows.reverse()
    while rows:  # popping each decoded row frees it as it is used: a lower peak while resuming
        raw, clock, aidx, seq, flat = rows.pop()
        aidx = one(aidx, aidx)
        vv = last[aidx] = causal.apply(last.get(aidx, causal.EMPTY), map(one, flat, flat))
        meta[raw] = new(_Meta, (one(clock, clock), raw, aidx, one(seq, seq), *vv))
    folder.order = sorted(m.key for m in meta.values())


def _load_waiting(folder: Folder, rows: list[list[Any]], ctx: _Context) -> None:
    for raw, missing in rows:
        distinct = list(dict.fromkeys(missing))
        folder.waiting[raw] = len(distinct)
        for dep in distinct:
            folder.waiters.setdefault(dep, []).append(raw)


def _load_logs(folder: Folder, rows: list[list[Any]], ctx: _Context) -> None:
    one = ctx.ints.setdefault
    folder.logs = {a: {one(s, s): _same_id(folder.meta, raw) for s, raw in log} for a, log in rows}


def _load_outcomes(folder: Folder, rows: list[list[Any]], ctx: _Context) -> None:
    outcomes = folder.outcomes
    for raw, code, reason in rows:
        outcomes[raw] = _PLAIN[_STATUS[code]] if not reason and _STATUS[code] in _PLAIN else (_STATUS[code], reason)


def _load_exclusions(folder: Folder, rows: list[list[Any]], ctx: _Context) -> None:
    folder.exclusions = [_Exclusion(m, after, folder.meta.get(cause[0]) or _unrow(cause), CID(cid), lift)
                         for m, after, cause, cid, lift in rows]


def _load_evicted(folder: Folder, evicted: int, ctx: _Context) -> None:
    if evicted and ctx.archive is None:
        raise ValueError("an evicting fold's checkpoint needs its archive")
    folder.evicted = evicted


def _dump_base(folder: Folder) -> Any:
    base = folder.base
    if base == _ZERO_KEY:
        return None
    return [_row(base), _dump_snapshot(folder.snap_states[0][0], folder.state),  # type: ignore[arg-type]
            folder.snap_states[0][1]]


def _load_base(folder: Folder, doc: Any, ctx: _Context) -> None:
    if doc is not None:
        base_row, base_state, base_error = doc
        folder.base = _unrow(base_row)
        folder.snap_keys[0] = folder.base
        folder.snap_states[0] = (_load_snapshot(base_state, folder.state), base_error)


def _dump_last_key(folder: Folder) -> list[Any]:
    last_key = _last_key(folder)
    return [last_key[0], last_key[1]]


def _load_last_key(folder: Folder, doc: list[Any], ctx: _Context) -> None:
    last_key = _ZERO_KEY if doc[0] < 0 else folder.meta[doc[1]]
    folder.applied = 0 if last_key == _ZERO_KEY else folder.order.index(last_key) + 1
    if folder.applied != len(folder.order):
        raise ValueError("checkpoint taken before the fold was current")


def _dump_snapshots(folder: Folder) -> list[Any]:
    last_key = _last_key(folder)
    return [[[key[0], key[1]], _dump_snapshot(snap, folder.state), error]
            for key, (snap, error) in list(zip(folder.snap_keys, folder.snap_states, strict=True))[1:][-KEEP:]
            if snap is not None and key != last_key]


def _load_snapshots(folder: Folder, doc: list[Any], ctx: _Context) -> None:
    for key, snap, error in doc:
        folder.snap_keys.append(folder.meta[key[1]])
        folder.snap_states.append((_load_snapshot(snap, folder.state), error))


def _set(name: str) -> Callable[[Folder, Any, _Context], None]:
    def load(folder: Folder, value: Any, ctx: _Context) -> None:
        setattr(folder, name, value)

    return load


_PARTS: tuple[_Part, ...] = (
    _Part("authors", ("authors", "author_index"), lambda f: f.authors, _load_authors),
    _Part("meta", ("meta", "order"), _dump_meta, _load_meta),
    _Part("waiting", ("waiting", "waiters"),
          lambda f: [[raw, sorted(missing)] for raw, missing in f.waiting_parents().items()], _load_waiting),
    _Part("logs", ("logs",), lambda f: _Rows(len(f.logs), ([a, [[s, raw] for s, raw in log.items()]]
                                                          for a, log in f.logs.items())),
          _load_logs),
    _Part("forks", ("forks",), lambda f: [[a, s, ids] for (a, s), ids in f.forks.items()],
          lambda f, rows, ctx: setattr(f, "forks", {(a, s): list(ids) for a, s, ids in rows})),
    _Part("fork_seq", ("fork_seq",), lambda f: [[a, s] for a, s in f.fork_seq.items()],
          lambda f, rows, ctx: setattr(f, "fork_seq", {a: s for a, s in rows})),
    # Only outcomes other than plain "applied" (a ready entry without one is applied).
    _Part("outcomes", ("outcomes",),
          lambda f: _Rows(len(f.outcomes.other), ([raw, _STATUS.index(st), reason]
                                                  for raw, (st, reason) in f.outcomes.other.items())),
          _load_outcomes),
    _Part("exclusions", ("exclusions",),
          lambda f: [[x.member, x.after_seq, _row(x.cause), x.cause_id.raw, x.liftable]  # type: ignore[arg-type]
                     for x in f.exclusions],
          _load_exclusions),
    _Part("void", ("void",), lambda f: sorted(f.void), lambda f, ids, ctx: setattr(f, "void", set(ids))),
    # Entries dated before an entry in their causal past, with that time (fold._date).
    _Part("floors", ("floors",), lambda f: [[raw, t] for raw, t in f.floors.items()],
          lambda f, rows, ctx: f.floors.update({raw: t for raw, t in rows})),
    _Part("evicted", ("evicted",), lambda f: f.evicted, _load_evicted),
    _Part("evicted_upto", ("evicted_upto",), lambda f: [[a, s] for a, s in f.evicted_upto.items()],
          lambda f, rows, ctx: setattr(f, "evicted_upto", {a: s for a, s in rows})),
    _Part("old", ("old",), lambda f: [_row(m) for m in f.old.values()],
          lambda f, rows, ctx: setattr(f, "old", {m[1]: m for m in map(_unrow, rows)})),
    _Part("genesis_error", ("genesis_error",), lambda f: f.genesis_error, _set("genesis_error")),
    _Part("state", ("state",), lambda f: None if f.state is None else _stream_state(f.state),
          lambda f, doc, ctx: setattr(f, "state", None if doc is None else _load_state(doc))),
    _Part("max_clock", ("max_clock",), lambda f: f.max_clock, _set("max_clock")),
    # Eviction: positions up to ``base`` are in the archive (the engine's store table);
    # the state at ``base`` is the first snapshot.
    _Part("base", ("base",), _dump_base, _load_base),
    _Part("last_key", ("applied",), _dump_last_key, _load_last_key),
    # The last snapshot(s) too, so a late entry in a resumed process replays from a recent
    # position instead of from the start (the state at the last position is added on load).
    _Part("snapshots", ("snap_keys", "snap_states"), _dump_snapshots, _load_snapshots),
)
# Attributes a resumed fold rebuilds rather than reads (the lazy entry table, each author's
# latest entry and the eviction front's index of them), and those that start afresh in every
# process (counters, caches, pending replays).
REBUILT = ("entries", "latest", "front_index")
TRANSIENT = ("restarts", "refolds", "voided", "replays", "since_snapshot", "_replay_from", "_refold", "_voids",
             "_cache", "_times")


def _doc(folder: Folder) -> _Map:
    """The checkpoint document, its big parts as rows still to be written."""
    folder.run()
    doc = _Map({"version": VERSION, "commons": folder.commons.raw})
    for part in _PARTS:
        doc[part.name] = part.dump(folder)
    return doc


def load(blob: bytes, commons: CID, loader: Callable[[bytes], Entry | None],
         archive: Archive | None = None) -> Folder | None:
    """The folder a checkpoint describes, or None if it is unusable (other version, other
    commons, damaged): the caller then folds from scratch."""
    try:
        with bulk():
            doc = cbor2.loads(blob)
        if doc.get("version") != VERSION or doc.get("commons") != commons.raw:
            return None
        with bulk():
            return _load(doc, commons, loader, archive)
    except Exception:
        return None


def _same_id(meta: dict[bytes, _Meta], raw: bytes) -> bytes:
    """The id object the metadata already holds (one bytes object per entry, not two)."""
    record = meta.get(raw)
    return raw if record is None else record[1]


def _load(doc: dict[str, Any], commons: CID, loader: Callable[[bytes], Entry | None],
          archive: Archive | None) -> Folder:
    folder = Folder(commons, archive=archive)
    ctx = _Context(archive)
    for part in _PARTS:
        part.load(folder, doc.pop(part.name), ctx)  # (popped: each part is freed once read)
    folder.entries = LazyEntries(loader, folder.meta, folder.waiting)
    last_key = _last_key(folder)
    if folder.state is not None and last_key != _ZERO_KEY:
        folder.snap_keys.append(last_key)
        folder.snap_states.append((folder.state.copy(), folder.genesis_error))
    latest: dict[bytes, bytes] = {}
    for raw, m in [*folder.old.items(), *folder.meta.items()]:
        author = folder.authors[m.aidx]
        cur = latest.get(author)
        if cur is None or m.seq > folder.record(cur).seq:
            latest[author] = raw
    folder.latest = latest
    return folder
