"""The commons state's records, declared once (see protocols/commons.md §5).

Each field of the state is declared here, with everything the rest of the kernel needs
about it: its empty value, how a checkpoint writes and reads it (:mod:`.checkpoint`), and
its canonical encoding, the part that goes into the state hash (:func:`canonical_state`).
:class:`State` — its slots, constructor and snapshot copy — is built from these
declarations, as are the checkpoint's state, delta and snapshot formats, so a new table is
one declaration here and the handler that fills it.  Why: the set of fields used to be
written out four times (constructor, copy, checkpoint dump, checkpoint load), and a field
forgotten in one of them was a silent divergence between a resumed node and a fresh one.

Records are immutable tuples (replaced, never mutated), so a snapshot is a shallow copy of
each table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from ..dagcbor import CID, LazyList, LazyMap, cid_from_text
from . import rules as rules_mod
from .compact import Bookings, Contributions, Distributions, Proposals, Shares, Votes, share

_K = TypeVar("_K")
_V = TypeVar("_V")

# --- records ----------------------------------------------------------------------------


class Member(NamedTuple):
    name: str
    roles: tuple[str, ...]
    grants: tuple[tuple[str, CID], ...]  # role -> entry that granted it (for causal checks)
    status: str  # active | suspended | removed | left
    since: CID  # the genesis or the admission that made them a member
    warnings: int  # per member identity: kept across leave and rejoin
    # How the status came about, for judging a sanction by its causal past (not hashed):
    # ``(seq, status)`` pairs, ``seq`` strictly increasing, each the status after an event
    # that depends on the member's own entry at ``seq`` (their leave; the admission of their
    # join) or, with ``seq`` 0, on none of their entries (the genesis, a sanction).
    view: tuple[tuple[int, str], ...] = ()


def seen(view: tuple[tuple[int, str], ...], seq: int, status: str) -> tuple[tuple[int, str], ...]:
    """``view`` with a new status that depends on the member's own entry at ``seq`` (0: none).
    An older event at or after ``seq`` can no longer be the latest one a viewer sees."""
    kept = view
    while kept and kept[-1][0] >= seq:
        kept = kept[:-1]
    return (*kept, (seq, status))


def status_seen(member: Member, seen_seq: int) -> str | None:
    """The member's status as an entry that has seen their log up to ``seen_seq`` knows it:
    from the latest event that depends on none of their entries it had not seen."""
    for seq, status in reversed(member.view):
        if seq <= seen_seq:
            return status
    return None


class _Tracked(dict[_K, _V]):
    """A dict that forgets, on every write, what was derived from its contents: ``counts``
    (kept by the caller) and ``mark`` (a number a reader set to note that it has looked at
    these contents; 0 once they change).  Copies keep both: their contents are the same."""

    __slots__ = ("counts", "mark")

    def __init__(self, items: Iterable[tuple[_K, _V]] | Mapping[_K, _V] = ()) -> None:
        super().__init__(items)
        self.counts: dict[tuple[str, ...], int] = {}
        self.mark = 0

    def _changed(self) -> None:
        self.counts.clear()
        self.mark = 0

    def __setitem__(self, key: _K, value: _V) -> None:
        self._changed()
        super().__setitem__(key, value)

    def __delitem__(self, key: _K) -> None:
        self._changed()
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)

    def popitem(self) -> tuple[_K, _V]:
        self._changed()
        return super().popitem()

    def clear(self) -> None:
        self._changed()
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().update(*args, **kwargs)

    def setdefault(self, key: _K, default: _V) -> _V:
        self._changed()
        return super().setdefault(key, default)

    def __ior__(self, other: Any) -> _Tracked[_K, _V]:  # type: ignore[override,misc]
        self._changed()
        super().__ior__(other)
        return self

    def copy(self) -> _Tracked[_K, _V]:
        new = type(self)(self)
        new.counts = self.counts.copy()
        new.mark = self.mark
        return new


class Members(_Tracked[bytes, Member]):
    """The members table (member key -> :class:`Member`): a dict that also keeps, until its
    next change, how many active members hold each set of roles asked for (``counts``).
    Why: every tally asks for its electorate's size (``handlers.rules_votes.eligible``), and
    counting walked every member each time, 12 % of a 10,000-member fold; members change
    far less often than votes come.  Reads are a plain dict's; every write clears the counts."""

    __slots__ = ()


