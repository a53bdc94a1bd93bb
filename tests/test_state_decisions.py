"""Decisions that end (protocols/commons.md §2.1): deadlines, abstention, withdrawal, quorum,
and the closing entry whose causal past decides — examples, then properties over random
histories with any clock skew and any delivery order."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from p2pcommons.state import APPLIED, REJECTED
from tests.support.decisions import T0, Town
from tests.test_state_histories import examples

MIN = 60_000
DEADLINE = {"decisions": {"deadline": 600}}  # ten minutes from the proposal's own time
D = T0 + 1000 + 600_000  # the deadline of a proposal written at T0 + 1000


def _propose(town: Town, changes: dict[str, Any] | None = None, **extra: Any) -> Any:
    body = {"changes": changes or {"review.accepts": 2}, "title": "two eyes", **extra}
    return town.write(0, "rule_proposal", body, T0 + 1000)


def _vote(town: Town, i: int, proposal: Any, choice: str, time: int) -> Any:
    town.sync(i, 0)
    return town.write(i, "vote", {"proposal": proposal.id, "choice": choice}, time)


def test_without_a_deadline_a_split_vote_stays_open_as_before() -> None:
    town = Town()
    proposal = _propose(town)
    _vote(town, 1, proposal, "no", T0 + 2000)
    town.sync(0, 1)
    town.write(0, "contribution", {"title": "late"}, T0 + 10**9)
    doc = town.proposal(town.fold(), proposal)
    assert doc["status"] == "open" and "deadline" not in doc and "closed" not in doc


def test_a_split_vote_is_rejected_at_the_deadline_by_the_first_later_entry() -> None:
    town = Town(rules=DEADLINE)
    proposal = _propose(town)
    _vote(town, 1, proposal, "no", T0 + 2000)
    state = town.fold()
    assert town.proposal(state, proposal)["status"] == "open"
    assert town.proposal(state, proposal)["deadline"] == D
    town.sync(0, 1)
    closer = town.write(0, "contribution", {"title": "after"}, D + 1)
    state = town.fold()
    doc = town.proposal(state, proposal)
    assert doc["status"] == "rejected" and doc["closed"] == str(closer.id)
    assert state.outcome(closer.id).status == APPLIED  # type: ignore[union-attr]


def test_an_entry_dated_at_the_deadline_does_not_close_it() -> None:
    town = Town(rules=DEADLINE)
    proposal = _propose(town)
    town.write(0, "contribution", {"title": "at"}, D)
    assert town.proposal(town.fold(), proposal)["status"] == "open"


def test_abstention_counts_for_the_quorum_not_the_threshold() -> None:
    for quorum, expected in (("2/3", "adopted"), ("3/4", "rejected")):
        town = Town(rules={"decisions": {"deadline": 600, "quorum": quorum}})
        proposal = _propose(town)
        _vote(town, 1, proposal, "abstain", T0 + 2000)
        town.sync(0, 1)
        town.write(0, "contribution", {"title": "after"}, D + 1)
        state = town.fold()
        doc = town.proposal(state, proposal)
        assert doc["status"] == expected, quorum
        assert doc["abstain"] == [town.member_hex(1)]
        if expected == "adopted":
            assert state.rules["review"]["accepts"] == 2


def test_a_vote_dated_after_the_deadline_closes_first_and_is_refused() -> None:
    town = Town(rules=DEADLINE)
    proposal = _propose(town)
    late = _vote(town, 1, proposal, "yes", D + 5)
    state = town.fold()
    assert town.proposal(state, proposal)["status"] == "adopted"  # alice's yes alone, 1 of 1 cast
    assert town.proposal(state, proposal)["yes"] == [town.member_hex(0)]
    outcome = state.outcome(late.id)
    assert outcome is not None and outcome.status == REJECTED and "already adopted" in outcome.reason


def test_a_backdated_vote_by_someone_who_saw_the_close_never_counts() -> None:
    """Bob sets his clock back after seeing Alice's entry past the deadline: his vote sorts
    after the closing entry (it depends on it), and is refused."""
    town = Town(rules=DEADLINE)
    proposal = _propose(town)
    _vote(town, 2, proposal, "no", T0 + 3000)
    town.sync(0, 2)
    closer = town.write(0, "contribution", {"title": "after"}, D + 1)
    town.sync(1, 0)
    backdated = town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 4000)
    state = town.fold()
    doc = town.proposal(state, proposal)
    assert doc["status"] == "rejected" and doc["closed"] == str(closer.id)
    assert state.outcome(backdated.id).status == REJECTED  # type: ignore[union-attr]


def test_a_vote_the_closing_entry_had_not_seen_does_not_count() -> None:
    """Carol's yes is concurrent with the closing entry: even if it sorts before it, the
    closing entry's author had not seen it, so it is not counted (with it, 2 yes of 3 cast
    would carry; without it, 1 of 2 does not)."""
    town = Town(rules=DEADLINE, stewards=4)
    proposal = _propose(town)
    _vote(town, 1, proposal, "no", T0 + 2000)
    _vote(town, 2, proposal, "yes", T0 + 2500)  # carol knows the proposal; alice never sees her vote
    town.sync(0, 1)
    closer = town.write(0, "contribution", {"title": "after"}, D + 1)
    state = town.fold()
    doc = town.proposal(state, proposal)
    assert doc["closed"] == str(closer.id)
    assert doc["yes"] == [town.member_hex(0)] and doc["no"] == [town.member_hex(1)]
    assert doc["status"] == "rejected"


def test_the_proposer_withdraws_and_nobody_else_can() -> None:
    town = Town(rules=DEADLINE)
    proposal = _propose(town)
    town.sync(1, 0)
    other = town.write(1, "withdraw", {"proposal": proposal.id}, T0 + 1500)
    mine = town.write(0, "withdraw", {"proposal": proposal.id}, T0 + 2000)
    vote = _vote(town, 2, proposal, "yes", T0 + 3000)
    state = town.fold()
    assert state.outcome(other.id).reason == "Only the proposer may withdraw a proposal."  # type: ignore[union-attr]
    assert state.outcome(mine.id).status == APPLIED  # type: ignore[union-attr]
    assert town.proposal(state, proposal)["status"] == "withdrawn"
    assert "already withdrawn" in state.outcome(vote.id).reason  # type: ignore[union-attr]


def test_a_vote_dated_before_its_proposal_is_refused_and_the_first_vote_counts() -> None:
    town = Town(rules=DEADLINE)
    proposal = _propose(town)
    early = _vote(town, 1, proposal, "yes", T0)
    first = _vote(town, 2, proposal, "no", T0 + 2000)
    second = town.write(2, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 3000)
    state = town.fold()
    # (The proposal is in the vote's causal past, so monotone time, §2.4, refuses it first.)
    assert state.outcome(early.id).reason.startswith(f"It is dated {T0}, before {T0 + 1000},")  # type: ignore[union-attr]
    assert state.outcome(first.id).status == APPLIED  # type: ignore[union-attr]
    assert state.outcome(second.id).reason == "Its author already voted on this proposal."  # type: ignore[union-attr]


def test_an_explicit_deadline_must_follow_the_proposal() -> None:
    town = Town()
    bad = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}, "deadline": T0}, T0 + 1000)
    good = town.write(0, "rule_proposal", {"changes": {"review.accepts": 3}, "deadline": T0 + 5000}, T0 + 2000)
    state = town.fold()
    assert state.outcome(bad.id).reason == "Its 'deadline' must be a time (ms) after its own."  # type: ignore[union-attr]
    assert town.proposal(state, good)["deadline"] == T0 + 5000


def test_a_non_members_entry_does_not_close_anything() -> None:
    town = Town(rules=DEADLINE, stewards=2)
    proposal = _propose(town)
    town.sync(3, 0)
    town.write(3, "join", {"name": "stranger"}, D + 10**6)
    assert town.proposal(town.fold(), proposal)["status"] == "open"


def test_closing_adopts_before_the_closing_entry_is_judged() -> None:
    """A rule the decision adopts applies to the closing entry itself (it sorts after the close)."""
    town = Town(rules=DEADLINE)
    proposal = _propose(town, {"contribution.policy": "members", "review.accepts": 2})
    _vote(town, 1, proposal, "no", T0 + 2000)
    _vote(town, 2, proposal, "yes", T0 + 2100)
    town.sync(0, 1)
    town.sync(0, 2)
    town.write(0, "contribution", {"title": "after"}, D + 1)
    state = town.fold()
    assert town.proposal(state, proposal)["status"] == "adopted"  # early: 2 of 3 > 1/2
    assert state.rules["review"]["accepts"] == 2


# --- properties -------------------------------------------------------------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from(("vote", "vote", "note", "sync", "sync", "withdraw")),
                             st.integers(0, 3), st.integers(0, 3), st.sampled_from(("yes", "no", "no", "abstain")),
                             st.sampled_from((0, MIN, 4 * MIN, 11 * MIN))), min_size=1, max_size=24)
# Any clock: exact, minutes or hours either way.
SKEWS = st.lists(st.one_of(st.just(0), st.integers(-10 * MIN, 10 * MIN), st.integers(-10**7, 10**7)),
                 min_size=4, max_size=4)
QUORUMS = st.sampled_from((None, "1/3", "2/3", "3/4"))


def _history(actions: list[tuple[str, int, int, str, int]], skews: list[int], quorum: str | None,
             ) -> tuple[Town, Any, list[tuple[Any, int]]]:
    """Four stewards; alice proposes at real time 0; then random votes, notes, syncs and a
    possible withdrawal, each author's entries dated by their own (skewed) clock.  Returns
    the town, the proposal and every entry with the real time it was written."""
    rules: dict[str, Any] = {"decisions": {"deadline": 600}}
    if quorum:
        rules["decisions"]["quorum"] = quorum
    town = Town(stewards=4, rules=rules)
    now = 1000
    # (Not before the genesis, which it depends on: monotone time, §2.4, would reject it.)
    proposal = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, max(T0, T0 + now + skews[0]))
    written: list[tuple[Any, int]] = [(proposal, now)]
    for action, i, j, choice, step in actions:
        now += step
        time = max(0, T0 + now + skews[i])
        if action == "sync":
            town.sync(i, j)
        elif action == "vote" and town.know[i][0] >= 2:
            written.append((town.write(i, "vote", {"proposal": proposal.id, "choice": choice}, time), now))
        elif action == "withdraw" and i == 0:
            written.append((town.write(0, "withdraw", {"proposal": proposal.id}, time), now))
        elif action == "note":
            written.append((town.write(i, "contribution", {"title": "note"}, time), now))
    return town, proposal, written


@settings(max_examples=examples(100))
@given(ACTIONS, SKEWS, QUORUMS, st.randoms(use_true_random=False))
def test_decisions_converge_in_any_delivery_order(actions: list[tuple[str, int, int, str, int]],
                                                  skews: list[int], quorum: str | None, rnd: random.Random) -> None:
    town, _, _ = _history(actions, skews, quorum)
    expected = town.fold().state_hash
    order = list(town.entries)
    rnd.shuffle(order)
    assert town.fold(order + order[: len(order) // 3]).state_hash == expected


@settings(max_examples=examples(100))
@given(ACTIONS, SKEWS, QUORUMS)
def test_no_vote_written_after_the_close_counts_whatever_its_clock(
        actions: list[tuple[str, int, int, str, int]], skews: list[int], quorum: str | None) -> None:
    """The deadline guarantee under any clock skew: a counted vote is dated at or before the
    deadline, not before the proposal, and in the closing entry's causal past — so a vote
    by anyone who had seen the closing entry (written after it) never counts; the closing
    entry is the first member entry in fold order dated after the deadline that had seen
    the proposal; withdrawal and one vote per member hold; the quorum is met when adopted
    at the deadline."""
    town, proposal, written = _history(actions, skews, quorum)
    state = town.fold()
    doc = town.proposal(state, proposal)
    deadline = doc["deadline"]
    event(f"{doc['status']}{' at the deadline' if 'closed' in doc else ''}")
    by_raw = {e.id.raw: e for e, _ in written}
    votes = {e.author.hex(): e for e, _ in written
             if e.kind == "vote" and state.outcome(e.id).status == APPLIED}  # type: ignore[union-attr]
    voters = doc["yes"] + doc["no"] + doc.get("abstain", [])
    assert len(voters) == len(set(voters))  # one vote per member
    applied_votes = [e for e, _ in written if e.kind == "vote"
                     and state.outcome(e.id).status == APPLIED]  # type: ignore[union-attr]
    assert len({e.author for e in applied_votes}) == len(applied_votes)
    for e in applied_votes:
        assert proposal.time <= e.time <= deadline
    if "closed" in doc:
        closer = next(e for e, _ in written if str(e.id) == doc["closed"])
        assert closer.time > deadline
        past = town.ancestors(closer)
        for hexkey in voters:
            if hexkey == proposal.author.hex():
                continue
            vote = votes[hexkey]
            assert vote.id.raw in past  # counted only if the closing entry had seen it
        for e, _ in written:
            if e.kind == "vote" and closer.id.raw in town.ancestors(e):
                assert state.outcome(e.id).status == REJECTED  # written after the close: never counts
        if doc["status"] == "adopted" and quorum:
            num, den = (int(x) for x in quorum.split("/"))
            assert len(voters) * den >= 4 * num
    withdrawn = [e for e, _ in written if e.kind == "withdraw"
                 and state.outcome(e.id).status == APPLIED]  # type: ignore[union-attr]
    assert len(withdrawn) <= 1
    if withdrawn:
        assert doc["status"] == "withdrawn" and "closed" not in doc
    if doc["status"] == "open":  # (an entry dated before its causal past closes nothing: §2.4)
        assert all(not (e.time > deadline and proposal.id.raw in town.ancestors(e))
                   for e in by_raw.values() if e.kind in ("contribution", "vote", "withdraw")
                   and not state.outcome(e.id).reason.startswith(f"It is dated {e.time}, before "))  # type: ignore[union-attr]


@settings(max_examples=examples(50))
@given(ACTIONS, SKEWS, QUORUMS, st.randoms(use_true_random=False))
def test_an_incremental_fold_and_its_checkpoint_rows_agree_with_a_fresh_fold(
        actions: list[tuple[str, int, int, str, int]], skews: list[int], quorum: str | None,
        rnd: random.Random) -> None:
    """Entries delivered one at a time (late ones replay from snapshots) give the fresh
    fold's state, and the decision tables (ballots, due, the proposals' new fields)
    survive a checkpoint's rows, whole and as a snapshot's difference."""
    from p2pcommons.state import Folder
    from p2pcommons.state.checkpoint import _dump_delta, _dump_state, _load_delta, _load_state
    from p2pcommons.state.records import canonical_state

    town, _, _ = _history(actions, skews, quorum)
    expected = town.fold().canonical
    folder = Folder(town.genesis.id, snapshot_every=1)
    order = list(town.entries)
    rnd.shuffle(order)
    for entry in order:
        folder.add(entry)
        folder.run()
    state = folder.state
    assert state is not None
    got = canonical_state(state)
    assert all(got[k] == expected[k] for k in got)
    from p2pcommons.state.records import TABLES

    def rows(s: Any) -> dict[str, Any]:
        doc = _dump_state(s)
        for table in TABLES:
            doc[table.name] = sorted(doc[table.name], key=repr)
        return doc

    assert rows(_load_state(_dump_state(state))) == rows(state)
    for snap, _ in folder.snap_states:
        if snap is not None:
            assert rows(_load_delta(_dump_delta(snap, state), state)) == rows(snap)
