"""The replayer's intake in the fold's own order: a batch of entries whose parents are ready.

A fresh node's first fold reads its store in ``(clock, id)`` order (:meth:`Store.in_order`),
so every entry's parents are already ready when it comes and it sorts last: no readiness
queue, no re-sorting.  :func:`take_in_order` is :meth:`Folder.add_in_order` for a batch of
such entries.  Why a module of its own: the intake was about a fifth of a fresh fold's CPU,
nearly all of it per-entry overhead (a method call per entry, per parent lookup, per date;
attributes looked up again for every entry), so the loop binds what it uses once per batch,
and for a commons of up to 1,024 authors (version vectors of one or two levels,
:mod:`.causal`) it computes the entry's causal facts inline, finding the parents its latest
parent has not seen with one comprehension over its vector laid out flat rather than a
loop of branches per parent.

What it computes is exactly what :meth:`Folder._ready` computes (the general path, which
anything else takes: a fork, more than 1,024 authors, an author's first entry, a missing
parent, an entry that sorts earlier); ``tests/test_state_intake.py`` compares the two
record for record on random histories and delivery orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING

from ..causal import BITS, MASK, WIDTH, Node
from ..causal import get as _get
from ..causal import merge as _merge
from ..causal import merge_roots as _merge_roots
from ..causal import put as _put
from ..entry import Entry
from .positions import VV
from .positions import Meta as _Meta
from .positions import by_clock as _by_clock

if TYPE_CHECKING:
    from .fold import Folder

# Commons of up to this many authors have version vectors of one or two levels, computed
# inline (tests set it to 0 to compare with the general path).
FAST_AUTHORS = WIDTH * WIDTH
_ZEROS = (0,) * FAST_AUTHORS  # missing slots (a node is trimmed after its last non-empty one)
_new = tuple.__new__


def _flat(shift: int, node: Node, width: int) -> Node | list[int]:
    """The first ``width`` (at least) slots of a vector of one or two levels, as one sequence:
    which parents an entry's latest parent has not seen is then one indexing per parent."""
    if not shift:
        return node if len(node) >= width else node + _ZEROS[:width - len(node)]
    flat: list[int] = []
    for leaf in node:
        flat += leaf
        flat += _ZEROS[:WIDTH - len(leaf)]
    if len(flat) < width:
        flat += _ZEROS[:width - len(flat)]
    return flat


