"""Rules as data: the governance rules of one commons, their defaults, and their validation.

Rules live in the state and change only through a rule proposal that reaches the threshold
the rules in force demand.  They are plain nested maps of ints, strings, bools and lists so
they hash canonically; there are no floats anywhere (fractions are ``{num, den}``).
The same validator serves the genesis body, ``--rules FILE.toml``, ``--set key=value`` and
the fold, so a value the CLI accepts is a value every node accepts.
"""

from __future__ import annotations

import copy
import marshal
import re
from typing import Any

from ..errors import UsageError

ROLES = ("member", "reviewer", "steward")
MEMBERSHIP_POLICIES = ("open", "invite", "approval")
CONTRIBUTION_POLICIES = ("anyone", "members")
OUTSIDER_KINDS = ("join", "any")
# Governed acts a proposal may carry besides a rule change (protocols/commons.md §2.2); "role"
# covers both grant and revoke.
ACTS = ("admission", "removal", "reinstatement", "role", "distribution", "resource", "spend", "appeal", "recovery")
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class InvalidRules(UsageError):
    """A rules document or rule change is not valid (unknown key, wrong type, bad value).

    ``path`` names the rule at fault (dotted, e.g. ``membership.policy``; "" when the
    document as a whole is at fault), so an invalid genesis can be recorded in the state
    as a path rather than as English text (protocols/commons.md §5)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


DEFAULT_RULES: dict[str, Any] = {
    "membership": {"policy": "open", "approvals": 1, "admitters": ["member"]},
    "contribution": {"policy": "anyone"},
    "review": {"roles": ["reviewer"], "accepts": 1, "rejects": 1, "self_review": False},
    "rule_change": {"roles": ["steward"], "threshold": {"num": 1, "den": 2}},
    "values": {"default": 100},
    "resources": {"roles": ["steward"], "use_roles": ["member"]},
    "sanctions": {"roles": ["steward"]},
    "roles": {"roles": ["steward"]},
    "distribution": {"roles": ["steward"]},
    "retire": {"after": 0},
}

# key path -> kind of value; "values.*" is open-ended (a weight per contribution kind).
_SCHEMA: dict[str, str] = {
    "membership.policy": "membership_policy",
    "membership.approvals": "positive",
    "membership.admitters": "roles",
    "contribution.policy": "contribution_policy",
    "review.roles": "roles",
    "review.accepts": "positive",
    "review.rejects": "positive",
    "review.self_review": "bool",
    "rule_change.roles": "roles",
    "rule_change.threshold": "fraction",
    "resources.roles": "roles",
    "resources.use_roles": "roles",
    "sanctions.roles": "roles",
    "roles.roles": "roles",
    "distribution.roles": "roles",
    "retire.after": "natural",
    # What a node stores of a non-member's log (p2pcommons/outsiders.py).  Not in the
    # defaults above, so a commons that never sets them keeps its state hash; absent, they
    # follow the membership and contribution policies (see outsider_policy).
    "outsiders.allowed": "outsider_kinds",
    "outsiders.max_entries": "natural",
    # Decisions with an end (protocols/commons.md §2.1).  Not in the defaults either: absent,
    # a proposal has no deadline and no quorum, as before, and older state hashes hold.
    "decisions.deadline": "natural",  # seconds from a proposal's time to its deadline; 0 = none
    "decisions.quorum": "fraction",  # share of the electorate that must vote (yes, no or abstain)
    # Probation (protocols/commons.md §2.5): seconds after their admission during which a
    # newcomer does not vote, propose an act, sanction or grant roles.  Not in the defaults:
    # absent (or 0), no probation, as before, and older state hashes hold.
    "membership.probation": "natural",
    # Vouching (§2.5): a newcomer governs once this many settled members vouch for them
    # (with a probation too: whichever comes first).  Not in the defaults either.
    "membership.vouches": "natural",
    # Roles the community defines itself (protocols/commons.md §2.2), granted like reviewer.
    "roles.custom": "role_names",
    # Who may bind a new key to a member who lost every device (protocols/commons.md §1.3).
    # Not in the defaults either (same reason); absent: a majority of the stewards.
    "recovery.roles": "roles",
    "recovery.threshold": "fraction",
    # The treasury (protocols/commons.md §8).  Not in the defaults: absent, who records
    # payments in and spends alone is distribution.roles, and a commons without pools hashes
    # as before.  Pools themselves are ``pools.<name> = "<unit>"`` (see _kind_of).
    "treasury.roles": "roles",
    # The value equation (protocols/commons.md §9).  Not in the defaults: absent, a review
    # may set any value, nothing decays, no credit follows references, and older state
    # hashes hold.  Weights per role are ``role_weights.<role> = <percent>`` (see _kind_of).
    "equation.half_life": "positive",  # days after which an accepted value counts half
    "equation.review_cap": "natural",  # percent of the claimed value one review may add or take
    "equation.reference_share": "fraction",  # share of a derivative's value passed to what it references
}
# Names under ``values`` that are settings of the equation, not contribution kinds: a rule
# ``values.decay = 10`` would otherwise silently weigh a kind named "decay" (#16).
EQUATION_WORDS = ("decay", "half_life", "halflife", "review_cap", "cap", "reference_share", "share", "references",
                  "roles", "role")
# Per governed act (§2.2): whether it needs a decision (no role-holder may do it alone), who
# votes, the threshold and the quorum.  Absent: a role-holder does it alone, as before.
for _act in ACTS:
    _SCHEMA[f"decide.{_act}"] = "bool"
    _SCHEMA[f"electorate.{_act}"] = "roles"
    _SCHEMA[f"threshold.{_act}"] = "fraction"
    _SCHEMA[f"quorum.{_act}"] = "fraction"
_MAX_INT = 2**53
MAX_UNIT = 32  # characters in a pool's unit


def default_rules() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_RULES)


def _check_value(path: str, kind: str, value: Any) -> Any:
    """Return the canonical form of ``value`` for ``path`` or raise InvalidRules."""
    if kind == "membership_policy":
        if value not in MEMBERSHIP_POLICIES:
            raise InvalidRules(
                f"Rule {path} must be one of {', '.join(MEMBERSHIP_POLICIES)}, not {value!r}.",
                path=path,
            )
        return value
    if kind == "contribution_policy":
        if value not in CONTRIBUTION_POLICIES:
            raise InvalidRules(
                f"Rule {path} must be one of {', '.join(CONTRIBUTION_POLICIES)}, not {value!r}.",
                path=path,
            )
        return value
    if kind == "outsider_kinds":
        if value not in OUTSIDER_KINDS:
            raise InvalidRules(f"Rule {path} must be one of {', '.join(OUTSIDER_KINDS)}, not {value!r}.", path=path)
        return value
    if kind in ("positive", "natural", "weight"):
        if type(value) is not int or not (1 if kind == "positive" else 0) <= value <= _MAX_INT:
            need = "a positive integer" if kind == "positive" else "a non-negative integer"
            raise InvalidRules(f"Rule {path} must be {need}, not {value!r}.", path=path)
        return value
    if kind == "bool":
        if type(value) is not bool:
            raise InvalidRules(f"Rule {path} must be true or false, not {value!r}.", path=path)
        return value
    if kind == "roles":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        # Names of community roles pass here; apply_changes then checks they are declared.
        if type(value) is not list or not value or any(type(r) is not str or not _ROLE_NAME.fullmatch(r)
                                                       for r in value):
            raise InvalidRules(
                f"Rule {path} must be a non-empty list of roles from {', '.join(ROLES)} or roles.custom, "
                f"not {value!r}.",
                path=path,
            )
        return sorted(set(value))
    if kind == "role_names":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if type(value) is not list or any(type(r) is not str or not _ROLE_NAME.fullmatch(r) or r in ROLES
                                          for r in value):
            raise InvalidRules(f"Rule {path} must be a list of new role names (lower-case letters, digits, - "
                               f"and _, at most 32, not {', '.join(ROLES)}), not {value!r}.", path=path)
        return sorted(set(value))
    if kind == "fraction":
        return parse_fraction(path, value)
    if kind == "unit":
        if type(value) is not str or not 1 <= len(value) <= MAX_UNIT:
            raise InvalidRules(f"Rule {path} must be a unit of 1 to {MAX_UNIT} characters (e.g. \"EUR\"), "
                               f"not {value!r}.", path=path)
        return value
    raise InvalidRules(f"Rule {path} has an unknown type.")  # pragma: no cover


def parse_fraction(path: str, value: Any) -> dict[str, int]:
    """Accept ``{num, den}``, ``"num/den"``, ``"majority"`` or an integer percentage."""
    if value == "majority":
        return {"num": 1, "den": 2}
    if type(value) is int:
        num, den = value, 100
    elif isinstance(value, str) and "/" in value:
        left, _, right = value.partition("/")
        try:
            num, den = int(left), int(right)
        except ValueError:
            raise InvalidRules(f"Rule {path} must be a fraction like 2/3, not {value!r}.", path=path) from None
    elif isinstance(value, dict) and set(value) == {"num", "den"}:
        num, den = value["num"], value["den"]
    else:
        raise InvalidRules(
            f"Rule {path} must be a fraction ({{num, den}}, '2/3', a percentage or 'majority').",
            path=path,
        )
    if type(num) is not int or type(den) is not int or not 0 <= num < den <= 1_000_000:
        raise InvalidRules(f"Rule {path} must be a fraction num/den with 0 <= num < den.", path=path)
    return {"num": num, "den": den}


def _kind_of(path: str) -> str:
    kind = _SCHEMA.get(path)
    if kind is not None:
        return kind
    section, _, key = path.partition(".")
    if section == "values" and key in EQUATION_WORDS:
        raise InvalidRules(f"Rule {path} is not a contribution kind's weight: the value equation's settings are "
                           "equation.half_life (days), equation.review_cap (percent), equation.reference_share "
                           "and role_weights.<role>.", path=path)
    if section == "values" and key and "." not in key:
        return "weight"
    if section == "role_weights" and _ROLE_NAME.fullmatch(key):
        return "weight"
    if section == "pools" and _ROLE_NAME.fullmatch(key):
        return "unit"
    if section == "seats" and _ROLE_NAME.fullmatch(key):
        return "roles"  # seats.<role> = the class that elects who holds it (§2.5)
    raise InvalidRules(f"There is no rule '{path}'.", path=path)


# Rules maps are values: the state replaces its rules, never mutates them (records.VALUES).
# So what is a pure function of one rules map can be kept per map, by identity; each cache
# holds the map itself, so its id cannot be reused while the entry lives.  Bounded: cleared
# when full (a fold meets one rules map per adopted rule change).
_PER_RULES_MAX = 256
# Rules maps apply_changes built (hence checked): id -> the map.
_CHECKED: dict[int, dict[str, Any]] = {}
# (id of the rules, the changes' bytes) -> (the rules, the result): a rule proposal's changes
# are applied when it is proposed (to validate them) and again when it is adopted.
_APPLIED: dict[tuple[int, bytes], tuple[dict[str, Any], dict[str, Any]]] = {}
# id of the rules -> (the rules, act -> act_policy's answer).
_POLICIES: dict[int, tuple[dict[str, Any], dict[str, tuple[bool, list[str], dict[str, int], dict[str, int]]]]] = {}
# The sections whose rules name roles, and the rule declaring custom roles: a change to any
# other rule cannot make a checked map's roles undeclared.
_ROLE_SECTIONS = ("seats", "role_weights", "roles")


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _PER_RULES_MAX:
        cache.clear()
    cache[key] = value


def apply_changes(rules: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A new rules map with dotted-path ``changes`` applied and validated; ``rules`` is untouched.
    (The same rules and changes give the same map: the fold applies a rule proposal's
    changes when it is proposed and again when it is adopted, and gets the first result.)"""
    if type(changes) is not dict or not changes:
        raise InvalidRules("A rule change must change at least one rule.")
    try:
        key = (id(rules), marshal.dumps(changes))
    except ValueError:  # (a value marshal does not take, e.g. a link: not cached)
        key = None
    if key is not None:
        found = _APPLIED.get(key)
        if found is not None and found[0] is rules:
            return found[1]
    new = _apply_changes(rules, changes, checked=_CHECKED.get(id(rules)) is rules)
    _remember(_CHECKED, id(new), new)
    if key is not None:
        _remember(_APPLIED, key, (rules, new))
    return new


