"""The store side of sync: summaries, send plans and batches (plain functions, no I/O of
the network, no trio), run by the node in its one store worker thread.

Why plans are computed once per session: the session announces exact totals before it
streams (progress), so the sender fixes per author which entries it will send, and then
streams exactly those even if the store grows meanwhile (the next session sends the rest).

Why a summary lists every *tip* of a log (an entry no stored entry follows), not only its
newest entries: an author's log is a tree once it forks (several signed entries at one
seq, each perhaps continued).  A peer that holds an entry holds its whole ancestry (ingest
refuses gaps), so the tips describe exactly what the peer holds: the union of their
ancestries.  A head-and-fork-position summary cannot tell which siblings of a three-way
fork a peer holds, nor which branch continuations, and sync stalled with the nodes apart.

Why plans are built page by page (:class:`Planner`): a summary may be any size (one head
per author, and a commons may have any number of authors), so it crosses the wire in
bounded pages, and the receiver plans from each page and drops it; what it keeps is its
own plan, bounded by its own store, not by what the peer sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from p2pcommons.dagcbor import CID
from p2pcommons.entry import decode_entry
from p2pcommons.protocols.sync import DEFAULT_BATCH_BYTES, MAX_BATCH_ENTRIES, PAGE_ITEMS, Summary
from p2pcommons.store import Store

# Tips of one author kept from a peer's summary; beyond this the planner treats the peer's
# log as unknown and sends everything it cannot prove the peer holds (bounded memory,
# still correct: extra entries are duplicates the peer ignores).
MAX_PEER_TIPS_PER_AUTHOR = 1024


@dataclass
class _Tree:
    """One author's stored log as a tree: raw id -> (seq, prev raw id or None, size)."""

    nodes: dict[bytes, tuple[int, bytes | None, int]]

    def children(self) -> dict[bytes, list[bytes]]:
        kids: dict[bytes, list[bytes]] = {}
        for key, (_seq, prev, _size) in self.nodes.items():
            if prev is not None:
                kids.setdefault(prev, []).append(key)
        return kids

    def leaves(self) -> list[bytes]:
        kids = self.children()
        return [k for k in self.nodes if k not in kids]

    def ancestry(self, tips: list[bytes]) -> set[bytes]:
        """The tips and every stored entry they descend from."""
        seen: set[bytes] = set()
        for tip in tips:
            key: bytes | None = tip
            while key is not None and key in self.nodes and key not in seen:
                seen.add(key)
                key = self.nodes[key][1]
        return seen

    def descendants(self, roots: list[bytes]) -> set[bytes]:
        """Every stored entry that follows one of ``roots`` (not the roots themselves)."""
        kids = self.children()
        seen: set[bytes] = set()
        todo = [k for r in roots for k in kids.get(r, ())]
        while todo:
            key = todo.pop()
            if key not in seen:
                seen.add(key)
                todo.extend(kids.get(key, ()))
        return seen


def _tree(store: Store, commons: CID, author: bytes) -> _Tree:
    nodes: dict[bytes, tuple[int, bytes | None, int]] = {}
    for raw in store.iter_raw(commons, author=author, order="log"):
        entry = decode_entry(raw)
        nodes[entry.id.raw] = (entry.seq, None if entry.prev is None else entry.prev.raw, len(raw))
    return _Tree(nodes)


def _forked_authors(store: Store, commons: CID) -> set[bytes]:
    return {f.author for f in store.forks(commons)}


def summarize(store: Store, commons: CID) -> Summary:
    """Our tips and fork positions in ``commons`` (empty if we do not hold it: a want).

    A linear log's only tip is its head; a forked log's tips are computed from its tree."""
    forked = _forked_authors(store, commons)
    heads: list[tuple[bytes, int, CID]] = []
    for head in store.heads(commons):
        if head.author not in forked:
            heads.append((head.author, head.seq, head.id))
    for author in sorted(forked):
        tree = _tree(store, commons, author)
        heads.extend((author, tree.nodes[k][0], CID(k)) for k in tree.leaves())
    forks = tuple((f.author, f.seq) for f in store.forks(commons))
    return Summary(commons, tuple(heads), forks)


