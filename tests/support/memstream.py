"""A trio memory stream as the node's session :class:`~p2pcommons.node.session.Stream`, for
sessions run in one process over ``trio.testing.memory_stream_pair`` (no libp2p)."""

from __future__ import annotations

from typing import Any


class MemoryStream:
    """The session's read/write/close over one end of a trio memory stream pair."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def read(self, n: int | None = None) -> bytes:
        return bytes(await self.inner.receive_some(n))

    async def write(self, data: bytes) -> None:
        await self.inner.send_all(data)

    async def close(self) -> None:
        await self.inner.aclose()
