"""Kind-by-kind behaviour of the fold that the random histories reach only rarely:
approval membership, invite, leave and rejoin, role revocation, graduated sanctions with
reinstatement, value weights, distribution rounding, an invalid genesis."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons.entry import sign_entry
from p2pcommons.errors import MalformedEntry
from p2pcommons.state import APPLIED, PENDING, REJECTED, compute_shares, fold, genesis_body, pending_admissions
from tests.test_state_histories import ACTIONS, SIGNERS, History, build, examples, prop_settings


def _member(history: History, i: int, *, admitters: tuple[int, ...] = (0,)) -> None:
    history.view[i] |= history.view[0]
    join = history.write(i, "join", {"name": f"m{i}"})
    for a in admitters:
        history.view[a] |= history.view[i]
        history.write(a, "admission", {"join": join.id}, (join.id,))
        history.view[i] |= history.view[a]


def test_approval_membership_needs_k_admissions() -> None:
    history = History()
    proposal = history.write(0, "rule_proposal", {"changes": {"membership.policy": "approval",
                                                              "membership.approvals": 2}})
    history.view[1] |= history.view[0]
    history.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, (proposal.id,))
    history.view[0] |= history.view[1]
    history.view[2] |= history.view[0]
    join = history.write(2, "join", {"name": "n"})
    history.view[0] |= history.view[2]
    history.write(0, "admission", {"join": join.id}, (join.id,))
    state = fold(history.entries)
    assert state.rules["membership"]["policy"] == "approval"
    assert not state.has_role(SIGNERS[2].public_key, "member")
    assert state.outcome(join.id).status == PENDING  # type: ignore[union-attr]
    assert pending_admissions(state, SIGNERS[1].public_key) == []  # not automatic under approval
    history.view[1] |= history.view[0]
    history.write(1, "admission", {"join": join.id}, (join.id,))
    state = fold(history.entries)
    assert state.has_role(SIGNERS[2].public_key, "member")
    assert state.outcome(join.id).status == APPLIED  # type: ignore[union-attr]


def test_pending_admissions_for_open_commons() -> None:
    history = History()
    history.view[3] |= history.view[0]
    join = history.write(3, "join", {"name": "x"})
    state = fold(history.entries)
    assert pending_admissions(state, SIGNERS[0].public_key) == [join.id]
    assert pending_admissions(state, SIGNERS[3].public_key) == []  # not a member


def test_leave_rejoin_and_role_revocation() -> None:
    history = History()
    _member(history, 2)
    history.write(0, "role", {"member": SIGNERS[2].public_key, "role": "reviewer", "action": "grant"})
    contribution = history.write(1, "contribution", {"title": "c", "value": 4})
    history.view[2] |= history.view[1]
    history.view[2] |= history.view[0]
    review = history.write(2, "review", {"contribution": contribution.id, "verdict": "reject"}, (contribution.id,))
    history.view[0] |= history.view[2]
    history.write(0, "role", {"member": SIGNERS[2].public_key, "role": "reviewer", "action": "revoke"})
    state = fold(history.entries)
    assert state.outcome(review.id).status == APPLIED  # type: ignore[union-attr]
    assert state.contribution(contribution.id).status == "rejected"  # type: ignore[union-attr]
    assert not state.has_role(SIGNERS[2].public_key, "reviewer")
    history.view[2] |= history.view[0]
    history.write(2, "leave", {})
    assert fold(history.entries).members[SIGNERS[2].public_key.hex()]["status"] == "left"
    join = history.write(2, "join", {"name": "back"})
    history.view[0] |= history.view[2]
    history.write(0, "admission", {"join": join.id}, (join.id,))
    assert fold(history.entries).has_role(SIGNERS[2].public_key, "member")


def test_warning_suspension_reinstatement() -> None:
    history = History()
    _member(history, 2)
    key = SIGNERS[2].public_key
    history.write(0, "sanction", {"member": key, "action": "warning", "reason": "late"})
    suspension = history.write(0, "sanction", {"member": key, "action": "suspend", "reason": "again"})
    blocked = history.write(2, "contribution", {"title": "while suspended", "value": 1})
    history.view[0] |= history.view[2]
    reinstatement = history.write(0, "sanction", {"member": key, "action": "reinstate", "reason": "ok"})
    history.view[2] |= history.view[0]
    allowed = history.write(2, "contribution", {"title": "after", "value": 1})
    state = fold(history.entries)
    assert state.members[key.hex()]["warnings"] == 1 and state.members[key.hex()]["status"] == "active"
    assert state.outcome(suspension.id).status == APPLIED  # type: ignore[union-attr]
    assert state.outcome(blocked.id).status == REJECTED  # type: ignore[union-attr]
    assert state.outcome(reinstatement.id).status == APPLIED  # type: ignore[union-attr]
    assert state.outcome(allowed.id).status == APPLIED  # type: ignore[union-attr]


def test_value_weights_and_adjusted_value() -> None:
    history = History()
    proposal = history.write(0, "rule_proposal", {"changes": {"values.code": 150}})
    history.view[1] |= history.view[0]
    history.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, (proposal.id,))
    history.view[0] |= history.view[1]
    history.view[2] |= history.view[0]
    code = history.write(2, "contribution", {"title": "outsider code", "kind": "code", "value": 10})
    history.view[0] |= history.view[2]
    history.write(0, "review", {"contribution": code.id, "verdict": "accept", "value": 7}, (code.id,))
    state = fold(history.entries)
    assert state.contribution(code.id).value == 10  # type: ignore[union-attr]  # 7 * 150 // 100
    assert state.outcome(code.id).status == APPLIED  # type: ignore[union-attr]  # accepted by review
    assert state.ledger()[0]["value"] == 10


def test_shares_sum_exactly() -> None:
    ledger = {b"a" * 32: (1, 1), b"b" * 32: (1, 1), b"c" * 32: (1, 1)}
    shares = compute_shares(ledger, 100)
    assert sum(shares.values()) == 100 and sorted(shares.values()) == [33, 33, 34]
    assert compute_shares({}, 5) == {}


def test_invalid_genesis_rejects_everything() -> None:
    body = genesis_body("bad")
    body["rules"] = {"review": {"accepts": 0}}
    genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1)
    other = sign_entry(SIGNERS[0], commons=genesis.id, seq=2, prev=genesis.id, kind="contribution",
                       body={"title": "x"}, timestamp=2)
    state = fold([genesis, other])
    assert not state.valid and "invalid" in state.canonical
    assert state.outcome(genesis.id).status == REJECTED  # type: ignore[union-attr]
    assert "genesis is invalid" in state.outcome(other.id).reason  # type: ignore[union-attr]
    assert state.canonical["invalid"] == "rules.review.accepts"


def test_an_invalid_genesis_is_recorded_by_the_path_of_its_first_bad_part() -> None:
    """``invalid`` in the hashed state is a path, not English (protocols/commons.md §5.2):
    another implementation reproduces it without copying our messages."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"rules": ["not", "a", "map"]}, "rules"),
        ({"rules": {"no": {"such": 1}}}, "rules.no.such"),
        ({"rules": {"review": {"accepts": 0}, "membership": {"policy": "closed"}}}, "rules.membership.policy"),
        ({"name": "x" * 1001}, "name"),
        ({"license": 7}, "license"),
        ({"stewards": []}, "stewards"),
        ({"resources": "oven"}, "resources"),
        ({"resources": [{"name": "a"}, {"name": "b", "rivalrous": True}]}, "resources.1"),
    ]
    for change, path in cases:
        body = {**genesis_body("bad"), **change}
        genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1)
        state = fold([genesis])
        assert state.canonical["invalid"] == path, (change, state.canonical.get("invalid"))
        reason = state.outcome(genesis.id).reason  # type: ignore[union-attr]
        assert reason.endswith(".") and " " in reason, reason  # the words stay in the (unhashed) outcome


