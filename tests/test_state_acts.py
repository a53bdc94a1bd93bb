"""Decisions on governed acts (protocols/commons.md §2.2): admission, removal, reinstatement,
role grant and revocation (community roles too), each by a role-holder alone or by a
decision as the rules say — examples, then convergence over random histories."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from p2pcommons.state import APPLIED, PENDING, REJECTED
from tests.support.decisions import T0, Town
from tests.test_state_histories import examples


def _admitted(town: Town, i: int, time: int) -> None:
    """Author ``i`` joins and alice admits them (directly)."""
    town.sync(i, 0)
    join = town.write(i, "join", {"name": f"m{i}"}, time)
    town.sync(0, i)
    town.write(0, "admission", {"join": join.id}, time + 1)
    town.sync(i, 0)


def _outcome(town: Town, entry: Any) -> tuple[str, str]:
    outcome = town.fold().outcome(entry.id)
    assert outcome is not None
    return outcome.status, outcome.reason


def test_removal_needs_a_decision_when_the_rules_say_so() -> None:
    town = Town(stewards=3, rules={"decide": {"removal": True}})
    _admitted(town, 3, T0 + 100)
    direct = town.write(0, "sanction", {"member": town.key(3), "action": "remove", "reason": "logging"}, T0 + 200)
    assert _outcome(town, direct) == (REJECTED, "The rules require a decision for this act (decide.removal): "
                                                "propose it instead.")
    proposal = town.write(0, "proposal", {"action": {"act": "removal", "member": town.key(3), "reason": "logging"},
                                          "title": "remove the logger"}, T0 + 300)
    state = town.fold()
    doc = state.canonical["proposals"][str(proposal.id)]
    assert doc["status"] == "open" and doc["changes"] == {}
    assert doc["action"] == {"act": "removal", "member": town.member_hex(3), "reason": "logging"}
    town.sync(3, 0)
    own = town.write(3, "vote", {"proposal": proposal.id, "choice": "no"}, T0 + 350)
    town.sync(1, 0)
    vote = town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 400)
    state = town.fold()
    assert state.outcome(own.id).status == REJECTED  # type: ignore[union-attr]  # not a voter (nor, by then, a member)
    assert state.canonical["proposals"][str(proposal.id)]["status"] == "adopted"
    assert state.canonical["members"][town.member_hex(3)]["status"] == "removed"
    assert state.canonical["sanctions"][-1] == {"id": str(proposal.id), "member": town.member_hex(3),
                                                "action": "remove", "reason": "logging", "by": town.member_hex(0)}
    later = town.write(3, "leave", {}, T0 + 500)  # (not having seen the deciding vote: strong removal)
    assert _outcome(town, later) == (REJECTED, f"Strong removal: written outside the causal past of the "
                                               f"sanction {vote.id} against its author.")

    assert state.outcome(vote.id).status == APPLIED  # type: ignore[union-attr]


def test_the_member_a_proposal_names_does_not_vote_on_it() -> None:
    town = Town(stewards=4, rules={"decide": {"role": True}})
    proposal = town.write(0, "proposal", {"action": {"act": "revoke", "member": town.key(1), "role": "steward"}},
                          T0 + 100)
    town.sync(1, 0)
    own = town.write(1, "vote", {"proposal": proposal.id, "choice": "no"}, T0 + 200)
    assert _outcome(town, own) == (REJECTED, "The member a proposal names does not vote on it.")
    town.sync(2, 0)
    town.write(2, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 300)
    town.sync(3, 2)
    town.write(3, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 400)
    state = town.fold()
    assert state.canonical["members"][town.member_hex(1)]["roles"] == ["member", "reviewer"]


def test_admission_by_the_members_decision() -> None:
    town = Town(stewards=2, authors=4,
                rules={"decide": {"admission": True}, "electorate": {"admission": ["member"]}})
    town.sync(2, 0)
    join = town.write(2, "join", {"name": "newcomer"}, T0 + 100)
    town.sync(0, 2)
    direct = town.write(0, "admission", {"join": join.id}, T0 + 200)
    assert _outcome(town, direct)[1] == ("The rules require a decision for this act (decide.admission): "
                                         "propose it instead.")
    proposal = town.write(0, "proposal", {"action": {"act": "admission", "join": join.id}}, T0 + 300)
    assert _outcome(town, join)[0] == PENDING
    town.sync(1, 0)
    vote = town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 400)
    state = town.fold()
    member = state.canonical["members"][town.member_hex(2)]
    assert member["status"] == "active" and member["since"] == str(vote.id)
    assert state.outcome(join.id).status == APPLIED  # type: ignore[union-attr]


def test_a_community_role_is_granted_and_elects() -> None:
    rules = {"roles": {"custom": ["ecologist"]}, "electorate": {"removal": ["ecologist"]},
             "decide": {"removal": True}}
    town = Town(stewards=2, rules=rules)
    _admitted(town, 2, T0 + 100)
    _admitted(town, 3, T0 + 200)
    grant = town.write(0, "role", {"member": town.key(2), "role": "ecologist"}, T0 + 300)
    bad = town.write(0, "role", {"member": town.key(2), "role": "wizard"}, T0 + 310)
    assert _outcome(town, grant)[0] == APPLIED
    assert _outcome(town, bad)[1] == "Its 'role' must be reviewer or steward or ecologist."
    town.sync(2, 0)
    proposal = town.write(2, "proposal", {"action": {"act": "removal", "member": town.key(3), "reason": "logging"}},
                          T0 + 400)
    state = town.fold()
    # The only ecologist proposed: 1 of 1 electorate, adopted at once.
    assert state.canonical["proposals"][str(proposal.id)]["status"] == "adopted"
    assert state.canonical["members"][town.member_hex(3)]["status"] == "removed"
    assert state.canonical["members"][town.member_hex(2)]["roles"] == ["ecologist", "member"]


def test_reinstatement_by_decision_and_a_lapsed_admission() -> None:
    town = Town(stewards=3, rules={"decide": {"reinstatement": True}})
    _admitted(town, 3, T0 + 100)
    town.write(0, "sanction", {"member": town.key(3), "action": "suspend", "reason": "cooling off"}, T0 + 200)
    proposal = town.write(0, "proposal", {"action": {"act": "reinstatement", "member": town.key(3),
                                                     "reason": "cooled"}}, T0 + 300)
    town.sync(1, 0)
    town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 400)
    state = town.fold()
    assert state.canonical["members"][town.member_hex(3)]["status"] == "active"
    # An admission decided after the join was admitted directly lapses.
    town2 = Town(stewards=3, rules={"electorate": {"admission": ["steward"]}})
    town2.sync(3, 0)
    join = town2.write(3, "join", {}, T0 + 100)
    town2.sync(0, 3)
    proposal = town2.write(0, "proposal", {"action": {"act": "admission", "join": join.id}}, T0 + 200)
    town2.sync(1, 0)
    town2.write(1, "admission", {"join": join.id}, T0 + 300)
    town2.sync(2, 1)
    town2.write(2, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 400)
    assert town2.fold().canonical["proposals"][str(proposal.id)]["status"] == "lapsed"


def test_a_bad_action_is_refused_with_the_reason() -> None:
    town = Town(stewards=2)
    cases = [({"act": "banish", "member": town.key(1)}, "Its 'action' must be a map whose 'act' is one of "
                                                         "admission, removal, reinstatement, grant, revoke, "
                                                         "distribution, resource, spend, appeal, "
                                                         "resource_change, recovery."),
             ({"act": "removal", "member": town.key(0), "reason": "me"},
              "It can remove only another active or suspended member."),
             ({"act": "grant", "member": town.key(3), "role": "steward"},
              "The member it names is not an active member."),
             ({"act": "removal", "member": town.key(1)}, "It lacks the 'reason' field.")]
    entries = [town.write(0, "proposal", {"action": action}, T0 + 100 + i) for i, (action, _) in enumerate(cases)]
    state = town.fold()
    for entry, (_, reason) in zip(entries, cases, strict=True):
        assert state.outcome(entry.id).reason == reason  # type: ignore[union-attr]


ACTIONS = st.lists(st.tuples(st.sampled_from(("propose", "vote", "vote", "vote", "sync", "note", "sanction")),
                             st.integers(0, 3), st.integers(0, 3),
                             st.sampled_from(("yes", "yes", "yes", "no", "abstain")),
                             st.sampled_from(("removal", "grant", "revoke", "reinstatement", "distribution")),
                             st.sampled_from((0, 60_000, 700_000))), min_size=1, max_size=30)


@settings(max_examples=examples(100), deadline=None)
@given(ACTIONS, st.booleans(), st.randoms(use_true_random=False))
def test_decided_acts_converge_in_any_delivery_order(actions: list[tuple[str, int, int, str, str, int]],
                                                     deadline: bool, rnd: random.Random) -> None:
    """Random proposals of acts, votes, direct sanctions and syncs among four stewards, each
    author with their own clock: every delivery order, and an incremental fold fed one entry
    at a time, give the same state."""
    from p2pcommons.state import Folder
    from p2pcommons.state.records import canonical_state

    rules: dict[str, Any] = {"roles": {"custom": ["ecologist"]}, "decide": {"removal": True}}
    if deadline:
        rules["decisions"] = {"deadline": 600, "quorum": "1/2"}
    town = Town(stewards=4, rules=rules)
    proposals: list[Any] = []
    now = T0
    for action, i, j, choice, act, step in actions:
        now += step
        if action == "sync":
            town.sync(i, j)
        elif action == "propose":
            body: dict[str, Any] = {"act": act, "member": town.key(j)}
            body.update({"reason": "r"} if act in ("removal", "reinstatement") else {"role": "ecologist"})
            if act == "distribution":
                body = {"act": act, "amount": 100}
            proposals.append(town.write(i, "proposal", {"action": body}, now + 1000 * i))
        elif action == "vote" and proposals:
            target = proposals[j % len(proposals)]
            town.sync(i, SIGNERS_INDEX[target.author])
            town.write(i, "vote", {"proposal": target.id, "choice": choice}, now + 1000 * i)
        elif action == "sanction":
            town.write(i, "sanction", {"member": town.key(j), "action": "suspend", "reason": "r"}, now)
        elif action == "note":
            town.write(i, "contribution", {"title": "n"}, now + 1000 * i)
    expected = town.fold().canonical
    for doc in expected["proposals"].values():
        event(f"{doc['action']['act']} {doc['status']}")
    order = list(town.entries)
    rnd.shuffle(order)
    assert town.fold(order).canonical == expected
    folder = Folder(town.genesis.id, snapshot_every=1)
    for entry in order:
        folder.add(entry)
        folder.run()
    assert folder.state is not None
    got = canonical_state(folder.state)
    assert all(got[k] == expected[k] for k in got)


SIGNERS_INDEX = {Town().key(i): i for i in range(4)}


def test_a_collective_budget_line_and_a_distribution_decided_by_vote() -> None:
    """Enspiral-like: the members open a budget line (a rivalrous resource) and share a
    surplus by the ledger — both by decision, since the rules say so."""
    rules = {"decide": {"resource": True, "distribution": True},
             "electorate": {"resource": ["member"], "distribution": ["member"]}}
    town = Town(stewards=2, rules=rules)
    _admitted(town, 2, T0 + 100)
    work = town.write(2, "contribution", {"title": "website", "value": 5}, T0 + 200)
    town.sync(0, 2)
    town.write(0, "review", {"contribution": work.id, "verdict": "accept"}, T0 + 300)
    direct = town.write(0, "distribution", {"amount": 100}, T0 + 310)
    assert _outcome(town, direct)[1] == ("The rules require a decision for this act (decide.distribution): "
                                         "propose it instead.")
    line = town.write(0, "proposal", {"action": {"act": "resource", "resource": {
        "name": "Website budget", "rivalrous": True, "quota": 500, "period": 7776000, "unit": "EUR"}}}, T0 + 400)
    share = town.write(0, "proposal", {"action": {"act": "distribution", "amount": 1000, "currency": "EUR"}},
                       T0 + 410)
    town.sync(1, 0)
    town.write(1, "vote", {"proposal": line.id, "choice": "yes"}, T0 + 500)
    town.write(1, "vote", {"proposal": share.id, "choice": "yes"}, T0 + 510)
    town.sync(2, 1)
    use = town.write(2, "resource_use", {"resource": line.id, "amount": 300}, T0 + 600)
    over = town.write(2, "resource_use", {"resource": line.id, "amount": 300}, T0 + 700)
    state = town.fold()
    assert state.canonical["resources"][str(line.id)]["quota"] == 500
    assert state.canonical["distributions"] == [{"id": str(share.id), "amount": 1000, "currency": "EUR",
                                                 "shares": {town.member_hex(2): 1000}}]
    assert state.outcome(use.id).status == APPLIED  # type: ignore[union-attr]
    assert "exceeds the quota" in state.outcome(over.id).reason  # type: ignore[union-attr]


def _reviewed(town: Town, verdict: str, time: int) -> Any:
    """Bob (a founder, also a reviewer) contributes; alice reviews it with ``verdict``."""
    town.sync(1, 0)
    work = town.write(1, "contribution", {"title": "survey", "value": 40}, time)
    town.sync(0, 1)
    town.write(0, "review", {"contribution": work.id, "verdict": verdict}, time + 1)
    return work


def test_an_appeal_adopted_reopens_a_rejected_contribution_for_review() -> None:
    town = Town(stewards=3)
    work = _reviewed(town, "reject", T0 + 100)
    assert town.fold().canonical["contributions"][str(work.id)]["status"] == "rejected"
    town.sync(1, 0)
    appeal = town.write(1, "proposal", {"action": {"act": "appeal", "contribution": work.id,
                                                   "reason": "the survey was complete"}}, T0 + 200)
    town.sync(2, 1)
    town.write(2, "vote", {"proposal": appeal.id, "choice": "yes"}, T0 + 300)
    state = town.fold()
    assert state.canonical["proposals"][str(appeal.id)]["status"] == "adopted"
    assert state.canonical["contributions"][str(work.id)]["status"] == "pending"
    town.sync(0, 2)
    again = town.write(0, "review", {"contribution": work.id, "verdict": "accept"}, T0 + 400)
    state = town.fold()
    assert state.outcome(again.id).status == APPLIED  # type: ignore[union-attr]  # re-reviewed by the same reviewer
    assert state.canonical["contributions"][str(work.id)]["status"] == "accepted"
    assert state.canonical["ledger"][town.member_hex(1)] == {"accepted": 1, "value": 40}


def test_an_appeal_of_an_accepted_contribution_takes_its_value_back() -> None:
    town = Town(stewards=3)
    work = _reviewed(town, "accept", T0 + 100)
    assert town.fold().canonical["ledger"][town.member_hex(1)]["value"] == 40
    town.sync(2, 0)
    appeal = town.write(2, "proposal", {"action": {"act": "appeal", "contribution": work.id,
                                                   "reason": "copied"}}, T0 + 200)
    town.sync(0, 2)
    town.write(0, "vote", {"proposal": appeal.id, "choice": "yes"}, T0 + 300)
    state = town.fold()
    assert state.canonical["contributions"][str(work.id)]["status"] == "pending"
    assert town.member_hex(1) not in state.canonical["ledger"]
    town.sync(1, 0)
    pending = town.write(1, "proposal", {"action": {"act": "appeal", "contribution": work.id, "reason": "x"}},
                         T0 + 400)
    assert _outcome(town, pending) == (REJECTED, "Only a decided (accepted or rejected) contribution can be "
                                                 "appealed.")


def test_an_appeal_needs_a_reason_and_a_contribution() -> None:
    town = Town(stewards=3)
    work = _reviewed(town, "reject", T0 + 100)
    town.sync(1, 0)
    no_reason = town.write(1, "proposal", {"action": {"act": "appeal", "contribution": work.id}}, T0 + 200)
    assert _outcome(town, no_reason)[0] == REJECTED
    not_one = town.write(1, "proposal", {"action": {"act": "appeal", "contribution": town.genesis.id,
                                                    "reason": "r"}}, T0 + 300)
    assert _outcome(town, not_one) == (REJECTED, "Its action's 'contribution' must name a contribution in its "
                                                 "causal past.")


def test_newcomers_on_probation_do_not_vote_propose_sanction_or_grant() -> None:
    """An open commons whose members may sanction and grant (the issue's Sybil case), with a
    one-hour probation: four throwaway keys admitted at once can do none of it for an hour
    after their admission, by their entries' (trusted) time; then they can."""
    hour = 3_600_000
    town = Town(stewards=1, authors=5, rules={"membership": {"probation": 3600},
                                              "sanctions": {"roles": ["member"]}, "roles": {"roles": ["member"]},
                                              "rule_change": {"roles": ["member"]}})
    proposal = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, T0 + 10)
    for i in range(1, 5):
        _admitted(town, i, T0 + 100 * i)
        town.sync(i, 0)
    tries = [town.write(1, "vote", {"proposal": proposal.id, "choice": "no"}, T0 + 1000),
             town.write(2, "sanction", {"member": town.key(0), "action": "warning", "reason": "x"}, T0 + 1000),
             town.write(3, "role", {"member": town.key(4), "role": "steward", "action": "grant"}, T0 + 1000),
             town.write(4, "proposal", {"action": {"act": "removal", "member": town.key(0), "reason": "x"}},
                        T0 + 1000),
             town.write(1, "rule_proposal", {"changes": {"membership.probation": 0}}, T0 + 1001)]
    state = town.fold()
    for entry in tries:
        outcome = state.outcome(entry.id)
        assert outcome is not None and outcome.status == REJECTED, entry.kind
        assert outcome.reason.startswith("Its author is on probation until "), outcome.reason
    later = town.write(2, "sanction", {"member": town.key(0), "action": "warning", "reason": "x"}, T0 + 300 + hour)
    assert _outcome(town, later)[0] == APPLIED
    assert _outcome(town, town.write(0, "sanction", {"member": town.key(1), "action": "warning", "reason": "y"},
                                     T0 + 2000))[0] == APPLIED  # a founder is never on probation


