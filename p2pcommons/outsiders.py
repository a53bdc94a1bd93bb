"""What a node stores of people who are not members (issue 11, item 8).

A non-member's entries cannot take effect except through a member's entry that accepts
them (an admission of their join; a review of their contribution where the rules let
non-members contribute), yet anyone can sign entries.  Without a bound, one stranger could
make every node store megabytes and fill the review queue.  So entries received from the
network are screened here, after validation and before storing:

* **Insiders** of a commons — its founders (the genesis author and stewards) and everyone
  whose join an insider admitted — are never limited: a member's entry is never refused or
  dropped.  The set is kept in the store as entries arrive, and only grows, so it
  over-approximates membership (a removed member is still an insider here: their entries are
  evidence).  It does not need the fold: an admission by an insider names the join, and the
  join names its author.
* Anything an insider's entry **names** (the join of an admission, the contribution of a
  review) is vouched for, so it is stored whenever it arrives, even before the entry that
  named it; an outsider's log that an insider's stored entry depends on is taken off
  probation and never expires.  (Local entries do not depend on logs on probation: see
  :meth:`Store.recent_heads`.)
* An **outsider's** log is stored as a prefix (so no gap is ever created): at most
  ``outsiders.max_entries`` entries (rules; counted, so fork siblings do not multiply it), of
  the kinds ``outsiders.allowed`` lets through ("join": joins only).  The defaults follow
  the rules in force (:func:`p2pcommons.state.rules.outsider_policy`): an invite or approval
  commons stores a stranger's join and nothing else; where anyone may contribute (the
  default rules), a stranger's work takes effect and is kept without limit.
* Entries **on probation** are a stranger's entries that cannot take effect yet: with
  "join", all of them (a join waiting for its admission); with "any", an entry naming a
  parent this node does not hold, and what follows it in that log (its backlink waits too).
  At most ``[outsiders] max_waiting`` per stranger (with "any") and ``max_total`` per commons
  (config.toml) are kept.  A later screening releases a log whose parents have arrived.
* Probation **expires**: :func:`expire` deletes, ``expire_after`` seconds (config.toml,
  default 7 days) after a log's last stored entry, the whole log ("join") or the log from
  its first entry that still waits ("any"), and drops the cached commons state.

Refused entries are not errors (the peer is not at fault: it may simply know more than we
do) and not stored; they are *not held*, so convergence — two nodes holding the same
entries compute the same state — is untouched.  When an outsider is admitted later, the
admission makes them an insider and the next sync session fetches the rest of their log
from any peer that holds it (the daemon asks for that session at once).

Bundle imports and local writes are not screened (the user chose them), but they keep the
insider bookkeeping up to date.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from .dagcbor import CID, link
from .entry import Entry
from .errors import ConfigError
from .store import Store

DEFAULT_MAX_TOTAL = 1024                # outsider entries on probation per commons
DEFAULT_MAX_WAITING = 16                # per stranger, where anyone may contribute: entries that wait
DEFAULT_EXPIRE_AFTER = 7 * 24 * 3600.0  # seconds after an outsider log's last stored entry


class Limits(NamedTuple):
    """The node's own bounds (config.toml ``[outsiders]``) and its clock (injectable).
    (Neither this nor :class:`Screened` is a dataclass: ``dataclasses`` imports ``inspect``,
    about 10 ms of the start-up of every command that writes an entry, issue 18.)"""

    max_total: int = DEFAULT_MAX_TOTAL
    expire_after: float = DEFAULT_EXPIRE_AFTER
    max_waiting: int = DEFAULT_MAX_WAITING
    clock: Callable[[], float] = time.time

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Limits:
        section = config.get("outsiders", {})
        if not isinstance(section, dict):
            raise ConfigError("In config.toml, 'outsiders' must be a table ([outsiders]).")
        return cls(max_total=int(section.get("max_total", DEFAULT_MAX_TOTAL)),
                   expire_after=float(section.get("expire_after", DEFAULT_EXPIRE_AFTER)),
                   max_waiting=int(section.get("max_waiting", DEFAULT_MAX_WAITING)))


class Screened:
    """One batch after screening: what to store and the bookkeeping to write with it."""

    __slots__ = ("declined", "insiders", "kept", "pin", "probation", "release", "unvouch", "vouch")

    def __init__(self) -> None:
        self.kept: list[Entry] = []
        self.declined: list[Entry] = []
        self.insiders: dict[CID, set[bytes]] = defaultdict(set)
        self.vouch: dict[CID, dict[bytes, bool]] = defaultdict(dict)
        self.unvouch: set[bytes] = set()
        self.pin: set[bytes] = set()
        self.probation: dict[CID, dict[bytes, int]] = defaultdict(dict)  # author -> first seq
        self.release: dict[CID, set[bytes]] = defaultdict(set)


def _link(body: dict[str, Any], name: str) -> bytes | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return link(value).raw
    except Exception:  # not a link: the fold rejects the entry, nothing to vouch for
        return None


def _policy(store: Store, commons: CID, batch: Sequence[Entry]) -> tuple[str, int]:
    """The outsider policy of the rules in force as far as this node knows: the last one
    the state fold recorded, else the genesis's rules."""
    cached = store.get_cache(f"outsiders/{commons}/policy")
    if cached is not None:
        allowed, _, number = cached.decode("ascii", "replace").partition(":")
        if allowed in ("join", "any") and number.isdigit():
            return allowed, int(number)
    known = _GENESIS_POLICY.get(commons.raw)
    if known is not None:
        return known
    from .state.rules import outsider_policy, validate_rules  # the fold's package: only when needed

    genesis = next((e for e in batch if e.id == commons), None) or store.get(commons)
    rules: dict[str, Any] = {}
    if genesis is not None:
        try:
            rules = validate_rules(genesis.body.get("rules"))
        except Exception:  # an invalid genesis: the fold rejects everything anyway
            rules = {}
    policy = outsider_policy(rules)
    if genesis is not None:  # a genesis never changes (its id is its hash): its policy neither
        if len(_GENESIS_POLICY) >= 256:
            _GENESIS_POLICY.clear()
        _GENESIS_POLICY[commons.raw] = policy
    return policy