def _apply_changes(rules: dict[str, Any], changes: dict[str, Any], *, checked: bool) -> dict[str, Any]:
    """:func:`apply_changes` itself.  ``checked``: ``rules`` came out of it (so its roles are
    declared, and only a change to a rule naming or declaring roles can make them not)."""
    # Two levels deep is enough: leaf lists and fractions are replaced, never mutated.
    new = {section: dict(values) for section, values in rules.items()}
    roles_touched = not checked  # (then the whole result is checked)
    for path in sorted(changes):
        if type(path) is not str:
            raise InvalidRules("Rule names must be text.")
        kind = _kind_of(path)
        value = _check_value(path, kind, changes[path])
        section, _, key = path.partition(".")
        if section == "pools" and rules.get("pools", {}).get(key, value) != value:
            raise InvalidRules(f"Rule {path}: a pool's unit cannot change once declared (it is "
                               f"{rules['pools'][key]!r}).", path=path)
        if kind == "roles" or section in _ROLE_SECTIONS:
            roles_touched = True
        new.setdefault(section, {})[key] = value
    if roles_touched:
        _check_roles_declared(new)
    return new


def known_roles(rules: dict[str, Any]) -> tuple[str, ...]:
    """The built-in roles and the community's own (``roles.custom``)."""
    return (*ROLES, *rules.get("roles", {}).get("custom", ()))