class Devices(_Tracked[bytes, "Device"]):
    """The devices table (device key -> :class:`Device`): a dict whose ``mark`` is cleared
    on every write, so the replayer's eviction front (:mod:`.front`) sees when the keys that
    hold stability may have changed without walking the table."""

    __slots__ = ()


class Join(NamedTuple):
    author: bytes
    name: str
    approvals: tuple[bytes, ...]


class Contribution(NamedTuple):
    author: bytes
    title: str
    kind: str
    ref: str
    claimed: int
    status: str  # pending | accepted | rejected
    accepts: tuple[bytes, ...]
    rejects: tuple[bytes, ...]
    value: int
    outside: bool
    # Checked links (protocols/commons.md §9): earlier contributions this one derives from,
    # sorted by id bytes; () — the canonical form then is as it always was.
    refs: tuple[CID, ...] = ()
    # The contribution entry's own time (ms; not hashed): its age for time decay (§9),
    # without reading the entry back from the archive at every distribution.
    time: int = 0


class Proposal(NamedTuple):
    author: bytes
    title: str
    changes: dict[str, Any]
    yes: tuple[bytes, ...]
    no: tuple[bytes, ...]
    status: str  # open | adopted | rejected | withdrawn
    # Decisions with an end (protocols/commons.md §2.1); the defaults are a proposal without
    # them, whose canonical form (and so every older state hash) is unchanged.
    abstain: tuple[bytes, ...] = ()
    deadline: int = 0  # ms since the epoch; 0 = none (decided by the electorate's fraction alone)
    time: int = 0  # the proposal entry's own time (not hashed: votes dated before it are refused)
    closed: CID | None = None  # the entry whose position closed it at its deadline
    # A governed act instead of a rule change (§2.2), as canonical text: {"act", ...}; None: rules.
    action: dict[str, Any] | None = None


class Resource(NamedTuple):
    name: str
    rivalrous: bool
    quota: int
    period: int  # seconds; 0 = no period (a lifetime quota)
    unit: str
    # Shared capacity (protocols/commons.md §1.1): the most the whole commons may use per
    # period (a forest's annual cut, a workshop's seats); 0 = none, and then the resource's
    # canonical form is as it always was.
    capacity: int = 0
    # Closed by a decision or a steward (§1.1): no new use; existing uses (and cancelling
    # them) stay.  False: the canonical form is as it always was.
    closed: bool = False


class Device(NamedTuple):
    """A key's binding to a member (protocols/commons.md §1.2): the key signs its own log,
    and its entries count as the member's.  The member's own key is listed only once it is
    revoked (``binding`` None: it was never bound, it *is* the member)."""

    member: bytes
    binding: CID | None  # the ``device`` entry that bound it (None: the member's own key)
    revocation: CID | None  # the ``device`` entry that revoked it (None: active)


def hexkey(author: bytes) -> str:
    return author.hex()


def _sorted_hex(keys: tuple[bytes, ...]) -> list[str]:
    return sorted(hexkey(a) for a in keys)


# --- declarations -----------------------------------------------------------------------


class Table(NamedTuple):
    """A dict field of the state.  ``row``/``unrow``: one item as a checkpoint row and
    back; ``key``/``unkey``: a key alone (a checkpoint delta's removed keys); ``make``: the
    container, from items (a dict, or a compact mapping of the same items: :mod:`.compact`)."""

    name: str
    row: Callable[[Any, Any], list[Any]]
    unrow: Callable[[list[Any]], tuple[Any, Any]]
    key: Callable[[Any], Any]
    unkey: Callable[[Any], Any]
    make: Callable[[Iterable[tuple[Any, Any]]], Any] = dict


