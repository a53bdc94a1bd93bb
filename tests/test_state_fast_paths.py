"""The fold's fast paths decide exactly what their plain definitions decide.

Each hot helper that was rewritten for speed (issue 12: a fresh fold at 50,000 entries/s) is
compared here with its plain definition, over random inputs: the state hash depends on them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID, encode
from p2pcommons.state import compute_shares
from p2pcommons.state import rules as rules_mod
from p2pcommons.state.handlers.rules_votes import eligible
from p2pcommons.state.records import Member, Members
from p2pcommons.state.rules import InvalidRules, default_rules


def _shares_by_definition(ledger: dict[bytes, tuple[int, int]], amount: int) -> dict[bytes, int]:
    """protocols/commons.md §3.6: floor shares, then the remainder by largest remainder, ties by key."""
    total = sum(value for _, value in ledger.values())
    if total <= 0:
        return {}
    shares = {}
    remainders = []
    for author in sorted(ledger):
        value = ledger[author][1]
        shares[author] = amount * value // total
        remainders.append((-(amount * value % total), author))
    left = amount - sum(shares.values())
    for _, author in sorted(remainders)[:left]:
        shares[author] += 1
    return {a: v for a, v in shares.items() if v}


keys = st.binary(min_size=2, max_size=2)


@given(st.dictionaries(keys, st.tuples(st.just(0), st.integers(-5, 10**6)), max_size=30),
       st.integers(1, 10**9))
def test_shares_match_their_definition(ledger: dict[bytes, tuple[int, int]], amount: int) -> None:
    assert compute_shares(ledger, amount) == _shares_by_definition(ledger, amount)


def test_shares_ties_go_by_key() -> None:
    ledger = {b"\x03": (0, 1), b"\x01": (0, 1), b"\x02": (0, 1)}
    assert compute_shares(ledger, 2) == {b"\x01": 1, b"\x02": 1}


def _roles_check_by_definition(rules: dict[str, Any]) -> None:
    """The check in code-point order of the rules' dotted names (the first at fault raises)."""
    known = set(rules_mod.known_roles(rules))
    for path in sorted(f"{section}.{key}" for section, values in rules.items() for key in values):
        section, _, key = path.partition(".")
        if (path.startswith("seats.") and path[6:] not in known) or path in ("seats.member", "seats.steward"):
            raise InvalidRules(path, path=path)
        names_roles = rules_mod._SCHEMA.get(path) == "roles" or path.startswith("seats.")
        if names_roles and [r for r in rules[section][key] if r not in known]:
            raise InvalidRules(path, path=path)
        if path.startswith("role_weights.") and key not in known:
            raise InvalidRules(path, path=path)


roles = st.sampled_from(["member", "steward", "reviewer", "worker", "guild", "nobody"])


@st.composite
def role_rules(draw: st.DrawFn) -> dict[str, Any]:
    rules = default_rules()
    rules.setdefault("roles", {})["custom"] = draw(st.lists(st.sampled_from(["worker", "guild"]), unique=True))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from([p for p, k in rules_mod._SCHEMA.items() if k == "roles"]))
        section, key = path.split(".", 1)
        rules.setdefault(section, {})[key] = draw(st.lists(roles, max_size=3))
    if draw(st.booleans()):
        rules["seats"] = draw(st.dictionaries(roles, st.lists(roles, max_size=2), max_size=2))
    if draw(st.booleans()):
        rules["role_weights"] = draw(st.dictionaries(roles, st.integers(0, 5), max_size=2))
    return rules


def _outcome(check: Any, rules: dict[str, Any]) -> str | None:
    try:
        check(rules)
    except InvalidRules as error:
        return error.path
    return None


@given(role_rules())
def test_roles_check_finds_what_its_definition_finds(rules: dict[str, Any]) -> None:
    reference = _outcome(_roles_check_by_definition, rules)
    found = _outcome(rules_mod._check_roles_declared, rules)
    assert (found is None) == (reference is None)
    if reference is not None:
        assert found == reference


@st.composite
def members(draw: st.DrawFn) -> dict[bytes, Member]:
    since = CID.of(encode({"admission": 1}))
    return {bytes([i]): Member("m", tuple(draw(st.lists(roles, unique=True, max_size=3))), (),
                               draw(st.sampled_from(["active", "suspended", "left"])), since, 0)
            for i in range(draw(st.integers(0, 12)))}


class _State:
    def __init__(self, members: dict[bytes, Member]) -> None:
        self.members = members
        self.rules = default_rules()


