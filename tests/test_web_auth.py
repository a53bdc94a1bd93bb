"""The dashboard's guard (p2pcommons/web/auth.py) as a plain ASGI middleware, without a
server: the token file, the token-for-cookie exchange, refusals without the cookie, writes
only from the dashboard's own origin and host; and the web stack kept out of local commands."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trio
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.home import Home
from p2pcommons.web.auth import Guard, cookie_name, load_or_create_token, read_token, token_path

PORT = 4999


def _call(guard: Guard, method: str, path: str, query: str = "", headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bool]:
    """(status, response headers, whether the app behind the guard was reached)."""
    reached: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    guard.app = app
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode(),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    trio.run(guard, scope, receive, send)
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, bool(reached)


def _guard() -> Guard:
    guard = Guard(lambda *_: None, "t" * 43)  # type: ignore[arg-type, return-value]
    guard.port = PORT
    return guard


HOST = {"Host": f"127.0.0.1:{PORT}"}
COOKIE = {**HOST, "Cookie": f"{cookie_name(PORT)}={'t' * 43}"}


def test_token_file_is_private_and_kept(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert read_token(home) is None
    token = load_or_create_token(home)
    assert len(token) >= 43 and stat.S_IMODE(token_path(home).stat().st_mode) == 0o600
    assert load_or_create_token(home) == token == read_token(home)


def test_token_in_the_url_becomes_a_strict_httponly_cookie() -> None:
    status, headers, reached = _call(_guard(), "GET", "/c/x/", f"token={'t' * 43}&tab=1", HOST)
    assert status == 303 and not reached
    assert headers["location"] == "/c/x/?tab=1"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(PORT)}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert not any(k.startswith("access-control") for k in headers)


def test_refusals() -> None:
    guard = _guard()
    assert _call(guard, "GET", "/", "", HOST)[0] == 401  # no cookie
    assert _call(guard, "GET", "/", "token=wrong", HOST)[0] == 403
    assert _call(guard, "GET", "/", "", {**HOST, "Cookie": f"{cookie_name(PORT)}=wrong"})[0] == 401
    assert _call(guard, "GET", "/", "", {**HOST, "Cookie": f"{cookie_name(PORT + 1)}={'t' * 43}"})[0] == 401
    assert _call(guard, "GET", "/", "", {**COOKIE, "Host": "evil.example"})[0] == 403  # DNS rebinding
    assert _call(guard, "POST", "/api", "", COOKIE)[0] == 403  # no Origin
    assert _call(guard, "POST", "/api", "", {**COOKIE, "Origin": "http://evil.example"})[0] == 403
    assert _call(guard, "POST", "/api", "", {**COOKIE, "Origin": f"http://127.0.0.1:{PORT + 1}"})[0] == 403
    assert _call(guard, "POST", "/api", f"token={'t' * 43}", HOST)[0] == 403  # no exchange on a write


def test_admitted() -> None:
    guard = _guard()
    assert _call(guard, "GET", "/", "", COOKIE)[2]
    assert _call(guard, "POST", "/api", "", {**COOKIE, "Origin": f"http://127.0.0.1:{PORT}"})[2]
    assert _call(guard, "GET", "/", "", {"Host": f"localhost:{PORT}", "Cookie": COOKIE["Cookie"]})[2]


def test_local_commands_do_not_import_the_web_stack(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from p2pcommons.cli.app import get_app\n"
        "app = get_app()\n"
        "for args in (['init'], ['commons', 'create', 'X'], ['contribute', '--title', 't'], ['state'],\n"
        "             ['contributions'], ['proposals']):\n"
        "    try:\n"
        "        app(args + ['--home', sys.argv[1]])\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), (args, e.code)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'hypercorn', 'anyio', 'h11')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "h")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_web_stack_is_imported_at_the_first_connection_which_it_serves() -> None:
    """The daemon binds the dashboard's port at once and imports Starlette and Hypercorn only
    when a connection is pending (p2pcommons/web/lazy.py: 8 MB less in a daemon nobody
    visits); that first connection is served, not lost."""
    probe = (
        "import sys, trio\n"
        "from p2pcommons.web import lazy\n"
        "async def main():\n"
        "    async with trio.open_nursery() as nursery:\n"
        "        url = await nursery.start(lazy.run, object(), 0, 't' * 43)\n"
        "        before = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'hypercorn'))\n"
        "        port = int(url.rsplit(':', 1)[1].strip('/'))\n"
        "        stream = await trio.open_tcp_stream('127.0.0.1', port)\n"
        "        host = f'127.0.0.1:{port}'.encode()\n"
        "        await stream.send_all(b'GET / HTTP/1.1\\r\\nHost: ' + host + b'\\r\\nConnection: close\\r\\n\\r\\n')\n"
        "        with trio.fail_after(60):\n"
        "            reply = await stream.receive_some(4096)\n"
        "        after = 'starlette' in sys.modules and 'hypercorn' in sys.modules\n"
        "        print(before, after, reply.split(b'\\r\\n')[0].decode())\n"
        "        nursery.cancel_scope.cancel()\n"
        "trio.run(main)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].split()[:4] == ["[]", "True", "HTTP/1.1", "401"]


_TOKEN = "t" * 43
_HOSTS = st.sampled_from([f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"127.0.0.1:{PORT + 1}", "evil.example",
                          f"evil.example:{PORT}", ""])
_ORIGINS = st.one_of(st.none(), st.sampled_from([f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}",
                                                 f"http://127.0.0.1:{PORT + 1}", "http://evil.example", "null"]))
_COOKIES = st.one_of(st.none(), st.sampled_from([
    f"{cookie_name(PORT)}={_TOKEN}", f"{cookie_name(PORT)}=wrong", f"{cookie_name(PORT + 1)}={_TOKEN}",
    f"a=b; {cookie_name(PORT)}={_TOKEN}", '"broken']), st.text(max_size=40))


@given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]), host=_HOSTS, origin=_ORIGINS,
       cookie=_COOKIES, token=st.one_of(st.none(), st.just(_TOKEN), st.text(max_size=10)))
def test_the_app_is_reached_only_with_the_cookie_and_the_own_origin_for_writes(
        method: str, host: str, origin: str | None, cookie: str | None, token: str | None) -> None:
    """Whatever a request carries, the guard lets it through exactly when its Host is ours,
    it holds this port's cookie, it carries no token to exchange, and — for anything but
    GET/HEAD — its Origin is the dashboard's own; it never sends a CORS header."""
    headers = {"Host": host} if host else {}
    if origin is not None:
        headers["Origin"] = origin
    if cookie is not None:
        headers["Cookie"] = cookie
    query = "" if token is None else urlencode({"token": token})
    status, sent, reached = _call(_guard(), method, "/x", query, headers)
    ours = host in (f"127.0.0.1:{PORT}", f"localhost:{PORT}")
    has_cookie = cookie is not None and cookie.endswith(f"{cookie_name(PORT)}={_TOKEN}")
    write_ok = method in ("GET", "HEAD") or origin == f"http://{host}"
    assert reached == (ours and token is None and has_cookie and write_ok)
    if token is not None and ours:
        assert status == (303 if token == _TOKEN and method in ("GET", "HEAD") else 403)
    assert not any(k.startswith("access-control") for k in sent)
