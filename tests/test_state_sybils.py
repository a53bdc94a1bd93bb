"""Boundaries against Sybils (protocols/commons.md §2.5): vouching — a newcomer in an open
commons governs once enough settled members vouch for them — and multi-stakeholder seats —
each class of members (workers, users) elects its own seat."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from p2pcommons.state import APPLIED, REJECTED
from tests.support.decisions import T0, Town
from tests.test_state_histories import examples

OPEN = {"sanctions": {"roles": ["member"]}, "roles": {"roles": ["member"]}, "rule_change": {"roles": ["member"]}}


def _outcome(town: Town, entry: Any) -> tuple[str, str]:
    outcome = town.fold().outcome(entry.id)
    assert outcome is not None
    return outcome.status, outcome.reason


def _admitted(town: Town, i: int, time: int, by: int = 0) -> None:
    town.sync(i, by)
    join = town.write(i, "join", {"name": f"m{i}"}, time)
    town.sync(by, i)
    town.write(by, "admission", {"join": join.id}, time + 1)
    town.sync(i, by)


def test_a_newcomer_governs_once_two_members_vouch_for_them() -> None:
    town = Town(stewards=2, authors=5, rules={"membership": {"vouches": 2}, **OPEN})
    proposal = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, T0 + 10)
    for i in (2, 3):
        _admitted(town, i, T0 + 100 * i)
    town.sync(2, 0)
    early = town.write(2, "vote", {"proposal": proposal.id, "choice": "no"}, T0 + 1000)
    assert _outcome(town, early) == (REJECTED, "Its author has 0 of the 2 vouches a newcomer needs "
                                               "(membership.vouches): a newcomer does not vote, propose, "
                                               "sanction, grant roles or vouch before then.")
    sybil = town.write(3, "vouch", {"member": town.key(2)}, T0 + 1001)
    assert _outcome(town, sybil)[1].startswith("Its author has 0 of the 2 vouches")  # a newcomer cannot vouch
    town.sync(0, 2)
    first = town.write(0, "vouch", {"member": town.key(2)}, T0 + 1100)
    again = town.write(0, "vouch", {"member": town.key(2)}, T0 + 1101)
    own = town.write(0, "vouch", {"member": town.key(0)}, T0 + 1102)
    assert _outcome(town, first)[0] == APPLIED
    assert _outcome(town, again) == (REJECTED, "Its author already vouched for this member.")
    assert _outcome(town, own) == (REJECTED, "A member cannot vouch for themselves.")
    town.sync(2, 0)
    half = town.write(2, "sanction", {"member": town.key(3), "action": "warning", "reason": "x"}, T0 + 1200)
    assert _outcome(town, half)[1].startswith("Its author has 1 of the 2 vouches")
    town.sync(1, 0)
    second = town.write(1, "vouch", {"member": town.key(2)}, T0 + 1300)
    assert _outcome(town, second)[0] == APPLIED
    unseen = town.write(2, "sanction", {"member": town.key(3), "action": "warning", "reason": "y"}, T0 + 1400)
    assert _outcome(town, unseen)[1].startswith("Its author has 1 of the 2 vouches")  # not in its causal past
    town.sync(2, 1)
    vote = town.write(2, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 1500)
    assert _outcome(town, vote)[0] == APPLIED
    state = town.fold()
    assert state.canonical["vouches"] == {town.member_hex(2): sorted([town.member_hex(0), town.member_hex(1)])}


def test_with_probation_and_vouches_whichever_comes_first() -> None:
    hour = 3_600_000
    town = Town(stewards=1, authors=4, rules={"membership": {"vouches": 1, "probation": 3600}, **OPEN})
    _admitted(town, 1, T0 + 100)
    _admitted(town, 2, T0 + 200)
    early = town.write(1, "sanction", {"member": town.key(0), "action": "warning", "reason": "x"}, T0 + 300)
    assert _outcome(town, early)[1].startswith("Its author has 0 of the 1 vouches a newcomer needs "
                                               "(membership.vouches) and is on probation until ")
    town.sync(0, 1)
    town.write(0, "vouch", {"member": town.key(1)}, T0 + 400)
    town.sync(1, 0)
    vouched = town.write(1, "sanction", {"member": town.key(0), "action": "warning", "reason": "x"}, T0 + 500)
    waited = town.write(2, "sanction", {"member": town.key(0), "action": "warning", "reason": "x"}, T0 + 300 + hour)
    assert _outcome(town, vouched)[0] == APPLIED and _outcome(town, waited)[0] == APPLIED


def test_unvouched_newcomers_do_not_count_in_the_electorate() -> None:
    """Four throwaway keys admitted to an open commons whose members decide rule changes do
    not count in E until vouched for: the founder's proposal (1 of 1) passes at once."""
    town = Town(stewards=1, authors=5, rules={"membership": {"vouches": 1}, "rule_change": {"roles": ["member"]}})
    for i in range(1, 5):
        _admitted(town, i, T0 + 100 * i)
    first = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, T0 + 1000)
    for i in range(1, 5):
        town.write(0, "vouch", {"member": town.key(i)}, T0 + 1100 + i)
    later = town.write(0, "rule_proposal", {"changes": {"review.accepts": 3}}, T0 + 2000)
    state = town.fold()
    assert town.proposal(state, first)["status"] == "adopted"
    assert town.proposal(state, later)["status"] == "open"  # 1 of 5 now


