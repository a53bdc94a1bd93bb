"""The eviction front, kept as entries come instead of computed over every member.

The replayer may archive the positions every member's next entry must sort after: the
minimum, over the keys that hold stability (active or suspended members' own keys and active
devices; :func:`.handlers.devices.stability_holders`), of their latest entry, leaving out
the silent (latest entry older than ``silent_after`` clock ticks) and the retired (the
commons' ``retire.after`` rule).  Computed by walking those keys, it cost O(members) at every
append (a run asks for it first): 18 ms at 10,000 members, a third of them the walk itself.

Here every author's latest entry goes into a heap by position, ``(clock, id, author)``, when
it becomes their latest, and a query pops from the top only what can never be the front
again:

* an entry that is no longer its author's latest (the newer one is in the heap);
* a silent one (clock before the horizon, which only moves forward: the author's next entry
  comes in as a new latest).

Entries whose author does not hold stability, or is retired, are set aside (``parked``, one
per author, the silent and superseded swept out as they grow) and put back when the members
or devices tables change or the retirement rule does: those decide who holds stability (a
``mark`` on the tables that every write clears, :class:`.records.Devices`).  What a query
looks at is what it pops, plus one entry, so an append costs O(log authors), and the tests
compare every answer with the walk it replaces (``tests/test_state_front.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from heapq import heapify, heappop, heappush
from itertools import count
from typing import Protocol

Item = tuple[int, bytes, bytes]  # (clock, entry id, author): an author's latest entry, by position
_MARKS = count(1)  # marks set on the tables this index has judged (unique: copies keep theirs)


class FrontIndex:
    """Every author's latest entry by position, for :meth:`.fold.Folder._front`.

    Built from the fold's ``latest`` once; then told of each new latest (:meth:`moved`).  The
    fold drops it (and builds it again) wherever ``latest`` is replaced wholesale."""

    def __init__(self, latest: Mapping[bytes, bytes], clock_of: Callable[[bytes], int]) -> None:
        self._heap: list[Item] = [(clock_of(eid), eid, author) for author, eid in latest.items()]
        heapify(self._heap)
        self._new: list[Item] = []  # moved since the last query (pushed then, in one go)
        self._parked: dict[bytes, Item] = {}  # per author: set aside as not holding stability
        self._sweep_at = 64  # parked entries past which the silent and superseded ones are dropped
        self._judged: tuple[int, int, int] = (0, 0, 0)  # (members' mark, devices' mark, retirement)

    def moved(self, clock: int, eid: bytes, author: bytes) -> None:
        """``eid`` (at ``clock``) is ``author``'s latest entry now."""
        self._new.append((clock, eid, author))

    def front(self, latest: Mapping[bytes, bytes], horizon: int, retire: int, max_clock: int,
              tables: tuple[_Marked, _Marked], holds: Callable[[bytes], bool]) -> tuple[int, bytes] | None:
        """``(clock, id)`` of the earliest latest entry among the authors who hold stability
        (``holds``), are not silent (clock at or after ``horizon``) and not retired (``retire``
        ticks behind ``max_clock``, if a rule sets it); None if there is none.  ``tables``:
        the members and devices tables ``holds`` reads."""
        heap = self._heap
        new = self._new
        if new:
            if len(new) > len(heap) // 8:
                heap += new
                heapify(heap)
            else:
                for item in new:
                    heappush(heap, item)
            new.clear()
        members, devices = tables
        if not members.mark:
            members.mark = next(_MARKS)
        if not devices.mark:
            devices.mark = next(_MARKS)
        judged = (members.mark, devices.mark, retire)
        if judged != self._judged:
            self._judged = judged
            for item in self._parked.values():
                heappush(heap, item)
            self._parked.clear()
        parked = self._parked
        if len(parked) > self._sweep_at:
            # (Strangers writing while nothing changes the tables would otherwise stay parked
            # for ever, one per author: kept, only those neither silent nor superseded.)
            self._parked = parked = {author: item for author, item in parked.items()
                                     if item[0] >= horizon and latest.get(author) == item[1]}
            self._sweep_at = 2 * len(parked) + 64
        retired_before = max_clock - retire if retire else None
        while heap:
            clock, eid, author = heap[0]
            if latest.get(author) != eid or clock < horizon:
                heappop(heap)  # superseded, or silent: for good
                continue
            if (retired_before is not None and clock < retired_before) or not holds(author):
                parked[author] = heappop(heap)
                continue
            return clock, eid
        return None

    def __iter__(self) -> Iterator[Item]:
        """What the index holds (tests: bounded by the authors and the entries since the front)."""
        yield from self._heap
        yield from self._new
        yield from self._parked.values()


class _Marked(Protocol):
    """What :meth:`FrontIndex.front` needs of a table: a ``mark`` cleared on every write."""

    mark: int