# The rules whose value is a list of roles, as (section, key).
_ROLE_RULES = tuple(tuple(path.split(".", 1)) for path, kind in _SCHEMA.items() if kind == "roles")


def _roles_declared(rules: dict[str, Any], known: set[str]) -> bool:
    """True if :func:`_check_roles_declared` finds nothing at fault (the usual case, checked
    for every proposal and adoption), without building and sorting every rule's dotted name;
    False if it may (it then finds the first at fault)."""
    for section, values in rules.items():
        if "." in section:
            return False
        if section == "seats":
            for key, roles in values.items():
                if key not in known or key in ("member", "steward") or any(r not in known for r in roles):
                    return False
        elif section == "role_weights" and any(key not in known for key in values):
            return False
    for section, key in _ROLE_RULES:
        values = rules.get(section)
        if values is not None and key in values and any(r not in known for r in values[key]):
            return False
    return True


def _check_roles_declared(rules: dict[str, Any]) -> None:
    """Every role a rule names is built in or declared in ``roles.custom`` (checked on the
    whole result, in code-point order of the rules' dotted names, so the first at fault is
    the same everywhere)."""
    known = set(known_roles(rules))
    if _roles_declared(rules, known):
        return
    for path in sorted(f"{section}.{key}" for section, values in rules.items() for key in values):
        if (path.startswith("seats.") and path[6:] not in known) or path in ("seats.member", "seats.steward"):
            raise InvalidRules(f"Rule {path} names a seat that is not a role declared in roles.custom "
                               "(or reviewer).", path=path)
        if _SCHEMA.get(path) == "roles" or path.startswith("seats."):
            section, _, key = path.partition(".")
            unknown = [r for r in rules[section][key] if r not in known]
            if unknown:
                raise InvalidRules(f"Rule {path} names the role '{unknown[0]}', which is neither "
                                   f"{', '.join(ROLES)} nor declared in roles.custom.", path=path)
        if path.startswith("role_weights.") and path.partition(".")[2] not in known:
            raise InvalidRules(f"Rule {path} weighs the role '{path.partition('.')[2]}', which is neither "
                               f"{', '.join(ROLES)} nor declared in roles.custom.", path=path)


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML-style tables to dotted paths (fractions stay whole)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and set(value) != {"num", "den"}:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def rules_from_toml(doc: dict[str, Any] | None, *, membership: str | None = None) -> dict[str, Any]:
    """Defaults overlaid with a parsed TOML document (and the ``--membership`` flag)."""
    changes = flatten(doc or {})
    if membership is not None:
        changes["membership.policy"] = membership
    rules = default_rules()
    # (Not through apply_changes' caches: the caller owns this map, and may change it.)
    return _apply_changes(rules, changes, checked=False) if changes else rules


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line; values are typed by the rule they set."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidRules(f"'{text}' is not of the form key=value.")
    raw = raw.strip()
    kind = _kind_of(key)
    value: Any = raw
    if kind in ("positive", "natural", "weight"):
        try:
            value = int(raw)
        except ValueError:
            raise InvalidRules(f"Rule {key} must be an integer, not {raw!r}.") from None
    elif kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise InvalidRules(f"Rule {key} must be true or false, not {raw!r}.")
        value = raw.lower() == "true"
    elif kind == "fraction" and raw.isdigit():
        value = int(raw)
    return key, _check_value(key, kind, value)