class Sequence(NamedTuple):
    """A list field of the state (appended to in fold order): one item as a checkpoint row
    and back; ``make``: the container, from items (a list, or a compact sequence of the same
    items: :mod:`.compact`)."""

    name: str
    row: Callable[[Any], list[Any]]
    unrow: Callable[[list[Any]], Any]
    make: Callable[[Iterable[Any]], Any] = list


def _cid_key(c: CID) -> bytes:
    return c.raw


def _same(x: Any) -> Any:
    return x


def _load_distribution(r: list[Any]) -> dict[str, Any]:
    d = {"id": CID(r[0]), "amount": r[1], "currency": share(r[2]), "shares": Shares((share(a), v) for a, v in r[3])}
    if len(r) > 4 and r[4] is not None:
        d["pool"] = r[4]
    if len(r) > 5 and r[5] is not None:
        d["equation"] = r[5]
    if len(r) > 6 and r[6]:
        d["acknowledged"] = tuple(r[6])
    return d


def _distribution_row(d: dict[str, Any]) -> list[Any]:
    """``[id, amount, currency, shares]``, then ``pool`` alone (as before), or ``pool`` (or
    None), ``equation`` (or None) and the acknowledging members when there is either (§9)."""
    row = [d["id"].raw, d["amount"], d["currency"], [[a, v] for a, v in d["shares"].items()]]
    if "equation" in d or "acknowledged" in d:
        return [*row, d.get("pool"), d.get("equation"), list(d.get("acknowledged", ()))]
    return [*row, d["pool"]] if "pool" in d else row


def _load_flow(r: list[Any]) -> dict[str, Any]:
    return {"id": CID(r[0]), "pool": r[1], "flow": r[2], "amount": r[3], "party": r[4], "why": r[5],
            "balance": r[6]}


def _load_proposal(r: list[Any]) -> tuple[CID, Proposal]:
    extra: list[Any] = r[7:] if len(r) > 7 else [[], 0, 0, None, None]
    closed = None if extra[3] is None else CID(extra[3])
    return CID(r[0]), Proposal(r[1], r[2], r[3], tuple(r[4]), tuple(r[5]), r[6], tuple(extra[0]), extra[1],
                               extra[2], closed, extra[4] if len(extra) > 4 else None)


def _load_sanction(r: list[Any]) -> dict[str, Any]:
    return {"id": CID(r[0]), "member": r[1], "action": r[2], "reason": r[3], "by": r[4]}


# Whole values, replaced and never mutated (shared by snapshots): the commons' info and rules.
VALUES: tuple[str, ...] = ("info", "rules")