def summary_pages(store: Store, commons: CID, items: int = PAGE_ITEMS) -> list[Summary]:
    """Our summary of ``commons`` as bounded SUMMARY pages."""
    return summarize(store, commons).pages(items)


@dataclass
class Segment:
    """One author's entries to send: first the entries named in ``ids`` (in causal order),
    then ``count`` entries of the log above seq ``after`` (in log order)."""

    author: bytes
    after: int
    count: int
    nbytes: int
    ids: list[CID] = field(default_factory=list)
    from_start: bool = False


@dataclass
class Plan:
    commons: CID
    segments: list[Segment]
    we_lack: int = 0      # entries the peer's summary shows we lack, at least
    probes: int = 0       # entries sent on the chance the peer lacks them (see Planner)

    @property
    def entries(self) -> int:
        return sum(s.count + len(s.ids) for s in self.segments)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.segments)


class Planner:
    """What the peer lacks of one commons, planned author by author as the pages of its
    summary arrive (:meth:`feed`), completed by :meth:`finish`.

    Per author, with the peer's tips ``T`` (those we hold are *known*):

    * the peer holds the ancestry of each known tip (ingest refuses gaps) and none of its
      descendants (it is a tip there), so those descendants are certainly lacking;
    * no tips: the peer holds nothing of the author: send the whole log;
    * every tip known, or some unknown tip at or below our highest seq (the peer holds a
      branch we lack, so our logs diverged): send everything outside the known ancestry;
    * otherwise the peer's unknown tips all lie beyond our highest seq: the peer is ahead,
      and what we hold outside the known ancestry may be on its chain.  Send the certainly
      lacking entries and, as *probes*, the tips of the rest (usually just our head: a
      duplicate if the peer's chain holds it).  The peer, seeing our tip, cannot be ahead
      of us too, so it sends us everything we lack; if a probe did not fit the peer's log,
      the peer's next session (which a rejected entry triggers) sends the rest.  So a fork
      of any shape converges within two sessions, and a session that moves nothing means
      both sides hold the same entries.
    """

    def __init__(self, store: Store, commons: CID) -> None:
        self.store = store
        self.commons = commons
        self._my_max: dict[bytes, int] = {}
        for head in store.heads(commons):
            self._my_max[head.author] = head.seq
        self._authors = sorted(self._my_max)
        self._next = 0
        self._forked = _forked_authors(store, commons)
        genesis_raw = store.get_raw(commons)
        self._genesis_author = decode_entry(genesis_raw).author if genesis_raw is not None else None
        self._current: bytes | None = None
        self._tips: list[tuple[int, bytes]] = []
        self._overflow = False
        self._segments: list[Segment] = []
        self._we_lack = 0
        self._probes = 0

    def feed(self, page: Summary) -> None:
        """Plan from one page of the peer's summary (pages arrive in author order)."""
        for author, seq, cid in page.heads:
            if author != self._current:
                self._close_current()
                self._skip_to(author)
                self._current = author
            if len(self._tips) < MAX_PEER_TIPS_PER_AUTHOR:
                self._tips.append((seq, cid.raw))
            else:
                self._overflow = True

    def finish(self) -> Plan:
        self._close_current()
        self._skip_to(None)
        genesis = self._genesis_author
        # The genesis first: a peer that holds nothing of the commons needs it before anything.
        self._segments.sort(key=lambda s: (not (s.author == genesis and s.from_start), s.author))
        return Plan(self.commons, self._segments, self._we_lack, self._probes)

    def _skip_to(self, author: bytes | None) -> None:
        """Authors we hold that sort before ``author`` (all, for None): the peer listed
        nothing of them, so it lacks their whole logs."""
        while self._next < len(self._authors) and (author is None or self._authors[self._next] < author):
            self._plan_author(self._authors[self._next], [], False)
            self._next += 1

    def _close_current(self) -> None:
        author, tips, overflow = self._current, self._tips, self._overflow
        self._current, self._tips, self._overflow = None, [], False
        if author is None:
            return
        if self._next < len(self._authors) and self._authors[self._next] == author:
            self._next += 1
            self._plan_author(author, tips, overflow)
        else:  # an author we hold nothing of
            self._we_lack += max(seq for seq, _ in tips)

    def _plan_author(self, author: bytes, tips: list[tuple[int, bytes]], overflow: bool) -> None:
        store, commons = self.store, self.commons
        my_max = self._my_max[author]
        if not tips and not overflow:
            count, nbytes = store.log_after_size(commons, author, 0)
            self._add(Segment(author, 0, count, nbytes, from_start=True))
            return
        peer_max = max((seq for seq, _ in tips), default=0)
        self._we_lack += max(0, peer_max - my_max)
        if author not in self._forked:
            self._plan_linear(author, my_max, tips, overflow)
        else:
            self._plan_tree(author, my_max, tips, overflow)

    def _plan_linear(self, author: bytes, my_max: int, tips: list[tuple[int, bytes]], overflow: bool) -> None:
        """Our log is one chain: one entry per seq, so a known tip at seq k means the peer
        holds exactly our seq 1..k and lacks the rest."""
        store, commons = self.store, self.commons
        known = 0
        unknown: list[int] = [0] if overflow else []
        for seq, raw in tips:
            if seq <= my_max and raw in {c.raw for c in store.ids_at(commons, author, seq)}:
                known = max(known, seq)
            else:
                unknown.append(seq)
        self._we_lack += sum(1 for seq in unknown if 0 < seq <= my_max)
        if known or any(seq <= my_max for seq in unknown):
            if known < my_max:
                count, nbytes = store.log_after_size(commons, author, known)
                self._add(Segment(author, known, count, nbytes, from_start=known == 0))
            return
        # the peer is ahead on every branch we cannot place: probe with our head
        ids = store.ids_at(commons, author, my_max)
        nbytes = sum(len(store.get_raw(c) or b"") for c in ids)
        self._probes += len(ids)
        self._add(Segment(author, my_max, 0, nbytes, ids=ids))  # a probe: the peer has our past

    def _plan_tree(self, author: bytes, my_max: int, tips: list[tuple[int, bytes]], overflow: bool) -> None:
        tree = _tree(self.store, self.commons, author)
        known = [raw for _seq, raw in tips if raw in tree.nodes]
        unknown = [seq for seq, raw in tips if raw not in tree.nodes] + ([0] if overflow else [])
        self._we_lack += sum(1 for seq in unknown if 0 < seq <= my_max)
        held = tree.ancestry(known)
        if not unknown or any(seq <= my_max for seq in unknown):
            send = [k for k in tree.nodes if k not in held]
        else:
            lacking = tree.descendants(known)
            unsure = {k for k in tree.nodes if k not in held and k not in lacking}
            kids = tree.children()
            probes = [k for k in unsure if not any(c in unsure for c in kids.get(k, ()))]
            self._probes += len(probes)
            send = list(lacking) + probes
        if send:
            send.sort(key=lambda k: (tree.nodes[k][0], k))  # causal: a parent has a lower seq
            self._add(Segment(author, my_max, 0, sum(tree.nodes[k][2] for k in send),
                              ids=[CID(k) for k in send], from_start=tree.nodes[send[0]][0] == 1))

    def _add(self, segment: Segment) -> None:
        if segment.count or segment.ids:
            self._segments.append(segment)


