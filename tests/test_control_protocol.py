"""The control socket's framing and error replies (protocols/control.md §2-§4), spoken to a
real node object's connection handler over an in-memory byte stream (no network needed for
these commands), and the client's mapping of error codes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from p2pcommons import errors
from p2pcommons.home import Home
from p2pcommons.identity import create_identity
from p2pcommons.node.daemon import Node, NodeConfig
from p2pcommons.protocols.control import error_of as _error


def _exchange(tmp_path: Path, request: bytes) -> bytes:
    home = Home(tmp_path / "home")
    node = Node(NodeConfig(home=home), create_identity(home, seed=bytes(32)))

    async def main() -> bytes:
        client, server = trio.testing.memory_stream_pair()
        reply = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node._control_client, server)
            await client.send_all(request)
            with trio.fail_after(10):
                while chunk := await client.receive_some(65536):
                    reply += chunk
        return bytes(reply)

    try:
        return trio.run(main)
    finally:
        node.store.close()


@pytest.mark.parametrize(("request_bytes", "reply"), [
    (b'{"cmd": "ping"}\n', {"ok": True, "pid": os.getpid()}),
    (b'{"cmd":"ping","extra":1}\nignored after the first line', {"ok": True, "pid": os.getpid()}),
    (b"hello\n", {"ok": False, "error": "The request is not a JSON object.", "code": 2}),
    (b"[1, 2]\n", {"ok": False, "error": "The request is not a JSON object.", "code": 2}),
    (b'{"cmd": "reboot"}\n', {"ok": False, "error": "Unknown control command 'reboot'.", "code": 2}),
    (b"{}\n", {"ok": False, "error": "Unknown control command None.", "code": 2}),
    (b'{"cmd": "forget"}\n', {"ok": False, "error": "Name the peer to forget (an address or a peer id).",
                              "code": 2}),
])
def test_one_request_one_line_reply(tmp_path: Path, request_bytes: bytes, reply: dict[str, Any]) -> None:
    data = _exchange(tmp_path, request_bytes)
    assert data.endswith(b"\n") and data.count(b"\n") == 1  # one JSON object on one line, then close
    assert json.loads(data) == reply


def test_client_maps_codes_to_errors() -> None:
    assert type(_error({"ok": False, "error": "x.", "code": 2})) is errors.UsageError
    assert type(_error({"ok": False, "error": "x.", "code": 3})) is errors.ReceivedDataError
    assert type(_error({"ok": False, "error": "x.", "code": 5})) is errors.StoreError
    assert type(_error({"ok": False, "error": "x.", "code": 1})) is errors.NetworkError
    assert type(_error({"ok": False, "error": "x."})) is errors.NetworkError
    assert str(_error({"ok": False, "error": "The node failed.", "code": 6})) == "The node failed."


def test_a_typed_failure_names_its_error_class() -> None:
    """query and append replies name the error's class (§3), so the CLI reports the same
    error type as when it runs the command itself; a name that is not a project error with
    that code falls back to the code."""
    assert type(_error({"ok": False, "error": "x.", "code": 2, "type": "NotFound"})) is errors.NotFound
    assert type(_error({"ok": False, "error": "x.", "code": 7, "type": "RuleRefusal"})) is errors.RuleRefusal
    assert type(_error({"ok": False, "error": "x.", "code": 2, "type": "RuleRefusal"})) is errors.UsageError
    assert type(_error({"ok": False, "error": "x.", "code": 2, "type": "Path"})) is errors.UsageError


@pytest.mark.parametrize(("request_bytes", "reply"), [
    (b'{"cmd": "query", "what": "state", "commons": "nope"}\n',
     {"ok": False, "error": "The request names no commons id.", "code": 2, "type": "UsageError"}),
    (b'{"cmd": "append", "author": "00", "kind": "contribution"}\n',
     {"ok": False, "error": "The running node signs with another key than this home's identity.", "code": 4,
      "type": "IdentityError"}),
])
def test_query_and_append_refusals_are_typed(tmp_path: Path, request_bytes: bytes, reply: dict[str, Any]) -> None:
    assert json.loads(_exchange(tmp_path, request_bytes)) == reply