TABLES: tuple[Table, ...] = (
    Table("members",  # member key -> Member
          lambda a, m: [a, m.name, list(m.roles), [[r, g.raw] for r, g in m.grants], m.status, m.since.raw,
                        m.warnings, [list(x) for x in m.view]],
          lambda r: (r[0], Member(r[1], tuple(r[2]), tuple((role, CID(g)) for role, g in r[3]), r[4], CID(r[5]),
                                  r[6], tuple((seq, status) for seq, status in r[7]))),
          _same, _same, Members),
    Table("joins",  # join entry -> Join (pending admission)
          lambda c, j: [c.raw, j.author, j.name, list(j.approvals)],
          lambda r: (CID(r[0]), Join(r[1], r[2], tuple(r[3]))),
          _cid_key, CID),
    Table("contributions",  # contribution entry -> Contribution
          lambda c, x: [c.raw, x.author, x.title, x.kind, x.ref, x.claimed, x.status, list(x.accepts),
                        list(x.rejects), x.value, x.outside, [c.raw for c in x.refs], x.time],
          lambda r: (CID(r[0]), Contribution(r[1], r[2], r[3], r[4], r[5], r[6], tuple(r[7]), tuple(r[8]), r[9],
                                             r[10], tuple(CID(c) for c in r[11]) if len(r) > 11 else (),
                                             r[12] if len(r) > 12 else 0)),
          _cid_key, CID, Contributions),
    Table("proposals",  # rule proposal entry -> Proposal
          lambda c, p: [c.raw, p.author, p.title, p.changes, list(p.yes), list(p.no), p.status, list(p.abstain),
                        p.deadline, p.time, None if p.closed is None else p.closed.raw, p.action],
          _load_proposal, _cid_key, CID, Proposals),
    Table("votes",  # (proposal, voter) -> True yes, False no, None abstain (not hashed: the proposals' lists are)
          lambda k, v: [k[0].raw, k[1], v],
          lambda r: ((CID(r[0]), r[1]), r[2]),
          lambda k: [k[0].raw, k[1]], lambda k: (CID(k[0]), k[1]), Votes),
    Table("ballots",  # (proposal with a deadline, voter) -> the entry that cast the vote (not hashed)
          lambda k, c: [k[0].raw, k[1], c.raw],
          lambda r: ((CID(r[0]), r[1]), CID(r[2])),
          lambda k: [k[0].raw, k[1]], lambda k: (CID(k[0]), k[1])),
    Table("due",  # open proposal with a deadline -> its deadline (not hashed: the proposals' are)
          lambda c, d: [c.raw, d], lambda r: (CID(r[0]), r[1]), _cid_key, CID),
    Table("resources",  # resource id (its entry, or the hash of a genesis resource) -> Resource
          lambda c, x: [c.raw, x.name, x.rivalrous, x.quota, x.period, x.unit, x.capacity, x.closed],
          lambda r: (CID(r[0]), Resource(r[1], r[2], r[3], r[4], r[5], r[6] if len(r) > 6 else 0,
                                         bool(r[7]) if len(r) > 7 else False)),
          _cid_key, CID),
    Table("booked",  # (resource with a capacity, period) -> the whole commons' use in it (not hashed)
          lambda k, n: [k[0].raw, k[1], n],
          lambda r: ((CID(r[0]), r[1]), r[2]),
          lambda k: [k[0].raw, k[1]], lambda k: (CID(k[0]), k[1])),
    Table("bookings",  # use of a rivalrous resource -> (resource, period, author, amount): what a cancel returns
          lambda c, b: [c.raw, b[0].raw, b[1], b[2], b[3]],
          lambda r: (CID(r[0]), (CID(r[1]), r[2], r[3], r[4])),
          _cid_key, CID, Bookings),
    Table("usage",  # (resource, period, member) -> amount used in that period
          lambda k, n: [k[0].raw, k[1], k[2], n],
          lambda r: ((CID(r[0]), r[1], r[2]), r[3]),
          lambda k: [k[0].raw, k[1], k[2]], lambda k: (CID(k[0]), k[1], k[2])),
    Table("totals",  # (resource, member) -> use over all periods (not hashed: the bound's sum)
          lambda k, n: [k[0].raw, k[1], n],
          lambda r: ((CID(r[0]), r[1]), r[2]),
          lambda k: [k[0].raw, k[1]], lambda k: (CID(k[0]), k[1])),
    Table("ledger",  # member -> (accepted contributions, value)
          lambda a, x: [a, x[0], x[1]],
          lambda r: (r[0], (r[1], r[2])),
          _same, _same),
    Table("lifted",  # member or device -> reinstatement lifting their suspension (not hashed)
          lambda a, c: [a, c.raw], lambda r: (r[0], CID(r[1])), _same, _same),
    Table("devices",  # device key -> Device (a member's other keys; the member's own once revoked)
          lambda a, d: [a, d.member, None if d.binding is None else d.binding.raw,
                        None if d.revocation is None else d.revocation.raw],
          lambda r: (r[0], Device(r[1], None if r[2] is None else CID(r[2]), None if r[3] is None else CID(r[3]))),
          _same, _same, Devices),
    Table("recoveries",  # (member, new key) -> approving members so far (not hashed: pending)
          lambda k, v: [k[0], k[1], list(v)], lambda r: ((r[0], r[1]), tuple(r[2])),
          lambda k: [k[0], k[1]], lambda k: (k[0], k[1])),
    Table("excluded",  # (removing entry, member) -> True: a strong removal in force (not hashed, §3.4)
          lambda k, v: [k[0], k[1]], lambda r: ((r[0], r[1]), True),
          lambda k: [k[0], k[1]], lambda k: (k[0], k[1])),
    Table("vouches",  # member -> ((voucher, vouch entry), ...) in fold order (§2.5)
          lambda a, x: [a, [[b, c.raw] for b, c in x]], lambda r: (r[0], tuple((b, CID(c)) for b, c in r[1])),
          _same, _same),
    Table("pools",  # pool name -> balance (a pool the rules declare and nothing moved is absent: 0)
          lambda name, balance: [name, balance], lambda r: (r[0], r[1]), _same, _same),
)