def test_stability_and_retirement_of_silent_members() -> None:
    # Steward 1 never writes: it holds every entry back, until the rules retire it.
    history = History()
    first = history.write(0, "contribution", {"title": "a", "value": 1})
    state = fold(history.entries)
    outcome = state.outcome(first.id)
    assert outcome is not None and not outcome.stable and outcome.holders == (SIGNERS[1].public_key,)
    history.view[1] |= history.view[0]
    history.write(1, "contribution", {"title": "ack", "value": 1})
    assert fold(history.entries).outcome(first.id).stable  # type: ignore[union-attr]

    quiet = History()
    proposal = quiet.write(0, "rule_proposal", {"changes": {"retire.after": 3}})
    quiet.view[1] |= quiet.view[0]
    quiet.write(1, "vote", {"proposal": proposal.id, "choice": "yes"}, (proposal.id,))
    quiet.view[0] |= quiet.view[1]
    entries = [quiet.write(0, "contribution", {"title": f"c{i}", "value": 1}) for i in range(6)]
    state = fold(quiet.entries)
    assert state.retired == [SIGNERS[1].public_key]
    assert state.outcome(entries[0].id).stable  # type: ignore[union-attr]
    assert state.stable_summary()["retired"] == [SIGNERS[1].public_key.hex()]


_FIELDS = ["name", "join", "member", "role", "action", "reason", "title", "kind", "value", "ref", "contribution",
           "verdict", "comment", "changes", "proposal", "choice", "resource", "amount", "rivalrous", "quota",
           "period", "unit", "currency", "rules", "stewards", "resources", "description", "license"]
