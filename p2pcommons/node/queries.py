"""The daemon's side of the control socket's ``query`` and ``append`` (protocols/control.md §4).

A running daemon keeps each commons folded in memory; a CLI process on its own must load the
fold's checkpoint first, which costs O(state) — seconds at a million entries (issue 12). So
the hot commands ask the daemon when one runs: ``p2pc state``, ``members`` and
``contributions`` read the daemon's live fold, and ``p2pc contribute`` has the daemon sign
and store the entry (with the same rule check, on the same fold, incrementally).  The CLI
has already resolved the commons and the referenced entries to full ids (and loaded the
identity, so a locked key is refused as before); this module only runs the work, in the
daemon's state thread, and returns the command's ``--json`` data.
"""

from __future__ import annotations

from typing import Any

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.errors import IdentityError, UsageError
from p2pcommons.store import Store

QUERIES = ("state", "members", "contributions")


def _commons(request: dict[str, Any]) -> CID:
    try:
        return CID.parse(str(request.get("commons", "")))
    except Exception:
        raise UsageError("The request names no commons id.") from None


def answer_query(store: Store, request: dict[str, Any]) -> dict[str, Any]:
    """``{"data": …}``: what ``p2pc <what> --json`` prints under ``data``."""
    from p2pcommons.web import data as views

    what = request.get("what")
    commons = _commons(request)
    if not store.has_commons(commons):
        raise UsageError(f"This node holds no commons {commons}.")
    if what == "state":
        data = views.state(store, commons, full=request.get("full") is not False)  # (older clients: full)
    elif what == "members":
        data = views.members(store, commons)
    elif what == "contributions":
        status = request.get("status")
        if status not in (None, "pending", "accepted", "rejected"):
            raise UsageError(f"--status must be pending, accepted or rejected, not '{status}'.")
        data = views.contributions(store, commons, status=status)
        limit = request.get("limit")
        if type(limit) is int and limit >= 0:  # a page: the total says how many more
            rows = data["contributions"]
            data = {**data, "contributions": rows[:limit], "total_count": len(rows),
                    "more_count": max(0, len(rows) - limit)}
    else:
        raise UsageError(f"Unknown query {what!r}.")
    return {"data": data}  # (a client refuses a reply over MAX_QUERY_REPLY, then answers locally)


def answer_append(store: Store, signer: Signer, request: dict[str, Any]) -> dict[str, Any]:
    """Sign and store this node's next contribution (``p2pc contribute``): ``{"id",
    "commons", "seq"}``.  A refusal by the rules raises RuleRefusal, as in the CLI."""
    from p2pcommons.author import append

    if request.get("author") != signer.public_key.hex():
        raise IdentityError("The running node signs with another key than this home's identity.")
    if request.get("kind") != "contribution":
        raise UsageError("Only contributions are appended through the control socket.")
    commons = _commons(request)
    body = request.get("body")
    if not isinstance(body, dict):
        raise UsageError("The request has no entry body.")
    try:
        refs = [CID.parse(str(text)) for text in body.get("refs", [])]
    except Exception:
        raise UsageError("The request's refs are not entry ids.") from None
    if refs:
        body = {**body, "refs": refs}
    entry = append(store, signer, commons, "contribution", body, force=bool(request.get("force")), extra_deps=refs)
    return {"id": str(entry.id), "commons": str(commons), "seq": entry.seq}
