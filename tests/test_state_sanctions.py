"""Issue 11, item 6: whether a sanction takes effect, and against whom, is judged by the state
in the sanction's causal past (for its target as for its author); a rejected sanction
excludes nothing; warnings belong to the member identity (protocols/commons.md §3.4, §3.6)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.entry import Entry
from p2pcommons.state import APPLIED, REJECTED, Folder, fold
from p2pcommons.state.views import CommonsState
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