def take_in_order(folder: Folder, entries: Iterable[Entry]) -> int:
    """Take ``entries`` as :meth:`Folder.add_in_order` takes each, in turn; how many were new.

    Only ``add`` (the general intake) can change what the loop binds once: whether the
    genesis is ready and the author table (``fork_seq``, ``evicted`` and the archive's
    ``base`` change only in ``run``), so the loop reads those again after each ``add``."""
    meta = folder.meta
    meta_get = meta.get
    waiting = folder.waiting
    waiters = folder.waiters
    logs = folder.logs
    table = folder.entries
    commons_raw = folder._commons_raw
    evicted = folder.evicted
    upto = folder.evicted_upto
    author_index = folder.author_index
    authors = folder.authors
    latest_of = folder.latest
    front_index = folder.front_index
    old = folder.old
    order = folder.order
    order_append = order.append
    times = folder._times
    times_max = folder.times_bound()  # (authors added in this batch: counted at the next)
    floors = folder.floors
    fork_seq = folder.fork_seq
    base = folder.base
    known = folder._known
    add = folder.add
    ready = folder._ready
    fast_authors = FAST_AUTHORS
    genesis = commons_raw in meta or commons_raw in old or folder._position(commons_raw) is not None
    taken = 0
    for entry in entries:
        eid = entry.id.raw
        commons = entry.commons
        if commons is None or commons.raw != commons_raw or eid in meta or eid in waiting or eid in waiters:
            taken += add(entry)
            genesis = genesis or commons_raw in meta
            continue
        author = entry.author
        seq = entry.seq
        log = logs.get(author)
        if (log is not None and seq in log) or (evicted and seq <= upto.get(author, 0)):
            taken += add(entry)
            continue
        prev = entry.prev
        parent_ids = [*entry.dep_ids, prev.raw] if prev is not None else list(entry.dep_ids)
        found = list(map(meta_get, parent_ids))
        if not all(found):  # (a None among records, which are never empty: ``in`` compared each)
            if evicted:
                found = [r if r is not None else known(p) for p, r in zip(parent_ids, found, strict=True)]
            if not all(found):
                taken += add(entry)
                continue
        parents: list[_Meta] = found  # type: ignore[assignment]  # (none missing)
        if not parents or not genesis:
            taken += add(entry)
            continue
        table[eid] = entry
        if log is None:
            log = logs[author] = {}
        log[seq] = eid
        taken += 1
        aidx = author_index.get(author)
        if aidx is None or len(authors) > fast_authors \
                or (fork_seq and _names_a_forked_key(parents, authors, fork_seq)):
            ready(eid, entry, parent_ids, parents)
            continue
        # Folder._ready for vectors of one or two levels (every author index below 1,024):
        # the parents the latest one has not seen add to its vector and date the entry; the
        # others add nothing.  Which those are is read off its vector laid out flat.
        latest = max(parents, key=_by_clock) if len(parents) > 1 else parents[0]
        top = latest
        shift = top[VV]
        if shift > BITS or shift < 0:  # (deeper: not built while every author index is below
            ready(eid, entry, parent_ids, parents)  # 1,024; or archived, its vector not kept)
            continue
        clock = top[0] + 1
        node = top[VV + 1]
        width = len(authors)
        seen = node if not shift and len(node) >= width else _flat(shift, node, width)
        unseen = [p for p in parents if seen[p[2]] < p[3]]
        dated = [latest[1]]
        if unseen:
            if any(p[VV] < 0 for p in unseen):  # (archived, its vector not kept: Folder._ready)
                ready(eid, entry, parent_ids, parents)
                continue
            # (As Folder._ready: each checked against the vector grown by those merged
            # before it, so one in an earlier one's past is neither merged nor dated.)
            for p in unseen:
                if len(dated) > 1 and _flat(shift, node, width)[p[2]] >= p[3]:
                    continue
                dated.append(p[1])
                full = p
                if shift == BITS and full[VV] == BITS:  # (two levels each: 33 to 1,024 authors)
                    node = _merge_roots(node, full[VV + 1])
                else:
                    shift, node = _merge((shift, node), (full[VV], full[VV + 1]))
        # Folder._date: the floor is the latest effective time over the dated parents (one,
        # the latest, most often: its time is then read here, moved to the newest end).
        held = times.pop(dated[0], None) if len(dated) == 1 else None
        if held is not None:
            times[dated[0]] = floor = held
        else:
            floor = folder._floor(dated)
        effective = entry.time
        if floor > effective:
            floors[eid] = effective = floor
        if len(times) >= times_max:  # (Folder._remember_time)
            for older in list(islice(times, times_max // 2)):
                del times[older]
        times[eid] = effective
        # The entry's own seq (on a leaf, or a leaf under a two-level root, inline: the same
        # tuples causal.put builds).
        if shift == BITS:  # (author indexes below 1,024 here)
            k = aidx >> BITS
            j = aidx & MASK
            n = len(node)
            leaf = node[k] if k < n else ()
            if j < len(leaf):
                if seq > leaf[j]:
                    leaf = (*leaf[:j], seq, *leaf[j + 1:])
                    node = (*node[:k], leaf, *node[k + 1:])
            else:  # (not along a log, where the entry's prev has set its slot: the general way)
                shift, node = _put((shift, node), aidx, seq)
        elif shift or aidx >= WIDTH:
            if seq > _get((shift, node), aidx):
                shift, node = _put((shift, node), aidx, seq)
        else:
            n = len(node)
            if aidx < n:
                if seq > node[aidx]:
                    node = (*node[:aidx], seq, *node[aidx + 1:])
            elif seq > 0:
                node = (*node, *_ZEROS[:aidx - n], seq)
        key = meta[eid] = _new(_Meta, (clock, eid, aidx, seq, shift, node))
        newest = latest_of.get(author)
        if newest is None or seq > (meta_get(newest) or folder.record(newest))[3]:
            latest_of[author] = eid
            if front_index is not None:
                front_index.moved(clock, eid, author)
            if newest is not None and old and newest != commons_raw:
                old.pop(newest, None)
        if clock > folder.max_clock:
            folder.max_clock = clock
        if (not order or key > order[-1]) and not (evicted and key <= base):
            order_append(key)
        else:
            folder._place(key)
    return taken


def _names_a_forked_key(parents: list[_Meta], authors: list[bytes], fork_seq: dict[bytes, int]) -> bool:
    """Whether a parent is by a key that has forked (at or before its seq): its seq alone
    does not tell whether another parent's past holds it or its sibling, so the general
    intake merges and dates every parent (:meth:`Folder._ready`).  Any other parent is in
    the latest parent's past exactly when that past holds its author's seq (it chains
    through it), whatever other keys forked — an entry whose past holds both branches of a
    fork holds both siblings, so the fork is known by the time it is taken.  (Every entry
    took the general intake once any key had forked: a fifth slower, for good, after one
    stranger's two signatures.)"""
    for parent in parents:
        fork = fork_seq.get(authors[parent[2]])
        if fork is not None and parent[3] >= fork:
            return True
    return False

