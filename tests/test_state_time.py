"""Time you can trust (protocols/commons.md §2.4): monotone time in the fold, the skew bound
at ingest, and what they prove — no quota overdrawn and no vote after a seen deadline by
setting a clock, no close before ``D − SKEW``."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from p2pcommons.author import append
from p2pcommons.dagcbor import CID, encode
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.errors import BadSignature
from p2pcommons.ingest import Ingestor
from p2pcommons.skew import SKEW_MS, too_early
from p2pcommons.state import APPLIED, REJECTED, Folder, fold, genesis_body
from p2pcommons.state.engine import current_state
from tests.support.decisions import T0, Town
from tests.support.signed import new_store
from tests.test_state_histories import examples

DAY = 86_400_000
SEASON = 90 * DAY
WATER = {"name": "water", "rivalrous": True, "quota": 100, "period": 90 * 86400, "unit": "l"}
WATER_ID = CID.of(encode(WATER))
ALICE, BOB = (Signer(hashlib.sha256(b"time-author-%d" % i).digest()) for i in range(2))


class Chain:
    """Alice founds a commons with a 100 l/season water quota; Bob is a founder too.  Each
    author's entries chain through their own previous one and depend on the genesis."""

    def __init__(self) -> None:
        body = genesis_body("time", resources=[WATER], founders=[ALICE.public_key, BOB.public_key])
        self.genesis = sign_entry(ALICE, commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=T0)
        self.last: dict[bytes, Entry] = {ALICE.public_key: self.genesis}

    def write(self, signer: Signer, kind: str, body: dict[str, Any], time: int,
              deps: list[Entry] | None = None) -> Entry:
        last = self.last.get(signer.public_key)
        entry = sign_entry(signer, commons=self.genesis.id, seq=1 if last is None else last.seq + 1,
                           prev=None if last is None else last.id, kind=kind, body=body,
                           deps=[d.id for d in (deps or [self.genesis])], timestamp=time)
        self.last[signer.public_key] = entry
        return entry

    def draw(self, signer: Signer, time: int, amount: int = 100) -> Entry:
        return self.write(signer, "resource_use", {"resource": WATER_ID, "amount": amount}, time)


def _drawn(state: Any, who: Signer) -> int:
    return int(state.usage(WATER_ID).get(who.public_key.hex(), 0))


# --- monotone time in the fold ------------------------------------------------------------


def test_an_entry_dated_before_its_parent_is_rejected_and_cannot_launder_the_next() -> None:
    chain = Chain()
    first = chain.draw(BOB, T0 + 1000)
    back = chain.draw(BOB, T0 + 1000 - SEASON)
    again = chain.draw(BOB, T0 + 2000 - SEASON)  # after ``back`` but before ``first``
    same = chain.draw(BOB, T0 + 1000 + SEASON)  # a later season: fine
    state = fold([chain.genesis, first, back, again, same], chain.genesis.id)
    for entry in (back, again):
        outcome = state.outcome(entry.id)
        assert outcome is not None and outcome.status == REJECTED
        assert outcome.reason.startswith(f"It is dated {entry.time}, before {T0 + 1000},")
    assert state.outcome(same.id).status == APPLIED  # type: ignore[union-attr]
    assert _drawn(state, BOB) == 200


def test_an_entry_dated_exactly_at_its_parents_time_is_applied() -> None:
    chain = Chain()
    first = chain.draw(BOB, T0 + 5000, 10)
    tie = chain.draw(BOB, T0 + 5000, 10)
    state = fold([chain.genesis, first, tie], chain.genesis.id)
    assert state.outcome(tie.id).status == APPLIED  # type: ignore[union-attr]