def plan(store: Store, commons: CID, peer: Summary) -> Plan:
    """What the peer lacks of ``commons``, judged from its (whole) summary."""
    planner = Planner(store, commons)
    for page in peer.pages():
        planner.feed(page)
    return planner.finish()


# Sender order (protocols/sync.md §4): logs are read side by side and merged by clock, in
# windows of this many clock units, so the receiver gets parents before the entries naming
# them; at most MERGE_LOGS logs are merged at once (each holds a chunk of rows in memory).
MERGE_WINDOW = 64
MERGE_LOGS = 64
_MERGE_ROWS = 4096  # rows read ahead over all the logs merged at once


def batches(store: Store, the_plan: Plan, batch_bytes: int = DEFAULT_BATCH_BYTES) -> Iterator[list[bytes]]:
    """The plan's entries in the order of protocols/sync.md §4, packed into batches of at
    most ``batch_bytes`` (or one entry, if larger)."""
    batch: list[bytes] = []
    size = 0
    for raw in send_order(store, the_plan):
        if batch and (size + len(raw) > batch_bytes or len(batch) >= MAX_BATCH_ENTRIES):
            yield batch
            batch = []
            size = 0
        batch.append(raw)
        size += len(raw)
    if batch:
        yield batch


def send_order(store: Store, the_plan: Plan) -> Iterator[bytes]:
    """The plan's entries: the genesis author's segment first if it is sent by id from seq
    1; then the segments sent as log ranges, merged by clock (:func:`_merged`); then the
    other segments sent by id (forked logs, probes), each in causal order.

    Why merged: a segment after segment (each author's log in turn) brings most entries
    before the other authors' entries they name, and a receiver stores an entry whose
    parent it lacks as waiting, then places it again when the parent comes: storing 100,000
    entries so cost about four times the CPU of storing them parents first."""
    segments = the_plan.segments
    first = segments[:1] if segments and segments[0].ids and segments[0].from_start else []
    for segment in first:
        yield from _by_id(store, segment)
    ranges = [s for s in segments if s.count]
    for start in range(0, len(ranges), MERGE_LOGS):
        yield from _merged(store, the_plan.commons, ranges[start:start + MERGE_LOGS])
    for segment in segments[len(first):]:
        yield from _by_id(store, segment)


