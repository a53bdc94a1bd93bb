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

from p2pcommons.dagcbor import CID, link
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


def state_of(st: Any, *, proposals: bool = True) -> dict[str, Any]:
    """``p2pc state --json`` of a folded state (``--full``: with ``proposals``): the summary
    with author ids as z6Mk… text and every count named as one (``member_count``, not
    ``members``: docs/json.md).  Defined in :mod:`p2pcommons.state.tables`, which keeps it."""
    from p2pcommons.tables import state_document

    return state_document(st, proposals=proposals)


def state(store: Store, commons: CID, *, full: bool = True) -> dict[str, Any]:
    """As ``p2pc state --full --json`` (without ``full``: as ``p2pc state --json``)."""
    return state_of(current_state(store, commons), proposals=full)


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
    ids: dict[bytes, str] = {}  # author ids, each encoded once (a commons has few authors, many rows)

    def text(key: bytes) -> str:
        found = ids.get(key)
        if found is None:
            found = ids[key] = author_id_text(key)
        return found

    for cid, c in st.contribution_records():  # the records, not the canonical state: O(rows) strings
        if status is not None and c.status != status:
            continue
        entry_id = str(cid)
        row: dict[str, Any] = {
            "id": entry_id, "time": c.time or _entry_time(store, entry_id), "author": text(c.author),
            "title": c.title, "kind": c.kind, "ref": c.ref, "claimed": c.claimed, "value": c.value,
            "status": c.status, "accepts": [text(a) for a in sorted(c.accepts)],
            "rejects": [text(a) for a in sorted(c.rejects)], "outside": c.outside}
        if me is not None:
            row["my_verdict"] = "accept" if me in c.accepts else "reject" if me in c.rejects else None
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
    """As ``p2pc ledger --json``: the ledger, the distributions, and ``series`` — each
    member's value over time (:func:`ledger_series`), which the dashboard draws."""
    st = current_state(store, commons)
    rows = [{"author": who(row["author"]), "name": row["name"], "accepted_count": row["accepted"],
             "value": row["value"], "share_bp": row["share_bp"], "share_percent": round(row["share_bp"] / 100, 2),
             "paid_to_date": row["paid"], "acknowledged_to_date": row["acknowledged"]}
            for row in st.ledger()]
    distributions = [{**d, "shares": {who(k): v for k, v in d["shares"].items()},
                      **({"acknowledged": [who(k) for k in d["acknowledged"]]} if "acknowledged" in d else {})}
                     for d in st.canonical.get("distributions", [])]
    return {"commons": str(commons), "ledger": rows, "distributions": distributions,
            "series": ledger_series(store, st)}


def _deciding_reviews(store: Store, st: Any, accepted: dict[str, bytes]) -> dict[str, Any]:
    """Contribution id -> the review entry that accepted it: among the applied ``accept``
    reviews of it by the key that gave its last accept (the one that met ``review.accepts``),
    the latest in that key's log (after an appeal reopened it, the same key may have
    accepted it twice; its own log orders the two)."""
    found: dict[str, Any] = {}
    for entry in store.iter_entries(st.commons, kind="review"):
        body = entry.body if isinstance(entry.body, dict) else {}
        try:
            key: str | None = str(link(body.get("contribution")))
        except Exception:  # not a link: that review had no effect
            key = None
        if key is None or accepted.get(key) != entry.author or body.get("verdict") != "accept":
            continue
        outcome = st.outcome(entry.id)
        if outcome is None or outcome.status != "applied":
            continue
        best = found.get(key)
        if best is None or (entry.seq, entry.id.raw) > (best.seq, best.id.raw):
            found[key] = entry
    return found


def ledger_series(store: Store, st: Any) -> list[dict[str, Any]]:
    """Each member's accepted value over time, derived from the state alone: for every
    contribution accepted in it, the point (time of the review that accepted it — an
    entry's signed time, never before its causal past: commons.md §2.4 — , the member's
    value so far).  Points are in ``(time, contribution id)`` order, so every node holding
    the same entries draws the same chart, and each member's last point is their value in
    the ledger (a contribution an appeal reopened is not in it, before or after).  One
    series per member in the ledger, ordered as the ledger is."""
    canonical = st.canonical.get("contributions", {})
    accepted = {cid: bytes.fromhex(c["accepts"][-1]) for cid, c in canonical.items()
                if c["status"] == "accepted" and c["accepts"]}
    reviews = _deciding_reviews(store, st, accepted)
    events = sorted((int(reviews[cid].time) if cid in reviews else 0, cid) for cid in accepted)
    names = {k: m["name"] for k, m in st.members.items()}
    series: dict[str, dict[str, Any]] = {}
    for row in st.ledger():  # the ledger's order, and only its members
        series[row["author"]] = {"author": who(row["author"]), "name": row["name"] or names.get(row["author"], ""),
                                 "points": []}
    totals: dict[str, int] = {}
    for time, cid in events:
        c = canonical[cid]
        member = st.member_of(bytes.fromhex(c["author"])).hex()
        if member not in series:
            continue
        totals[member] = totals.get(member, 0) + c["value"]
        series[member]["points"].append({"time": time, "value": totals[member], "contribution": cid})
    return list(series.values())


def explain(store: Store, commons: CID, member: bytes, at: int | None = None) -> dict[str, Any]:
    """As ``p2pc ledger --explain MEMBER --json``: why a member gets what they get (§9)."""
    doc = current_state(store, commons).explain(member, at)
    doc["member"] = who(doc["member"])
    return {"commons": str(commons), **doc}


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


def _party(text: str) -> str:
    """A flow's party as an author id when it is a member's key (hex), else the payer's
    own words (a grant's funder, a company); empty for a distribution (the contributors)."""
    if len(text) == 64:
        try:
            return who(text)
        except ValueError:
            return text
    return text


def _books(st: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    canonical = st.canonical
    flows = [{**f, "party": _party(f["party"])} for f in canonical.get("flows", [])]
    return dict(canonical.get("pools", {})), flows


def pools(store: Store, commons: CID) -> dict[str, Any]:
    """As ``p2pc pool list --json``: each pool the rules declare, its balance (as the fold
    computed it, never re-summed here) and what was paid in and out of it in all."""
    declared, flows = _books(current_state(store, commons))
    rows = [{"name": name, "unit": p["unit"], "balance": p["balance"],
             "paid_in": sum(f["amount"] for f in flows if f["pool"] == name and f["flow"] == "in"),
             "paid_out": sum(f["amount"] for f in flows if f["pool"] == name and f["flow"] == "out")}
            for name, p in sorted(declared.items())]
    return {"commons": str(commons), "pools": rows}


def pool(store: Store, commons: CID, name: str) -> dict[str, Any]:
    """As ``p2pc pool show NAME --json``: the pool's balance and every movement in and out
    of it in fold order (the open book), each with the balance after it."""
    from p2pcommons.errors import NotFound

    declared, flows = _books(current_state(store, commons))
    if name not in declared:
        raise NotFound(f"No pool '{name}' in this commons.")
    return {"commons": str(commons), "name": name, **declared[name], "flows": [f for f in flows if f["pool"] == name]}


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


__all__ = ["contributions", "decision", "explain", "held", "history", "ledger", "ledger_series", "members", "names",
           "pool", "pools", "proposals", "resources", "state", "state_of", "who"]
