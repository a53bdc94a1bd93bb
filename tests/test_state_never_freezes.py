"""A commons never freezes (protocols/commons.md §2.3): with no one holding the role an act
needs, the members decide by majority; a rule change that would make admission impossible
is refused with the reason."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from p2pcommons.state import APPLIED, REJECTED
from tests.support.decisions import T0, Town
from tests.test_state_histories import examples


def _admitted(town: Town, i: int, time: int) -> None:
    town.sync(i, 0)
    join = town.write(i, "join", {"name": f"m{i}"}, time)
    town.sync(0, i)
    town.write(0, "admission", {"join": join.id}, time + 1)
    town.sync(i, 0)


def test_after_the_last_steward_leaves_the_members_decide_by_majority() -> None:
    town = Town(stewards=1)
    _admitted(town, 1, T0 + 100)
    _admitted(town, 2, T0 + 200)
    town.write(0, "leave", {}, T0 + 300)
    town.sync(1, 0)
    proposal = town.write(1, "proposal", {"action": {"act": "grant", "member": town.key(2), "role": "steward"}},
                          T0 + 400)
    state = town.fold()
    assert state.canonical["proposals"][str(proposal.id)]["status"] == "open"  # 1 of 2 members: not a majority
    town.sync(2, 1)
    # The named member does not vote; a rule change by the members instead:
    rule = town.write(2, "rule_proposal", {"changes": {"review.accepts": 2}}, T0 + 500)
    state = town.fold()
    assert state.canonical["proposals"][str(rule.id)]["yes"] == [town.member_hex(2)]
    town.sync(1, 2)
    vote = town.write(1, "vote", {"proposal": rule.id, "choice": "yes"}, T0 + 600)
    state = town.fold()
    assert state.outcome(vote.id).status == APPLIED  # type: ignore[union-attr]
    assert state.canonical["proposals"][str(rule.id)]["status"] == "adopted"
    assert state.rules["review"]["accepts"] == 2


def test_a_rule_change_that_would_make_admission_impossible_is_refused() -> None:
    town = Town(stewards=2)
    bad = town.write(0, "rule_proposal", {"changes": {"membership.policy": "approval", "membership.approvals": 3}},
                     T0 + 100)
    good = town.write(0, "rule_proposal", {"changes": {"membership.policy": "approval",
                                                       "membership.approvals": 2}}, T0 + 200)
    state = town.fold()
    outcome = state.outcome(bad.id)
    assert outcome is not None and outcome.status == REJECTED
    assert outcome.reason == ("It would make admission impossible: membership.approvals would be 3, but only 2 "
                              "active members may admit.")
    assert state.outcome(good.id).status == APPLIED  # type: ignore[union-attr]


def test_one_founder_with_two_approvals_still_admits_by_decision() -> None:
    """The charter of docs/rules.md: approval by 2 with one founder.  Admissions alone can
    never reach 2, but a decision to admit can: the founder is the whole electorate."""
    town = Town(stewards=1, rules={"membership": {"policy": "approval", "approvals": 2}})
    town.sync(1, 0)
    join = town.write(1, "join", {"name": "second"}, T0 + 100)
    town.sync(0, 1)
    town.write(0, "proposal", {"action": {"act": "admission", "join": join.id}}, T0 + 200)
    assert town.fold().canonical["members"][town.member_hex(1)]["status"] == "active"


STEPS = st.lists(st.tuples(st.sampled_from(("join", "leave", "revoke", "sync", "remove", "vouch")),
                           st.integers(0, 3), st.integers(0, 3)), max_size=16)
RULES = st.sampled_from([None, {"membership": {"vouches": 1}}, {"membership": {"vouches": 2, "probation": 3600}},
                         {"decide": {"removal": True}}, {"membership": {"vouches": 1}, "decide": {"removal": True}}])


def _active(town: Town) -> set[int]:
    members = town.fold().canonical["members"]
    return {i for i in range(4) if members.get(town.member_hex(i), {}).get("status") == "active"}


@settings(max_examples=examples(100), deadline=None)
@given(STEPS, RULES)
# (A removal by 1 that had not seen 0's admission of 2 un-admits 2; 1 then left the commons
# empty when this driver kept its own count of who was active.)
@example(steps=[("join", 2, 0), ("remove", 1, 0), ("leave", 1, 0)], rules=None)
def test_no_frozen_commons_is_reachable(steps: list[tuple[str, int, int]], rules: dict[str, Any] | None) -> None:
    """Whatever members joined, left, were removed (by a steward, or by a decision), vouched
    for each other or lost their roles — with or without vouching and probation — as long
    as one member is active the active members can change a rule: a proposal all of them
    vote yes on is adopted (newcomers nobody settled is left to vouch for are settled)."""
    town = Town(stewards=2, rules=rules)
    now = T0
    for action, i, j in steps:
        now += 1000
        # Who is active is the fold's to say, not this driver's: a removal written without
        # having seen an admission excludes it (strong removal), un-admitting the newcomer,
        # and the last active member must not then be let go.
        active = _active(town)
        if action == "sync":
            town.sync(i, j)
        elif action == "join" and i not in active and i >= 2:
            town.sync(i, 0)
            admitter = min(active) if active else None
            if admitter is None:
                continue
            town.sync(i, admitter)
            join = town.write(i, "join", {}, now)
            town.sync(admitter, i)
            town.write(admitter, "admission", {"join": join.id}, now + 1)
            if town.fold().canonical["members"].get(town.member_hex(i), {}).get("status") == "active":
                active.add(i)
        elif action == "leave" and i in active and len(active) > 1:
            town.write(i, "leave", {}, now)
            active.discard(i)
        elif action == "revoke" and i in active and j in active:
            town.write(i, "role", {"member": town.key(j), "role": "steward", "action": "revoke"}, now)
        elif action == "vouch" and i in active and j in active:
            town.write(i, "vouch", {"member": town.key(j)}, now)
        elif action == "remove" and i in active and j in active and i != j and len(active) > 1:
            body = {"member": town.key(j), "reason": "r"}
            if rules and "decide" in rules:
                town.write(i, "proposal", {"action": {"act": "removal", **body}}, now)
            else:
                town.write(i, "sanction", {"action": "remove", **body}, now)
            state = town.fold()
            if state.canonical["members"][town.member_hex(j)]["status"] == "removed":
                active.discard(j)
    active = _active(town)
    assert active
    proposer = min(active)
    for i in active:
        for j in range(4):
            town.sync(i, j)
    proposal = town.write(proposer, "rule_proposal", {"changes": {"values.x": 101}}, now + 10_000)
    for i in sorted(active - {proposer}):
        town.sync(i, proposer)
        town.write(i, "vote", {"proposal": proposal.id, "choice": "yes"}, now + 20_000 + i)
        town.sync(proposer, i)
    state = town.fold()
    doc: dict[str, Any] | None = state.canonical["proposals"].get(str(proposal.id))
    assert doc is not None, state.outcome(proposal.id)
    assert doc["status"] == "adopted", doc
