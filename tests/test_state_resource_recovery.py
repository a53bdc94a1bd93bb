"""Resource change and close, and key recovery, by a role-holder alone or by a decision as
the rules say (protocols/commons.md §1.1, §1.3, §2.2): examples, then convergence over
random histories and delivery orders."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from p2pcommons.state import APPLIED, REJECTED
from tests.support.decisions import T0, Town
from tests.test_state_histories import examples


def _outcome(town: Town, entry: Any) -> tuple[str, str]:
    outcome = town.fold().outcome(entry.id)
    assert outcome is not None
    return outcome.status, outcome.reason


def _resource(town: Town) -> Any:
    return town.write(0, "resource_add", {"name": "timber", "rivalrous": True, "quota": 10, "period": 0,
                                          "unit": "m3"}, T0 + 10)


def test_a_steward_changes_a_quota_and_closes_a_resource() -> None:
    town = Town(stewards=2)
    timber = _resource(town)
    town.write(0, "resource_use", {"resource": timber.id, "amount": 10}, T0 + 20)
    over = town.write(0, "resource_use", {"resource": timber.id, "amount": 5}, T0 + 30)
    assert _outcome(town, over)[0] == REJECTED
    change = town.write(0, "resource_change", {"resource": timber.id, "quota": 20, "capacity": 30}, T0 + 40)
    more = town.write(0, "resource_use", {"resource": timber.id, "amount": 5}, T0 + 50)
    assert _outcome(town, change)[0] == APPLIED and _outcome(town, more)[0] == APPLIED
    doc = town.fold().canonical["resources"][str(timber.id)]
    assert (doc["quota"], doc["capacity"], "closed" in doc) == (20, 30, False)
    period = town.write(0, "resource_change", {"resource": timber.id, "period": 3600}, T0 + 55)
    assert _outcome(town, period) == (REJECTED, "The period of timber can change only while it is unused.")
    nothing = town.write(0, "resource_change", {"resource": timber.id}, T0 + 56)
    assert _outcome(town, nothing) == (REJECTED, "It changes nothing: give one of quota, capacity, period, close.")
    close = town.write(0, "resource_change", {"resource": timber.id, "close": True}, T0 + 60)
    late = town.write(0, "resource_use", {"resource": timber.id, "amount": 1}, T0 + 70)
    assert _outcome(town, close)[0] == APPLIED
    assert _outcome(town, late) == (REJECTED, "The resource timber is closed: it takes no new uses.")
    again = town.write(0, "resource_change", {"resource": timber.id, "quota": 5}, T0 + 80)
    assert _outcome(town, again) == (REJECTED, "The resource timber is closed already.")
    state = town.fold()
    assert state.canonical["resources"][str(timber.id)]["closed"] is True
    assert state.canonical["resources"][str(timber.id)]["used"]["0"] == {town.member_hex(0): 15}


def test_a_resource_is_changed_and_closed_by_decision_when_the_rules_say_so() -> None:
    town = Town(stewards=3, rules={"decide": {"resource": True}, "electorate": {"resource": ["member"]}})
    line = town.write(0, "proposal", {"action": {"act": "resource", "resource": {
        "name": "events", "rivalrous": True, "quota": 100, "unit": "EUR"}}}, T0 + 10)
    town.sync(1, 0)
    town.write(1, "vote", {"proposal": line.id, "choice": "yes"}, T0 + 20)
    town.sync(0, 1)
    direct = town.write(0, "resource_change", {"resource": line.id, "quota": 200}, T0 + 30)
    assert _outcome(town, direct) == (REJECTED, "The rules require a decision for this act (decide.resource): "
                                                "propose it instead.")
    bad = town.write(0, "proposal", {"action": {"act": "resource_change", "resource": line.id, "quota": 0}},
                     T0 + 35)
    assert _outcome(town, bad) == (REJECTED, "A rivalrous resource needs a positive quota.")
    raise_ = town.write(0, "proposal", {"action": {"act": "resource_change", "resource": line.id, "quota": 200}},
                        T0 + 40)
    assert town.proposal(town.fold(), raise_)["action"] == {"act": "resource_change", "resource": str(line.id),
                                                            "quota": 200}
    town.sync(2, 0)
    town.write(2, "vote", {"proposal": raise_.id, "choice": "yes"}, T0 + 50)
    state = town.fold()
    assert town.proposal(state, raise_)["status"] == "adopted"
    assert state.canonical["resources"][str(line.id)]["quota"] == 200
    close = town.write(2, "proposal", {"action": {"act": "resource_change", "resource": line.id, "close": True}},
                       T0 + 60)
    town.sync(1, 2)
    town.write(1, "vote", {"proposal": close.id, "choice": "yes"}, T0 + 70)
    town.sync(0, 1)
    use = town.write(0, "resource_use", {"resource": line.id, "amount": 1}, T0 + 80)
    assert _outcome(town, use) == (REJECTED, "The resource events is closed: it takes no new uses.")
    assert town.proposal(town.fold(), close)["status"] == "adopted"


def test_a_change_lapses_if_the_resource_was_closed_meanwhile() -> None:
    town = Town(stewards=3, rules={"decide": {"resource": True}})
    line = town.write(0, "proposal", {"action": {"act": "resource", "resource": {
        "name": "seats", "rivalrous": True, "quota": 1, "capacity": 8}}}, T0 + 10)
    town.sync(1, 0)
    town.write(1, "vote", {"proposal": line.id, "choice": "yes"}, T0 + 20)
    town.sync(0, 1)
    town.sync(2, 1)
    close = town.write(0, "proposal", {"action": {"act": "resource_change", "resource": line.id, "close": True}},
                       T0 + 30)
    grow = town.write(2, "proposal", {"action": {"act": "resource_change", "resource": line.id, "capacity": 9}},
                      T0 + 31)
    town.sync(1, 0)
    town.write(1, "vote", {"proposal": close.id, "choice": "yes"}, T0 + 40)
    town.sync(1, 2)
    town.write(1, "vote", {"proposal": grow.id, "choice": "yes"}, T0 + 50)
    state = town.fold()
    assert town.proposal(state, close)["status"] == "adopted"
    assert town.proposal(state, grow)["status"] == "lapsed"
    assert state.canonical["resources"][str(line.id)]["capacity"] == 8


DEVICE = 5  # the signer whose key is recovered onto member 2 (never a member)


def test_key_recovery_by_decision_when_the_rules_say_so() -> None:
    town = Town(stewards=3, authors=6, rules={"decide": {"recovery": True}, "electorate": {"recovery": ["member"]},
                                              "threshold": {"recovery": "1/2"}})
    new_key = town.key(DEVICE)
    direct = town.write(0, "device", {"device": new_key, "action": "recover", "member": town.key(2)}, T0 + 10)
    assert _outcome(town, direct) == (REJECTED, "The rules require a decision for this act (decide.recovery): "
                                                "propose it instead.")
    bad = town.write(0, "proposal", {"action": {"act": "recovery", "member": town.key(2), "device": town.key(1)}},
                     T0 + 15)
    assert _outcome(town, bad) == (REJECTED, "The key it binds is a member's key.")
    proposal = town.write(0, "proposal", {"action": {"act": "recovery", "member": town.key(2), "device": new_key}},
                          T0 + 20)
    town.sync(2, 0)
    own = town.write(2, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 25)
    assert _outcome(town, own) == (REJECTED, "The member a proposal names does not vote on it.")
    town.sync(1, 0)
    vote = town.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, T0 + 30)
    state = town.fold()
    assert town.proposal(state, proposal)["status"] == "adopted"
    assert state.canonical["devices"][new_key.hex()] == {"member": town.member_hex(2), "binding": str(vote.id),
                                                        "status": "active", "revocation": ""}
    early = town.write(DEVICE, "contribution", {"title": "before seeing the decision"}, T0 + 35)
    assert _outcome(town, early)[0] != APPLIED  # (written before the binding: no effect)
    town.sync(DEVICE, 1)
    work = town.write(DEVICE, "contribution", {"title": "back at work"}, T0 + 40)
    state = town.fold()
    assert state.outcome(work.id).status == APPLIED  # type: ignore[union-attr]
    assert state.canonical["contributions"][str(work.id)]["author"] == town.member_hex(2)


ACTIONS = st.lists(st.tuples(st.sampled_from(("propose", "vote", "vote", "sync", "use", "change")),
                             st.integers(0, 3), st.integers(0, 3), st.sampled_from(("yes", "yes", "no")),
                             st.sampled_from(("quota", "capacity", "period", "close", "recovery", "removal")),
                             st.sampled_from((0, 60_000, 700_000))), min_size=1, max_size=30)


@settings(max_examples=examples(100), deadline=None)
@given(ACTIONS, st.booleans(), st.booleans(), st.randoms(use_true_random=False))
def test_resource_changes_and_recoveries_converge_in_any_delivery_order(
        actions: list[tuple[str, int, int, str, str, int]], decide: bool, deadline: bool, rnd: random.Random) -> None:
    """Random proposals and direct changes of a resource (quota, capacity, period, close),
    key recoveries and removals, uses and votes among four members with their own clocks:
    every delivery order, and an incremental fold fed one entry at a time, give the same
    state."""
    from p2pcommons.state import Folder
    from p2pcommons.state.records import canonical_state

    rules: dict[str, Any] = {"decide": {"resource": decide, "recovery": decide, "removal": decide}}
    if deadline:
        rules["decisions"] = {"deadline": 600, "quorum": "1/2"}
    town = Town(stewards=3, authors=6, rules=rules)
    town.sync(3, 0)
    join = town.write(3, "join", {"name": "m3"}, T0 + 1)
    town.sync(0, 3)
    town.write(0, "admission", {"join": join.id}, T0 + 2)
    spec = {"name": "timber", "rivalrous": True, "quota": 10, "unit": "m3"}
    if decide:  # (then a resource is added by a decision too)
        timber = town.write(0, "proposal", {"action": {"act": "resource", "resource": spec}}, T0 + 3)
        for i in (1, 2):
            town.sync(i, 0)
            town.write(i, "vote", {"proposal": timber.id, "choice": "yes"}, T0 + 4)
            town.sync(0, i)
    else:
        timber = town.write(0, "resource_add", spec, T0 + 3)
    for i in range(1, 4):
        town.sync(i, 0)
    proposals: list[Any] = []
    now = T0 + 10
    for action, i, j, choice, act, step in actions:
        now += step
        time = now + 1000 * i
        change: dict[str, Any] = {"quota": {"quota": 1 + j}, "capacity": {"capacity": 5 * j},
                                  "period": {"period": 60 * (j + 1)}, "close": {"close": True}}.get(act, {})
        if action == "sync":
            town.sync(i, j)
        elif action == "use":
            town.write(i, "resource_use", {"resource": timber.id, "amount": 1 + j}, time)
        elif action == "change" and change:
            town.write(i, "resource_change", {"resource": timber.id, **change}, time)
        elif action == "propose":
            if act == "recovery":
                body: dict[str, Any] = {"act": act, "member": town.key(j), "device": town.key(4 + j % 2)}
            elif act == "removal":
                body = {"act": act, "member": town.key(j), "reason": "r"}
            else:
                body = {"act": "resource_change", "resource": timber.id, **change}
            proposals.append(town.write(i, "proposal", {"action": body}, time))
            if choice == "yes":  # (a second steward seconds it at once, often enough to carry it)
                k = (i + 1) % 3
                town.sync(k, i)
                town.write(k, "vote", {"proposal": proposals[-1].id, "choice": "yes"}, time + 1)
        elif action == "vote" and proposals:
            target = proposals[j % len(proposals)]
            town.sync(i, next(k for k in range(6) if town.key(k) == target.author))
            town.write(i, "vote", {"proposal": target.id, "choice": choice}, time)
    state = town.fold()
    expected = state.canonical
    for doc in expected["proposals"].values():
        event(f"{doc['action']['act']} {doc['status']}")
        voters = doc["yes"] + doc["no"] + doc.get("abstain", [])
        assert len(voters) == len(set(voters))  # one vote per member
    event(f"closed={expected['resources'][str(timber.id)].get('closed', False)}")
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