def test_without_probation_newcomers_act_at_once_as_before() -> None:
    town = Town(stewards=1, rules={"sanctions": {"roles": ["member"]}})
    _admitted(town, 1, T0 + 100)
    warn = town.write(1, "sanction", {"member": town.key(0), "action": "warning", "reason": "x"}, T0 + 200)
    assert _outcome(town, warn)[0] == APPLIED


GOVERN = st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["vote", "sanction", "role", "proposal",
                                                                   "rule_proposal"]),
                            st.integers(-3 * 3_600_000, 3 * 3_600_000), st.integers(0, 3)), min_size=1, max_size=12)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.integers(0, 2 * 3_600_000), min_size=4, max_size=4), GOVERN)
def test_no_newcomer_governs_during_probation_whatever_their_clock(admitted: list[int],
                                                                    tries: list[tuple[int, str, int, int]]) -> None:
    """Four newcomers admitted at random times try every governing kind with any clock
    offset (±3 h, against a 1 h probation): every one that applies is dated at least the
    probation after its author's admission, which is in its causal past."""
    town = Town(stewards=1, authors=5, rules={"membership": {"probation": 3600},
                                              "sanctions": {"roles": ["member"]}, "roles": {"roles": ["member"]},
                                              "rule_change": {"roles": ["member"]}})
    proposal = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, T0 + 10)
    since: dict[bytes, int] = {}
    at = T0 + 100
    for i, step in enumerate(admitted, start=1):
        at += 10 + step  # (each join after what its author has seen: §2.4)
        _admitted(town, i, at)
        since[town.key(i)] = town.logs[0][-1].time
    for i in range(1, 5):
        town.sync(i, 0)
    written = []
    for i, kind, offset, j in tries:
        time = max(T0, since[town.key(i)] + 3_600_000 + offset)
        body: dict[str, Any] = {
            "vote": {"proposal": proposal.id, "choice": "no"},
            "sanction": {"member": town.key(j), "action": "warning", "reason": "x"},
            "role": {"member": town.key(1 + j % 4), "role": "reviewer", "action": "grant"},
            "proposal": {"action": {"act": "grant", "member": town.key(1 + j % 4), "role": "reviewer"}},
            "rule_proposal": {"changes": {"review.accepts": 1 + j}},
        }[kind]
        written.append(town.write(i, kind, body, time))
    state = town.fold()
    applied = 0
    for entry in written:
        outcome = state.outcome(entry.id)
        assert outcome is not None
        if outcome.status == APPLIED:
            applied += 1
            assert entry.time >= since[entry.author] + 3_600_000
        elif entry.time < since[entry.author] + 3_600_000:
            assert "probation" in outcome.reason or "dated" in outcome.reason, outcome.reason
    event(f"{applied} applied of {len(written)}")