@given(members(), st.lists(roles, max_size=3))
def test_electorate_size_matches_its_definition(held: dict[bytes, Member], electorate: list[str]) -> None:
    expected = sum(1 for m in held.values() if m.status == "active" and any(r in m.roles for r in electorate))
    state: Any = _State(held)
    assert eligible(state, electorate) == expected


# Writes to the members table, each of which must forget the cached electorate sizes.
_member_writes = st.lists(st.tuples(
    st.sampled_from(["set", "del", "pop", "popitem", "setdefault", "update", "ior", "clear", "copy"]),
    st.integers(0, 12), members(), st.lists(roles, max_size=3)), max_size=12)


@given(members(), _member_writes)
def test_electorate_sizes_cached_in_the_members_table_follow_every_change(
        held: dict[bytes, Member], writes: list[tuple[str, int, dict[bytes, Member], list[str]]]) -> None:
    """``records.Members`` keeps each electorate's size until the table changes: after any
    write (or in a copy taken from it, as a snapshot is), every size asked for is the count
    by definition."""
    state: Any = _State(Members(held))
    for op, i, other, electorate in writes:
        eligible(state, electorate)  # (cached now)
        table: Members = state.members
        key = bytes([i])
        replacement = next(iter(other.values()), None)
        if op == "set" and replacement is not None:
            table[key] = replacement
        elif op == "del" and key in table:
            del table[key]
        elif op == "pop":
            table.pop(key, None)
        elif op == "popitem" and table:
            table.popitem()
        elif op == "setdefault" and replacement is not None:
            table.setdefault(key, replacement)
        elif op == "update":
            table.update(other)
        elif op == "ior":
            table |= other
        elif op == "clear":
            table.clear()
        elif op == "copy":
            state.members = table.copy()
            assert type(state.members) is Members
        expected = sum(1 for m in state.members.values()
                       if m.status == "active" and any(r in m.roles for r in electorate))
        assert eligible(state, electorate) == expected


def _alone_by_definition(rules: dict[str, Any], act: str) -> list[str]:
    return {"admission": rules["membership"]["admitters"], "removal": rules["sanctions"]["roles"],
            "reinstatement": rules["sanctions"]["roles"], "role": rules["roles"]["roles"],
            "distribution": rules["distribution"]["roles"], "resource": rules["resources"]["roles"],
            "spend": rules_mod.treasury_roles(rules), "rules": rules["rule_change"]["roles"],
            "appeal": rules["rule_change"]["roles"], "recovery": rules_mod.recovery_policy(rules)[0]}[act]


@given(role_rules(), st.sampled_from((*rules_mod.ACTS, "rules")))
def test_act_policy_reads_who_acts_alone_as_defined(rules: dict[str, Any], act: str) -> None:
    assert rules_mod._alone(rules, act) == _alone_by_definition(rules, act)


# A rule change as a proposal carries it: some paths name or declare roles (then the roles
# check must run), most do not; values valid or not.
rule_changes = st.dictionaries(
    st.sampled_from(["values.code", "review.accepts", "membership.policy", "membership.admitters", "roles.custom",
                     "seats.worker", "role_weights.worker", "sanctions.roles", "pools.fund", "decide.removal"]),
    st.one_of(st.integers(-1, 3), st.lists(roles, max_size=2), st.sampled_from(["open", "approval", "EUR"]),
              st.booleans()),
    min_size=1, max_size=3)


def _applied(apply: Any, rules: dict[str, Any], changes: dict[str, Any]) -> Any:
    try:
        return apply(rules, changes)
    except InvalidRules as error:
        return ("invalid", error.path, str(error))


@given(st.lists(rule_changes, min_size=1, max_size=8))
def test_rules_kept_per_map_decide_what_a_fresh_check_decides(sequence: list[dict[str, Any]]) -> None:
    """A chain of rule changes, each applied twice (when proposed, and again when adopted) to
    the last valid result, gives through apply_changes' per-map caches (the roles check
    skipped when a change names no roles) what the whole check from scratch gives, and
    act_policy kept per map answers as computed afresh."""
    rules, plain = default_rules(), default_rules()
    for changes in sequence:
        for _ in range(2):
            got = _applied(rules_mod.apply_changes, rules, changes)
            want = _applied(lambda r, c: rules_mod._apply_changes(r, c, checked=False), plain, changes)
            assert got == want
        if isinstance(got, dict):
            rules, plain = got, want
        for act in (*rules_mod.ACTS, "rules"):
            assert rules_mod.act_policy(rules, act) == rules_mod._act_policy(plain, act)