SEQUENCES: tuple[Sequence, ...] = (
    Sequence("distributions", _distribution_row, _load_distribution, Distributions),
    Sequence("flows",  # every movement in or out of a pool, in fold order (open book, §8)
             lambda f: [f["id"].raw, f["pool"], f["flow"], f["amount"], f["party"], f["why"], f["balance"]],
             _load_flow),
    Sequence("sanctions",
             lambda x: [x["id"].raw, x["member"], x["action"], x["reason"], x["by"]],
             _load_sanction),
)

# Derived fields (not stored in a checkpoint; recomputed by :meth:`State.derive`).
DERIVED: tuple[str, ...] = ("ledger_total", "join_authors")


class State:
    """The mutable part of the fold, built from the declarations above.  Containers are
    shallow-copied for snapshots; the records inside them are immutable tuples."""

    __slots__ = (*VALUES, *(t.name for t in TABLES), *(s.name for s in SEQUENCES), *DERIVED)

    info: dict[str, Any]
    rules: dict[str, Any]
    members: Members
    joins: dict[CID, Join]
    contributions: Contributions  # CID -> Contribution, held packed
    proposals: Proposals  # CID -> Proposal, held packed
    votes: Votes  # (CID, voter) -> True yes, False no, None abstain
    ballots: dict[tuple[CID, bytes], CID]
    due: dict[CID, int]
    resources: dict[CID, Resource]
    usage: dict[tuple[CID, int, bytes], int]
    booked: dict[tuple[CID, int], int]
    bookings: Bookings  # CID -> (resource, period, author, amount), held packed
    totals: dict[tuple[CID, bytes], int]
    ledger: dict[bytes, tuple[int, int]]
    lifted: dict[bytes, CID]
    devices: Devices
    recoveries: dict[tuple[bytes, bytes], tuple[bytes, ...]]
    # Exclusions the derivation of this state put in force, by (raw id of the removing entry,
    # member): the replayer drops an exclusion whose removal, replayed with it, no longer
    # takes effect (it is then void).  Kept in the state so snapshots and checkpoints carry it.
    excluded: dict[tuple[bytes, bytes], bool]
    vouches: dict[bytes, tuple[tuple[bytes, CID], ...]]
    pools: dict[str, int]
    distributions: Distributions  # held packed
    flows: list[dict[str, Any]]
    sanctions: list[dict[str, Any]]
    ledger_total: int  # the sum of the ledger's values (derived, not hashed)
    # Per author, how many joins of theirs are pending (derived, not hashed): an admission
    # looks for the author's other pending joins only when there are some, so admitting N
    # concurrent joins costs O(N), not O(N) each.
    join_authors: dict[bytes, int]

    def __init__(self) -> None:
        self.info = {}
        self.rules = rules_mod.default_rules()
        for table in TABLES:
            setattr(self, table.name, table.make(()))
        for sequence in SEQUENCES:
            setattr(self, sequence.name, sequence.make(()))
        self.ledger_total = 0
        self.join_authors = {}

    def derive(self) -> None:
        """Recompute the derived fields from the stored ones (after loading a checkpoint)."""
        self.ledger_total = sum(value for _, value in self.ledger.values())
        counts: dict[bytes, int] = {}
        for join in self.joins.values():
            counts[join.author] = counts.get(join.author, 0) + 1
        self.join_authors = counts

    def copy(self) -> State:
        new = State.__new__(State)
        for name in VALUES:  # replaced, never mutated
            setattr(new, name, getattr(self, name))
        for table in TABLES:
            setattr(new, table.name, getattr(self, table.name).copy())
        for sequence in SEQUENCES:
            setattr(new, sequence.name, getattr(self, sequence.name).copy())
        new.ledger_total = self.ledger_total
        new.join_authors = self.join_authors.copy()
        return new

    def size(self) -> int:
        return len(self.members) + len(self.joins) + len(self.contributions) + len(self.proposals) + \
            len(self.votes) + len(self.usage) + len(self.ledger)


