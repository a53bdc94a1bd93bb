"""The genesis: the commons' info, initial rules, founders and resources (protocols/commons.md §1, §2).

Unlike the other kinds it starts from no state: :func:`found` returns the first state, the
*path* of the genesis' first invalid part ("" if it is valid) and the reason in English.  The
path, not the English, goes into the state (``invalid``, protocols/commons.md §5), so another
implementation can reproduce the state hash without copying our messages; an invalid
genesis leaves a state with what was read so far, and every later entry is rejected.
"""

from __future__ import annotations

from ...dagcbor import CID, encode
from ...entry import Entry
from .. import rules as rules_mod
from ..records import Member, State
from ..rules import InvalidRules
from .common import MAX_TEXT, resource_spec
from .view import Rejected


def found(entry: Entry) -> tuple[State, str, str]:
    """The first state, the invalid part's path ("" when valid) and the reason (English).

    Parts are checked in this order, and the first invalid one is reported: ``rules`` (the
    map as a whole, or ``rules.<rule>`` for the first invalid rule in code-point order of
    its dotted name), ``name``, ``description``, ``license``, ``stewards``, ``resources``
    (not a list) or ``resources.<index>`` (the first invalid resource map, from 0)."""
    state = State()
    body = entry.body
    part = "rules"
    try:
        try:
            state.rules = rules_mod.validate_rules(body.get("rules"))
        except InvalidRules as error:
            raise InvalidRules(str(error), path=f"rules.{error.path}" if error.path else "rules") from None
        info = {}
        for field in ("name", "description", "license"):
            part = field
            value = body.get(field, "")
            if type(value) is not str or len(value) > MAX_TEXT:
                raise InvalidRules(f"The genesis {field} must be text of at most {MAX_TEXT} characters.")
            info[field] = value
        state.info = info
        part = "stewards"
        founders = body.get("stewards", [entry.author])
        if type(founders) is not list or not founders or any(
                type(f) is not bytes or len(f) != 32 for f in founders):
            raise InvalidRules("The genesis stewards must be a non-empty list of 32-byte author keys.")
        grants = (("reviewer", entry.id), ("steward", entry.id))
        for founder in sorted(set(founders)):
            name = body.get("founder_name", "") if founder == entry.author else ""
            state.members[founder] = Member(name if type(name) is str else "", ("member", "reviewer", "steward"),
                                            grants, "active", entry.id, 0, ((0, "active"),))
        part = "resources"
        resources = body.get("resources", [])
        if type(resources) is not list:
            raise InvalidRules("The genesis resources must be a list.")
        for index, spec in enumerate(resources):
            part = f"resources.{index}"
            state.resources[CID.of(encode(spec))] = resource_spec(spec)
    except InvalidRules as error:
        return state, error.path or part, str(error)
    except Rejected as error:
        return state, part, str(error)
    return state, "", ""