TRIES = st.lists(st.tuples(st.sampled_from(("vouch", "vouch", "any vouch", "vote", "vote", "sanction", "sync")),
                           st.integers(0, 4), st.integers(0, 4)), min_size=6, max_size=25)


@settings(max_examples=examples(100), deadline=None)
@given(TRIES, st.integers(1, 2), st.randoms(use_true_random=False))
def test_no_newcomer_governs_before_enough_vouches_in_any_order(tries: list[tuple[str, int, int]], needed: int,
                                                                 rnd: random.Random) -> None:
    """Founders 0-1 and newcomers 2-4 vouch for each other, vote and sanction in random
    order with random knowledge: every newcomer's governing entry that applies has at least
    ``needed`` vouches for its author in its causal past; every delivery order, and an
    incremental fold, agree."""
    from p2pcommons.state import Folder
    from p2pcommons.state.records import canonical_state

    town = Town(stewards=2, authors=5, rules={"membership": {"vouches": needed}, **OPEN})
    proposal = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, T0 + 10)
    for i in (2, 3, 4):
        _admitted(town, i, T0 + 100 * i)
    town.sync(1, 0)
    now = T0 + 1000
    governing: list[Any] = []
    vouches: list[Any] = []
    for action, i, j in tries:
        now += 10
        if action == "sync":
            town.sync(i, j)
        elif action == "vouch":  # a founder vouches for a newcomer
            vouches.append(town.write(i % 2, "vouch", {"member": town.key(2 + j % 3)}, now))
            governing.append(vouches[-1])
        elif action == "any vouch":
            vouches.append(town.write(i, "vouch", {"member": town.key(j)}, now))
            governing.append(vouches[-1])
        elif action == "vote":  # (by newcomers only: a founder's no would settle the proposal)
            town.sync(2 + i % 3, 0)
            town.sync(2 + i % 3, 1)
            governing.append(town.write(2 + i % 3, "vote", {"proposal": proposal.id, "choice": "abstain"}, now))
        else:
            governing.append(town.write(2 + i % 3, "sanction", {"member": town.key(j), "action": "warning",
                                                               "reason": "r"}, now))
    state = town.fold()
    founders = {town.key(0), town.key(1)}
    applied = 0
    for entry in governing:
        outcome = state.outcome(entry.id)
        assert outcome is not None
        if outcome.status == APPLIED and entry.author not in founders:
            applied += 1
            past = town.ancestors(entry)
            given_ = {v.author for v in vouches if v.id.raw in past and v.body["member"] == entry.author
                      and state.outcome(v.id).status == APPLIED}  # type: ignore[union-attr]
            assert len(given_) >= needed
    event(f"newcomers' governing entries applied: {min(applied, 3)}+")
    order = list(town.entries)
    rnd.shuffle(order)
    assert town.fold(order).canonical == state.canonical
    folder = Folder(town.genesis.id, snapshot_every=1)
    for entry in order:
        folder.add(entry)
        folder.run()
    assert folder.state is not None
    got = canonical_state(folder.state)
    assert all(got[k] == state.canonical[k] for k in got)


