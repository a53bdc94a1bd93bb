"""The node's control socket (``protocols/control.md``): the framing of one request and one
reply, and how a failure reply maps to an error — pure functions, no socket.

The daemon (``p2pcommons/node/daemon.py``) serves the socket and the client
(``p2pcommons/node/notify.py``) talks to it; both go through these functions, so the two sides
cannot drift apart. Import-light on purpose (only ``json`` and the error types): the CLI's
client runs after every local write and must start fast.
"""

from __future__ import annotations

import json
from typing import Any

from p2pcommons import errors

MAX_REQUEST = 64 * 1024       # the daemon reads a request up to its newline or this many bytes…
REQUEST_SECONDS = 5.0         # …or for this long, whichever comes first (§2)
MAX_REPLY = 4 * 1024 * 1024   # the client refuses longer replies
NOT_AN_OBJECT = "The request is not a JSON object."
# Commands whose failure replies also name the error's class (§3): the CLI answers them as if
# it had run the command itself, with the same error type in its --json envelope.
TYPED_ERRORS = frozenset({"query", "append"})
# The largest reply to a ``query`` (a commons' contributions can be many) the client accepts;
# past it, the client answers locally.
MAX_QUERY_REPLY = 256 * 1024 * 1024


def encode_request(message: dict[str, Any]) -> bytes:
    """One request: a JSON object and a newline."""
    return json.dumps(message).encode() + b"\n"


def request_complete(buffer: bytes | bytearray) -> bool:
    """Whether the daemon has read enough of a request to parse it (§2)."""
    return b"\n" in buffer or len(buffer) >= MAX_REQUEST


def decode_request(buffer: bytes | bytearray) -> dict[str, Any] | None:
    """The request in the bytes before the first newline (all of them if there is none), or
    ``None`` if they are not a JSON object; bytes after the newline are ignored."""
    try:
        request = json.loads(bytes(buffer).split(b"\n", 1)[0])
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def success(fields: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, **fields}


def failure(message: str, code: int, error_type: str | None = None) -> dict[str, Any]:
    """A failure reply; ``error_type``: the error's class name (``NotFound``, ``RuleRefusal``…),
    so the client raises the same error the command would have raised in its own process."""
    reply: dict[str, Any] = {"ok": False, "error": message, "code": code}
    if error_type:
        reply["type"] = error_type
    return reply


def encode_reply(reply: dict[str, Any]) -> bytes:
    """One reply on one line; values that are not JSON types are written as their text."""
    return json.dumps(reply, default=str).encode() + b"\n"


def decode_reply(data: bytes | bytearray) -> dict[str, Any]:
    """The daemon's reply; a failure reply raises the error it names (§3)."""
    try:
        reply = json.loads(bytes(data))
    except ValueError:
        raise errors.NetworkError("The node sent an unreadable reply on its control socket.") from None
    if not isinstance(reply, dict):
        raise errors.NetworkError("The node sent an unreadable reply on its control socket.")
    if not reply.get("ok"):
        raise error_of(reply)
    return reply


def error_of(reply: dict[str, Any]) -> errors.P2PCError:
    """A failure reply as an exception: the class its ``type`` names if that is a project
    error with the same ``code``; else by its ``code``: 2 usage, 3 received data, 5 store,
    anything else (or none) a network error, with the reply's sentence as its message."""
    try:
        code = int(reply.get("code", 6))
    except (TypeError, ValueError):
        code = 6
    message = str(reply.get("error", "The node reported an error."))
    named = getattr(errors, str(reply.get("type", "")), None)
    if isinstance(named, type) and issubclass(named, errors.P2PCError) and named.exit_code == code:
        return named(message)
    classes: dict[int, type[errors.P2PCError]] = {
        2: errors.UsageError, 3: errors.ReceivedDataError, 5: errors.StoreError,
    }
    return classes.get(code, errors.NetworkError)(message)
