"""Short ids, the form people see (docs/json.md, "Short ids"): the CLI prints them and the
dashboard shows them, so an id read on a page can be typed back into any command.

Every entry id (and so every commons id) is a CIDv1 of DAG-CBOR with SHA2-256 in base32,
and every author id an Ed25519 key in multibase base58btc: their leading characters are the
same in all of them, carry nothing, and are left out.  Imports nothing, so any layer can use
it."""

from __future__ import annotations

from typing import Any

ENTRY_ID_PREFIX = "bafyrei"
AUTHOR_ID_PREFIX = "z6Mk"
SHORT_ID_LENGTH = 12


def short_id(text: Any) -> str:
    """The short form people see: 12 characters after the fixed prefix (``bafyrei…`` for
    entries and commons, ``z6Mk…`` for authors).  Every id argument accepts it back."""
    full = str(text)
    for prefix in (ENTRY_ID_PREFIX, AUTHOR_ID_PREFIX):
        if full.startswith(prefix):
            return full[len(prefix) : len(prefix) + SHORT_ID_LENGTH]
    return full[:SHORT_ID_LENGTH]


__all__ = ["AUTHOR_ID_PREFIX", "ENTRY_ID_PREFIX", "SHORT_ID_LENGTH", "short_id"]