def test_newcomers_on_probation_do_not_count_in_the_electorate() -> None:
    """Four throwaway keys join an open commons whose members decide rule changes: they
    cannot vote yet, so they do not count in E either — the founder's proposal (1 of 1)
    passes; an hour later (probation over) a proposal needs them (1 of 5 does not carry)."""
    rules = {"membership": {"probation": 3600}, "rule_change": {"roles": ["member"]}}
    town = Town(stewards=1, authors=5, rules=rules)
    for i in range(1, 5):
        _admitted(town, i, T0 + 100 * i)
    first = town.write(0, "rule_proposal", {"changes": {"review.accepts": 2}}, T0 + 1000)
    later = town.write(0, "rule_proposal", {"changes": {"review.accepts": 3}}, T0 + 1000 + 3_600_000)
    state = town.fold()
    assert town.proposal(state, first)["status"] == "adopted"
    assert town.proposal(state, later)["status"] == "open"


def _removal_with_concurrent_entries(decide: bool) -> tuple[Town, Any, list[Any]]:
    """Member 3 writes entries concurrently with their removal (not in the removing entry's
    causal past): by a steward's sanction, or by a decision whose deciding vote is steward 1's."""
    town = Town(stewards=3, rules={"decide": {"removal": True}} if decide else None)
    _admitted(town, 3, T0 + 100)
    concurrent = [town.write(3, "contribution", {"title": "sneaked in"}, T0 + 150),
                  town.write(3, "contribution", {"title": "and another"}, T0 + 160)]
    body = {"member": town.key(3), "reason": "logging"}
    if decide:
        proposal = town.write(0, "proposal", {"action": {"act": "removal", **body}}, T0 + 200)
        town.sync(1, 0)
        remover = town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 300)
    else:
        remover = town.write(0, "sanction", {"action": "remove", **body}, T0 + 200)
    return town, remover, concurrent