# --- the canonical encoding (what the state hash covers) ----------------------------------


def _canonical_proposal(p: Proposal) -> dict[str, Any]:
    """A proposal's canonical map: the keys of decisions with an end appear only when used,
    so a proposal that uses none of them hashes as it always did (protocols/commons.md §5.1)."""
    doc: dict[str, Any] = {"author": hexkey(p.author), "title": p.title, "changes": p.changes, "status": p.status,
                           "yes": _sorted_hex(p.yes), "no": _sorted_hex(p.no)}
    if p.abstain:
        doc["abstain"] = _sorted_hex(p.abstain)
    if p.deadline:
        doc["deadline"] = p.deadline
    if p.closed is not None:
        doc["closed"] = str(p.closed)
    if p.action is not None:
        doc["action"] = p.action
    return doc


class _Rows(NamedTuple):
    """A table of the canonical state, not built yet: ``table``'s items with each key as its
    canonical text (``text``, and ``unkey`` back) and each record as canonical data (``row``).
    :meth:`build` makes the dict (for views); :meth:`lazy` the stream the state hash reads,
    which holds one key text per row at a time, not the row maps (about 1 KB each)."""

    table: Mapping[Any, Any]
    text: Callable[[Any], str]
    unkey: Callable[[str], Any]
    row: Callable[[Any], Any]

    def build(self) -> dict[str, Any]:
        text, row = self.text, self.row
        return {text(k): row(v) for k, v in self.table.items()}

    def lazy(self) -> LazyMap:
        return LazyMap(len(self.table), self._sorted_rows)

    def _sorted_rows(self) -> Iterator[tuple[str, Any]]:
        keys = [self.text(k) for k in self.table]
        # Canonical key order, length first then bytewise: for ASCII keys (entry ids, hex keys)
        # a sort by text then a stable sort by length (dagcbor.encode_to checks the order).
        keys.sort()
        keys.sort(key=len)
        table, unkey, row = self.table, self.unkey, self.row
        for key in keys:
            yield key, row(table[unkey(key)])


class _Items(NamedTuple):
    """A list of the canonical state, not built yet: each item of ``items`` as canonical data."""

    items: Collection[Any]
    row: Callable[[Any], Any]

    def build(self) -> list[Any]:
        return [self.row(x) for x in self.items]

    def lazy(self) -> LazyList:
        return LazyList(len(self.items), lambda: map(self.row, self.items))


def canonical_state(s: State) -> dict[str, Any]:
    """The hashed part of the state, as plain DAG-CBOR data (protocols/commons.md: the state hash)."""
    return {name: part.build() if isinstance(part, (_Rows, _Items)) else part for name, part in _parts(s).items()}


def canonical_stream(s: State) -> dict[str, Any]:
    """:func:`canonical_state` with its tables as :class:`~p2pcommons.dagcbor.LazyMap` and
    :class:`~p2pcommons.dagcbor.LazyList` parts: ``dagcbor.sha256_stream`` of it is the state
    hash, byte for byte the same encoding, without the canonical state built whole."""
    return {name: part.lazy() if isinstance(part, (_Rows, _Items)) else part for name, part in _parts(s).items()}


def _member_row(m: Member) -> dict[str, Any]:
    return {"name": m.name, "roles": list(m.roles), "status": m.status, "since": str(m.since), "warnings": m.warnings}


def _join_row(j: Join) -> dict[str, Any]:
    return {"author": hexkey(j.author), "name": j.name, "approvals": _sorted_hex(j.approvals)}


def _device_row(x: Device) -> dict[str, Any]:
    return {"member": hexkey(x.member), "binding": "" if x.binding is None else str(x.binding),
            "status": "active" if x.revocation is None else "revoked",
            "revocation": "" if x.revocation is None else str(x.revocation)}


