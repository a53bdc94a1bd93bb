"""Unsigned LEB128 varints: the length prefix of every p2pcommons frame.

Bundle frames (``protocols/bundle.md`` §2) and sync frames (``protocols/sync.md`` §2) are both
``uvarint(length) || bytes``; this is the one implementation of that varint, both ways, used
by the sync state machine, the bundle reader and writer, and the test peers that forge frames.

Why here: the wire layer must not depend on the store, so the varint cannot live in the
bundle module (which imports ingest and the store). Pure functions, no I/O.
"""

from __future__ import annotations

from p2pcommons.errors import ProtocolViolation, ReceivedDataError


def encode_uvarint(value: int) -> bytes:
    """``value`` as unsigned LEB128, minimal (7 bits a byte, low groups first)."""
    if value < 0:
        raise ValueError("uvarint of a negative number")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_uvarint(
    data: bytes | bytearray | memoryview,
    pos: int,
    *,
    limit: int = 9,
    what: str = "A varint",
    error: type[ReceivedDataError] = ProtocolViolation,
) -> tuple[int, int] | None:
    """``(value, next_pos)`` of the varint at ``data[pos:]``, or ``None`` if ``data`` ends inside it.

    Minimal encoding only (no trailing zero groups) and at most ``limit`` bytes; otherwise
    ``error`` (the caller's format's own exception) is raised with one sentence about ``what``.
    """
    value = 0
    shift = 0
    for i in range(limit):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i:
                raise error(f"{what} is not minimally encoded.")
            return value, pos + i + 1
        shift += 7
    raise error(f"{what} is too long.")