UNLIMITED = 2**53


# Per governed act, the rule naming who may do it alone (spend and recovery: below).
_ALONE = {"admission": ("membership", "admitters"), "removal": ("sanctions", "roles"),
          "reinstatement": ("sanctions", "roles"), "role": ("roles", "roles"),
          "distribution": ("distribution", "roles"), "resource": ("resources", "roles"),
          "rules": ("rule_change", "roles"), "appeal": ("rule_change", "roles")}


def _alone(rules: dict[str, Any], act: str) -> list[str]:
    """Who may do ``act`` alone (read for that act only: every vote and proposal asks)."""
    if act == "spend":
        return treasury_roles(rules)
    if act == "recovery":
        return recovery_policy(rules)[0]
    section, key = _ALONE[act]
    return rules[section][key]  # type: ignore[no-any-return]


def act_policy(rules: dict[str, Any], act: str) -> tuple[bool, list[str], dict[str, int], dict[str, int]]:
    """``(needs a decision, electorate, threshold, quorum)`` for a governed act (§2.2).
    Defaults: no decision needed; the electorate is who may do the act alone; the threshold
    is the rule-change threshold; the quorum is ``decisions.quorum``.  (A pure function of
    the rules, asked by every proposal, vote and governed act: kept per rules map.  The
    lists and fractions returned are shared: read them, never change them.)"""
    held = _POLICIES.get(id(rules))
    if held is None or held[0] is not rules:
        held = (rules, {})
        _remember(_POLICIES, id(rules), held)
    found = held[1].get(act)
    if found is None:
        found = held[1][act] = _act_policy(rules, act)
    return found


