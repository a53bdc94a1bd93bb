"""How a running daemon logs (stderr: the terminal in the foreground, node.log in the
background), shared by ``p2pc node start --foreground`` and the background daemon's own
entry point (p2pcommons/node/launch.py), which does not load the CLI."""

from __future__ import annotations

import json
import logging
import os
import sys


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


def setup_logging(verbose: int, as_json: bool) -> None:
    """Logs go to stderr.  Default: the node's INFO messages.  ``-v``: also one line per sync
    session and per peer connect/disconnect (the ``p2pcommons.events`` logger).  ``-vv``: the
    project's own DEBUG detail.  ``-vvv``: libp2p's DEBUG logs too (hundreds of lines a
    second: only for debugging libp2p itself)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 3 else logging.INFO)  # other libraries: INFO at most
    logging.getLogger("p2pcommons").setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.getLogger("p2pcommons.events").setLevel(logging.INFO if verbose >= 1 else logging.WARNING)
    if verbose < 3:
        for name in ("libp2p", "multiaddr", "zeroconf", "async_service", "trio-websocket"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        silence_libp2p()
    else:
        os.environ["P2PC_LIBP2P_LOGS"] = "1"  # read when the host is built (after import libp2p)


def silence_libp2p() -> None:
    """libp2p's records reach no handler: its logger stops propagating and holds a null
    handler.  A level on the ``libp2p`` logger is not enough: a module may set its own
    (``libp2p.network.auto_connector`` sets INFO) and would log through our handler.
    ``import libp2p`` did this itself (``libp2p.utils.logging.setup_logging``); the daemon
    builds its host without running that package ``__init__`` (:mod:`.host`), so it is done
    here."""
    lib = logging.getLogger("libp2p")
    lib.setLevel(logging.CRITICAL + 1)
    lib.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in lib.handlers):
        lib.addHandler(logging.NullHandler())


__all__ = ["setup_logging", "silence_libp2p"]