def test_a_removal_by_decision_is_as_strong_as_a_stewards() -> None:
    """Regression: a decided removal excluded nothing, so the removed member's entries written
    concurrently with the decision (outside the deciding entry's causal past) still took
    effect, while the same removal by a steward's sanction excluded them (strong removal)."""
    for decide in (False, True):
        town, remover, concurrent = _removal_with_concurrent_entries(decide)
        state = town.fold()
        assert state.canonical["members"][town.member_hex(3)]["status"] == "removed"
        for entry in concurrent:
            assert _outcome(town, entry) == (REJECTED, f"Strong removal: written outside the causal past of the "
                                                       f"sanction {remover.id} against its author.")
        assert state.canonical["contributions"] == {}


SCRIPT = st.lists(st.tuples(st.sampled_from(("note", "note", "sync", "leave")), st.integers(0, 3), st.integers(0, 3)),
                  max_size=12)


def _remove_by(decide: bool, before: list[tuple[str, int, int]], after: list[tuple[str, int, int]]) -> tuple[
        Town, Any, list[Any]]:
    """Run a script around member 3's removal, by steward 1's sanction or by a decision that
    steward 1's vote carries (steward 0 proposed it), with the same knowledge either way."""
    town = Town(stewards=3, rules={"decide": {"removal": True}} if decide else None)
    _admitted(town, 3, T0 + 100)
    now = T0 + 1000
    written: list[Any] = []

    def run(script: list[tuple[str, int, int]]) -> None:
        nonlocal now
        for action, i, j in script:
            now += 10
            if action == "sync":
                town.sync(i, j)
            elif action == "note" or i != 3:
                entry = town.write(i, "contribution", {"title": "n"}, now)
                if i == 3:
                    written.append(entry)
            else:
                written.append(town.write(3, "leave", {}, now))

    run(before)
    now += 10
    body = {"member": town.key(3), "reason": "r"}
    if decide:
        proposal = town.write(0, "proposal", {"action": {"act": "removal", **body}}, now)
    else:
        town.write(0, "contribution", {"title": "n"}, now)
    town.sync(1, 0)
    if decide:
        remover = town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, now + 5)
    else:
        remover = town.write(1, "sanction", {"action": "remove", **body}, now + 5)
    run(after)
    return town, remover, written