# The genesis's policy per commons id: until a fold records the rules in force, every stored
# batch asked for it, decoding the genesis and validating its rules (3 ms a batch).
_GENESIS_POLICY: dict[bytes, tuple[str, int]] = {}


def first_waiting(store: Store, commons: CID, author: bytes, first: int, extra: Iterable[bytes] = ()) -> int | None:
    """The first seq, from ``first`` on, of ``author``'s stored entries that names a parent
    this node does not hold (nor finds in ``extra``), or None."""
    also = set(extra)
    for entry in store.iter_entries(commons, author=author, after_seq=first - 1, order="log"):
        deps = set(entry.dep_ids) - also
        if deps and len(store.which_exist(deps)) < len(deps):
            return entry.seq
    return None


def remember_policy(store: Store, commons: CID, rules: dict[str, Any]) -> None:
    """Record the policy of the rules in force (called after a fold), if it changed."""
    from .state.rules import outsider_policy

    allowed, number = outsider_policy(rules)
    value = f"{allowed}:{number}".encode("ascii")
    key = f"outsiders/{commons}/policy"
    if store.get_cache(key) != value:
        store.put_cache(key, value)


def screen(store: Store, entries: Sequence[Entry], limits: Limits | None) -> Screened:
    """Decide what of ``entries`` (validated, grouped by log in seq order) to store, and the
    insider bookkeeping; ``limits=None`` keeps everything (bundles, local writes)."""
    out = Screened()
    by_commons: dict[bytes, list[Entry]] = defaultdict(list)
    for entry in entries:
        commons = entry.commons  # (entry.commons_id, inline: a genesis founds its own)
        by_commons[entry.id.raw if commons is None else commons.raw].append(entry)
    for raw, group in by_commons.items():
        _screen_commons(store, CID(raw), group, limits, out)
    return out


