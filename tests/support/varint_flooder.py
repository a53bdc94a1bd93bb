"""A stranger that never handshakes, run as its own process by tests/test_node_preauth.py.

It opens ``CONNECTIONS`` raw TCP connections to the target (no libp2p at all), sends on
each the multistream length prefix of a 1 GiB message (GHSA-hmjq-g7pp-rw3x: py-libp2p 0.8.1
believes it) and then streams zeros until the target closes the connection or ``LIMIT``
bytes went out.  Prints one JSON line: bytes sent per connection and whether the target
closed each.  Bounded in bytes, connections and time.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

from p2pcommons.protocols.framing import encode_uvarint  # the same LEB128 as every frame length

CONNECTIONS = 4
LIMIT = 256 * 1024 * 1024       # per connection
SECONDS = 20.0                  # per connection


def flood(host: str, port: int, result: dict[str, object]) -> None:
    sent, closed = 0, False
    chunk = b"\0" * 65536
    deadline = time.monotonic() + SECONDS
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.settimeout(2)
            sock.sendall(encode_uvarint(1 << 30))
            while sent < LIMIT and time.monotonic() < deadline:
                try:
                    sock.sendall(chunk)
                except TimeoutError:
                    continue  # the target is not reading: keep the connection open, try again
                sent += len(chunk)
    except OSError:
        closed = True  # reset or broken pipe: the target hung up on us
    result["sent"], result["closed"] = sent, closed


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    results: list[dict[str, object]] = [{} for _ in range(CONNECTIONS)]
    threads = [threading.Thread(target=flood, args=(host, port, r)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 10)
    print(json.dumps({"connections": results}))


if __name__ == "__main__":
    main()