def test_a_floor_comes_through_every_parent_outside_another_parents_past() -> None:
    """The fold dates an entry by the parents not in another parent's causal past (their
    effective times bound those of everything they had seen): the floor is the same whether
    the later time is a parent's own, a parent's floor, or an ancestor's through a parent."""
    chain = Chain()
    early = chain.draw(ALICE, T0 + 1000, 1)
    early2 = chain.draw(ALICE, T0 + 1500, 1)
    late = chain.draw(BOB, T0 + 5000, 1)  # concurrent with Alice's: neither saw the other's
    # Both parents count (neither is in the other's past): the later time is that of the
    # one that sorts first (``late``, clock 1; ``early2``, clock 2).
    both = chain.write(ALICE, "resource_use", {"resource": WATER_ID, "amount": 1}, T0 + 4000, [late])
    # A parent the latest parent had seen: its later time comes through that parent's floor.
    seen = chain.write(BOB, "resource_use", {"resource": WATER_ID, "amount": 1}, T0 + 4500, [both])
    after = chain.write(ALICE, "resource_use", {"resource": WATER_ID, "amount": 1}, T0 + 4800, [seen, late])
    fine = chain.write(BOB, "resource_use", {"resource": WATER_ID, "amount": 1}, T0 + 5000, [after, early])
    entries = [chain.genesis, early, early2, late, both, seen, after, fine]
    state = fold(entries, chain.genesis.id)
    for entry in (both, seen, after):
        outcome = state.outcome(entry.id)
        assert outcome is not None and outcome.status == REJECTED
        assert outcome.reason.startswith(f"It is dated {entry.time}, before {T0 + 5000},")
    assert state.outcome(fine.id).status == APPLIED  # type: ignore[union-attr]
    assert fold(entries[::-1], chain.genesis.id).state_hash == state.state_hash


def test_floors_survive_a_checkpoint_and_an_evicting_fold() -> None:
    """A backdated entry's floor is what judges its successor: a resumed fold (checkpoint
    rows) and a fold delivered in any order agree with the fresh one."""
    from p2pcommons.state.checkpoint import dump, load

    chain = Chain()
    first = chain.draw(BOB, T0 + 1000)
    back = chain.draw(BOB, T0 - SEASON)
    entries = [chain.genesis, first, back]
    folder = Folder(chain.genesis.id)
    for entry in entries:
        folder.add(entry)
    folder.run()
    resumed = load(dump(folder), chain.genesis.id, lambda raw: next(e for e in entries if e.id.raw == raw))
    assert resumed is not None and resumed.floors == {back.id.raw: T0 + 1000}
    later = chain.draw(BOB, T0 - SEASON + 1000)  # after ``back``, before ``first``: still rejected
    resumed.add(later)
    resumed.run()
    assert resumed.outcomes[later.id.raw][0] == REJECTED
    assert fold([*entries, later][::-1], chain.genesis.id).state_hash == resumed.result().state_hash


# --- the skew bound at ingest -------------------------------------------------------------


def test_ingest_defers_an_entry_dated_beyond_the_skew_until_the_clock_reaches_it(tmp_path: Path) -> None:
    chain = Chain()
    ahead = chain.draw(BOB, T0 + 10 * 60_000, 50)
    after = chain.draw(BOB, T0 + 10 * 60_000 + 1, 1)
    with new_store(tmp_path) as store:
        now = [T0 / 1000]
        report = Ingestor(store, clock=lambda: now[0]).add_batch([chain.genesis.raw, ahead.raw, after.raw])
        assert report.deferred == 2 and not report.rejected and report.added_count == 1
        assert not store.has(ahead.id) and not store.has(after.id)
        now[0] = (ahead.time - SKEW_MS) / 1000  # within the bound of the first, not the second
        report = Ingestor(store, clock=lambda: now[0]).add_batch([ahead.raw, after.raw])
        assert report.deferred == 1 and report.added_count == 1 and store.has(ahead.id)
        now[0] = (after.time - SKEW_MS) / 1000
        report = Ingestor(store, clock=lambda: now[0]).add_batch([ahead.raw, after.raw])
        assert report.deferred == 0 and report.added_count == 1 and report.duplicates == 1
        assert _drawn(current_state(store, chain.genesis.id), BOB) == 51