def _by_id(store: Store, segment: Segment) -> Iterator[bytes]:
    for cid in segment.ids:
        raw = store.get_raw(cid)
        if raw is None:
            raise RuntimeError("the store lost entries during a sync session")
        yield raw


def _merged(store: Store, commons: CID, ranges: list[Segment]) -> Iterator[bytes]:
    """The entries of log ranges, merged: in rounds, with ``low`` the lowest clock at the
    front of any range, each range in turn gives its next entries whose clock is at most
    ``low + MERGE_WINDOW``; entries without a clock (waiting, at the sender, for a parent it
    lacks) come last, range by range.  Each range keeps its own order (seq), so chains stay
    in order; an entry's parents have lower clocks, so they come first, except within one
    window (the receiver places a batch in memory, whatever its order)."""
    chunk = max(16, _MERGE_ROWS // max(1, len(ranges)))
    fronts: list[tuple[Iterator[tuple[int | None, bytes]], list[tuple[int | None, bytes] | None], list[int]]] = []
    for segment in ranges:
        rows = store.iter_log_clocked(commons, segment.author, segment.after, chunk)
        fronts.append((rows, [next(rows, None)], [segment.count]))

    def take(rows: Iterator[tuple[int | None, bytes]], front: list[tuple[int | None, bytes] | None],
             left: list[int]) -> bytes:
        head = front[0]
        assert head is not None
        left[0] -= 1
        front[0] = next(rows, None) if left[0] > 0 else None
        return head[1]

    while True:
        clocks = [f[0][0] for _, f, _ in fronts if f[0] is not None and f[0][0] is not None]
        if not clocks:
            break
        high = min(clocks) + MERGE_WINDOW
        for rows, front, left in fronts:
            while (head := front[0]) is not None and head[0] is not None and head[0] <= high:
                yield take(rows, front, left)
    for rows, front, left in fronts:
        while front[0] is not None:
            yield take(rows, front, left)
        if left[0] > 0:
            raise RuntimeError("the store lost entries during a sync session")