STAKEHOLDERS = {"roles": {"custom": ["worker", "user", "worker_seat", "user_seat"]},
                "seats": {"worker_seat": ["worker"], "user_seat": ["user"]}}


def test_workers_and_users_each_elect_a_seat() -> None:
    """A multi-stakeholder co-op: workers (1, 2, 3) and users (4, 5) each elect their own
    seat, by more than a third of their class; a steward cannot grant a seat alone, and only
    the seat's class votes on it."""
    town = Town(stewards=1, authors=6, rules={**STAKEHOLDERS, "threshold": {"role": "1/3"}})
    for i in range(1, 6):
        _admitted(town, i, T0 + 100 * i)
        town.write(0, "role", {"member": town.key(i), "role": "worker" if i < 4 else "user"}, T0 + 100 * i + 50)
    direct = town.write(0, "role", {"member": town.key(1), "role": "worker_seat"}, T0 + 1000)
    assert _outcome(town, direct) == (REJECTED, "The seat worker_seat is elected by its class (seats.worker_seat): "
                                                "propose it instead.")
    for i in range(1, 6):
        town.sync(i, 0)
    workers = town.write(1, "proposal", {"action": {"act": "grant", "member": town.key(2), "role": "worker_seat"}},
                         T0 + 2000)
    town.sync(4, 1)
    user = town.write(4, "vote", {"proposal": workers.id, "choice": "no"}, T0 + 2100)  # a user, on the workers' seat
    assert _outcome(town, user) == (REJECTED, "Its author lacks the role needed (worker).")
    town.sync(2, 1)
    nominee = town.write(2, "vote", {"proposal": workers.id, "choice": "yes"}, T0 + 2100)
    assert _outcome(town, nominee) == (REJECTED, "The member a proposal names does not vote on it.")
    assert town.proposal(town.fold(), workers)["status"] == "open"  # 1 of 3 workers: not above a third
    town.sync(3, 1)
    town.write(3, "vote", {"proposal": workers.id, "choice": "yes"}, T0 + 2200)
    users = town.write(4, "proposal", {"action": {"act": "grant", "member": town.key(5), "role": "user_seat"}},
                       T0 + 2300)
    town.sync(0, 4)
    steward = town.write(0, "vote", {"proposal": users.id, "choice": "no"}, T0 + 2400)
    assert _outcome(town, steward) == (REJECTED, "Its author lacks the role needed (user).")
    state = town.fold()
    assert town.proposal(state, workers)["status"] == "adopted"
    assert town.proposal(state, users)["status"] == "adopted"  # 1 of 2 users: above a third
    assert state.canonical["members"][town.member_hex(2)]["roles"] == ["member", "worker", "worker_seat"]
    assert state.canonical["members"][town.member_hex(5)]["roles"] == ["member", "user", "user_seat"]


def test_a_seat_must_be_a_declared_role() -> None:
    from p2pcommons.state import genesis_body
    from p2pcommons.state.rules import InvalidRules

    try:
        genesis_body("c", rules={"seats": {"board": ["member"]}})
    except InvalidRules as error:
        assert str(error) == "Rule seats.board names a seat that is not a role declared in roles.custom (or reviewer)."
    else:
        raise AssertionError("accepted an undeclared seat")