def test_an_entry_dated_beyond_the_skew_is_still_checked(tmp_path: Path) -> None:
    """An entry dated beyond the skew that is not what its author signed (one byte of its
    signature changed: a bundle altered in transit with its checksum recomputed) is rejected,
    and a bundle import holding it fails, instead of being put off as a genuine one is.
    Found by test_bundle.py's tampering property: a changed byte of an entry's time made it
    future-dated, and the import said nothing of it."""
    chain = Chain()
    ahead = chain.draw(BOB, T0 + 10 * 60_000, 50)
    forged = bytearray(ahead.raw)
    forged[ahead.raw.index(ahead.sig)] ^= 0x04
    with new_store(tmp_path) as store:
        report = Ingestor(store, clock=lambda: T0 / 1000).add_batch([chain.genesis.raw, bytes(forged)])
        assert report.deferred == 0 and [type(e) for e in report.rejected] == [BadSignature]
        with pytest.raises(BadSignature):
            Ingestor(store, clock=lambda: T0 / 1000, atomic=True).add_batch([bytes(forged)])
        assert not store.has(ahead.id)


def test_a_local_entry_is_dated_no_earlier_than_its_parents(tmp_path: Path) -> None:
    """A peer whose clock runs ahead (within the skew): our next entry takes its date."""
    import time

    now = int(time.time() * 1000)
    chain = Chain()
    chain.genesis = sign_entry(ALICE, commons=None, seq=1, prev=None, kind="genesis",
                               body=genesis_body("time", resources=[WATER],
                                                 founders=[ALICE.public_key, BOB.public_key]),
                               timestamp=now)
    chain.last = {ALICE.public_key: chain.genesis}
    ahead = chain.draw(BOB, now + SKEW_MS // 2, 1)
    with new_store(tmp_path) as store:
        Ingestor(store).add_batch([chain.genesis.raw, ahead.raw])
        mine = append(store, ALICE, chain.genesis.id, "resource_use", {"resource": WATER_ID, "amount": 1})
        assert ahead.id in mine.deps and mine.time >= ahead.time
        assert current_state(store, chain.genesis.id).outcome(mine.id).status == APPLIED  # type: ignore[union-attr]


def test_the_91_day_clock_attack_draws_one_quota_not_three(tmp_path: Path) -> None:
    """Regression (issue 15): Bob moved his clock -91 days, then +91 days, within one real
    season, and drew 300 l against a 100 l/season quota.  Real store, real ingest: the
    backdated draw is rejected (it is dated before his admission, the genesis), the
    forward-dated one is deferred until the clock gets there."""
    real = T0 + 10 * DAY
    chain = Chain()
    draws = [chain.draw(BOB, real), chain.draw(BOB, real - 91 * DAY), chain.draw(BOB, real + 91 * DAY)]
    with new_store(tmp_path) as store:
        Ingestor(store, clock=lambda: (real + 60_000) / 1000).add_batch(
            [chain.genesis.raw, *(d.raw for d in draws)])
        assert _drawn(current_state(store, chain.genesis.id), BOB) == 100


# --- properties -----------------------------------------------------------------------------


OFFSETS = st.one_of(st.sampled_from([-91 * DAY, -DAY, 0, 0, 0, DAY, 91 * DAY]), st.integers(-200 * DAY, 200 * DAY),
                    st.integers(-SKEW_MS, 2 * SKEW_MS))
STEPS = st.one_of(st.integers(0, 40 * DAY), st.integers(0, 60_000))


def _held(written: list[tuple[Entry, int]], now: int) -> list[Entry]:
    """What a node whose clock reads ``now`` holds of one author's chain, delivered in order:
    the prefix of entries written by then and not dated beyond the skew."""
    held = []
    for entry, real in written:
        if real > now or too_early(entry.time, now):
            break
        held.append(entry)
    return held


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(STEPS, OFFSETS, st.sampled_from([1, 50, 100])), min_size=1, max_size=14))
def test_no_clock_setting_draws_more_than_a_quota_per_period(draws: list[tuple[int, int, int]]) -> None:
    """Bob draws at real times of his choosing with any clock offsets (±200 days): at every
    moment, what any node holds gives him at most one quota per (period) — and at most
    ``quota ×`` the periods meeting [his admission, now + SKEW] in total."""
    chain = Chain()
    real = T0 + DAY  # (Bob is a founder: admitted by the genesis, dated T0)
    written: list[tuple[Entry, int]] = []
    for step, offset, amount in draws:
        real += step
        written.append((chain.draw(BOB, max(0, real + offset), amount), real))
    for _, now in written:
        state = fold([chain.genesis, *_held(written, now)], chain.genesis.id)
        periods = (now + SKEW_MS) // SEASON - T0 // SEASON + 1
        drawn = _drawn(state, BOB)
        assert drawn <= 100 * periods
        per_period: dict[int, int] = {}
        for (_, period, _), amount in state._folder.state.usage.items():
            per_period[period] = per_period.get(period, 0) + amount
            assert T0 // SEASON <= period <= (now + SKEW_MS) // SEASON
        assert all(v <= 100 for v in per_period.values())
    event(f"drew {drawn // 100 * 100}+ over {periods} period(s)")


