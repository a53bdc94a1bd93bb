"""What a peer can make one sync session, and all sessions together, hold (issue 11,
items 4 and 7): summary pages, their order and number, the pending-summary cap of the state
machine, and the node's memory budget."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.errors import ProtocolViolation
from p2pcommons.node.budget import MemoryBudget, OverBudget
from p2pcommons.node.session import run_session
from p2pcommons.protocols import sync
from p2pcommons.store import Store
from tests.support.memstream import MemoryStream

COMMONS = CID.of(b"limits")
HELLO = sync.frame(sync.HELLO, dagcbor.encode({"v": 1, "window": sync.DEFAULT_WINDOW}))


def _heads(n: int, seed: int = 0) -> list[tuple[bytes, int, CID]]:
    return sorted(((os.urandom(32), 1 + i % 7, CID.of(b"%d-%d" % (seed, i))) for i in range(n)),
                  key=lambda h: (h[0], h[1], h[2].raw))


def _events(session: sync.SyncSession, *, release: bool = True) -> list[sync.Event]:
    out: list[sync.Event] = []
    for _ in range(100_000):
        event = session.next_event()
        if event is sync.NEED_DATA:
            return out
        assert isinstance(event, sync.Event)
        if release and isinstance(event, sync.PeerSummary):
            session.release_summary(event.nbytes)
        out.append(event)
    raise AssertionError("too many events")


def test_a_large_summary_crosses_in_bounded_pages_and_arrives_whole() -> None:
    heads = _heads(20_000)
    forks = sorted({(a, s) for a, s, _ in heads[:9000]})
    initiator = sync.SyncSession(initiator=True)
    initiator.start([sync.Summary(COMMONS, tuple(heads), tuple(forks))])
    data = initiator.data_to_send()
    responder = sync.SyncSession(initiator=False)
    responder.receive_data(data)
    pages = [e for e in _events(responder) if isinstance(e, sync.PeerSummary)]
    assert len(pages) == 5 and [p.continued for p in pages] == [False, True, True, True, True]
    assert all(p.nbytes < sync.MAX_FRAME and len(p.summary.heads) <= sync.PAGE_ITEMS for p in pages)
    assert [h for p in pages for h in p.summary.heads] == heads
    assert [f for p in pages for f in p.summary.forks] == forks
    assert responder.peer_commons == [COMMONS]


def _page(heads: list[tuple[bytes, int, CID]], commons: CID = COMMONS) -> bytes:
    return sync.frame(sync.SUMMARY, sync.Summary(commons, tuple(heads)).encode())


def test_pages_must_continue_in_order() -> None:
    heads = _heads(10)
    for bad, message in (
        (_page(heads[:5]) + _page(heads[4:]), "twice"),               # overlaps the last page
        (_page(heads[5:]) + _page(heads[:5]), "twice"),               # goes back
        (_page(heads[:5]) + _page([]), "twice"),                      # empty further page
        (_page(heads[:5]) + _page(heads[:1], CID.of(b"other")) + _page(heads[5:]), "twice"),  # not consecutive
    ):
        session = sync.SyncSession(initiator=False)
        session.receive_data(HELLO + bad)
        with pytest.raises(ProtocolViolation, match=message):
            _events(session)
    session = sync.SyncSession(initiator=False)
    session.receive_data(HELLO + _page(heads[:5]) + _page(heads[5:]))
    assert len([e for e in _events(session) if isinstance(e, sync.PeerSummary)]) == 2


def test_unplanned_summary_pages_are_capped() -> None:
    """The session refuses more summary bytes than its cap while the caller has not released
    (planned from) the earlier pages: a peer cannot outrun planning."""
    heads = _heads(14_000)
    pages = HELLO + _page(heads[:7000]) + _page(heads[7000:])  # two valid pages, ~600 KB each
    session = sync.SyncSession(initiator=False, max_pending_summary=sync.MAX_FRAME)
    session.receive_data(pages)
    with pytest.raises(ProtocolViolation, match="ahead of planning"):
        _events(session, release=False)
    # released page by page, the same bytes are fine
    session = sync.SyncSession(initiator=False, max_pending_summary=sync.MAX_FRAME)
    session.receive_data(pages)
    assert len(_events(session)) == 3
    assert session.pending_summary == 0


def test_summary_pages_per_session_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "MAX_SUMMARY_PAGES", 3)
    heads = _heads(8)
    session = sync.SyncSession(initiator=False)
    session.receive_data(HELLO + b"".join(_page(heads[k:k + 2]) for k in range(0, 8, 2)))
    with pytest.raises(ProtocolViolation, match="more than 3 summary pages"):
        _events(session)


def test_budget_cuts_off_the_session_over_its_share() -> None:
    budget = MemoryBudget(total=100, per_session=80)
    with budget.share() as greedy, budget.share() as modest:
        greedy.charge(60, "summaries")
        with pytest.raises(OverBudget, match="a session may hold 80"):
            greedy.charge(21, "summaries")
        modest.charge(40, "entries")            # the total is now exhausted (100)
        with pytest.raises(OverBudget, match="its share is 50"):
            greedy.charge(1, "summaries")       # over its fair half of the total
        modest.charge(5, "entries")              # within its fair half: still allowed
        modest.release(45)
        greedy.charge(20, "summaries")           # room again
        assert isinstance(OverBudget("x"), ProtocolViolation)  # scored like any violation
    assert budget.held == 0 and budget.sessions == 0


def test_a_session_over_its_budget_share_ends_with_a_violation(tmp_path: Path) -> None:
    """The adapter charges each summary page to the session's share before planning it."""
    store = Store(tmp_path / "s.sqlite")
    client, server = trio.testing.memory_stream_pair()

    async def db(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(store, *args)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            async def flood() -> None:
                await client.send_all(HELLO + _page(_heads(4000)))

            nursery.start_soon(flood)
            with pytest.raises(OverBudget, match="a session may hold"):
                await run_session(MemoryStream(server), db, initiator=False, stall_timeout=5,
                                  budget=MemoryBudget(total=sync.MAX_FRAME, per_session=sync.MAX_FRAME))

    try:
        trio.run(main)
    finally:
        store.close()
