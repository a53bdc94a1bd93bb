"""The genesis: the commons' info, initial rules, founders and resources (protocols/commons.md §1, §2).

Unlike the other kinds it starts from no state: :func:`found` returns the first state, and
the reason the genesis is invalid ("" if it is valid; an invalid genesis leaves a state with
what was read so far, and every later entry is rejected).
"""

from __future__ import annotations

from ...dagcbor import CID, encode
from ...entry import Entry
from .. import rules as rules_mod
from ..records import Member, State
from ..rules import InvalidRules
from .common import MAX_TEXT, resource_spec
from .view import Rejected


def found(entry: Entry) -> tuple[State, str]:
    state = State()
    body = entry.body
    try:
        state.rules = rules_mod.validate_rules(body.get("rules"))
        info = {}
        for field in ("name", "description", "license"):
            value = body.get(field, "")
            if type(value) is not str or len(value) > MAX_TEXT:
                raise InvalidRules(f"The genesis {field} must be text of at most {MAX_TEXT} characters.")
            info[field] = value
        state.info = info
        founders = body.get("stewards", [entry.author])
        if type(founders) is not list or not founders or any(
                type(f) is not bytes or len(f) != 32 for f in founders):
            raise InvalidRules("The genesis stewards must be a non-empty list of 32-byte author keys.")
        grants = (("reviewer", entry.id), ("steward", entry.id))
        for founder in sorted(set(founders)):
            name = body.get("founder_name", "") if founder == entry.author else ""
            state.members[founder] = Member(name if type(name) is str else "", ("member", "reviewer", "steward"),
                                            grants, "active", entry.id, 0, ((0, "active"),))
        resources = body.get("resources", [])
        if type(resources) is not list:
            raise InvalidRules("The genesis resources must be a list.")
        for spec in resources:
            state.resources[CID.of(encode(spec))] = resource_spec(spec)
    except (InvalidRules, Rejected) as error:
        return state, str(error)
    return state, ""
