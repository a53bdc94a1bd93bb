"""The one source of the commons' data as ``p2pc --json`` prints it and the dashboard's API
serves it (docs/json.md, docs/json-schema.json): ``state``, ``members``, ``ledger``,
``contributions``, ``proposals`` and ``resource list`` build their ``data`` here, and so
do the API's routes, so the two cannot drift apart.  The API adds only what depends on who
asks (``my_verdict``, ``my_vote``).  Each function reads the state views
(``CommonsState.summary``, ``members``, ``ledger``, ``decisions``, ``resources``) through a
store and writes nothing; the daemon calls them in its store thread.  This module imports
nothing of the web stack, so local commands stay light."""

from __future__ import annotations

import time as _time
from typing import Any

from p2pcommons.dagcbor import CID
from p2pcommons.identity import author_id_text
from p2pcommons.state.engine import current_state
from p2pcommons.store import Store


def who(hex_key: str) -> str:
    """A member key as the state holds it (hex) -> its author id (z6Mk…)."""
    return author_id_text(bytes.fromhex(hex_key))


def held(store: Store) -> list[dict[str, Any]]:
    """Every commons this node holds: id, name, state hash, member and entry counts."""
    out = []
    for cid in store.commons_ids():
        s = current_state(store, cid).summary()
        out.append({"id": s["commons"], "name": s["name"], "state_hash": s["state_hash"],
                    "member_count": s["members"], "entry_count": s["entries"]})
    return out


def state_of(st: Any) -> dict[str, Any]:
    """``p2pc state --json`` of a folded state: the summary with author ids as z6Mk… text
    and every count named as one (``member_count``, not ``members``: docs/json.md)."""
    summary: dict[str, Any] = st.summary()
    stable = summary["stable"]
    return {
        "commons": summary["commons"],
        "name": summary["name"],
        "state_hash": summary["state_hash"],
        "valid": summary["valid"],
        "entry_count": summary["entries"],
        "waiting_count": summary["waiting"],
        "member_count": summary["members"],
        "pending_join_count": len(st.canonical.get("joins", {})),
        "contribution_counts": summary["contributions"],
        "rules": summary["rules"],
        "stable": {
            "stable_entry_count": stable["stable_entries"],
            "tentative_entry_count": stable["tentative_entries"],
            "frontier": {who(k): v for k, v in stable["frontier"].items()},
            "held_back_by": [who(k) for k in stable["held_back_by"]],
            "retired": [who(k) for k in stable["retired"]],
        },
        "proposals": {
            cid: {**{k: v for k, v in p.items() if k not in ("yes", "no")},
                  "author": who(p["author"]), "yes_count": len(p["yes"]), "no_count": len(p["no"])}
            for cid, p in st.canonical.get("proposals", {}).items()
        },
    }


