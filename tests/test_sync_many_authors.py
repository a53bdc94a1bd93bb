"""Any number of authors syncs (issue 11, item 4).

Why: a summary held one head per author in one SUMMARY frame capped at 8,192 heads, so a
commons with more authors (throwaway identities cost nothing in an open commons) could
not be summarized: the honest peer saw a violation, banned the sender, and a real entry
never arrived.  Summaries now cross the wire as bounded pages, planned one at a time.
Here 10,000 authors, with real signatures and real SQLite stores, both through the
in-memory session driver and between two nodes over real libp2p on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import trio

from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.home import Home
from p2pcommons.identity import create_identity
from p2pcommons.ingest import Ingestor
from p2pcommons.node import memory
from p2pcommons.protocols import sync
from p2pcommons.state import genesis_body
from p2pcommons.store import Store

from .test_sync_protocol import ids, stores

AUTHORS = 10_000


@cache
def crowd(founder_seed: bytes = b"\x01" * 32) -> tuple[Entry, list[Entry], Entry]:
    """A genesis, one entry by each of AUTHORS throwaway authors, and a founder's entry."""
    founder = Signer(founder_seed)
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis",
                         body=genesis_body("crowd", membership="open"), timestamp=0)
    entries = []
    for i in range(AUTHORS):
        signer = Signer(hashlib.sha256(b"crowd-%d" % i).digest())
        entries.append(sign_entry(signer, commons=genesis.id, seq=1, prev=None, kind="contribution",
                                  body={"title": "hi", "kind": "work", "value": 1}, timestamp=i))
    real = sign_entry(founder, commons=genesis.id, seq=2, prev=genesis.id, kind="contribution",
                      body={"title": "the real one", "kind": "work", "value": 1}, timestamp=AUTHORS)
    return genesis, entries, real


def _load(store: Store, raws: list[bytes]) -> None:
    report = Ingestor(store).add_batch(raws)  # one transaction
    assert not report.rejected


class CountingSide(memory.Side):
    """A side that records the size of every summary page it receives."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.pages: list[int] = []

    def handle(self, event: sync.Event) -> None:
        if isinstance(event, sync.PeerSummary):
            self.pages.append(event.nbytes)
            assert self.session.pending_summary <= sync.MAX_FRAME
        super().handle(event)


def test_ten_thousand_authors_sync_in_bounded_pages() -> None:
    genesis, entries, real = crowd()
    with stores(2) as (a, b):
        _load(a, [genesis.raw] + [e.raw for e in entries[:-500]] + [real.raw])
        _load(b, [genesis.raw] + [e.raw for e in entries])
        union = ids(a) | ids(b)
        x = CountingSide(a, sync.SyncSession(initiator=True))
        y = CountingSide(b, sync.SyncSession(initiator=False))
        assert memory.run(x, y, rng=random.Random(4))
        assert ids(a) == union == ids(b)
        assert b.get_raw(real.id) == real.raw
        # both summaries crossed in several pages, each far below the frame limit
        assert len(x.pages) >= 3 and len(y.pages) >= 3
        assert max(x.pages + y.pages) < sync.MAX_FRAME
        assert x.added == 500 and y.added == 1
        # and nothing more to do
        x = CountingSide(a, sync.SyncSession(initiator=True))
        y = CountingSide(b, sync.SyncSession(initiator=False))
        assert memory.run(x, y)
        assert x.session.received == (0, 0) == y.session.received


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[list[Home]]:
    yield [Home(tmp_path / n) for n in ("a", "b")]


@pytest.mark.network
def test_ten_thousand_authors_between_nodes(homes: list[Home]) -> None:
    """Two nodes over real libp2p: the node with the real entry and 10,000 authors is not
    banned, and the real entry arrives."""
    from p2pcommons.node import daemon

    genesis, entries, real = crowd()
    identities = [create_identity(h) for h in homes]
    with Store(homes[0].store_file) as store:
        _load(store, [genesis.raw] + [e.raw for e in entries] + [real.raw])
    with Store(homes[1].store_file) as store:
        _load(store, [genesis.raw] + [e.raw for e in entries[: AUTHORS // 2]])

    async def main() -> tuple[daemon.SessionResult | None, bool, dict[str, object]]:
        a = daemon.Node(daemon.NodeConfig(home=homes[0], sync_interval=600, stall_timeout=20), identities[0])
        b = daemon.Node(daemon.NodeConfig(home=homes[1], sync_interval=600, stall_timeout=20), identities[1])
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            peer = await b.connect(str(a.host.get_addrs()[0]))
            result = await b.sync_with(peer)
            banned = a.is_banned(b.peer_id) or b.is_banned(peer)
            status = await b.status()
            a.stop()
            b.stop()
        return result, banned, status

    result, banned, status = trio.run(main)
    assert not banned
    assert result is not None and result.complete and result.caught_up
    assert result.added == AUTHORS // 2 + 1
    with Store(homes[1].store_file) as store:
        assert store.get_raw(real.id) == real.raw
        assert store.count(genesis.id) == AUTHORS + 2
    [peer_status] = status["peers"]  # type: ignore[index]
    assert peer_status["behind"] == {str(genesis.id): {"they_lack": 0, "we_lack": 0}}