_KINDS = ["join", "admission", "leave", "role", "sanction", "contribution", "review", "rule_proposal", "vote",
          "resource_add", "resource_use", "distribution", "bogus"]


def _values() -> Any:
    from p2pcommons.dagcbor import CID

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.text(max_size=8),
                        st.binary(max_size=40), st.sampled_from([b"\x01" * 32, "accept", "yes", "remove", "steward",
                                                                 "review.accepts", "open"]),
                        st.just(CID.of(b"x")))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=3)),
                        max_leaves=6)


@settings(max_examples=examples(300), deadline=None)
@given(bodies=st.lists(st.tuples(st.sampled_from(_KINDS),
                                 st.dictionaries(st.sampled_from(_FIELDS), _values(), max_size=4)),
                       min_size=1, max_size=8),
       genesis=st.one_of(st.just({}), st.dictionaries(st.sampled_from(_FIELDS), _values(), max_size=4)))
def test_hostile_bodies_never_crash_the_fold(bodies: list[tuple[str, dict[str, Any]]],
                                             genesis: dict[str, Any]) -> None:
    """Whatever a (validly signed) body holds, the fold records an outcome with a reason
    instead of raising."""
    from p2pcommons.dagcbor import encode
    from p2pcommons.entry import decode_entry

    try:
        g = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body=genesis, timestamp=1)
    except MalformedEntry:  # a resource amount outside [0, 2^53]: refused at decode
        return
    entries = [g]
    prev = g
    for kind, body in bodies:
        encode(body)
        try:
            e = sign_entry(SIGNERS[0], commons=g.id, seq=prev.seq + 1, prev=prev.id, kind=kind, body=body,
                           timestamp=prev.seq + 1)
        except MalformedEntry:  # an amount outside [0, 2^53]: refused at decode (protocols/entry.md §3)
            continue
        entries.append(decode_entry(e.raw))  # bodies as a receiver sees them (links as tags)
        prev = e
    state = fold(entries)
    assert len(state.state_hash) == 64
    for entry in entries:
        outcome = state.outcome(entry.id)
        assert outcome is not None and (outcome.status != REJECTED or outcome.reason)


def test_a_review_or_vote_naming_another_kind_of_entry_says_what_it_names() -> None:
    """A review must name a contribution and a vote a proposal.  The handlers look a
    reference's kind up only when its table lacks the record (a record there is of that
    kind), so one naming an entry of another kind in its causal past must still be
    rejected with what it names, not as a record that had no effect."""
    history = History()
    proposal = history.write(0, "rule_proposal", {"changes": {"review.accepts": 2}})
    work = history.write(0, "contribution", {"title": "w"})
    history.view[1] |= history.view[0]
    review = history.write(1, "review", {"contribution": proposal.id, "verdict": "accept"}, (proposal.id,))
    vote = history.write(1, "vote", {"proposal": work.id, "choice": "yes"}, (work.id,))
    state = fold(history.entries)
    assert (state.outcome(review.id).status, state.outcome(review.id).reason) == (  # type: ignore[union-attr]
        REJECTED, "Its 'contribution' names a rule_proposal, not a contribution.")
    assert (state.outcome(vote.id).status, state.outcome(vote.id).reason) == (  # type: ignore[union-attr]
        REJECTED, "Its 'proposal' names a contribution, not a rule_proposal or proposal.")


@prop_settings(200)
@given(actions=ACTIONS)
def test_the_stable_count_is_the_count_of_stable_outcomes(actions: list[tuple[int, int, int]]) -> None:
    """The summary's stable entries are exactly the entries whose outcome says stable (§4),
    on random histories (forks, removals, members leaving among them)."""
    state = fold(build(actions).entries)
    assert state.stable_summary()["stable_entries"] == sum(1 for o in state.outcomes() if o.stable)


def test_when_nobody_holds_stability_back_everything_is_stable() -> None:
    """A commons whose only member's key forked (a restored backup signed a seq again): no
    key holds stability, so every entry is in the past of every key that does (§4).  The
    summary said none was stable while each entry's outcome said it was."""
    founder = SIGNERS[0]
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("alone", founders=[founder.public_key]))
    first = sign_entry(founder, commons=genesis.id, seq=2, prev=genesis.id, kind="contribution",
                       body={"title": "a", "value": 1}, deps=[], timestamp=2)
    twins = [sign_entry(founder, commons=genesis.id, seq=3, prev=first.id, kind="contribution",
                        body={"title": title, "value": 1}, deps=[], timestamp=3) for title in ("b", "b again")]
    state = fold([genesis, first, *twins])
    assert all(o.stable for o in state.outcomes())
    assert state.stable_summary()["stable_entries"] == 4
