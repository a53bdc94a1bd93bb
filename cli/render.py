"""Turning entries and state into JSON-friendly data for ``--json`` output."""

from __future__ import annotations

from typing import Any

import cbor2

from p2pcommons.dagcbor import CID, link
from p2pcommons.entry import Entry


def plain(value: Any) -> Any:
    """Entry body values as JSON: links as CID text, bytes as hex."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, cbor2.CBORTag):
        return str(link(value))
    if isinstance(value, CID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def entry_json(entry: Entry) -> dict[str, Any]:
    from p2pcommons.identity import author_id_text

    return {
        "id": str(entry.id),
        "commons": str(entry.commons_id),
        "author": author_id_text(entry.author),
        "seq": entry.seq,
        "prev": str(entry.prev) if entry.prev else None,
        "deps": [str(d) for d in entry.deps],
        "kind": entry.kind,
        "body": plain(entry.body),
        "time": entry.time,
    }
