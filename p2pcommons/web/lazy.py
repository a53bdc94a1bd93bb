"""The dashboard's port, bound at once; its web stack, imported at the first connection.

Starlette, Hypercorn and what they bring (AnyIO, h11, h2, wsproto, multiprocessing's
synchronization) are about 8 MB of resident memory and 160 modules in every daemon, although
most daemons are never visited (issue 18: an idle daemon ≤ 60 MB).  So the daemon binds the
dashboard's socket on 127.0.0.1 and reports its address as before, then waits, holding only
the socket, until a connection is pending on it; only then does it import the web
application (:mod:`.app`) and hand it the listening socket, whose backlog still holds that
first connection, so nothing is lost or refused.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from p2pcommons.node.daemon import Node

log = logging.getLogger("p2pcommons.web")
BACKLOG = 128


def listening_socket(port: int) -> socket.socket:
    """A socket bound on 127.0.0.1 to ``port``, or to any free port when that one is taken
    (another node's dashboard on this machine: ``node status`` says which).  Bound here, not
    probed, so no other process can take the port between the check and the bind."""
    for candidate in dict.fromkeys((port, 0)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", candidate))
        except OSError:
            sock.close()
            if candidate == 0:
                raise
            log.warning("dashboard port %d is in use; using a free port", port)
            continue
        return sock
    raise OSError("no port")  # not reached: binding to port 0 either succeeds or raises


async def run(node: Node, port: int, token: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the dashboard on 127.0.0.1 until the node's nursery is cancelled; ``started``
    with its address (without the token) as soon as the port listens."""
    sock = listening_socket(port)
    try:
        sock.listen(BACKLOG)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        log.info("dashboard at %s (open it with p2pc ui)", url)
        task_status.started(url)
        await trio.lowlevel.wait_readable(sock.fileno())  # a browser (or a script) connected
    except BaseException:
        sock.close()
        raise
    from .app import serve_socket

    await serve_socket(node, sock, token)


__all__ = ["listening_socket", "run"]
