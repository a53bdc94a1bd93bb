"""The commons state machine: a pure fold of the entry set (see protocols/commons.md).

What callers use:

* :func:`fold` (pure): entries -> :class:`CommonsState` (``state_hash``, ``summary()``,
  ``outcome(id)``, ``ledger()``…).
* :func:`genesis_body`: the body of a genesis entry from ``p2pc commons create`` flags/TOML.
* :func:`pending_admissions`: joins a member node should admit automatically.
* :mod:`p2pcommons.state.engine` (store-backed): ``current_state``, ``verify_state``.

How it is built (DESIGN.md §2, "The kernel"):

* :mod:`.records` — the state's records, declared once with their checkpoint rows and their
  canonical encoding (what the state hash covers);
* :mod:`.handlers` — one module per family of entry kinds (membership, sanctions,
  contributions, rules_votes, resources, distributions; genesis), each handler a function of
  the state at the entry's position, the entry, and :class:`.handlers.view.View` (the causal
  facts it may ask about), registered in one table (``handlers.KINDS``);
* :mod:`.fold` — the replayer: causal facts per entry (:mod:`.positions`), order, snapshots,
  restores, strong-removal restarts, eviction to an archive (:mod:`.archiving`); it knows
  no entry kind;
* :mod:`.views` — query views (:class:`CommonsState`) for the CLI and the daemon;
* :mod:`.engine`, :mod:`.checkpoint`, :mod:`.archive` — keeping a live fold fed from the
  store, persisted and resumable.

To add an entry kind, read :mod:`.handlers` (its docstring says the steps), one family
module (e.g. :mod:`.handlers.resources`), :mod:`.handlers.view` and :mod:`.records`.
"""

from __future__ import annotations

from typing import Any

from .fold import APPLIED, PENDING, REJECTED, WAITING, Folder, compute_shares
from .rules import InvalidRules, default_rules, parse_assignment, rules_from_toml, validate_rules
from .views import CommonsState, Outcome, fold


def current_state(store: Any, commons: Any, *, persist: bool | None = None) -> CommonsState:
    """See :func:`p2pcommons.state.engine.current_state` (imported lazily: the pure fold
    does not need the store)."""
    from .engine import current_state as _current_state

    return _current_state(store, commons, persist=persist)


def verify_state(store: Any, commons: Any) -> str:
    """See :func:`p2pcommons.state.engine.verify_state`."""
    from .engine import verify_state as _verify_state

    return _verify_state(store, commons)


def genesis_body(
    name: str,
    description: str = "",
    license: str = "",
    rules: dict[str, Any] | None = None,
    membership: str | None = None,
    founders: list[bytes] | None = None,
    resources: list[dict[str, Any]] | None = None,
    founder_name: str = "",
    **_ignored: Any,
) -> dict[str, Any]:
    """Build and validate a genesis body, so a commons can never be founded with rules
    other nodes would refuse.  ``rules`` is a parsed TOML document (nested tables)."""
    body: dict[str, Any] = {
        "name": name,
        "description": description,
        "license": license,
        "rules": rules_from_toml(rules, membership=membership),
    }
    if founders:
        body["stewards"] = sorted(set(founders))
    if resources:
        body["resources"] = resources
    if founder_name:
        body["founder_name"] = founder_name
    return body


def pending_admissions(state: CommonsState, me: bytes) -> list[Any]:
    """Joins that ``me`` should admit now: the commons is open, ``me`` is an active member
    allowed to admit, and has not approved them yet.  Sorted by id for determinism."""
    rules = state.rules
    policy = rules.get("membership", {})
    if policy.get("policy") != "open":
        return []
    member = state.member_info(me)
    if member is None or member.status != "active":
        return []
    admitters = policy.get("admitters", ["member"])
    if not any(r in member.roles for r in admitters):
        return []
    result = []
    for cid, join in sorted(state.pending_joins().items(), key=lambda kv: kv[0].raw):
        if me not in join.approvals and join.author != me:
            result.append(cid)
    return result


__all__ = [
    "APPLIED", "PENDING", "REJECTED", "WAITING", "CommonsState", "Folder", "InvalidRules", "Outcome",
    "compute_shares", "current_state", "default_rules", "fold", "genesis_body", "parse_assignment",
    "pending_admissions", "rules_from_toml", "validate_rules", "verify_state",
]
