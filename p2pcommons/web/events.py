"""What the dashboard's server-sent events follow: one counter the daemon bumps when a
commons' state may have changed (entries stored and folded, a local write, a peer connected,
left or finished a sync).  Pages listen and re-read themselves; nothing is queued per
listener, so a slow or idle browser costs one waiting task, never memory that grows."""

from __future__ import annotations

import trio

MAX_LISTENERS = 32  # open event streams at once (each is one task); more are refused with 503


class Changes:
    def __init__(self) -> None:
        self.version = 0
        self.listeners = 0
        self._event = trio.Event()

    def bump(self) -> None:
        self.version += 1
        self._event.set()
        self._event = trio.Event()

    async def wait_past(self, version: int, timeout: float) -> int:
        """The version once it is past ``version``, or the same after ``timeout`` seconds."""
        if self.version == version:
            with trio.move_on_after(timeout):
                await self._event.wait()
        return self.version


__all__ = ["MAX_LISTENERS", "Changes"]