def _screen_commons(store: Store, commons: CID, group: list[Entry], limits: Limits | None, out: Screened) -> None:
    authors = {e.author for e in group}
    insiders = store.insiders_among(commons, authors)
    batch_ids = {e.id.raw: e for e in group}
    vouched = store.vouched_among(batch_ids)
    new_insiders: set[bytes] = set()
    for entry in group:
        if entry.commons is None:  # the genesis: its author and stewards are the founders
            stewards = entry.body.get("stewards")
            founders = {entry.author} | {s for s in stewards if isinstance(s, bytes)} if isinstance(
                stewards, list) else {entry.author}
            new_insiders |= founders
        elif vouched and vouched.get(entry.id.raw) and entry.kind == "join":
            new_insiders.add(entry.author)  # an insider admitted this join before it arrived
    # Admissions by insiders make their joins' authors insiders; repeat for chains of
    # admissions inside one batch (each pass adds at least one insider, or stops).
    named: dict[bytes, bool] = {}
    # (no insider known among this batch's authors: no entry below can name or admit anything)
    for _ in range(len(group) + 1 if insiders or new_insiders else 0):
        known = insiders | new_insiders
        grew = False
        for entry in group:
            if entry.author not in known or entry.commons is None:
                continue
            body = entry.body
            if entry.kind == "device":  # an insider's binding (or recovery approval): the key is an insider
                key = body.get("device")
                if body.get("action", "add") in ("add", "recover") and type(key) is bytes and len(key) == 32 \
                        and key not in known:
                    new_insiders.add(key)
                    grew = True
                continue
            target = _link(body, "join") if entry.kind == "admission" else (
                _link(body, "contribution") if entry.kind == "review" else None)
            if target is None:
                continue
            admits = entry.kind == "admission"
            named[target] = named.get(target, False) or admits
            if admits:
                joined = batch_ids.get(target)
                author = joined.author if joined is not None else store.author_of(target)
                if author is not None and author not in known:
                    new_insiders.add(author)
                    grew = True
        if not grew:
            break
    known = insiders | new_insiders
    out.insiders[commons] |= new_insiders
    # Vouch for what insiders named (stored or not yet), and for what they depend on.
    for target, admits in named.items():
        if target in batch_ids or store.has(CID(target)):
            out.pin.add(target)
        else:
            out.vouch[commons][target] = admits
    out.unvouch |= vouched.keys()
    # What insiders' entries in this batch depend on is needed: kept here whatever the
    # bounds, and taken off probation if it is already stored on probation.
    # (raw ids throughout: ``dep_ids``, not ``deps``, which would build a CID per dependency)
    depended = {d for e in group if e.author in known and e.commons is not None for d in e.dep_ids} if known else set()
    wanted = set(vouched) | set(named) | depended
    if depended and store.has_outsider_logs(commons):
        out.pin |= {d for d in depended if d not in batch_ids}
    # Decide, per outsider log, the prefix to keep.
    if limits is None:
        out.kept.extend(group)
        return
    allowed, max_entries = _policy(store, commons, group)
    room = limits.max_total - store.outsider_entries(commons)
    runs: dict[bytes, list[Entry]] = defaultdict(list)
    for entry in group:
        runs[entry.author].append(entry)
    outsider_deps = {d for a, run in runs.items() if a not in known for e in run for d in e.dep_ids}
    held = store.which_exist(outsider_deps - batch_ids.keys()) if allowed == "any" and outsider_deps else set()
    # Parents this batch provides: insiders' entries, and strangers' entries as they are kept
    # (not merely offered: a parent that is declined would leave its child waiting).
    if known:
        held |= {e.id.raw for e in group if e.author in known}
    for author, run in runs.items():
        if author in known:
            out.kept.extend(run)
            continue
        last_wanted = max((i for i, e in enumerate(run) if e.id.raw in wanted), default=-1) if wanted else -1
        kept = 0
        # counted, not just by seq: fork siblings (many "seq 1" joins) must not multiply the bound
        already = store.log_count(commons, author)
        # Entries on probation: every stranger's entry where only joins are allowed; where
        # anyone may contribute, an entry that would wait for parents this node lacks, and
        # everything after it in the log (its backlink waits too).
        first = store.probation_start(commons, author) if allowed == "any" else 1
        if allowed == "any" and first is not None:
            # parents that arrived since (or in this batch) end the probation they caused
            first = first_waiting(store, commons, author, first, held)
            if first is None:
                out.release[commons].add(author)
        on_probation = 0 if first is None else already - first + 1
        if allowed == "any" and first is None and already + len(run) <= max_entries and run[-1].seq <= max_entries:
            # The usual run where anyone may contribute: it fits the bounds, and if every parent
            # it names is held (or earlier in the run: an entry cannot name a later one, whose
            # hash covers it through the backlinks) nothing goes on probation.  The loop below
            # would keep the whole run; this says so in one pass instead of one decision per entry.
            run_ids = {e.id.raw for e in run}
            if all(d in held or d in run_ids for e in run for d in e.dep_ids):
                out.kept.extend(run)
                held |= run_ids
                continue
        for i, entry in enumerate(run):
            exempt = i <= last_wanted
            dangling = allowed == "any" and any(d not in held for d in entry.dep_ids)
            if allowed == "any" and first is None and dangling and not exempt:
                first = entry.seq
            probation = first is not None and entry.seq >= first and not exempt
            fits = (entry.seq <= max_entries and already + kept < max_entries
                    and (allowed == "any" or entry.kind == "join")
                    and (not probation or (room > 0 and (allowed == "join" or on_probation < limits.max_waiting))))
            if not (exempt or fits):
                out.declined.extend(run[i:])
                break
            out.kept.append(entry)
            held.add(entry.id.raw)
            kept += 1
            if probation:
                room -= 1
                on_probation += 1
        if kept and last_wanted < 0 and first is not None:
            out.probation[commons][author] = first


