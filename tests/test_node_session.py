"""Two in-process nodes over real libp2p on 127.0.0.1: the session adapter with the
smallest window the protocol allows (batches must shrink to fit it, or the sender stalls)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import trio

from p2pcommons.author import create_commons
from p2pcommons.entry import sign_entry
from p2pcommons.home import Home
from p2pcommons.identity import create_identity
from p2pcommons.ingest import Ingestor
from p2pcommons.protocols import sync
from p2pcommons.store import Store

pytestmark = pytest.mark.network


def test_smallest_window_still_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from p2pcommons.node import daemon

    homes = [Home(tmp_path / n) for n in ("a", "b")]
    identities = [create_identity(h) for h in homes]
    with Store(homes[0].store_file) as store:
        genesis = create_commons(store, identities[0].signer, {"name": "small window"})
        prev, raws = genesis, []
        for i in range(1500):
            prev = sign_entry(identities[0].signer, commons=genesis.id, seq=i + 2, prev=prev.id,
                              kind="contribution", body={"title": "x" * 200, "i": i}, timestamp=i)
            raws.append(prev.raw)
        assert not Ingestor(store).add_batch(raws).rejected
    with Store(homes[1].store_file) as store:
        Ingestor(store).add_batch([genesis.raw])
    monkeypatch.setattr(daemon, "run_session", functools.partial(daemon.run_session, window=sync.MIN_WINDOW))

    async def main() -> daemon.SessionResult | None:
        a = daemon.Node(daemon.NodeConfig(home=homes[0], sync_interval=600, stall_timeout=5), identities[0])
        b = daemon.Node(daemon.NodeConfig(home=homes[1], sync_interval=600, stall_timeout=5), identities[1])
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            peer = await b.connect(str(a.host.get_addrs()[0]))
            result = await b.sync_with(peer)
            a.stop()
            b.stop()
        return result

    result = trio.run(main)
    assert result is not None and result.caught_up and result.added == 1500
    with Store(homes[1].store_file) as store:
        assert store.count(genesis.id) == 1501
