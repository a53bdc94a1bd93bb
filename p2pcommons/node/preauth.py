"""Bound what a stranger can make the node allocate before any handshake.

Advisory GHSA-hmjq-g7pp-rw3x: py-libp2p 0.8.1 negotiates the security protocol with
multistream-select *before* authentication, and its reader
(``libp2p.protocol_muxer.multiselect_communicator.read_delim`` →
``libp2p.utils.varint.read_varint_prefixed_bytes``) trusts the varint length prefix:
``read_exactly(reader, n)`` keeps every byte the stranger sends until ``n`` arrive (n up to
2^64), so one unauthenticated connection can fill memory for as long as the upgrade
timeout lasts, and many connections multiply that.  Fixed upstream in 0.8.2, which the
package registry does not serve yet.

Until then :func:`install` (called once, when the daemon builds its host) replaces the
name ``read_delim`` inside ``multiselect_communicator`` — the only place multistream
messages are read, before and after the handshake — with a reader that rejects a length
above :data:`MAX_MULTISTREAM_MESSAGE` before reading the body.  A multistream message is
one protocol id and a newline ("/noise\\n", "/p2pcommons/sync/1\\n"); the multistream
spec's own implementations cap it at 1 KiB (go) to 64 KiB; 1 KiB here.  The rejection
raises libp2p's own ``ParseError`` so its callers treat it like any malformed message (the
connection is dropped).  Idempotent; a no-op once libp2p itself bounds the read (its
``read_delim`` is no longer the unbounded one it replaces).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("p2pcommons.node")

MAX_MULTISTREAM_MESSAGE = 1024  # bytes, the newline included
_installed = False


def install() -> bool:
    """Patch libp2p's multistream reader (once); whether the patch is in place."""
    global _installed
    if _installed:
        return True
    from libp2p.exceptions import ParseError
    from libp2p.protocol_muxer import multiselect_communicator
    from libp2p.utils import varint

    if getattr(multiselect_communicator, "read_delim", None) is not varint.read_delim:
        log.info("libp2p's multistream reader is not the 0.8.1 one; leaving it alone")
        return False

    async def bounded_read_delim(reader: Any) -> bytes:
        try:
            data = await varint.read_varint_prefixed_bytes_limited(reader, MAX_MULTISTREAM_MESSAGE)
        except ParseError:
            raise
        except Exception as exc:  # MessageTooLarge and friends: a malformed message to libp2p
            if type(exc).__name__ == "MessageTooLarge":
                raise ParseError(f"multistream message too large: {exc}") from None
            raise
        if not data or data[-1:] != b"\n":
            raise ParseError("multistream message is not newline-delimited")
        return data[:-1]

    setattr(multiselect_communicator, "read_delim", bounded_read_delim)  # noqa: B010 - not re-exported
    _installed = True
    return True


def installed() -> bool:
    return _installed


__all__ = ["MAX_MULTISTREAM_MESSAGE", "install", "installed"]
