"""The HTTP JSON API (docs/api.md): reads from :mod:`.data` in the daemon's store thread,
writes through :func:`p2pcommons.author.append` — the path the CLI's ``review`` and
``vote`` take — so a write the rules would reject is refused before signing, with the
rule's sentence (HTTP 409, exit code 7 in the body), and nothing is stored.

Every answer is one envelope, ``{"v": 1, "ok": true, "data": ...}`` or ``{"v": 1, "ok":
false, "error": {"code": ..., "type": ..., "message": ...}}``
(the CLI's envelope, docs/json.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from p2pcommons.dagcbor import CID
from p2pcommons.errors import NotFound, P2PCError, UsageError
from p2pcommons.identity import author_id_text
from p2pcommons.store import Store

from . import data

if TYPE_CHECKING:
    from p2pcommons.node.daemon import Node

MAX_BODY = 4096  # a review or a vote is a few dozen bytes
STATUS_OF_EXIT = {2: 400, 3: 400, 4: 500, 5: 503, 6: 503, 7: 409}


def ok(payload: Any) -> JSONResponse:
    return JSONResponse({"v": 1, "ok": True, "data": payload})


def failure(exc: P2PCError) -> JSONResponse:
    status = 404 if isinstance(exc, NotFound) else STATUS_OF_EXIT.get(exc.exit_code, 500)
    # the CLI's error envelope (docs/json.md): code = the CLI's exit code for the same error
    error = {"code": exc.exit_code, "type": type(exc).__name__, "message": str(exc)}
    return JSONResponse({"v": 1, "ok": False, "error": error}, status_code=status)


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def commons_of(request: Request) -> CID:
    """The commons the path names, which this node must hold."""
    text = request.path_params["commons"]
    try:
        cid = CID.parse(text)
    except Exception:
        raise NotFound(f"'{text}' is not a commons id.") from None
    if cid not in await node_of(request).held_commons():
        raise NotFound(f"This node holds no commons {text}.")
    return cid


def entry_of(text: str) -> CID:
    try:
        return CID.parse(text)
    except Exception:
        raise NotFound(f"'{text}' is not an entry id.") from None


async def body_of(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise UsageError("Send the request as JSON (Content-Type: application/json).")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise UsageError(f"The request is larger than {MAX_BODY} bytes.")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise UsageError("The request is not valid JSON.") from None
    if not isinstance(body, dict):
        raise UsageError("The request must be a JSON object.")
    return body


async def peers(node: Node, commons: CID | None) -> list[dict[str, Any]]:
    """The node's peers as ``p2pc node status`` lists them, with ``in_sync`` for ``commons``:
    connected, and its last session left neither side lacking an entry of it."""
    status = await node.status()
    rows = []
    for peer in status["peers"]:
        behind = peer["behind"].get(str(commons)) if commons is not None else None
        in_sync = bool(peer["connected"] and behind is not None and not behind["they_lack"]
                       and not behind["we_lack"])
        rows.append({**peer, "in_sync": in_sync})
    return rows


# --- reading -------------------------------------------------------------------------------


async def list_commons(request: Request) -> JSONResponse:
    return ok({"commons": await node_of(request).db(data.held)})


async def commons_state(request: Request) -> JSONResponse:
    return ok(await node_of(request).db(data.state, await commons_of(request)))


async def commons_members(request: Request) -> JSONResponse:
    return ok(await node_of(request).db(data.members, await commons_of(request)))


async def commons_contributions(request: Request) -> JSONResponse:
    node = node_of(request)
    return ok(await node.db(data.contributions, await commons_of(request), node.identity.public_key))


async def commons_proposals(request: Request) -> JSONResponse:
    node = node_of(request)
    return ok(await node.db(data.proposals, await commons_of(request), node.identity.public_key))


async def commons_ledger(request: Request) -> JSONResponse:
    return ok(await node_of(request).db(data.ledger, await commons_of(request)))


async def commons_resources(request: Request) -> JSONResponse:
    node = node_of(request)
    return ok(await node.db(data.resources, await commons_of(request), node.identity.public_key))


async def commons_pools(request: Request) -> JSONResponse:
    return ok(await node_of(request).db(data.pools, await commons_of(request)))


async def commons_pool(request: Request) -> JSONResponse:
    cid = await commons_of(request)
    return ok(await node_of(request).db(data.pool, cid, request.path_params["name"]))


MAX_HISTORY = 500


def history_limit(request: Request) -> int:
    text = request.query_params.get("limit", "200")
    if not text.isdigit() or not 1 <= int(text) <= MAX_HISTORY:
        raise UsageError(f"limit must be a whole number from 1 to {MAX_HISTORY}.")
    return int(text)


async def commons_history(request: Request) -> JSONResponse:
    cid = await commons_of(request)
    return ok(await node_of(request).db(data.history, cid, history_limit(request)))


async def commons_peers(request: Request) -> JSONResponse:
    cid = await commons_of(request)
    return ok({"commons": str(cid), "peers": await peers(node_of(request), cid)})


async def all_peers(request: Request) -> JSONResponse:
    return ok({"peers": await peers(node_of(request), None)})


# --- writing -------------------------------------------------------------------------------


def _outcome(outcome: Any) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {"id": str(outcome.id), "kind": outcome.kind, "author": author_id_text(outcome.author),
            "seq": outcome.seq, "status": outcome.status, "reason": outcome.reason, "stable": outcome.stable,
            "held_back_by": [author_id_text(a) for a in outcome.holders],
            "missing": [str(m) for m in outcome.missing]}


def _append(store: Store, node: Node, commons: CID, kind: str, body: dict[str, Any], target: CID,
            target_kinds: tuple[str, ...], label: str) -> dict[str, Any]:
    """As the CLI's ``_write``: the target checked, the entry appended (refused by the rules
    unless it would take effect), its outcome in the fold."""
    from p2pcommons.author import append
    from p2pcommons.state.engine import current_state

    found = store.get(target)
    if found is None or found.kind not in target_kinds or found.commons_id != commons:
        raise NotFound(f"Entry {target} is not {label} of this commons.")
    entry = append(store, node.identity.signer, commons, kind, body, extra_deps=[target])
    outcome = current_state(store, commons).outcome(entry.id)
    return {"id": str(entry.id), "commons": str(commons), "seq": entry.seq, "kind": kind,
            "outcome": _outcome(outcome)}


async def _written(node: Node, commons: CID, result: dict[str, Any]) -> JSONResponse:
    node.mark_state_dirty({commons})  # fold, announce to peers, tell the pages
    node.announce()
    return ok(result)


async def review(request: Request) -> JSONResponse:
    node = node_of(request)
    cid = await commons_of(request)
    target = entry_of(request.path_params["entry"])
    req = await body_of(request)
    verdict = req.get("verdict")
    if verdict not in ("accept", "reject"):
        raise UsageError("The verdict must be accept or reject.")
    body: dict[str, Any] = {"contribution": target, "verdict": verdict}
    value = req.get("value")
    if value is not None:
        if type(value) is not int or not 0 <= value <= 2**53:
            raise UsageError("The value must be a whole number from 0 to 2^53.")
        body["value"] = value
    comment = req.get("comment")
    if comment:
        if not isinstance(comment, str):
            raise UsageError("The comment must be text.")
        body["comment"] = comment
    result = await node.db(_append, node, cid, "review", body, target, ("contribution",), "a contribution")
    return await _written(node, cid, result)


async def vote(request: Request) -> JSONResponse:
    node = node_of(request)
    cid = await commons_of(request)
    target = entry_of(request.path_params["entry"])
    choice = (await body_of(request)).get("choice")
    if choice not in ("yes", "no", "abstain"):
        raise UsageError("The vote must be yes, no or abstain.")
    body = {"proposal": target, "choice": choice}
    result = await node.db(_append, node, cid, "vote", body, target, ("rule_proposal", "proposal"), "a proposal")
    return await _written(node, cid, result)


__all__ = [
    "all_peers", "commons_contributions", "commons_history", "commons_ledger", "commons_members", "commons_peers",
    "commons_pool", "commons_pools", "commons_proposals", "commons_resources", "commons_state", "failure",
    "history_limit", "list_commons", "ok", "peers", "review", "vote",
]
