"""How loud the node's own lines about peers are (docs/operations.md, "How much the daemon
logs").  By default the node says when a peer it keeps connected to (a bootstrap or known
member, one found in the DHT) is connected or lost; ``-v`` turns on the ``p2pcommons.events``
logger, which has a line for every connect and disconnect — so then the node's own line
would say the same thing twice, and goes to DEBUG (``-vv``)."""

from __future__ import annotations

import logging

EVENTS = logging.getLogger("p2pcommons.events")


def peer_line_level() -> int:
    """INFO, or DEBUG when the event lines (``-v``) already log each peer event."""
    return logging.DEBUG if EVENTS.isEnabledFor(logging.INFO) else logging.INFO


__all__ = ["EVENTS", "peer_line_level"]
