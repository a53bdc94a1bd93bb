"""Pending joins per author, kept beside the joins table (``State.join_authors``, derived).

Why: an admission drops its author's other pending joins; it used to look through every
pending join to find them, so admitting N concurrent joins cost O(N^2) (an open commons
with 20,000 joins folded at 300 entries/s; ``bench/fold.py --joins``: "admitted/s").  The
count lets it look only when the author has another pending join.  The promise: the count
always equals a recount of the joins table, in every state the fold keeps (the current
one and its snapshots), whatever the delivery order, and after a checkpoint round trip.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.entry import sign_entry
from p2pcommons.state import Folder, checkpoint, genesis_body
from p2pcommons.state.records import State
from tests.test_state_histories import ACTIONS, SIGNERS, build, prop_settings


def _recount(state: State) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    for join in state.joins.values():
        counts[join.author] = counts.get(join.author, 0) + 1
    return counts


def _check(folder: Folder) -> None:
    states = [folder.state, *(s for s, _ in folder.snap_states)]
    for state in states:
        if state is not None:
            assert state.join_authors == _recount(state)


@prop_settings(100)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1))
def test_pending_joins_per_author_equal_a_recount(actions: list[tuple[int, int, int]], seed: int) -> None:
    history = build(actions)
    rng = random.Random(seed)
    delivered = list(history.entries)
    rng.shuffle(delivered)
    folder = Folder(history.commons, snapshot_every=rng.choice([1, 2, 4]))
    for entry in delivered:
        folder.add(entry)
        if rng.random() < 0.3:
            folder.run()
            _check(folder)
    folder.run()
    _check(folder)
    resumed = checkpoint.load(checkpoint.dump(folder), history.commons, lambda raw: None)
    assert resumed is not None and resumed.state is not None
    assert resumed.state.join_authors == _recount(resumed.state)


def test_an_author_who_joined_twice_has_both_joins_dropped_by_one_admission() -> None:
    founder, newcomer = SIGNERS[0], SIGNERS[1]
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("twice", founders=[founder.public_key]))
    first = sign_entry(newcomer, commons=genesis.id, seq=1, prev=None, kind="join", body={"name": "a"},
                       deps=[genesis.id], timestamp=2)
    second = sign_entry(newcomer, commons=genesis.id, seq=2, prev=first.id, kind="join", body={"name": "b"},
                        timestamp=3)
    admission = sign_entry(founder, commons=genesis.id, seq=2, prev=genesis.id, kind="admission",
                           body={"join": first.id}, deps=[second.id], timestamp=4)
    folder = Folder(genesis.id)
    for entry in (genesis, first, second, admission):
        folder.add(entry)
    folder.run()
    assert folder.state is not None
    assert folder.state.joins == {} and folder.state.join_authors == {}
    assert newcomer.public_key in folder.state.members