def record(store: Store, screened: Screened, now: float) -> None:
    """Write the bookkeeping of a screened batch, in the transaction that stores it and
    before its entries (a first use backfills insiders from the logs already held)."""
    for commons, authors in screened.insiders.items():
        if authors or not store.insiders_ready(commons):
            store.add_insiders(commons, authors)
    for commons, authors in screened.release.items():
        store.release_probation(commons, authors)
    for commons, firsts in screened.probation.items():
        store.put_on_probation(commons, firsts, now)
    for commons, ids in screened.vouch.items():
        store.add_vouched(commons, ids.items())
    if screened.unvouch:
        store.drop_vouched(screened.unvouch)
    if screened.pin:
        store.pin_logs_of(screened.pin)


def expire(store: Store, limits: Limits) -> set[CID]:
    """Delete what outsiders' logs hold on probation when their last entry is older than
    ``expire_after``: where only joins are allowed, the whole log; where anyone may
    contribute, from the first entry that still waits for a parent this node lacks (a log
    whose parents all arrived meanwhile just leaves probation).  Returns the commons whose
    state must be folded again (their live folds in this process are forgotten)."""
    def still_waiting(commons: CID, author: bytes, first: int) -> int | None:
        allowed, _ = _policy(store, commons, ())
        return 1 if allowed == "join" else first_waiting(store, commons, author, first)

    affected = store.expire_outsider_logs(limits.clock() - limits.expire_after, still_waiting)
    if affected:
        from .state.engine import forget

        for commons in affected:
            forget(store, commons)
    return affected


__all__ = ["DEFAULT_EXPIRE_AFTER", "DEFAULT_MAX_TOTAL", "DEFAULT_MAX_WAITING", "Limits", "Screened", "expire", "record",
           "remember_policy", "screen"]
