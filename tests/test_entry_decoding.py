"""Entry decoding: the fast paths (received and stored entries) against the reference path,
canonical form proven while parsing, and the decoder's bounded memory.

Example counts scale with P2PC_HYPOTHESIS_PROFILE (tests/conftest.py).
"""

from __future__ import annotations

import tracemalloc
from typing import Any

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import decode_entry


def _unsigned_entry(body: dict[str, Any]) -> bytes:
    """A structurally valid entry (its signature is never checked here)."""
    return dagcbor.encode({"version": 1, "commons": CID.of(b"c"), "author": bytes(32), "seq": 1, "prev": None,
                           "deps": [], "kind": "note", "body": body, "time": 0, "sig": bytes(64)})


def test_decoding_maps_with_new_key_sets_keeps_memory_bounded() -> None:
    """Regression: the cache of map key orders kept up to 4,096 key tuples of any size, so a
    peer sending bodies with ever new, large key sets made every node keep up to 4,096 of
    them (hundreds of megabytes at 64 KiB per entry)."""
    raws = [_unsigned_entry({f"k{i:05d}{j:03d}": 0 for j in range(300)}) for i in range(600)]
    decode_entry(raws[0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for raw in raws[1:]:
            decode_entry(raw)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2_000_000, f"decoding kept {grown:,} bytes"
