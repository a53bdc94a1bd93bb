"""The data behind the dashboard and the API, read from the same state views the CLI prints
(``CommonsState.summary``, ``members``, the contributions table, ``decisions``, ``ledger``)
and shaped as the CLI's ``--json`` shapes them (``state``, ``members``, ``contributions``,
``proposals``, ``ledger``: same keys, members as author ids), so the two can share one
schema.  Each function takes a store and runs in the daemon's store thread; none writes."""

from __future__ import annotations

from typing import Any

from p2pcommons.dagcbor import CID
from p2pcommons.identity import author_id_text
from p2pcommons.state.engine import current_state
from p2pcommons.store import Store


def who(hex_key: str) -> str:
    return author_id_text(bytes.fromhex(hex_key))


def held(store: Store) -> list[dict[str, Any]]:
    """Every commons this node holds: id, name, state hash, members and entries."""
    out = []
    for cid in store.commons_ids():
        s = current_state(store, cid).summary()
        out.append({"id": s["commons"], "name": s["name"], "state_hash": s["state_hash"],
                    "members": s["members"], "entries": s["entries"]})
    return out


def state(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc state --json``."""
    st = current_state(store, commons)
    data: dict[str, Any] = st.summary()
    stable = data["stable"]
    data["stable"] = {**stable, "frontier": {who(k): v for k, v in stable["frontier"].items()},
                      "held_back_by": [who(k) for k in stable["held_back_by"]],
                      "retired": [who(k) for k in stable["retired"]]}
    data["proposals"] = {cid: {**p, "author": who(p["author"]), "yes": len(p["yes"]), "no": len(p["no"])}
                         for cid, p in st.canonical.get("proposals", {}).items()}
    data["pending_joins"] = len(st.canonical.get("joins", {}))
    return data


def members(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc members --json``."""
    st = current_state(store, commons)
    rows = [{"author": who(k), "name": m["name"], "roles": m["roles"], "status": m["status"],
             "since": m["since"], "warnings": m["warnings"]} for k, m in sorted(st.members.items())]
    return {"commons": str(commons), "members": rows}


def contributions(store: Store, commons: CID, me: bytes) -> dict[str, Any]:
    """As ``p2pc contributions --json``, plus ``my_verdict`` (this node's review, if any)."""
    st = current_state(store, commons)
    mine = me.hex()
    rows = []
    for entry_id, c in sorted(st.canonical.get("contributions", {}).items()):
        verdict = "accept" if mine in c["accepts"] else "reject" if mine in c["rejects"] else None
        rows.append({"id": entry_id, "author": who(c["author"]), "title": c["title"], "kind": c["kind"],
                     "ref": c["ref"], "claimed": c["claimed"], "value": c["value"], "status": c["status"],
                     "accepts": [who(a) for a in c["accepts"]], "rejects": [who(a) for a in c["rejects"]],
                     "outside": c["outside"], "my_verdict": verdict})
    return {"commons": str(commons), "contributions": rows}


def proposals(store: Store, commons: CID, me: bytes) -> dict[str, Any]:
    """As ``p2pc proposals --json`` (tallies from the fold), plus ``my_vote``."""
    st = current_state(store, commons)
    names = {k: m["name"] for k, m in st.members.items()}
    mine = me.hex()
    rows = []
    for row in st.decisions():
        out = dict(row)
        out["author"] = who(row["author"])
        out["my_vote"] = next((side for side in ("yes", "no", "abstain") if mine in row[side]), None)
        for side in ("yes", "no", "abstain"):
            out[side] = [who(k) for k in row[side]]
        if row["action"] and "member" in row["action"]:
            out["action"] = {**row["action"], "member": who(row["action"]["member"])}
        out["tally"] = {"yes": len(row["yes"]), "no": len(row["no"]), "abstain": len(row["abstain"])}
        out["names"] = {who(k): n for k, n in names.items() if n}
        rows.append(out)
    return {"commons": str(commons), "proposals": rows}


def ledger(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc ledger --json``."""
    st = current_state(store, commons)
    rows = [{**row, "author": who(row["author"]), "share_percent": f"{row['share_bp'] / 100:.2f}"}
            for row in st.ledger()]
    distributions = [{**d, "shares": {who(k): v for k, v in d["shares"].items()}}
                     for d in st.canonical.get("distributions", [])]
    return {"commons": str(commons), "ledger": rows, "distributions": distributions}


def resources(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc resource list --json`` (``used``: per member, over all periods)."""
    st = current_state(store, commons)
    rows = [{"id": str(c), "name": r.name, "rivalrous": r.rivalrous, "quota": r.quota, "period": r.period,
             "unit": r.unit, "used": {who(k): v for k, v in st.usage(c).items()}}
            for c, r in sorted(st.resources().items(), key=lambda kv: kv[1].name)]
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


__all__ = ["contributions", "held", "history", "ledger", "members", "names", "proposals", "resources", "state", "who"]