ACTIONS = st.lists(st.tuples(st.sampled_from(["vote", "vote", "note", "sync", "sync"]), st.integers(0, 3),
                             st.integers(0, 3), st.sampled_from(["yes", "no", "abstain"]),
                             st.one_of(st.integers(0, 120_000), st.integers(0, 1_200_000))), min_size=4, max_size=16)
SKEWS = st.lists(st.one_of(st.just(0), st.integers(-SKEW_MS, SKEW_MS), st.integers(-10**7, 10**7)),
                 min_size=4, max_size=4)


@settings(max_examples=examples(200), deadline=None)
@given(ACTIONS, SKEWS, st.randoms(use_true_random=False))
def test_no_vote_after_a_seen_deadline_and_no_close_before_it(
        actions: list[tuple[str, int, int, str, int]], skews: list[int], rnd: random.Random) -> None:
    """Four stewards with any clocks (within the skew or hours/days off): a counted vote
    never has an entry dated after the deadline in its causal past; a node whose clock is
    before ``D − SKEW`` holds no entry that closes the proposal; delivery order does not
    matter."""
    town = Town(stewards=4, rules={"decisions": {"deadline": 600}})
    now = 1000
    proposal = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, max(T0, T0 + now + skews[0]))
    written: list[tuple[Entry, int]] = [(proposal, T0 + now)]
    for action, i, j, choice, step in actions:
        now += step
        time = max(0, T0 + now + skews[i])
        if action == "sync":
            town.sync(i, j)
        elif action == "vote" and town.know[i][0] >= 2:
            written.append((town.write(i, "vote", {"proposal": proposal.id, "choice": choice}, time), T0 + now))
        elif action == "note":
            written.append((town.write(i, "contribution", {"title": "note"}, time), T0 + now))
    state = town.fold()
    doc = town.proposal(state, proposal)
    deadline = doc.get("deadline", proposal.time + 600_000)
    times = {e.id.raw: e.time for e in town.entries}
    for e, _ in written:
        if e.kind == "vote" and state.outcome(e.id).status == APPLIED:  # type: ignore[union-attr]
            assert all(times[a] <= deadline for a in town.ancestors(e))
    event(doc["status"] + (" at the deadline" if "closed" in doc else ""))
    # A node's clock before D - SKEW: it holds only entries not dated beyond its clock + SKEW.
    # (At the latest such moment, and one other: each costs a fold.)
    clocks = sorted({real for _, real in written if real < deadline - SKEW_MS})
    for clock in {*clocks[-1:], *rnd.sample(clocks, min(1, len(clocks)))}:
        held = [town.genesis, *(e for e, real in written if real <= clock and not too_early(e.time, clock))]
        ids = {e.id.raw for e in held}
        held = [e for e in held if town.ancestors(e) <= ids]  # (what waits is not held either)
        assert "closed" not in town.fold(held).canonical["proposals"].get(str(proposal.id), {})
    order = list(town.entries)
    rnd.shuffle(order)
    assert town.fold(order).state_hash == state.state_hash
