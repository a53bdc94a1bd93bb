"""Writing local entries: choosing seq, backlink and dependencies, and storing durably.

Local entries go through the same ingest path as received ones (with every signature
checked), so a bug here can never store something a peer would reject.
"""

from __future__ import annotations

from typing import Any

from .dagcbor import CID
from .entry import GENESIS, MAX_DEPS, Entry, Signer, sign_entry
from .errors import NotFound
from .ingest import Ingestor
from .store import Store


def current_deps(store: Store, commons: CID, author: bytes, limit: int = MAX_DEPS) -> list[CID]:
    """The heads of other authors' logs in this commons, newest arrivals first, at most
    ``limit``: what this author has seen, so the new entry sorts after all of it."""
    return store.recent_heads(commons, exclude_author=author, limit=limit)


def append(store: Store, signer: Signer, commons: CID, kind: str, body: dict[str, Any],
           *, timestamp: int | None = None, extra_deps: list[CID] | None = None) -> Entry:
    """Sign and durably store the author's next entry in ``commons``."""
    if not store.has_commons(commons):
        raise NotFound(f"This node holds no commons {commons}.")
    seq = store.max_seq(commons, signer.public_key)
    prev: CID | None = None
    if seq:
        own = store.ids_at(commons, signer.public_key, seq)
        prev = min(own, key=lambda c: c.raw)
    deps = current_deps(store, commons, signer.public_key)
    for dep in extra_deps or ():
        if dep not in deps and len(deps) < MAX_DEPS:
            deps.append(dep)
    entry = sign_entry(signer, commons=commons, seq=seq + 1, prev=prev, kind=kind, body=body,
                       deps=deps, timestamp=timestamp)
    _store_local(store, entry)
    return entry


def create_commons(store: Store, signer: Signer, body: dict[str, Any], *, timestamp: int | None = None) -> Entry:
    """Sign and store a genesis entry; its id is the new commons' id."""
    entry = sign_entry(signer, commons=None, seq=1, prev=None, kind=GENESIS, body=body, timestamp=timestamp)
    _store_local(store, entry)
    return entry


def _store_local(store: Store, entry: Entry) -> None:
    with store.transaction():
        Ingestor(store, verify="each", atomic=True).add_batch([entry.raw])