def state(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc state --json``."""
    return state_of(current_state(store, commons))


def members(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc members --json``: each member with its keys (a fork or a revocation costs
    that key, not the member: commons.md §1.2)."""
    st = current_state(store, commons)
    rows = []
    for k, m in sorted(st.members.items()):
        keys = st.keys_of(bytes.fromhex(k))
        rows.append({
            "author": who(k), "name": m["name"], "roles": m["roles"], "status": m["status"], "since": m["since"],
            "warning_count": m["warnings"],
            "keys": [{"author": author_id_text(x["key"]), "own": x["own"], "status": x["status"],
                      "forked_at": x["forked_at"]} for x in keys],
        })
    return {"commons": str(commons), "members": rows}


def _entry_time(store: Store, entry_id: str) -> int:
    found = store.get(CID.parse(entry_id))
    return int(found.time) if found is not None else 0


def contributions(store: Store, commons: CID, me: bytes | None = None, status: str | None = None) -> dict[str, Any]:
    """As ``p2pc contributions --json`` (oldest first; only ``status`` ones if given); with
    ``me`` (the API), each row also has ``my_verdict``: that key's review, if any."""
    st = current_state(store, commons)
    rows = []
    for entry_id, c in st.canonical.get("contributions", {}).items():
        if status is not None and c["status"] != status:
            continue
        row: dict[str, Any] = {
            "id": entry_id, "time": _entry_time(store, entry_id), "author": who(c["author"]), "title": c["title"],
            "kind": c["kind"], "ref": c["ref"], "claimed": c["claimed"], "value": c["value"], "status": c["status"],
            "accepts": [who(a) for a in c["accepts"]], "rejects": [who(a) for a in c["rejects"]],
            "outside": c["outside"]}
        if me is not None:
            mine = me.hex()
            row["my_verdict"] = "accept" if mine in c["accepts"] else "reject" if mine in c["rejects"] else None
        rows.append(row)
    rows.sort(key=lambda row: (row["time"], row["id"]))  # oldest first, as they were made
    return {"commons": str(commons), "contributions": rows}


def decision(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """One decision of the fold (``CommonsState.decisions``) as --json shows it: members as
    author ids, the tally, and the names of the members who have one."""
    out = dict(row)
    out["author"] = who(row["author"])
    for side in ("yes", "no", "abstain"):
        out[side] = [who(k) for k in row[side]]
    if row["action"] and "member" in row["action"]:
        out["action"] = {**row["action"], "member": who(row["action"]["member"])}
    out["tally"] = {"yes": len(row["yes"]), "no": len(row["no"]), "abstain": len(row["abstain"])}
    out["names"] = {who(k): n for k, n in names.items() if n}
    return out


def proposals(store: Store, commons: CID, me: bytes | None = None, only_open: bool = False) -> dict[str, Any]:
    """As ``p2pc proposals --json`` (tallies from the fold; only open ones if asked); with
    ``me`` (the API), each row also has ``my_vote``."""
    st = current_state(store, commons)
    names = {k: m["name"] for k, m in st.members.items()}
    rows = []
    for row in st.decisions():
        if only_open and row["status"] != "open":
            continue
        out = decision(row, names)
        if me is not None:
            mine = me.hex()
            out["my_vote"] = next((side for side in ("yes", "no", "abstain") if mine in row[side]), None)
        rows.append(out)
    return {"commons": str(commons), "proposals": rows}


def ledger(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc ledger --json``."""
    st = current_state(store, commons)
    rows = [{"author": who(row["author"]), "name": row["name"], "accepted_count": row["accepted"],
             "value": row["value"], "share_bp": row["share_bp"], "share_percent": round(row["share_bp"] / 100, 2)}
            for row in st.ledger()]
    distributions = [{**d, "shares": {who(k): v for k, v in d["shares"].items()}}
                     for d in st.canonical.get("distributions", [])]
    return {"commons": str(commons), "ledger": rows, "distributions": distributions}


def resources(store: Store, commons: CID, me: bytes | None = None, now: int | None = None) -> dict[str, Any]:
    """As ``p2pc resource list --json``: ``used`` per member over all periods, and what is
    left in the period ``now`` (ms; default the clock) falls in — ``mine`` for ``me``, None
    when there is no key (a locked one) or no quota."""
    now = int(_time.time() * 1000) if now is None else now
    st = current_state(store, commons)
    canonical = st.canonical["resources"]
    rows = []
    for c, r in sorted(st.resources().items(), key=lambda kv: kv[1].name):
        period = now // (r.period * 1000) if r.period else 0
        this = canonical.get(str(c), {}).get("used", {}).get(str(period), {})
        rows.append({
            "id": str(c), "name": r.name, "rivalrous": r.rivalrous, "quota": r.quota, "period": r.period,
            "unit": r.unit, "capacity": r.capacity, "closed": r.closed,
            "used": {who(k): v for k, v in st.usage(c).items()},
            "used_this_period": sum(this.values()),
            "left_this_period": {
                "mine": None if not (r.rivalrous and r.quota and me) else r.quota - this.get(me.hex(), 0),
                "whole_commons": None if not r.capacity else r.capacity - sum(this.values()),
            },
        })
    return {"commons": str(commons), "resources": rows}


def history(store: Store, commons: CID, limit: int = 200) -> dict[str, Any]:
    """The last ``limit`` entries in arrival order, newest first, each with what it did in
    the fold (``status``, ``reason``) and, for proposals, their decision; ``rule_change``
    marks rule proposals the commons adopted.  Holds at most ``limit`` entries at once."""
    from collections import deque

    st = current_state(store, commons)
    decided = {d["id"]: d["status"] for d in st.decisions()}
    last = deque(store.iter_entries(commons), maxlen=limit)
    rows = []
    for entry in reversed(last):
        outcome = st.outcome(entry.id)
        body = entry.body if isinstance(entry.body, dict) else {}
        title = body.get("title") or body.get("name") or ""
        decision = decided.get(str(entry.id))
        rows.append({"id": str(entry.id), "author": author_id_text(entry.author), "seq": entry.seq,
                     "kind": entry.kind, "time": entry.time, "title": title if isinstance(title, str) else "",
                     "status": outcome.status if outcome else None, "reason": outcome.reason if outcome else "",
                     "decision": decision,
                     "rule_change": entry.kind == "rule_proposal" and decision == "adopted"})
    return {"commons": str(commons), "entries": rows}


def names(store: Store, commons: CID) -> dict[str, str]:
    """Author id -> member name, for pages."""
    return {who(k): m["name"] for k, m in current_state(store, commons).members.items() if m["name"]}


__all__ = ["contributions", "decision", "held", "history", "ledger", "members", "names", "proposals", "resources",
           "state", "state_of", "who"]
