"""Issue 11, item 6: whether a sanction takes effect, and against whom, is judged by the state
in the sanction's causal past (for its target as for its author); a rejected sanction
excludes nothing; warnings belong to the member identity (protocols/commons.md §3.4, §3.6)."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.entry import Entry
from p2pcommons.state import APPLIED, REJECTED, Folder, fold
from p2pcommons.state.views import CommonsState
from tests.support.decisions import T0, Town
from tests.test_state_histories import ACTIONS, SIGNERS, History, build, prop_settings

M = 2  # the member sanctioned in the scenarios below


def _admit(history: History, who: int, admitter: int) -> Entry:
    """``who`` joins and ``admitter`` (who has seen the join) admits them; ``who`` sees it."""
    history.view[who] |= history.view[admitter]
    join = history.write(who, "join", {"name": f"member{who}"})
    history.view[admitter] |= history.view[who]
    admission = history.write(admitter, "admission", {"join": join.id}, (join.id,))
    history.view[who] |= history.view[admitter]
    return admission


def _left_and_rejoined() -> tuple[History, dict[str, Entry]]:
    """M joins, works, leaves; steward 0 sees the leave.  M then rejoins (admitted by steward
    1) and works again; steward 0, who never saw the rejoin, removes M — with a long chain
    of its own, so the removal sorts after the rejoin."""
    history = History()
    _admit(history, M, 0)
    history.write(M, "contribution", {"title": "first stint", "value": 1})
    leave = history.write(M, "leave", {})
    history.view[0] |= history.view[M]
    history.view[1] |= history.view[M]
    rejoin = history.write(M, "join", {"name": "back again"})
    history.view[1] |= history.view[M]
    admission = history.write(1, "admission", {"join": rejoin.id}, (rejoin.id,))
    history.view[M] |= history.view[1]
    work = history.write(M, "contribution", {"title": "second stint", "value": 3})
    for i in range(8):
        history.write(0, "contribution", {"title": f"steward chore {i}", "value": 1})
    sanction = history.write(0, "sanction", {"member": SIGNERS[M].public_key, "action": "remove",
                                             "reason": "gone quiet"})
    return history, {"leave": leave, "rejoin": rejoin, "admission": admission, "work": work, "sanction": sanction}


def test_a_sanction_rejected_as_already_left_does_not_void_the_rejoin() -> None:
    """Reported: a sanction reported "rejected: already left" still voided the target's
    rejoin, its admission and its work, and nothing could lift it."""
    history, e = _left_and_rejoined()
    for seed in range(4):
        order = list(history.entries)
        random.Random(seed).shuffle(order)
        state = fold(order)
        sanction = state.outcome(e["sanction"].id)
        assert sanction is not None and sanction.status == REJECTED
        assert sanction.reason == "The member is already left."
        for name in ("rejoin", "admission", "work"):
            outcome = state.outcome(e[name].id)
            assert outcome is not None and outcome.status == APPLIED, (name, outcome)
        assert state.members[SIGNERS[M].public_key.hex()]["status"] == "active"
        assert not state._folder.exclusions


def _converges_in_every_delivery_order(town: Town) -> CommonsState:
    """An incremental fold fed ``town``'s entries one at a time (genesis first, then every
    order of the rest) gives the state and outcomes of a fold from scratch, returned."""
    reference = town.fold()
    for arrival in itertools.permutations(town.entries[1:]):
        folder = Folder(town.genesis.id, snapshot_every=1)
        for entry in (town.genesis, *arrival):
            folder.add(entry)
            folder.run()
        assert folder.result().state_hash == reference.state_hash, [str(e.id) for e in arrival]
        for entry in town.entries:
            assert folder.outcomes.get(entry.id.raw) == reference._folder.outcomes.get(entry.id.raw)
    return reference


def _outcomes(state: CommonsState, *entries: Entry) -> list[tuple[str, str]]:
    found = [state.outcome(e.id) for e in entries]
    return [(o.status, o.reason) if o is not None else ("", "") for o in found]


def _suspend(town: Town, by: int, member: int, time: int) -> Entry:
    return town.write(by, "sanction", {"member": town.key(member), "action": "suspend", "reason": "r"}, time)


ALREADY = "The member is already suspended."


def test_a_sanction_voided_through_a_later_suspension_is_judged_again_when_that_one_lapses() -> None:
    """Found by tests/test_state_acts.py's convergence property: an incremental fold lost a
    suspension that a fold from scratch applies.

    Alice (0) suspends dan (3); bob (1), who saw that, suspends alice; carol (2), who saw
    nothing of alice's, suspends her too, after a note of her own so that both suspensions
    of alice sort at the same clock, bob's first.  From scratch: alice's suspension of dan
    applies, bob's of alice applies, carol's is rejected (alice is already suspended).
    Delivered note, alice's, carol's, bob's: before bob's arrives, carol's takes effect and
    excludes alice's (strong removal), so alice's exclusion of dan is stale and her sanction
    is made void.  Bob's then sorts before carol's, whose exclusion may no longer hold: the
    fold replayed from the start without it, but kept the void mark on alice's sanction
    (which sorts before bob's), and dan stayed active."""
    town = Town(stewards=4)
    town.write(2, "contribution", {"title": "note"}, T0 + 2000)
    alice = _suspend(town, 0, 3, T0)
    town.sync(1, 0)
    bob = _suspend(town, 1, 0, T0 + 60000)
    carol = _suspend(town, 2, 0, T0 + 60000)
    reference = _converges_in_every_delivery_order(town)
    order = [key[1] for key in reference._folder.order]
    assert order.index(bob.id.raw) < order.index(carol.id.raw)  # (the scenario needs bob's first)
    assert _outcomes(reference, alice, bob, carol) == [(APPLIED, ""), (APPLIED, ""), (REJECTED, ALREADY)]
    assert reference.members[town.member_hex(3)]["status"] == "suspended"


def test_a_sanction_voided_there_replays_from_the_start_when_an_entry_sorts_before_it() -> None:
    """Also found by that property.  Alice and dan suspend each other, unseen by each other;
    bob, who saw alice's, suspends alice; carol, who saw neither, suspends her too after a
    note (so her suspension sorts just after bob's).  From scratch alice's suspension of dan
    sorts first and applies (dan's of alice is excluded), bob's applies, carol's is rejected.
    Delivered dan's, alice's, the note, carol's, bob's: before bob's arrives, carol's
    suspension excludes alice's, dan's then takes effect, and both alice's and carol's
    (rejected: alice is already suspended by dan) are made void.  Bob's sorts before
    carol's: the fold dropped carol's void mark and replayed from bob's only, keeping
    alice's void mark and dan's suspension of alice, which stood only through carol's
    exclusion — so bob's was rejected and dan stayed active."""
    town = Town(stewards=4, rules={"roles": {"custom": ["ecologist"]}, "decide": {"removal": True}})
    dan = _suspend(town, 3, 0, T0 + 120000)
    alice = _suspend(town, 0, 3, T0 + 120000)
    town.sync(1, 0)
    bob = _suspend(town, 1, 0, T0 + 120000)
    town.write(2, "contribution", {"title": "note"}, T0 + 122000)
    carol = _suspend(town, 2, 0, T0 + 180000)
    reference = _converges_in_every_delivery_order(town)
    order = [key[1] for key in reference._folder.order]
    assert order.index(alice.id.raw) < order.index(dan.id.raw) < order.index(bob.id.raw) < order.index(carol.id.raw)
    assert _outcomes(reference, alice, bob, carol) == [(APPLIED, ""), (APPLIED, ""), (REJECTED, ALREADY)]
    assert _outcomes(reference, dan)[0][0] == REJECTED
    assert reference.members[town.member_hex(3)]["status"] == "suspended"


def test_a_sanction_that_saw_the_rejoin_takes_effect() -> None:
    """The same removal written by a steward who saw the rejoin removes M (and M's later
    entries outside its causal past are excluded, as strong removal says)."""
    history, e = _left_and_rejoined()
    history.view[0] |= history.view[1] | history.view[M]
    removal = history.write(0, "sanction", {"member": SIGNERS[M].public_key, "action": "remove", "reason": "r"})
    late = history.write(M, "contribution", {"title": "after", "value": 1}, stale=True)
    state = fold(history.entries)
    assert state.outcome(removal.id).status == APPLIED  # type: ignore[union-attr]
    assert state.outcome(e["work"].id).status == APPLIED  # type: ignore[union-attr]
    assert "Strong removal" in state.outcome(late.id).reason  # type: ignore[union-attr]
    assert state.members[SIGNERS[M].public_key.hex()]["status"] == "removed"


def test_warnings_survive_leaving_and_rejoining() -> None:
    """Graduated sanctions were evaded by leaving and rejoining: 2 warnings became 0."""
    history = History()
    _admit(history, M, 0)
    history.view[0] |= history.view[M]
    for _ in range(2):
        history.write(0, "sanction", {"member": SIGNERS[M].public_key, "action": "warning", "reason": "rude"})
    history.view[M] |= history.view[0]
    history.write(M, "leave", {})
    _admit(history, M, 0)
    state = fold(history.entries)
    member = state.members[SIGNERS[M].public_key.hex()]
    assert member["status"] == "active"
    assert member["warnings"] == 2
    history.view[0] |= history.view[M]
    history.write(0, "sanction", {"member": SIGNERS[M].public_key, "action": "warning", "reason": "again"})
    assert fold(history.entries).members[SIGNERS[M].public_key.hex()]["warnings"] == 3


# --- the property ---------------------------------------------------------------------------------


def _excludes_nothing_when_rejected(state: CommonsState, history: History) -> None:
    """No entry's outcome cites a sanction that did not take effect, and every exclusion the
    fold holds comes from a sanction that did."""
    folder = state._folder
    rejected = {e.id for e in history.entries if e.kind == "sanction"
                and folder.outcomes.get(e.id.raw, (None,))[0] != APPLIED}
    for ex in folder.exclusions:
        assert ex.cause_id not in rejected, ex
    cited = {str(c) for c in rejected}
    for entry in history.entries:
        outcome = state.outcome(entry.id)
        assert outcome is not None
        if outcome.status == REJECTED and outcome.reason.startswith("Strong removal"):
            assert not any(c in outcome.reason for c in cited), (entry, outcome.reason)


@prop_settings(300)
@given(actions=ACTIONS, target=st.integers(2, len(SIGNERS) - 1), seen=st.booleans(), rejoin=st.booleans(),
       action=st.sampled_from(["remove", "suspend", "warning"]), tail=ACTIONS, seed=st.integers(0, 2**32 - 1))
def test_a_rejected_sanction_excludes_nothing(actions: list[tuple[int, int, int]], target: int, seen: bool,
                                              rejoin: bool, action: str, tail: list[tuple[int, int, int]],
                                              seed: int) -> None:
    """Over random histories (the alphabet of tests/test_state_histories.py, with its
    sanctions, backdated removals, leaves and forks) around a member who leaves — seen or not
    by the steward who sanctions them — and perhaps rejoins unseen, then more random actions:
    a sanction that did not take effect excludes nothing, in a fold from scratch and in an
    incremental fold fed in a random order (which agree)."""
    history = build(actions[:20])
    if not fold(history.entries).has_role(SIGNERS[target].public_key, "member"):
        _admit(history, target, 0)
        history.write(target, "contribution", {"title": "as a member", "value": 2})
    history.write(target, "leave", {})
    if seen:
        history.view[0] |= history.view[target]
    if rejoin:
        history.view[1] |= history.view[target]
        join = history.write(target, "join", {"name": "again"})
        history.view[1] |= history.view[target]
        history.write(1, "admission", {"join": join.id}, (join.id,))
        history.view[target] |= history.view[1]
        history.write(target, "contribution", {"title": "back", "value": 1})
    history.write(0, "sanction", {"member": SIGNERS[target].public_key, "action": action, "reason": "test"})
    for actor, code, p in tail[:15]:
        history.act(actor % len(SIGNERS), code, p)
    reference = fold(history.entries)
    _excludes_nothing_when_rejected(reference, history)
    rng = random.Random(seed)
    arrival = list(history.entries)
    rng.shuffle(arrival)
    folder = Folder(history.commons, snapshot_every=rng.choice([1, 3, 8]))
    for entry in arrival:
        folder.add(entry)
        if rng.random() < 0.5:
            folder.run()
    incremental = folder.result()
    _excludes_nothing_when_rejected(incremental, history)
    assert incremental.state_hash == reference.state_hash
    for entry in history.entries:
        assert folder.outcomes.get(entry.id.raw) == reference._folder.outcomes.get(entry.id.raw)
