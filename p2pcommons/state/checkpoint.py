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

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import cbor2

from ..dagcbor import CID
from ..entry import Entry
from .fold import _PLAIN, Archive, Folder, _Exclusion, bulk
from .handlers import NAMED_KINDS
from .positions import ZERO_KEY as _ZERO_KEY
from .positions import Meta as _Meta
from .records import SEQUENCES, TABLES, VALUES, State

VERSION = 8  # 8: kind codes in ``refs`` follow handlers.NAMED_KINDS (checked on load)
KEEP = 1  # snapshots kept in a checkpoint besides the state at its end (each costs O(state))
_STATUS = ("applied", "rejected", "pending", "waiting")


class LazyEntries(MutableMapping[bytes, Entry]):
    """The fold's entry table, backed by a loader for entries it knows but has not loaded.

    Which entries it knows is read from the fold's own indexes (ready entries' metadata and
    the waiting table: every entry the fold took is in one of them), so the table adds no
    per-entry memory of its own once the loaded bodies are evicted."""

    def __init__(self, loader: Callable[[bytes], Entry | None], *indexes: Mapping[bytes, Any]) -> None:
        self._indexes = indexes
        self._loaded: dict[bytes, Entry] = {}
        self._loader = loader

    def evict(self) -> None:
        """Drop loaded entry bodies: the fold has applied them, and a replay reloads them."""
        self._loaded.clear()

    def discard(self, key: bytes) -> None:
        """Forget a loaded body (the fold archived the entry)."""
        self._loaded.pop(key, None)

    def _knows(self, key: object) -> bool:
        return any(key in index for index in self._indexes)

    def __getitem__(self, key: bytes) -> Entry:
        entry = self._loaded.get(key)
        if entry is not None:
            return entry
        if not self._knows(key):
            raise KeyError(key)
        entry = self._loader(key)
        if entry is None:
            raise KeyError(key)
        self._loaded[key] = entry
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
        setattr(s, table.name, dict(map(table.unrow, d[table.name])))
    for sequence in SEQUENCES:
        setattr(s, sequence.name, [sequence.unrow(x) for x in d[sequence.name]])
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
        for k, v in mine.items():
            w = theirs.get(k, _MISSING)
            if w is not v and w != v:
                changed.append(table.row(k, v))
        doc[table.name] = [changed, [table.key(k) for k in theirs if k not in mine]]
    for sequence in SEQUENCES:
        items: list[Any] = getattr(snap, sequence.name)
        current: list[Any] = getattr(state, sequence.name)
        prefix = 0
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
        setattr(s, sequence.name, getattr(state, sequence.name)[:prefix] + [sequence.unrow(x) for x in rest])
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
    with bulk():
        return _dump(folder)


def _row(m: _Meta) -> list[Any]:
    return [m[1], m[0], m[2], m[3], list(m[4:])]


def _unrow(row: list[Any]) -> _Meta:
    raw, clock, aidx, seq, vv = row
    return tuple.__new__(_Meta, (clock, raw, aidx, seq, *vv))


def _dump(folder: Folder) -> bytes:
    folder.run()
    last_key = folder.order[folder.applied - 1] if folder.applied else _ZERO_KEY
    base = folder.base
    doc = {
        "version": VERSION,
        "commons": folder.commons.raw,
        "authors": folder.authors,
        "meta": [[raw, m.clock, m.aidx, m.seq, list(m.vv)] for raw, m in folder.meta.items()],
        "waiting": [[raw, sorted(missing)] for raw, missing in folder.waiting.items()],
        "logs": [[a, [[s, raw] for s, raw in log.items()]] for a, log in folder.logs.items()],
        "forks": [[a, s, ids] for (a, s), ids in folder.forks.items()],
        "fork_seq": [[a, s] for a, s in folder.fork_seq.items()],
        # Only outcomes other than plain "applied" (a ready entry without one is applied).
        "outcomes": [[raw, _STATUS.index(st), reason] for raw, (st, reason) in folder.outcomes.other.items()],
        "exclusions": [[x.member, x.after_seq, _row(x.cause), x.cause_id.raw, x.liftable]  # type: ignore[arg-type]
                       for x in folder.exclusions],
        "void": sorted(folder.void),
        # Eviction: positions up to ``base`` are in the archive (the engine's store table);
        # the state at ``base`` is the first snapshot.
        "base": None if base == _ZERO_KEY else [_row(base),  # type: ignore[arg-type]
                                                _dump_snapshot(folder.snap_states[0][0], folder.state),  # type: ignore
                                                folder.snap_states[0][1]],
        "evicted": folder.evicted,
        "evicted_upto": [[a, s] for a, s in folder.evicted_upto.items()],
        "old": [_row(m) for m in folder.old.values()],
        # Positions and kinds of entries later ones may name (packed ints ending with the kind's
        # index in ``kinds``; see fold._named),
        # as three byte strings — ids, their lengths, the ints in 16 bytes each — so that
        # resuming does not decode a list of pairs (about 190 bytes per item at its peak).
        "kinds": list(NAMED_KINDS),  # what the kind codes in ``refs`` mean
        "refs": [b"".join(folder.refs), bytes(len(raw) for raw in folder.refs),
                 b"".join(packed.to_bytes(16, "little") for packed in folder.refs.values())],
        "last_key": [last_key[0], last_key[1]],
        "genesis_error": folder.genesis_error,
        "state": None if folder.state is None else _dump_state(folder.state),
        # The last snapshot(s) too, so a late entry in a resumed process replays from a
        # recent position instead of from the start.
        "snapshots": [[[key[0], key[1]], _dump_snapshot(snap, folder.state), error]
                      for key, (snap, error) in list(zip(folder.snap_keys, folder.snap_states, strict=True))[1:][-KEEP:]
                      if snap is not None and key != last_key],
        "max_clock": folder.max_clock,
    }
    return cbor2.dumps(doc)


