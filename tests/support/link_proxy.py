"""A TCP proxy on 127.0.0.1 that breaks the link mid-transfer, the way networks do.

The target daemon runs in a network namespace of its own, so that the proxy is the only
way to reach it (libp2p's identify would otherwise teach the dialer the target's real
address, and its redials would bypass the proxy).  Two halves, joined by a Unix socket
(a file, visible from every network namespace):

* ``python link_proxy.py relay UNIX_PATH TARGET_PORT``, run inside the target's namespace:
  each connection to UNIX_PATH is forwarded to 127.0.0.1:TARGET_PORT there, untouched;
* ``python link_proxy.py cut PORT UNIX_PATH THRESHOLD_BYTES PLAN``, run in the test's
  namespace: listens on 127.0.0.1:PORT — the port the target listens on in its own
  namespace, so the address the target announces (and the dialer keeps, from the target's
  signed peer record) leads through the proxy — and forwards each connection to UNIX_PATH.
  PLAN is a comma list
of cuts, one per accepted connection in order (``reset``: both sockets closed with an RST;
``blackhole``: the proxy silently stops forwarding in both directions, as a dead Wi-Fi link
or a NAT that dropped its mapping does, until an endpoint gives up and closes).  Each cut
happens once the connection has carried THRESHOLD_BYTES from the target to the client;
connections beyond the plan are forwarded untouched.  Prints ``{"port": N}`` once listening,
then one JSON line per cut (``{"cut": i, "mode": m, "bytes": n}``), flushed, so a test can
wait for them.  Runs until killed; every wait inside is bounded by a deadline.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import sys
from collections.abc import Awaitable, Callable

import trio

BLACKHOLE_MAX = 120.0  # a blackholed connection is closed after this long in any case


def say(data: dict[str, object]) -> None:
    print(json.dumps(data), flush=True)


async def relay(path: str, target_port: int) -> None:
    """Unix socket -> 127.0.0.1:TARGET_PORT, untouched (inside the target's namespace)."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(64)
    say({"relay": path})

    async def handle(client: trio.SocketStream) -> None:
        await forward(client, lambda: trio.open_tcp_stream("127.0.0.1", target_port), 0, None, -1)

    await trio.serve_listeners(handle, [trio.SocketListener(sock)])


async def cut(port: int, path: str, threshold: int, plan: list[str]) -> None:
    counter = itertools.count()

    async def handle(client: trio.SocketStream) -> None:
        index = next(counter)
        await forward(client, lambda: trio.open_unix_socket(path), threshold,
                      plan[index] if index < len(plan) else None, index)

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    say({"port": listeners[0].socket.getsockname()[1]})
    await trio.serve_listeners(handle, listeners)


async def forward(client: trio.SocketStream, connect: Callable[[], Awaitable[trio.SocketStream]],
                  threshold: int, mode: str | None, index: int) -> None:
    """Pump bytes both ways; cut the link as ``mode`` says once ``threshold`` bytes came back."""
    try:
        server = await connect()
    except OSError:
        await client.aclose()
        return
    broken = trio.Event()
    carried = 0

    async def pump(src: trio.SocketStream, dst: trio.SocketStream, downstream: bool) -> None:
        nonlocal carried
        while True:
            try:
                data = await src.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                nursery.cancel_scope.cancel()
                return
            if broken.is_set():
                continue  # blackholed: read and drop
            try:
                await dst.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                nursery.cancel_scope.cancel()
                return
            if downstream:
                carried += len(data)
                if mode is not None and carried >= threshold and not broken.is_set():
                    broken.set()
                    say({"cut": index, "mode": mode, "bytes": carried})
                    if mode == "reset":
                        client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        nursery.cancel_scope.cancel()
                        return

    with trio.move_on_after(BLACKHOLE_MAX * 10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, server, False)
            nursery.start_soon(pump, server, client, True)

            async def limit_blackhole() -> None:
                await broken.wait()
                await trio.sleep(BLACKHOLE_MAX)  # deliberate: a dead link stays dead this long, then is closed
                nursery.cancel_scope.cancel()

            nursery.start_soon(limit_blackhole)
    for stream in (client, server):
        with trio.move_on_after(1):
            await stream.aclose()
    if index >= 0:
        say({"closed": index, "bytes": carried})


if __name__ == "__main__":
    if sys.argv[1] == "relay":
        trio.run(relay, sys.argv[2], int(sys.argv[3]))
    else:
        trio.run(cut, int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), [m for m in sys.argv[5].split(",") if m])