def _act_policy(rules: dict[str, Any], act: str) -> tuple[bool, list[str], dict[str, int], dict[str, int]]:
    def get(section: str) -> Any:
        values = rules.get(section, {})
        return values.get(act) if isinstance(values, dict) else None

    alone = _alone(rules, act)
    if act in ("rules", "appeal"):  # (nobody appeals alone: always a decision)
        return (True, alone if act == "rules" else get("electorate") or alone,
                get("threshold") or rules["rule_change"]["threshold"], get("quorum") or decision_policy(rules)[1])
    # A recovery decided by vote passes, by default, with the recovery's own threshold (§1.3).
    default = recovery_policy(rules)[1] if act == "recovery" else rules["rule_change"]["threshold"]
    return (get("decide") is True, get("electorate") or alone, get("threshold") or default,
            get("quorum") or decision_policy(rules)[1])
NO_QUORUM: dict[str, int] = {"num": 0, "den": 1}


def seat_electorate(rules: dict[str, Any], role: str) -> list[str] | None:
    """The class that elects whoever holds the seat ``role`` (``seats.<role>``, §2.5), or None
    if the role is not a seat."""
    section = rules.get("seats", {})
    electors = section.get(role) if isinstance(section, dict) else None
    return list(electors) if electors else None


def treasury_roles(rules: dict[str, Any]) -> list[str]:
    """Who records payments into a pool for others and spends from one alone (§8):
    ``treasury.roles``, else ``distribution.roles``."""
    section = rules.get("treasury", {})
    roles = section.get("roles") if isinstance(section, dict) else None
    return list(roles) if roles else list(rules["distribution"]["roles"])


def pools(rules: dict[str, Any]) -> dict[str, str]:
    """The pools the rules declare: name -> unit (empty: the commons holds no pools)."""
    section = rules.get("pools", {})
    return dict(section) if isinstance(section, dict) else {}


def decision_policy(rules: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """``(deadline seconds, quorum)`` for new proposals: 0 and no quorum when unset."""
    section = rules.get("decisions", {})
    section = section if isinstance(section, dict) else {}
    return section.get("deadline", 0), section.get("quorum", NO_QUORUM)


def recovery_policy(rules: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """``(roles, threshold)``: who approves binding a new key to a member who lost every
    device, and the fraction of them needed (``yes * den > eligible * num``).  Default: a
    majority of the stewards."""
    section = rules.get("recovery", {})
    section = section if isinstance(section, dict) else {}
    return section.get("roles", ["steward"]), section.get("threshold", {"num": 1, "den": 2})


def outsider_policy(rules: dict[str, Any]) -> tuple[str, int]:
    """``(allowed, max_entries)``: which of a non-member's entries a node stores ("join":
    joins only; "any": whatever they write) and how many of them, counted from seq 1.

    Defaults: where non-members' contributions take effect (open membership and
    ``contribution.policy = "anyone"``, the defaults) "any" and no limit (their entries that
    wait for missing parents are still bounded by the node, see p2pcommons.outsiders);
    otherwise (an invite or approval commons, or contributions by members only) "join" and
    1 entry, their join, which must stay storable so that it can be admitted.
    """
    section = rules.get("outsiders", {})
    section = section if isinstance(section, dict) else {}
    membership = rules.get("membership", {}).get("policy", "open")
    contribution = rules.get("contribution", {}).get("policy", "anyone")
    open_to_all = membership == "open" and contribution == "anyone"
    allowed = section.get("allowed", "any" if open_to_all else "join")
    if allowed not in OUTSIDER_KINDS:
        allowed = "join"
    default_max = UNLIMITED if allowed == "any" else 1
    max_entries = section.get("max_entries", default_max)
    if type(max_entries) is not int or max_entries < 0:
        max_entries = default_max
    return allowed, max_entries


def validate_rules(rules: Any) -> dict[str, Any]:
    """Validate a full rules map as found in a genesis body: defaults fill what is absent."""
    if rules is None:
        return default_rules()
    if type(rules) is not dict:
        raise InvalidRules("The rules must be a map.")
    return rules_from_toml(rules)
