"""When the daemon folds the commons state while a sync streams entries in.

A bulk transfer (the peer announced MIN_ENTRIES_FOR_PROCESS entries or more) is folded once,
when it ends, bounded by STATE_BULK_MAX_DELAY; a sync of small groups at least every
STATE_MAX_DELAY.  Why: folding every 60 s during a million-entry sync held the growing fold
and its saves in the receiving daemon's memory (781 MB PSS with its ingest child) and took
the second core from the ingest child.  The bound is checked on the scheduling itself with
trio's virtual clock; the behaviour end to end on two real daemons.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.identity import create_identity, load_identity
from p2pcommons.node.daemon import STATE_BULK_MAX_DELAY, STATE_MAX_DELAY, STATE_QUIET, Node, NodeConfig
from p2pcommons.node.ingest_process import MIN_ENTRIES_FOR_PROCESS
from p2pcommons.node.notify import request
from p2pcommons.state.engine import cached_head
from p2pcommons.store import Store
from tests.support.localnode import wait_for
from tests.test_node_integration import NodeProc, _bulk_history, copy_genesis, nodes  # noqa: F401 (fixture)

COMMONS = CID.parse("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")


def _settled_at(tmp_path: Path, *, announced: int, batches_for: float, session_for: float) -> float:
    """Virtual seconds after which the state worker would fold: a session announcing
    ``announced`` entries stores a batch every 0.1 s for ``batches_for`` seconds and ends
    after ``session_for``."""
    home = Home(tmp_path / "home")
    create_identity(home)
    Store(home.store_file).close()
    node = Node(NodeConfig(home, ingest_process=False), load_identity(home))

    async def main() -> float:
        start = trio.current_time()

        async def session() -> None:
            with node._session_running() as on_totals:
                on_totals(announced, announced * 200)
                while trio.current_time() - start < batches_for:
                    node.mark_state_dirty({COMMONS})
                    await trio.sleep(0.1)  # deliberate: the simulated session stores a batch every 0.1 s
                await trio.sleep_until(start + session_for)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(session)
            await node._state_wakeup.wait()
            await node._settle(start)
            settled = trio.current_time() - start
            nursery.cancel_scope.cancel()
        return settled

    try:
        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        node.store.close()


def test_a_bulk_transfer_is_folded_once_it_ends(tmp_path: Path) -> None:
    settled = _settled_at(tmp_path, announced=MIN_ENTRIES_FOR_PROCESS, batches_for=300, session_for=300)
    assert 300 <= settled <= 300 + 2 * STATE_QUIET


def test_a_bulk_transfer_is_folded_at_least_every_bulk_max_delay(tmp_path: Path) -> None:
    settled = _settled_at(tmp_path, announced=100_000, batches_for=3 * STATE_BULK_MAX_DELAY,
                          session_for=3 * STATE_BULK_MAX_DELAY)
    assert settled == pytest.approx(STATE_BULK_MAX_DELAY, abs=0.2)


def test_small_groups_are_folded_at_least_every_max_delay(tmp_path: Path) -> None:
    settled = _settled_at(tmp_path, announced=MIN_ENTRIES_FOR_PROCESS - 1, batches_for=300, session_for=300)
    assert settled == pytest.approx(STATE_MAX_DELAY, abs=0.2)


def test_a_quiet_bulk_session_is_folded_when_it_ends(tmp_path: Path) -> None:
    """The peer stopped sending but the session stays open (it may send more): the fold
    waits for its end, not for the deadline."""
    settled = _settled_at(tmp_path, announced=10_000, batches_for=5, session_for=100)
    assert 100 <= settled <= 100 + 2 * STATE_QUIET


@pytest.mark.network
def test_no_fold_is_saved_mid_transfer(nodes: Callable[[str], NodeProc],  # noqa: F811 (the fixture)
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two real daemons: B receives 10,000 entries (a bulk transfer) with its periodic fold
    every 0.05 s (test setting).  A reader polls B's persisted state head all along: it only
    ever counts the genesis or every entry, never a part of the transfer, and B's status
    shows the fold done once it has caught up.  Before: B folded (and saved) every 0.05 s
    of the transfer, as it did every 60 s of a million-entry sync."""
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "bulk")["commons"]
    _bulk_history(a, commons, 10_000)
    total = a.count(commons)
    copy_genesis(a, commons, b)
    a.start(sync_interval=600)
    monkeypatch.setenv("P2PC_TEST_STATE_MAX_DELAY", "0.05")
    b.start(sync_interval=600)
    cid = CID.parse(commons)
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:  # bounded: stops when the test is done or after 300 s
        for _ in range(15_000):
            if done.is_set():
                return
            with contextlib.suppress(Exception), Store(Home(b.home).store_file, reader=True) as store:
                head = cached_head(store, cid)
                if head is not None:
                    seen.add(int(head["count"]))
            done.wait(0.02)

    folds_before = b.status()["state_worker"]["fold_count"]
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        reply = request(Home(b.home), {"cmd": "sync", "addr": a.addr, "timeout": 120}, timeout=150)
        assert all(r is not None and r["caught_up"] for r in reply["peers"].values()), reply
        assert b.count(commons) == total

        def folded() -> bool:
            worker = b.status()["state_worker"]
            return worker["fold_count"] > folds_before and not worker["folding"] and not worker["dirty_count"]

        wait_for(folded, 120, "b to fold the transfer")
    finally:
        done.set()
        watcher.join(30)
    with Store(Home(b.home).store_file, reader=True) as store:
        head = cached_head(store, cid)
    assert head is not None and head["count"] == total
    assert seen <= {1, total}, sorted(seen)
    assert b.status()["state_worker"]["bulk_transfer_count"] == 0