def _sanction_row(x: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(x["id"]), "member": hexkey(x["member"]), "action": x["action"], "reason": x["reason"],
            "by": hexkey(x["by"])}


def _parts(s: State) -> dict[str, Any]:
    """The canonical state's parts: plain data for the small ones, :class:`_Rows` and
    :class:`_Items` for the tables and lists (built or streamed by the callers above)."""
    resources: dict[str, Any] = {}
    for c, r in s.resources.items():
        resources[str(c)] = {"name": r.name, "rivalrous": r.rivalrous, "quota": r.quota, "period": r.period,
                             "unit": r.unit, "used": {}}
        if r.capacity:  # only when used: a resource without a capacity hashes as before
            resources[str(c)]["capacity"] = r.capacity
        if r.closed:  # likewise: an open resource hashes as before
            resources[str(c)]["closed"] = True
    for (res, period, author), amount in s.usage.items():
        resources[str(res)]["used"].setdefault(str(period), {})[hexkey(author)] = amount
    doc: dict[str, Any] = {
        "info": dict(s.info),
        "rules": s.rules,
        "members": _Rows(s.members, hexkey, bytes.fromhex, _member_row),
        "joins": _Rows(s.joins, str, cid_from_text, _join_row),
        "contributions": _Rows(s.contributions, str, cid_from_text, _canonical_contribution),
        "proposals": _Rows(s.proposals, str, cid_from_text, _canonical_proposal),
        "resources": resources,
        "ledger": _Rows(s.ledger, hexkey, bytes.fromhex, lambda x: {"accepted": x[0], "value": x[1]}),
        "distributions": _Items(s.distributions, _canonical_distribution),
        "sanctions": _Items(s.sanctions, _sanction_row),
        **_canonical_treasury(s),
    }
    if s.vouches:  # absent when empty: a commons where nobody vouches keeps its state hash
        doc["vouches"] = _Rows(s.vouches, hexkey, bytes.fromhex, lambda x: _sorted_hex(tuple(b for b, _ in x)))
    if s.devices:  # absent when empty: a commons without devices keeps its state hash
        doc["devices"] = _Rows(s.devices, hexkey, bytes.fromhex, _device_row)
    return doc


def _canonical_contribution(x: Contribution) -> dict[str, Any]:
    """A contribution's canonical map: ``refs`` only when it references others (§9), so a
    contribution without references hashes as it always did."""
    doc: dict[str, Any] = {"author": hexkey(x.author), "title": x.title, "kind": x.kind, "ref": x.ref,
                           "claimed": x.claimed, "status": x.status, "accepts": _sorted_hex(x.accepts),
                           "rejects": _sorted_hex(x.rejects), "value": x.value, "outside": x.outside}
    if x.refs:
        doc["refs"] = [str(c) for c in x.refs]
    return doc


def _canonical_distribution(d: dict[str, Any]) -> dict[str, Any]:
    """A distribution's canonical map: ``pool`` only when it drew from one (§8) and
    ``equation`` only when the rules set a value equation (§9), so a distribution of a
    commons without them hashes as it always did."""
    doc = {"id": str(d["id"]), "amount": d["amount"], "currency": d["currency"],
           "shares": {hexkey(a): v for a, v in d["shares"].items()}}
    if "pool" in d:
        doc["pool"] = d["pool"]
    if "equation" in d:
        doc["equation"] = d["equation"]
    if d.get("acknowledged"):
        doc["acknowledged"] = _sorted_hex(d["acknowledged"])
    return doc


def _canonical_treasury(s: State) -> dict[str, Any]:
    """``pools`` and ``flows`` (§8, flows as :class:`_Items`), present only when the rules
    declare pools: a commons without pools hashes as before."""
    declared = rules_mod.pools(s.rules)
    if not declared:
        return {}
    return {
        "pools": {name: {"unit": unit, "balance": s.pools.get(name, 0)} for name, unit in declared.items()},
        "flows": _Items(s.flows, _flow_row),
    }


def _flow_row(f: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(f["id"]), "pool": f["pool"], "flow": f["flow"], "amount": f["amount"], "party": f["party"],
            "why": f["why"], "balance": f["balance"]}
