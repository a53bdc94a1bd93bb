"""Entries a fold's feeder holds back: stored, but waiting for a parent the store lacks.

The store places every entry at insert (its clock, once all its parents are stored:
:meth:`p2pcommons.store.Store.insert`), and the engine (:mod:`.engine`) offers the fold only
placed entries, in the store's ``(clock, id)`` order.  The others wait in the store, not in
the fold's readiness queue; a fold of everything counts them as waiting, so the state does
too (its hash covers the count).  This is how the views see them: how many, which ones,
and for one of them its entry and the parents it still waits for.
"""

from __future__ import annotations

from typing import Protocol

from ..entry import Entry


class HeldBack(Protocol):
    """The entries of one commons its feeder has not offered the fold because a parent is
    missing from the store."""

    count: int  # how many (the state's ``waiting`` adds them to the fold's own)

    def ids(self) -> list[bytes]:
        """Their raw ids."""
        ...

    def find(self, raw: bytes) -> tuple[Entry, list[bytes]] | None:
        """One of them: its entry and the raw ids of the parents it waits for (None: not
        held back)."""
        ...
