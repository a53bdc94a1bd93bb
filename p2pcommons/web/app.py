"""The dashboard's ASGI application and its server, run inside the daemon's nursery.

Starlette under Hypercorn's trio worker: the daemon is trio (py-libp2p is), and Hypercorn
is the well-kept ASGI server with a native trio event loop (``hypercorn.trio.serve``), so
the web server is one more task of the node's structured concurrency — stopped with it,
sharing its store thread — instead of a second event loop in a thread.  Starlette runs on
trio through AnyIO, is small, typed and maintained, and needs no build step or templates.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from p2pcommons.errors import NotFound, P2PCError

from . import api, data, pages
from .auth import Guard
from .events import MAX_LISTENERS

if TYPE_CHECKING:
    from p2pcommons.node.daemon import Node

log = logging.getLogger("p2pcommons.web")


class _NoStartBanner(logging.Filter):
    """Drops Hypercorn's own start line ('Running on … (CTRL + C to quit)'): wrong for a
    daemon, and the dashboard's address is logged once already ('dashboard at …')."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Running on")


log.addFilter(_NoStartBanner())
KEEPALIVE = 15.0  # seconds between comments on an idle event stream (proxies and browsers drop silent ones)


async def _commons_page(request: Request) -> tuple[Node, Any, dict[str, Any]]:
    node = api.node_of(request)
    cid = await api.commons_of(request)
    state = await node.db(data.state, cid)
    return node, cid, {"id": str(cid), "name": state["name"]}


async def root(request: Request) -> Response:
    held = await api.node_of(request).db(data.held)
    if len(held) == 1:
        return RedirectResponse(f"/c/{held[0]['id']}/", status_code=303)
    return HTMLResponse(pages.home(held))


async def overview(request: Request) -> Response:
    node = api.node_of(request)
    cid = await api.commons_of(request)
    state = await node.db(data.state, cid)
    members = (await node.db(data.members, cid))["members"]
    return HTMLResponse(pages.overview(state, members, await api.peers(node, cid)))


async def contributions(request: Request) -> Response:
    node, cid, commons = await _commons_page(request)
    rows = (await node.db(data.contributions, cid, node.identity.public_key))["contributions"]
    return HTMLResponse(pages.contributions(commons, rows, await node.db(data.names, cid)))


async def proposals(request: Request) -> Response:
    node, cid, commons = await _commons_page(request)
    rows = (await node.db(data.proposals, cid, node.identity.public_key))["proposals"]
    return HTMLResponse(pages.proposals(commons, rows, await node.db(data.names, cid)))


async def ledger(request: Request) -> Response:
    node, cid, commons = await _commons_page(request)
    return HTMLResponse(pages.ledger(commons, await node.db(data.ledger, cid), await node.db(data.names, cid)))


async def resources(request: Request) -> Response:
    node, cid, commons = await _commons_page(request)
    rows = (await node.db(data.resources, cid, node.identity.public_key))["resources"]
    return HTMLResponse(pages.resources(commons, rows, await node.db(data.names, cid)))


def _books(store: Any, cid: Any) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    rows = data.pools(store, cid)["pools"]
    return rows, {p["name"]: data.pool(store, cid, p["name"])["flows"] for p in rows}


async def pools(request: Request) -> Response:
    node, cid, commons = await _commons_page(request)
    rows, books = await node.db(_books, cid)
    return HTMLResponse(pages.pools(commons, rows, books, await node.db(data.names, cid)))


async def history(request: Request) -> Response:
    node, cid, commons = await _commons_page(request)
    rows = (await node.db(data.history, cid, api.history_limit(request)))["entries"]
    return HTMLResponse(pages.history(commons, rows, await node.db(data.names, cid)))


async def peers_page(request: Request) -> Response:
    return HTMLResponse(pages.peers(await api.peers(api.node_of(request), None)))


async def events(request: Request) -> Response:
    """Server-sent events: ``change`` whenever the node's commons state may have changed."""
    changes = api.node_of(request).changes
    if changes.listeners >= MAX_LISTENERS:
        return PlainTextResponse("Too many open dashboards on this node.", status_code=503)

    async def stream() -> AsyncIterator[str]:
        changes.listeners += 1
        try:
            version = changes.version
            yield "retry: 2000\n\n"
            while True:
                new = await changes.wait_past(version, KEEPALIVE)
                if new == version:
                    yield ": idle\n\n"
                    continue
                version = new
                yield f"event: change\ndata: {new}\n\n"
        finally:
            changes.listeners -= 1

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


async def p2pc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, P2PCError)
    if request.url.path.startswith("/api/"):
        return api.failure(exc)
    return HTMLResponse(pages.error(str(exc)), status_code=404 if isinstance(exc, NotFound) else 400)


def build(node: Node) -> Starlette:
    v1 = "/api/v1/commons"
    routes = [
        Route("/", root), Route("/c/{commons}/", overview), Route("/c/{commons}/contributions", contributions),
        Route("/c/{commons}/proposals", proposals), Route("/c/{commons}/ledger", ledger),
        Route("/c/{commons}/history", history), Route("/c/{commons}/resources", resources),
        Route("/c/{commons}/pools", pools),
        Route("/peers", peers_page), Route("/events", events),
        Route(v1, api.list_commons), Route(v1 + "/{commons}/state", api.commons_state),
        Route(v1 + "/{commons}/members", api.commons_members),
        Route(v1 + "/{commons}/contributions", api.commons_contributions),
        Route(v1 + "/{commons}/contributions/{entry}/review", api.review, methods=["POST"]),
        Route(v1 + "/{commons}/proposals", api.commons_proposals),
        Route(v1 + "/{commons}/proposals/{entry}/vote", api.vote, methods=["POST"]),
        Route(v1 + "/{commons}/ledger", api.commons_ledger),
        Route(v1 + "/{commons}/history", api.commons_history),
        Route(v1 + "/{commons}/resources", api.commons_resources),
        Route(v1 + "/{commons}/pools", api.commons_pools), Route(v1 + "/{commons}/pools/{name}", api.commons_pool),
        Route(v1 + "/{commons}/peers", api.commons_peers), Route("/api/v1/peers", api.all_peers),
    ]
    app = Starlette(routes=routes, exception_handlers={P2PCError: p2pc_error})
    app.state.node = node
    return app


async def serve_socket(node: Node, sock: socket.socket, token: str) -> None:
    """Serve the dashboard on ``sock`` (bound and listening, from :mod:`.lazy`, which
    imports this module only once a connection is pending) until the node's nursery is
    cancelled."""
    guard = Guard(build(node), token)
    guard.port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns the descriptor from here
    config.accesslog = None
    config.errorlog = log
    config.include_server_header = False
    await serve(cast(Any, guard), config)  # (an ASGI app; Hypercorn's type names its own scopes)


__all__ = ["build", "serve_socket"]
