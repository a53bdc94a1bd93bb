"""Bounded polling for tests: wait for a condition with a deadline, never a bare sleep.

``wait_for`` (plain code) and ``wait_until`` (trio) raise AssertionError when the condition
is still false at the deadline; ``poll_for`` and ``poll_until`` return its last value
instead, for the callers that report a timeout as an outcome (a hostile peer noting that
the target did not drop it).  The one sleep of each flavour is the poll interval below.

Standard library and trio only: the helper processes under tests/ import it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio


def poll_for(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy (that
    value) or ``timeout`` seconds have passed (its last, falsy value)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    for _ in range(int(timeout / interval) + 2):  # bounded by count as well as by the clock
        last = condition()
        if last or time.monotonic() > deadline:
            break
        time.sleep(interval)  # the bounded poll interval (the one sleep of the sync helpers)
    return last


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """``poll_for`` that fails the test when the condition is still false at the deadline."""
    last = poll_for(condition, timeout, interval)
    if not last:
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
    return last


async def poll_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """The trio twin of ``poll_for``: check ``condition`` every ``interval`` seconds (it
    must not block) until it is truthy (that value) or ``timeout`` seconds have passed (its
    value then, checked once more at the deadline)."""
    last = condition()
    with trio.move_on_after(timeout):
        while not last:
            await trio.sleep(interval)  # the bounded poll interval (the one sleep of the trio helpers)
            last = condition()
    return last or condition()


async def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """``poll_until`` that fails the test when the condition is still false at the deadline."""
    last = await poll_until(condition, timeout, interval)
    if not last:
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
    return last


__all__ = ["poll_for", "poll_until", "wait_for", "wait_until"]
