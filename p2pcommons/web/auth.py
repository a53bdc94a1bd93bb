"""Who may use the dashboard: whoever holds the node's UI token (``ui.token`` in the home,
mode 0600), which only the home's owner can read.

The token is given once in the URL (``p2pc ui`` prints it) and turned into an HttpOnly,
SameSite=Strict cookie; the redirect drops it from the address bar and the history.  Every
request without the cookie is refused (401), so other local users cannot read the commons
through the port.  Writes (any method but GET/HEAD) also need an ``Origin`` equal to the
dashboard's own, and every request a ``Host`` naming 127.0.0.1 or localhost on our port, so
another web page open in the same browser cannot drive the node (cross-site requests carry a
foreign Origin, DNS-rebinding ones a foreign Host).  No CORS header is ever sent.

A pure ASGI middleware: no web framework is imported here.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from p2pcommons.home import Home

TOKEN_FILE = "ui.token"
SAFE_METHODS = ("GET", "HEAD")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_path(home: Home) -> Path:
    return home.path / TOKEN_FILE


def load_or_create_token(home: Home) -> str:
    """The home's UI token, created (random, 256 bits, mode 0600) the first time."""
    path = token_path(home)
    try:
        text = path.read_text(encoding="ascii").strip()
        if len(text) >= 32:
            return text
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def read_token(home: Home) -> str | None:
    try:
        return token_path(home).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def cookie_name(port: int) -> str:
    """Cookies are not scoped by port: each node's dashboard on 127.0.0.1 has its own name."""
    return f"p2pc_ui_{port}"


class Guard:
    """The ASGI middleware in front of the dashboard (see the module docstring)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token
        self.port = 0  # set once the listening socket is bound

    def hosts(self) -> tuple[str, ...]:
        return (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if host not in self.hosts():
            await _refuse(send, 403, "This dashboard answers only at its own address on 127.0.0.1.")
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if given:
            await self._exchange(given[0], scope, query, send)
            return
        if not self._has_cookie(headers.get("cookie", "")):
            await _refuse(send, 401, "Open the dashboard at the address `p2pc ui` prints (it holds the token).")
            return
        if scope["method"] not in SAFE_METHODS and headers.get("origin") != f"http://{host}":
            await _refuse(send, 403, "Changes are accepted only from the dashboard's own pages.")
            return
        await self.app(scope, receive, send)

    def _has_cookie(self, header: str) -> bool:
        try:
            jar = SimpleCookie(header)
        except CookieError:
            return False
        morsel = jar.get(cookie_name(self.port))
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.token.encode())

    async def _exchange(self, given: str, scope: Scope, query: list[tuple[str, str]], send: Send) -> None:
        """A token in the URL: set the cookie and redirect to the same page without it."""
        if scope["method"] not in SAFE_METHODS or not hmac.compare_digest(given.encode(), self.token.encode()):
            await _refuse(send, 403, "That dashboard token is not this node's; run `p2pc ui` again.")
            return
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        location = scope.get("path", "/") + (f"?{rest}" if rest else "")
        cookie = f"{cookie_name(self.port)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
            (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


async def _refuse(send: Send, status: int, sentence: str) -> None:
    body = (sentence + "\n").encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["Guard", "cookie_name", "load_or_create_token", "read_token", "token_path"]