@settings(max_examples=examples(100), deadline=None)
@given(SCRIPT, SCRIPT, st.randoms(use_true_random=False))
def test_a_removed_members_concurrent_entries_are_undone_whichever_path_removed_them(
        before: list[tuple[str, int, int]], after: list[tuple[str, int, int]], rnd: random.Random) -> None:
    """Strong removal, by sanction or by decision: exactly the removed member's entries in the
    removing entry's causal past keep their effect; every other is rejected as strong
    removal — the same entries whichever path removed them, in every delivery order."""
    from p2pcommons.state import Folder
    from p2pcommons.state.records import canonical_state

    results = []
    for decide in (False, True):
        town, remover, written = _remove_by(decide, before, after)
        state = town.fold()
        removed = state.canonical["members"][town.member_hex(3)]["status"] == "removed"
        event(f"removed={removed}")
        past = town.ancestors(remover)
        statuses = []
        for entry in written:
            outcome = state.outcome(entry.id)
            assert outcome is not None
            if removed and entry.id.raw not in past:
                assert outcome.reason.startswith("Strong removal:"), outcome.reason
            statuses.append(outcome.status)
        results.append((removed, statuses))
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
    assert results[0] == results[1]


def test_an_appeal_of_a_contribution_written_from_a_device_takes_the_members_value_back() -> None:
    """A key contributes (the default policy lets anyone), then becomes a member's device, and
    the contribution is accepted: acceptance credits the member the key now speaks for, so an
    adopted appeal must take the value back from that member (it looked the key itself up in
    the ledger: a KeyError that stopped the fold)."""
    town = Town(stewards=3, authors=5)
    work = town.write(4, "contribution", {"title": "survey", "value": 40}, T0 + 50)  # not yet anyone's device
    town.sync(1, 4)
    town.write(1, "device", {"device": town.key(4)}, T0 + 100)
    town.sync(0, 1)
    town.write(0, "review", {"contribution": work.id, "verdict": "accept"}, T0 + 101)
    assert town.fold().canonical["ledger"][town.member_hex(1)]["value"] == 40
    town.sync(2, 0)
    appeal = town.write(2, "proposal", {"action": {"act": "appeal", "contribution": work.id, "reason": "copied"}},
                        T0 + 200)
    town.sync(0, 2)
    town.write(0, "vote", {"proposal": appeal.id, "choice": "yes"}, T0 + 300)
    state = town.fold()
    assert state.canonical["proposals"][str(appeal.id)]["status"] == "adopted"
    assert state.canonical["contributions"][str(work.id)]["status"] == "pending"
    assert town.member_hex(1) not in state.canonical["ledger"]
def test_a_removal_by_decision_excludes_the_members_devices_too() -> None:
    """As a sanction's: the removed member's bound device's entries outside the deciding
    entry's causal past have no effect."""
    town = Town(stewards=3, authors=6, rules={"decide": {"removal": True}})
    _admitted(town, 3, T0 + 100)
    bind = town.write(3, "device", {"device": town.key(5)}, T0 + 120)
    town.sync(5, 3)
    sneaked = town.write(5, "contribution", {"title": "from the phone"}, T0 + 150)
    town.sync(0, 3)
    proposal = town.write(0, "proposal", {"action": {"act": "removal", "member": town.key(3), "reason": "r"}},
                          T0 + 200)
    town.sync(1, 0)
    vote = town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 300)
    state = town.fold()
    assert state.outcome(bind.id).status == APPLIED  # type: ignore[union-attr]
    assert _outcome(town, sneaked) == (REJECTED, f"Strong removal: written outside the causal past of the sanction "
                                                 f"{vote.id} against its author.")
