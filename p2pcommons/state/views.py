"""Query views of a folded commons, for the CLI and the daemon: plain data, read-only.

:class:`CommonsState` reads the replayer (:class:`~.fold.Folder`) and its state's records
(:mod:`.records`); nothing here changes them.  The state hash is the SHA-256 of the
canonical encoding (:func:`.records.canonical_state` plus the entry counts), streamed into the
hasher when only the hash is needed (:func:`.records.canonical_stream`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..causal import EMPTY, Vector, covers, dense, get, minimum, of
from ..dagcbor import CID, encode, sha256_stream
from ..entry import Entry
from .fold import APPLIED, PENDING, REJECTED, WAITING, Folder, bulk, forked_reason
from .handlers.devices import member_of, stability_holders
from .positions import parents
from .records import (
    Contribution,
    Join,
    Member,
    Proposal,
    Resource,
    _canonical_proposal,
    _join_row,
    _member_row,
    canonical_state,
    canonical_stream,
    hexkey,
)


class Outcome(NamedTuple):
    """What one entry did.  ``status``: applied, rejected, pending (a newcomer's or outsider's
    entry waiting for the member entry that accepts it) or waiting (missing dependencies)."""

    id: CID
    kind: str
    author: bytes
    seq: int
    status: str
    reason: str
    stable: bool
    holders: tuple[bytes, ...]  # active members whose latest entry has not acknowledged it
    missing: tuple[CID, ...]


class CommonsState:
    """The folded state of one commons, its canonical form and hash, and per-entry outcomes.

    A view of the fold that produced it: the engine's live fold keeps advancing, so take a
    fresh one from ``current_state`` after ingesting, rather than keeping an old one."""

    def __init__(self, folder: Folder) -> None:
        self.commons = folder.commons
        self._folder = folder
        self.valid = folder.state is not None and not folder.genesis_error
        self.entry_count = folder.count()
        self.waiting_count = _waiting(folder)
        self._canonical: dict[str, Any] | None = None
        self._hash: str | None = None
        self._front: tuple[list[int], dict[bytes, Vector], list[bytes]] | None = None

    # Computed on first use: appending an entry must not pay O(state) for a hash nobody reads.

    @property
    def canonical(self) -> dict[str, Any]:
        if self._canonical is None:
            with bulk():
                self._canonical = _canonical(self._folder)
        return self._canonical

    def release_canonical(self) -> bool:
        """Forget the canonical form once its hash is known (True if it was held).  Why: a
        daemon holds its commons' state for its whole life, and the canonical form — needed
        by a few views only, which build it again when they ask (the hash streams without
        it) — costs
        about 1 KB per contribution (104 MB at 100,000 entries, measured)."""
        if self._canonical is None or self._hash is None:
            return False
        self._canonical = None
        return True

    @property
    def state_hash(self) -> str:
        """The SHA-256 of the canonical state's encoding.  Unless the canonical form is already
        built (a view asked for it), the encoding is streamed into the hash table by table,
        row by row (:func:`.records.canonical_stream`): the daemon's fold and save only need
        the hash, and building the whole form for it cost about 1 KB per contribution, plus
        its encoding as one bytes object (2.7 GB peak after a 1M-entry sync, measured)."""
        if self._hash is None:
            with bulk():
                if self._canonical is not None:
                    self._hash = hashlib.sha256(encode(self._canonical)).hexdigest()
                else:
                    self._hash = sha256_stream(_canonical(self._folder, stream=True))
        return self._hash

    @property
    def _frontier(self) -> list[int]:
        return self._stability()[0]

    @property
    def _latest(self) -> dict[bytes, Vector]:
        return self._stability()[1]

    @property
    def retired(self) -> list[bytes]:
        return self._stability()[2]

    def _stability(self) -> tuple[list[int], dict[bytes, Vector], list[bytes]]:
        if self._front is None:
            self._front = _frontier(self._folder)
        return self._front

    # Convenience views (plain data, JSON-ready) ------------------------------------------------

    @property
    def rules(self) -> dict[str, Any]:
        """The rules in force (cheap: no canonical encoding of the whole state)."""
        state = self._folder.state
        return {} if state is None else {k: dict(v) for k, v in state.rules.items()}

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        return dict(self.canonical_part("members"))

    def canonical_part(self, name: str) -> dict[str, Any]:
        """One of the small tables of the canonical state (``members``, ``joins``,
        ``proposals``), as :attr:`canonical` has it, without building all of it when it is
        not built yet: that costs O(state) — seconds at a million entries, mostly spent
        writing every contribution's id in base32 — for a table of a few rows
        (``p2pc members``, ``p2pc state``; tests/test_state_views.py checks the two agree)."""
        if self._canonical is not None:
            return dict(self._canonical.get(name, {}))
        state = self._folder.state
        if state is None:
            return {}
        if name == "members":  # (the rows are the state hash's: records.py writes them once)
            return {hexkey(a): _member_row(m) for a, m in state.members.items()}
        if name == "joins":
            return {str(c): _join_row(j) for c, j in state.joins.items()}
        if name == "proposals":
            return {str(c): _canonical_proposal(p) for c, p in state.proposals.items()}
        raise KeyError(name)

    def member_info(self, author: bytes) -> Member | None:
        state = self._folder.state
        return None if state is None else state.members.get(author)

    def active_members(self) -> list[bytes]:
        state = self._folder.state
        if state is None:
            return []
        return sorted(a for a, m in state.members.items() if m.status == "active")

    def has_role(self, author: bytes, role: str) -> bool:
        member = self.member_info(author)
        return member is not None and member.status == "active" and role in member.roles

    def member_of(self, key: bytes) -> bytes:
        """The member a key speaks for: its member if it is a bound device, else itself."""
        state = self._folder.state
        return key if state is None else member_of(state, key)

    def forked_at(self, key: bytes) -> int | None:
        """The seq from which this key's log is forked (its entries from there have no effect)."""
        return self._folder.fork_seq.get(key)

    def keys_of(self, member: bytes) -> list[dict[str, Any]]:
        """The member's keys: its own, then each device bound to it — with status (``active``,
        ``revoked``, ``forked``: its entries from ``forked_at`` on have no effect), the
        binding and the revocation."""
        state = self._folder.state
        if state is None or member not in state.members:
            return []
        rows = []
        own = state.devices.get(member)
        items: list[tuple[bytes, CID | None, CID | None]] = [(member, None if own is None else own.revocation, None)]
        items += [(k, d.revocation, d.binding) for k, d in sorted(state.devices.items())
                  if d.member == member and k != member]
        for key, revocation, binding in items:
            fork = self.forked_at(key)
            status = "revoked" if revocation is not None else "forked" if fork is not None else "active"
            rows.append({"key": key, "own": key == member, "status": status, "forked_at": fork,
                         "binding": binding, "revocation": revocation})
        return rows

    def outcome(self, entry_id: CID) -> Outcome | None:
        folder = self._folder
        raw = entry_id.raw
        entry = folder.entries.get(raw)
        meta = folder.meta.get(raw)
        if entry is None or (meta is None and raw not in folder.waiting):
            record = None if folder.archive is None else folder.archive.outcome(raw)
            if record is None:
                return self._held_outcome(entry_id)
            meta, status, reason = record
            entry = folder.body(raw)
            fork = folder.fork_seq.get(entry.author) if folder.fork_seq else None
            if fork is not None and entry.seq >= fork:  # (archived before its key forked there: Folder._void_archived)
                status, reason = REJECTED, forked_reason(fork)
        elif raw in folder.waiting:
            missing = tuple(map(CID, folder.missing_parents(raw, parents(entry))))
            return Outcome(entry_id, entry.kind, entry.author, entry.seq, WAITING,
                           "Waiting for dependencies this node does not hold yet.", False, (), missing)
        else:
            status, reason = folder.outcomes.get(raw, (WAITING, ""))
        if status == PENDING:
            status, reason = self._resolve_pending(entry)
        assert meta is not None
        holders = tuple(sorted(member for member, latest in self._latest.items()
                               if get(latest, meta.aidx) < entry.seq))
        return Outcome(entry_id, entry.kind, entry.author, entry.seq, status, reason, not holders, holders, ())

    def _resolve_pending(self, entry: Entry) -> tuple[str, str]:
        """A newcomer's or outsider's entry takes effect through the member entry that
        accepts it; report which, without rewriting the earlier entry's own record."""
        state = self._folder.state
        if state is None:
            return PENDING, ""
        if entry.kind == "contribution":
            c = state.contributions.get(entry.id)
            if c is not None and c.status == "accepted":
                return APPLIED, "Accepted by review."
            if c is not None and c.status == "rejected":
                return REJECTED, "Rejected by review."
            return PENDING, "Waiting for review (its author was not a member when writing it)."
        if entry.kind == "join":
            if entry.id in state.joins:
                return PENDING, "Waiting for admission."
            member = state.members.get(entry.author)
            if member is not None and member.since != self.commons:
                return APPLIED, f"Admitted by {member.since}."
            return REJECTED, "Not admitted."
        return PENDING, ""

    def _held_outcome(self, entry_id: CID) -> Outcome | None:
        """The outcome of an entry held back in the store (:mod:`.held`): waiting."""
        held = self._folder.held
        found = None if held is None else held.find(entry_id.raw)
        if found is None:
            return None
        entry, missing = found
        return Outcome(entry_id, entry.kind, entry.author, entry.seq, WAITING,
                       "Waiting for dependencies this node does not hold yet.", False, (),
                       tuple(map(CID, missing)))

    def outcomes(self) -> list[Outcome]:
        result = []
        folder = self._folder
        ids = list(folder.entries)
        if folder.archive is not None and folder.evicted:
            held = set(ids)
            ids += [raw for raw in folder.archive.ids() if raw not in held]
        if folder.held is not None and folder.held.count:
            ids += folder.held.ids()
        for raw in ids:
            outcome = self.outcome(CID(raw))
            if outcome is not None:
                result.append(outcome)
        return result

    def stable_summary(self) -> dict[str, Any]:
        """The stable frontier: per author, entries up to this seq are stable."""
        folder = self._folder
        frontier = self._frontier
        stable = sum(1 for meta in folder.meta.values()
                     if meta.aidx < len(frontier) and frontier[meta.aidx] >= meta.seq)
        if folder.archive is not None and folder.evicted:
            stable += folder.archive.count_stable(frontier)
        top = _max_vv(folder)
        holding = sorted(hexkey(m) for m, latest in self._latest.items() if not covers(latest, top))
        return {
            "stable_entries": stable,
            "tentative_entries": folder.count() - stable,
            "frontier": {hexkey(folder.authors[i]): seq for i, seq in enumerate(self._frontier) if seq},
            "held_back_by": holding,
            "retired": sorted(hexkey(a) for a in self.retired),
        }

    def contributions_by_status(self) -> dict[str, int]:
        counts = {"pending": 0, "accepted": 0, "rejected": 0}
        state = self._folder.state
        if state is not None:
            for c in state.contributions.values():
                counts[c.status] += 1
        return counts

    def contribution_records(self) -> list[tuple[CID, Contribution]]:
        """Every contribution's record (its entry time included), without building the
        canonical state: what ``p2pc contributions`` lists."""
        state = self._folder.state
        return [] if state is None else list(state.contributions.items())

    def contribution_table(self) -> Mapping[CID, Contribution]:
        """The contributions as the state holds them (read-only; compact, :mod:`.compact`,
        whose ``packed_items`` the query tables diff), without copying: O(1)."""
        state = self._folder.state
        return {} if state is None else state.contributions

    def next_deadline(self) -> int | None:
        """The earliest deadline (ms) of an open proposal: an entry dated after it closes
        that proposal first (protocols/commons.md §2.2); None when none is pending."""
        state = self._folder.state
        return None if state is None or not state.due else min(state.due.values())

    def contribution(self, cid: CID) -> Contribution | None:
        state = self._folder.state
        return None if state is None else state.contributions.get(cid)

    def proposal(self, cid: CID) -> Proposal | None:
        state = self._folder.state
        return None if state is None else state.proposals.get(cid)

    def decisions(self) -> list[dict[str, Any]]:
        """Every proposal, oldest first, as plain data: what it decides, its votes by whom,
        the electorate, threshold and quorum in force now, its deadline and outcome
        (protocols/commons.md §2, §2.1, §2.2; members as hex keys, ids as text)."""
        from .handlers.rules_votes import eligible, policy

        state = self._folder.state
        if state is None:
            return []
        rows = []
        for cid, p in sorted(state.proposals.items(), key=lambda item: (item[1].time, item[0].raw)):
            roles, threshold, quorum = policy(state, p)
            rows.append({
                "id": str(cid), "act": "rules" if p.action is None else p.action["act"], "title": p.title,
                "author": p.author.hex(), "changes": p.changes, "action": p.action, "status": p.status,
                "yes": sorted(a.hex() for a in p.yes), "no": sorted(a.hex() for a in p.no),
                "abstain": sorted(a.hex() for a in p.abstain), "deadline": p.deadline or None,
                "closed_by": None if p.closed is None else str(p.closed),
                "electorate": {"roles": list(roles), "size": eligible(state, roles)},
                "threshold": dict(threshold), "quorum": dict(quorum),
            })
        return rows

    def pending_joins(self) -> dict[CID, Join]:
        state = self._folder.state
        return {} if state is None else dict(state.joins)

    def ledger(self) -> list[dict[str, Any]]:
        """Per contributor: accepted contributions, value, and share of the total (in basis
        points, integer) — the basis of benefit distribution — and what distributions paid
        them to date.  A member paid but without accepted contributions left (an appeal
        reopened them) is listed too, with 0 accepted."""
        state = self._folder.state
        if state is None:
            return []
        total = sum(v for _, v in state.ledger.values())
        paid = self.paid_to_date()
        acknowledged = self.paid_to_date(acknowledged=True)
        rows = []
        for author in sorted({*state.ledger, *paid}):
            count, value = state.ledger.get(author, (0, 0))
            member = state.members.get(author)
            rows.append({"author": hexkey(author), "name": member.name if member else "",
                         "accepted": count, "value": value,
                         "share_bp": (value * 10000 // total) if total else 0, "paid": paid.get(author, 0),
                         "acknowledged": acknowledged.get(author, 0)})
        return rows

    def paid_to_date(self, *, acknowledged: bool = False) -> dict[bytes, int]:
        """Per member, the sum of the distribution shares they received (in any unit: the
        ledger's distributions list says which); with ``acknowledged``, only the shares whose
        receipt they acknowledged (§9)."""
        state = self._folder.state
        paid: dict[bytes, int] = {}
        for d in [] if state is None else state.distributions:
            for author, share in d["shares"].items():
                if not acknowledged or author in d.get("acknowledged", ()):
                    paid[author] = paid.get(author, 0) + share
        return paid

    def latest_time(self) -> int:
        """The latest time (ms) of any author's latest entry: the same on every node that
        holds the same entries, so an explanation at it is reproducible."""
        folder = self._folder
        return max((folder.body(raw).time for raw in folder.latest.values()), default=0)

    def explain(self, member: bytes, at: int | None = None) -> dict[str, Any]:
        """Why ``member`` gets what they get (protocols/commons.md §9): the value equation in
        force and its hash, each of their accepted contributions through it (value, role
        weight, decay, credit along references in and out, final), their weight and the
        commons' total as a distribution at time ``at`` (default :meth:`latest_time`) would
        compute them, and every distribution share they received."""
        from . import equation as eq

        state = self._folder.state
        if state is None:
            return {}
        at = self.latest_time() if at is None else at
        lines, weights = eq.weigh(state, at)
        total = sum(weights.values())
        mine = weights.get(member, 0)

        def credit(pairs: tuple[tuple[CID, int], ...]) -> list[dict[str, Any]]:
            return [{"contribution": str(c), "amount": n} for c, n in pairs]

        rows = []
        for cid, line in lines.items():
            if line.member != member:
                continue
            c = state.contributions[cid]
            rows.append({"id": str(cid), "title": c.title, "kind": c.kind, "claimed": c.claimed,
                         "value": line.value, "role": line.role, "role_weight": line.role_weight,
                         "weighted": line.weighted, "age_ms": line.age_ms, "after_decay": line.own,
                         "credit_in": credit(line.credit_in), "credit_out": credit(line.credit_out),
                         "final": line.final, "refs": [str(r) for r in c.refs]})
        received = [{"id": str(d["id"]), "amount": d["amount"], "currency": d["currency"],
                     "share": d["shares"].get(member, 0), "pool": d.get("pool"), "equation": d.get("equation"),
                     "acknowledged": member in d.get("acknowledged", ())}
                    for d in state.distributions if member in d["shares"]]
        record = state.members.get(member)
        return {"member": hexkey(member), "name": record.name if record else "", "at": at,
                "equation": {"id": eq.equation_id(state.rules), **eq.equation(state.rules),
                             "applies": eq.has_equation(state.rules)},
                "contributions": rows, "total": mine, "commons_total": total,
                "share_bp": mine * 10000 // total if total else 0,
                "paid_to_date": sum(r["share"] for r in received), "distributions": received}

    def resources(self) -> dict[CID, Resource]:
        state = self._folder.state
        return {} if state is None else dict(state.resources)

    def usage(self, resource: CID) -> dict[str, int]:
        state = self._folder.state
        totals: dict[str, int] = {}
        if state is not None:
            for (res, _period, author), amount in state.usage.items():
                if res == resource:
                    totals[hexkey(author)] = totals.get(hexkey(author), 0) + amount
        return totals

    def summary(self) -> dict[str, Any]:
        return {
            "commons": str(self.commons),
            "name": self._folder.state.info.get("name", "") if self._folder.state is not None else "",
            "state_hash": self.state_hash,
            "entries": self.entry_count,
            "waiting": self.waiting_count,
            "members": len(self.active_members()),
            "stable": self.stable_summary(),
            "rules": self.rules,
            "contributions": self.contributions_by_status(),
            "valid": self.valid,
        }


def _max_vv(folder: Folder) -> Vector:
    """Per author, the seq of their latest ready entry."""
    return of((folder.author_index[author], folder.record(cid).seq) for author, cid in folder.latest.items())


def _frontier(folder: Folder) -> tuple[list[int], dict[bytes, Vector], list[bytes]]:
    """Per author, the highest seq acknowledged by every active or suspended, non-retired
    member's keys (the slot-wise minimum of their latest entries' version vectors; where no
    key holds stability, every seq: an entry is stable when no such key lacks it, §4); those
    vectors; the retired members."""
    state = folder.state
    width = len(folder.authors)
    if state is None:
        return [0] * width, {}, []
    retire = state.rules.get("retire", {}).get("after", 0)
    latest: dict[bytes, Vector] = {}
    retired = []
    max_seq = folder.latest
    # Suspended members still hold stability back (a reinstatement brings them back); so does
    # each of a member's keys still able to write: their own unless revoked, each active device.
    for author in stability_holders(state):
        if author in folder.fork_seq:
            continue
        newest = folder.latest.get(author)
        if retire and folder.max_clock - (folder.record(newest).clock if newest is not None else 0) > retire:
            retired.append(author)
            continue
        cid = max_seq.get(author)
        latest[author] = folder.record(cid).vv if cid is not None else EMPTY
    if latest:
        frontier = dense(minimum(list(latest.values())), width)
    else:  # nobody holds stability back (every member forked or retired): all of it is stable
        frontier = [0] * width
        index = folder.author_index
        for author, newest in max_seq.items():
            frontier[index[author]] = folder.record(newest)[3]
    return frontier, latest, sorted(retired)


def _waiting(folder: Folder) -> int:
    """Entries waiting for a parent: in the fold, and held back in the store (:mod:`.held`)."""
    return len(folder.waiting) + (0 if folder.held is None else folder.held.count)


def _canonical(folder: Folder, *, stream: bool = False) -> dict[str, Any]:
    """The canonical state with the entry counts; with ``stream``, its tables as lazy parts
    (:func:`.records.canonical_stream`) for :func:`~p2pcommons.dagcbor.sha256_stream`."""
    s = folder.state
    out: dict[str, Any] = {"commons": str(folder.commons), "entries": folder.count(),
                           "waiting": _waiting(folder)}
    if s is None:
        return out
    if folder.genesis_error:
        out["invalid"] = folder.genesis_error
    out.update(canonical_stream(s) if stream else canonical_state(s))
    return out


def fold(entries: Iterable[Entry], commons: CID | None = None) -> CommonsState:
    """The state of one commons from a set of its entries (order and duplicates don't matter).

    ``commons`` defaults to the id of the (single) genesis among ``entries``."""
    items = list(entries)
    if commons is None:
        genesis = sorted({e.id for e in items if e.is_genesis}, key=lambda c: c.raw)
        if not genesis:
            raise ValueError("fold() needs the genesis entry or an explicit commons id")
        commons = genesis[0]
    folder = Folder(commons)
    with bulk():
        for entry in items:
            folder.add(entry)
        return folder.result()
