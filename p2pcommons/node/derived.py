"""Finding the commons-state fold without depending on it: the node works (replicates)
even where the state package is absent or broken, and uses it when it is there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def current_state_fn() -> Callable[..., Any] | None:
    """``current_state(store, commons)`` from :mod:`p2pcommons.state` (or its engine)."""
    try:
        from p2pcommons import state
    except ImportError:
        return None
    fn = getattr(state, "current_state", None)
    if fn is None:
        try:
            from p2pcommons.state.engine import current_state as fn
        except ImportError:
            return None
    return fn if callable(fn) else None


def pending_admissions_fn() -> Callable[..., Any] | None:
    try:
        from p2pcommons import state
    except ImportError:
        return None
    fn = getattr(state, "pending_admissions", None)
    return fn if callable(fn) else None
