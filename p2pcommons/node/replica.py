"""The store side of sync: summaries, send plans and batches (plain functions, no I/O of
the network, no trio), run by the node in its one store worker thread.

Why plans are computed once per session: the session announces exact totals before it
streams (progress), so the sender fixes per author how many entries it will send, and then
streams exactly those even if the store grows meanwhile (the next session sends the rest).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from p2pcommons.dagcbor import CID
from p2pcommons.entry import decode_entry
from p2pcommons.protocols.sync import DEFAULT_BATCH_BYTES, MAX_BATCH_ENTRIES, Summary
from p2pcommons.store import Store


def summarize(store: Store, commons: CID) -> Summary:
    """Our heads and fork positions in ``commons`` (empty if we do not hold it: a want)."""
    heads = tuple((h.author, h.seq, h.id) for h in store.heads(commons))
    forks = tuple((f.author, f.seq) for f in store.forks(commons))
    return Summary(commons, heads, forks)


@dataclass
class Segment:
    """One author's entries to send: sequence numbers above ``after``, ``count`` of them
    (in log order), plus fork siblings below that range the peer lacks (``extra``)."""

    author: bytes
    after: int
    count: int
    nbytes: int
    extra: list[bytes] = field(default_factory=list)


@dataclass
class Plan:
    commons: CID
    segments: list[Segment]

    @property
    def entries(self) -> int:
        return sum(s.count + len(s.extra) for s in self.segments)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes + sum(len(e) for e in s.extra) for s in self.segments)


def plan(store: Store, commons: CID, peer: Summary) -> Plan:
    """What the peer lacks of ``commons``, per author, judged from its summary.

    * peer has nothing of an author: send the whole log;
    * peer's head is one of our entries at that seq: send what follows it;
    * peer's head is not in our chain (it forked below, or holds an entry we lack): send the
      whole log again — the peer drops what it holds and keeps the rest as fork evidence;
    * we hold fork evidence the peer does not list: send the siblings at that seq;
    * peer's log is longer than ours: send our head entry (a fork at our tip, or a duplicate).
    """
    peer_heads: dict[bytes, tuple[int, set[bytes]]] = {}
    for author, seq, cid in peer.heads:
        known = peer_heads.get(author)
        if known is None or seq > known[0]:
            peer_heads[author] = (seq, {cid.raw})
        elif seq == known[0]:
            known[1].add(cid.raw)
    peer_forks = set(peer.forks)
    my_heads: dict[bytes, int] = {}
    for head in store.heads(commons):
        my_heads[head.author] = head.seq
    my_forks: dict[bytes, list[int]] = defaultdict(list)
    for fork in store.forks(commons):
        my_forks[fork.author].append(fork.seq)

    genesis_raw = store.get_raw(commons)
    genesis_author = decode_entry(genesis_raw).author if genesis_raw is not None else None
    segments: list[Segment] = []
    for author in sorted(my_heads):
        my_seq = my_heads[author]
        peer_seq, peer_ids = peer_heads.get(author, (0, set()))
        after = peer_seq
        if 0 < peer_seq <= my_seq:
            mine = {c.raw for c in store.ids_at(commons, author, peer_seq)}
            if not mine & peer_ids:
                after = 0
        count = 0
        nbytes = 0
        if after < my_seq:
            count, nbytes = store.log_after_size(commons, author, after)
        extra: list[bytes] = []
        for seq in my_forks.get(author, ()):
            if seq <= after and (author, seq) not in peer_forks:
                for cid in store.ids_at(commons, author, seq):
                    sibling = store.get_raw(cid)
                    if sibling is not None:
                        extra.append(sibling)
        if peer_seq > my_seq and (author, my_seq) not in peer_forks:
            # The peer's log is longer: we cannot tell from its head whether its chain holds
            # our head.  Send our head (one entry; a duplicate if it does), so a fork at our
            # tip reaches the peer in this session rather than the next.
            for cid in store.ids_at(commons, author, my_seq):
                tip = store.get_raw(cid)
                if tip is not None and tip not in extra:
                    extra.append(tip)
        if count or extra:
            segments.append(Segment(author, after, count, nbytes, extra))
    # The genesis first: a peer that holds nothing of the commons needs it before anything.
    segments.sort(key=lambda s: (not (s.author == genesis_author and s.after == 0), s.author))
    return Plan(commons, segments)


def batches(store: Store, the_plan: Plan, batch_bytes: int = DEFAULT_BATCH_BYTES) -> Iterator[list[bytes]]:
    """The plan's entries in causal order (per author: fork siblings, then seq order),
    packed into batches of at most ``batch_bytes`` (or one entry, if larger)."""
    batch: list[bytes] = []
    size = 0

    def items() -> Iterator[bytes]:
        for segment in the_plan.segments:
            yield from segment.extra
            if segment.count:
                taken = 0
                for raw in store.iter_raw(the_plan.commons, author=segment.author,
                                          after_seq=segment.after, order="log"):
                    yield raw
                    taken += 1
                    if taken == segment.count:
                        break
                if taken < segment.count:
                    raise RuntimeError("the store lost entries during a sync session")

    for raw in items():
        if batch and (size + len(raw) > batch_bytes or len(batch) >= MAX_BATCH_ENTRIES):
            yield batch
            batch = []
            size = 0
        batch.append(raw)
        size += len(raw)
    if batch:
        yield batch


def behind(mine: Summary, theirs: Summary) -> tuple[int, int]:
    """``(they_lack, we_lack)``: entries by which each side trails, judged by head seqs."""
    a = {author: seq for author, seq, _ in mine.heads}
    b = {author: seq for author, seq, _ in theirs.heads}
    they_lack = sum(max(0, seq - b.get(author, 0)) for author, seq in a.items())
    we_lack = sum(max(0, seq - a.get(author, 0)) for author, seq in b.items())
    return they_lack, we_lack
