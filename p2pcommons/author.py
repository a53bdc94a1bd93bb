"""Writing local entries: choosing seq, backlink and dependencies, and storing durably.

Local entries go through the same ingest path as received ones (with every signature
checked), so a bug here can never store something a peer would reject.
"""

from __future__ import annotations

import time as _time
from typing import Any

from . import ownlog
from .dagcbor import CID, link
from .entry import GENESIS, MAX_DEPS, Entry, Signer, sign_entry
from .errors import InvalidEntry, NotFound, RuleRefusal
from .ingest import Ingestor
from .store import Store


def current_deps(store: Store, commons: CID, author: bytes, limit: int = MAX_DEPS) -> list[CID]:
    """The heads of other authors' logs in this commons, newest arrivals first, at most
    ``limit``: what this author has seen, so the new entry sorts after all of it."""
    return store.recent_heads(commons, exclude_author=author, limit=limit)


def append(store: Store, signer: Signer, commons: CID, kind: str, body: dict[str, Any],
           *, timestamp: int | None = None, extra_deps: list[CID] | None = None,
           force: bool = False) -> Entry:
    """Sign and durably store the author's next entry in ``commons``.

    Seq, backlink and dependencies are chosen inside the write transaction (BEGIN
    IMMEDIATE), from the author's newest stored entry: two local writers (parallel
    commands, the daemon's admissions, on one home) are serialized by SQLite's write lock,
    so each sees the other's entry and none can reuse a seq and fork the author's own log.
    The commit is fsynced before this returns.

    Unless ``force``, an entry the rules in force would reject is refused with
    :class:`RuleRefusal` (the fold's reason) and nothing is stored: a signed entry stays in
    the log for ever, and one without effect only confuses readers.  The check runs in the
    same transaction, on exactly the state the entry extends (see :func:`_refuse_rejected`).
    Pending or waiting outcomes (an outsider's contribution, a join awaiting admission) are
    not refusals.
    """
    try:
        with store.transaction():
            if not store.has_commons(commons):
                raise NotFound(f"This node holds no commons {commons}.")
            seq, own = store.tip(commons, signer.public_key)
            # Backups cannot fork: refuse if this home signed more of its log than it holds.
            ownlog.check(store, commons, signer.public_key, seq)
            prev: CID | None = min(own, key=lambda c: c.raw) if own else None
            deps = current_deps(store, commons, signer.public_key)
            for dep in extra_deps or ():
                if dep not in deps and len(deps) < MAX_DEPS:
                    deps.append(dep)
            if timestamp is None:
                timestamp = _not_before(store, [*deps, *([prev] if prev is not None else [])])
            entry = sign_entry(signer, commons=commons, seq=seq + 1, prev=prev, kind=kind, body=body,
                               deps=deps, timestamp=timestamp)
            _store_local(store, entry)
            if not force:
                _refuse_rejected(store, commons, entry)
    except BaseException:
        if not force:
            # The live fold may have taken the entry that the rollback (a refusal, a failed
            # commit) removed: drop it, so the next read folds what the store holds.
            from .state.engine import forget

            forget(store, commons)
        raise
    if not store.in_transaction:  # (else the caller records it once its transaction commits)
        ownlog.record(store, commons, signer.public_key, entry.seq)
    return entry


def _not_before(store: Store, parents: list[CID]) -> int:
    """Now (ms), or the latest time among the entry's parents if that is later: an entry is
    never dated before its parents (the fold rejects it, ``protocols/commons.md`` §2.4), and
    a peer's clock may run ahead of ours by up to the skew."""
    now = int(_time.time() * 1000)
    for parent in parents:
        body = store.get(parent)
        if body is not None and body.time > now:
            now = body.time
    return now


def _refuse_rejected(store: Store, commons: CID, entry: Entry) -> None:
    """Raise RuleRefusal (rolling the enclosing transaction back) if the fold rejects the
    entry just stored in it.  The live fold is incremental, so this costs what the entry's
    own application costs; after a refusal :func:`append` drops the in-memory fold, which
    took the entry (the next read resumes from the committed checkpoint and store).  A
    caller holding an outer transaction must let the error end it (the entry is stored
    in it)."""
    from .state import REJECTED
    from .state.engine import current_state

    outcome = current_state(store, commons, persist=False).outcome(entry.id)
    if outcome is None or outcome.status != REJECTED:
        return
    reason = (outcome.reason or "the rules in force reject it").rstrip(".")
    if reason[:2].istitle():  # "It exceeds…" -> "it exceeds…" (not "ID…")
        reason = reason[0].lower() + reason[1:]
    raise RuleRefusal(f"Refused by the rules in force: {reason}; nothing was stored (--force records it anyway).")


def admit_once(store: Store, signer: Signer, commons: CID, join: CID, *, force: bool = True) -> Entry | None:
    """Write this member's admission of ``join`` unless the store already holds one by this
    member (whatever became of it: a forked author's admissions are rejected by the fold,
    so the join stays pending, and admitting again would only add rejected entries).
    Checked and written in one write transaction, so concurrent admitters on one home
    (the daemon, ``p2pc admit``) write at most one.  ``force`` defaults to True: the
    daemon's automatic admissions target only pending joins, and one that a concurrent
    admission made redundant is rejected harmlessly (and, stored, is never retried);
    ``p2pc admit`` passes False to get the rule check of :func:`append`."""
    with store.transaction():
        if join.raw in admitted_joins(store, commons, signer.public_key):
            return None
        entry = append(store, signer, commons, "admission", {"join": join}, extra_deps=[join], force=force)
    ownlog.record(store, commons, signer.public_key, entry.seq)
    return entry


def admitted_joins(store: Store, commons: CID, author: bytes) -> set[bytes]:
    """Raw ids of the joins ``author`` has written an admission of (stored entries)."""
    result = set()
    for admission in store.iter_entries(commons, author=author, kind="admission"):
        try:
            result.add(link(admission.body.get("join")).raw)
        except InvalidEntry:
            continue
    return result


def create_commons(store: Store, signer: Signer, body: dict[str, Any], *, timestamp: int | None = None) -> Entry:
    """Sign and store a genesis entry; its id is the new commons' id."""
    entry = sign_entry(signer, commons=None, seq=1, prev=None, kind=GENESIS, body=body, timestamp=timestamp)
    _store_local(store, entry)
    ownlog.record(store, entry.id, signer.public_key, entry.seq)
    return entry


def _store_local(store: Store, entry: Entry) -> None:
    with store.transaction():
        Ingestor(store, verify="each", atomic=True, clock=None).add_batch([entry.raw])
