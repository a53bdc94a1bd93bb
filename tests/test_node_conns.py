"""The daemon's own table of open connections per peer (Node._conns), which lets
Node._disconnect close a connection py-libp2p's swarm lost track of: it holds open
connections only, so a close whose notification never came cannot make it grow."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import trio

from p2pcommons.node.daemon import Node


class _Conn:
    """Stands for a py-libp2p SwarmConn: hashable, with ``event_closed``."""

    def __init__(self) -> None:
        self.event_closed = trio.Event()


def test_forgetting_a_connection_prunes_the_peers_closed_ones_and_empty_peers() -> None:
    node: Any = SimpleNamespace(_conns={})
    a, b, stale = _Conn(), _Conn(), _Conn()
    node._conns["p"] = {a, b, stale}
    stale.event_closed.set()  # closed without a notification
    Node._forget_conn(node, "p", a)
    assert node._conns == {"p": {b}}
    Node._forget_conn(node, "p", b)
    assert node._conns == {}
    Node._forget_conn(node, "unknown", None)  # nothing to do
    assert node._conns == {}
