"""The query views' shortcuts agree with the canonical state they stand in for."""

from __future__ import annotations

from hypothesis import given

from p2pcommons.state import fold
from p2pcommons.state.views import CommonsState
from tests.test_state_histories import ACTIONS, build, prop_settings

PARTS = ("members", "joins", "proposals")


@prop_settings(200)
@given(actions=ACTIONS)
def test_canonical_parts_are_the_canonical_states_tables(actions: list[tuple[int, int, int]]) -> None:
    """``canonical_part`` (what p2pc members and state read, without building the whole
    canonical state) is exactly the table ``canonical`` holds, before and after it is built."""
    history = build(actions)
    state = fold(history.entries)
    quick = {name: state.canonical_part(name) for name in PARTS}
    assert state._canonical is None  # the shortcut did not build it
    full = state.canonical
    for name in PARTS:
        assert quick[name] == full[name], name
        assert list(quick[name]) == list(full[name]), name  # same order: the JSON lists rows in it
        assert state.canonical_part(name) == full[name], name
    assert isinstance(state, CommonsState)
