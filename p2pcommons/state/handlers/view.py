"""What a kind handler may see of the fold: the narrow interface between the two.

A handler is a function ``handler(view, state, entry, meta) -> status``: it reads the state
at the entry's position, asks the fold causal-past questions only through :class:`View`,
writes its effect into ``state`` (whose records are immutable tuples: it replaces, never
mutates), and returns ``APPLIED`` or ``PENDING`` — or raises :class:`Rejected` with the
reason, and then must have changed nothing.  It never sees how the fold orders, snapshots,
restores or evicts; the fold (:mod:`..fold`) never knows what a kind means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ...dagcbor import CID
from ...entry import Entry
from ..positions import Meta
from ..records import State

APPLIED = "applied"
REJECTED = "rejected"
PENDING = "pending"
WAITING = "waiting"


class Rejected(Exception):
    """Raised inside a kind handler: the entry has no effect, for this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class View(Protocol):
    """The causal facts a handler may ask about (all O(1) per question)."""

    @property
    def commons(self) -> CID:
        """The commons' id (its genesis entry)."""
        ...

    def in_past(self, target: CID, meta: Meta) -> bool:
        """Is ``target`` in the causal past of the entry at ``meta``?"""
        ...

    def kind_of(self, target: CID) -> str:
        """The kind of a ready entry (held or archived); "" if unknown."""
        ...

    def is_entry(self, target: CID) -> bool:
        """Is ``target`` a ready entry of this commons (not, say, a genesis resource's hash)?"""
        ...

    def time_of(self, target: CID) -> int:
        """The ``time`` of a ready entry (held or archived)."""
        ...

    def seq_of(self, target: CID) -> int:
        """The seq of a ready entry in its author's log (0 if unknown)."""
        ...

    def seen_seq(self, author: bytes, meta: Meta) -> int:
        """The highest seq of ``author``'s log in the causal past of the entry at ``meta``."""
        ...

    def is_void(self, sanction: CID, member: bytes) -> bool:
        """Was this removal or suspension of ``member`` (by a sanction, or a decision at the
        entry that decided it) found to take effect only through entries it would exclude
        (so it has none)?"""
        ...

    def excluding(self, member: bytes, sanction: CID, meta: Meta, liftable: bool) -> None:
        """Make a removal (``liftable`` False) or suspension strong: the member's entries
        outside the sanction's causal past have no effect.  A handler calls it only where
        the removal takes effect, and raises nothing after it (the fold records it in
        force).  May raise the fold's conflict signal (an excluded entry was already
        applied): the fold replays and calls again."""
        ...


Handler = Callable[[View, State, Entry, Meta], str]