def load(blob: bytes, commons: CID, loader: Callable[[bytes], Entry | None],
         archive: Archive | None = None) -> Folder | None:
    """The folder a checkpoint describes, or None if it is unusable (other version, other
    commons, damaged): the caller then folds from scratch."""
    try:
        with bulk():
            doc = cbor2.loads(blob)
        if doc.get("version") != VERSION or doc.get("commons") != commons.raw \
                or doc.get("kinds") != list(NAMED_KINDS):
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
    if doc["evicted"] and archive is None:
        raise ValueError("an evicting fold's checkpoint needs its archive")
    folder = Folder(commons, archive=archive)
    folder.authors = list(doc["authors"])
    folder.author_index = {a: i for i, a in enumerate(folder.authors)}
    meta = folder.meta
    # Decoding gives every number its own int object (28 bytes each above 256); a fold built
    # entry by entry shares them (a version vector copies its parents' references).  Share
    # them here too: otherwise a resumed fold takes several times the memory of a fresh one.
    ints: dict[int, int] = {}
    one = ints.setdefault
    new = tuple.__new__
    rows = doc.pop("meta")
    rows.reverse()
    while rows:  # popping each decoded row frees it as it is used: a lower peak while resuming
        raw, clock, aidx, seq, vv = rows.pop()
        meta[raw] = new(_Meta, (one(clock, clock), raw, one(aidx, aidx), one(seq, seq), *map(one, vv, vv)))
    for raw, missing in doc["waiting"]:
        folder.waiting[raw] = set(missing)
        for dep in missing:
            folder.waiters.setdefault(dep, []).append(raw)
    folder.entries = LazyEntries(loader, folder.meta, folder.waiting)
    folder.logs = {a: {one(s, s): _same_id(meta, raw) for s, raw in log} for a, log in doc["logs"]}
    folder.forks = {(a, s): list(ids) for a, s, ids in doc["forks"]}
    folder.fork_seq = {a: s for a, s in doc["fork_seq"]}
    folder.order = sorted(m.key for m in meta.values())
    outcomes = folder.outcomes
    for raw, code, reason in doc["outcomes"]:
        outcomes[raw] = _PLAIN[_STATUS[code]] if not reason and _STATUS[code] in _PLAIN else (_STATUS[code], reason)
    folder.exclusions = [_Exclusion(m, after, meta.get(cause[0]) or _unrow(cause), CID(cid), lift)
                         for m, after, cause, cid, lift in doc["exclusions"]]
    folder.void = set(doc["void"])
    folder.evicted = doc["evicted"]
    folder.evicted_upto = {a: s for a, s in doc["evicted_upto"]}
    folder.old = {m[1]: m for m in map(_unrow, doc["old"])}
    folder.genesis_error = doc["genesis_error"]
    folder.state = None if doc["state"] is None else _load_state(doc["state"])
    folder.max_clock = doc["max_clock"]
    if doc["base"] is not None:
        base_row, base_state, base_error = doc["base"]
        folder.base = _unrow(base_row)
        folder.snap_keys[0] = folder.base
        folder.snap_states[0] = (_load_snapshot(base_state, folder.state), base_error)
    if folder.archive is not None:
        # Keyed by the id objects the state (or the metadata) already holds, not new copies.
        state = folder.state
        same: dict[bytes, bytes] = {} if state is None else {
            cid.raw: cid.raw for table in (state.contributions, state.proposals, state.joins, state.resources)
            for cid in table}
        ids, lengths, packed = doc.pop("refs")
        refs = folder.refs
        at = 0
        for i, length in enumerate(lengths):
            raw = ids[at:at + length]
            at += length
            refs[same.get(raw) or _same_id(meta, raw)] = int.from_bytes(packed[16 * i:16 * i + 16], "little")
        del same, ids, packed
    last_key = _ZERO_KEY if doc["last_key"][0] < 0 else meta[doc["last_key"][1]]
    folder.applied = 0 if last_key == _ZERO_KEY else folder.order.index(last_key) + 1
    if folder.applied != len(folder.order):
        raise ValueError("checkpoint taken before the fold was current")
    for key, snap, error in doc.get("snapshots", []):
        folder.snap_keys.append(meta[key[1]])
        folder.snap_states.append((_load_snapshot(snap, folder.state), error))
    if folder.state is not None and last_key != _ZERO_KEY:
        folder.snap_keys.append(last_key)
        folder.snap_states.append((folder.state.copy(), folder.genesis_error))
    latest: dict[bytes, bytes] = {}
    for raw, m in [*folder.old.items(), *meta.items()]:
        author = folder.authors[m.aidx]
        cur = latest.get(author)
        if cur is None or m.seq > folder.record(cur).seq:
            latest[author] = raw
    folder.latest = latest
    return folder
