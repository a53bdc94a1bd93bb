"""Talking to a running daemon over its control socket, without importing libp2p.

The control protocol (``protocols/control.md``, its framing in ``protocols/control.py``) is
JSON Lines over the Unix socket ``home.control_socket`` (mode 0600, so only this user can
drive the node): the client writes one request object ``{"cmd": ..., ...}`` and a newline,
the daemon answers with one object ``{"ok": true, ...}`` or ``{"ok": false, "error": "...",
"code": N}`` and a newline.

Commands: ``ping``, ``status``, ``notify`` (the store changed: announce now), ``stop``,
``sync`` (``addr``, ``want``, ``timeout``), ``connect`` (``addr``), ``forget`` (``target``:
an address or a peer id; stop maintaining it and drop the connection, answered with
``stopped``, ``kept_by`` and ``dropped``), ``query`` and ``append`` (the CLI's hot commands
answered from the daemon's live fold: ``p2pcommons/node/queries.py``).

This module stays import-light on purpose: ``notify_daemon`` runs after every local write
made from the CLI, which must start fast and must not wait when no daemon runs.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from p2pcommons.errors import DaemonNotRunning, NetworkError
from p2pcommons.home import Home, resolve_home
from p2pcommons.protocols.control import MAX_REPLY, decode_reply, encode_request


def _home(home: Home | Path | str | None) -> Home:
    if isinstance(home, Home):
        return home
    return Home(resolve_home(home))


def _socket_path(home: Home) -> str:
    return str(home.control_socket)


def notify_daemon(home: Home | Path | str | None = None) -> bool:
    """Best effort: tell the home's daemon that the store changed, so it announces the new
    heads to its peers now.  Returns at once (False) if no daemon runs; never raises."""
    try:
        target = _home(home)
        path = _socket_path(target)
        if not target.control_socket.exists():
            return False
        import socket  # only when a daemon may listen (a CLI write's start-up budget, issue 18)

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(path)
            sock.sendall(b'{"cmd": "notify"}\n')
            with contextlib.suppress(OSError):
                sock.recv(4096)  # the daemon's ack: the announcement is scheduled
        return True
    except (OSError, ValueError):
        return False
    except Exception:  # a notification must never break the command that wrote
        return False


def daemon_running(home: Home | Path | str | None = None) -> bool:
    try:
        request(home, {"cmd": "ping"}, timeout=2.0)
        return True
    except NetworkError:
        return False


def request(home: Home | Path | str | None, message: dict[str, Any], *, timeout: float = 10.0,
            max_reply: int = MAX_REPLY) -> dict[str, Any]:
    """Send one request and return the daemon's reply (raises DaemonNotRunning or
    NetworkError; a reply with ``ok: false`` raises the error it names).  ``max_reply``:
    the longest reply accepted (a ``query``'s may be longer than the default)."""
    target = _home(home)
    if not target.control_socket.exists():
        raise DaemonNotRunning(f"No node is running for {target.path}; start one with 'p2pc node start'.")
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(_socket_path(target))
            sock.sendall(encode_request(message))
            data = bytearray()
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > max_reply:
                    raise NetworkError("The node's reply on the control socket is too large.")
    except (ConnectionRefusedError, FileNotFoundError):
        raise DaemonNotRunning(f"No node is running for {target.path}; start one with 'p2pc node start'.") from None
    except TimeoutError:
        raise NetworkError("The node did not answer on its control socket in time.") from None
    except OSError as exc:
        raise NetworkError(f"The node's control socket failed ({exc.strerror or exc}).") from None
    return decode_reply(data)
