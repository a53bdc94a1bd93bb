"""The commons' books for other tools (docs/export.md): ValueFlows JSON-LD and CSV.

An accountant's spreadsheet or another economic tool cannot read the fold; it can read
ValueFlows (the REA vocabulary of economic events, https://w3id.org/valueflows/ont/vf#)
and CSV.  Both are written here from the folded state alone — the pools, every movement in
and out of them, each distribution with its shares, and the accepted contributions — plus
each entry's signed time, which its id fixes.  So the same state always gives the same
bytes (a property test checks it), whichever node exports it: two members can compare an
export by its hash.

Pure functions on plain data (``CommonsState.canonical`` and entry times): no store, no I/O.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .identity import author_id_text

VF = "https://w3id.org/valueflows/ont/vf#"
FORMATS = ("valueflows", "csv")

# Every term the export uses, each a ValueFlows term (tests/test_export.py checks each one
# against the published vocabulary's term list, tests/data/valueflows-vocabulary.txt).
# Inline in every document, so a reader needs no network to expand it.
CONTEXT: dict[str, Any] = {
    "vf": VF,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "Organization": "vf:Organization",
    "Agent": "vf:Agent",
    "Agreement": "vf:Agreement",
    "Commitment": "vf:Commitment",
    "EconomicEvent": "vf:EconomicEvent",
    "EconomicResource": "vf:EconomicResource",
    "Measure": "vf:Measure",
    "Unit": "vf:Unit",
    "name": "vf:name",
    "note": "vf:note",
    "label": "vf:label",
    "symbol": "vf:symbol",
    "action": {"@id": "vf:action", "@type": "@id"},
    "provider": {"@id": "vf:provider", "@type": "@id"},
    "receiver": {"@id": "vf:receiver", "@type": "@id"},
    "inScopeOf": {"@id": "vf:inScopeOf", "@type": "@id"},
    "primaryAccountable": {"@id": "vf:primaryAccountable", "@type": "@id"},
    "resourceInventoriedAs": {"@id": "vf:resourceInventoriedAs", "@type": "@id"},
    "toResourceInventoriedAs": {"@id": "vf:toResourceInventoriedAs", "@type": "@id"},
    "realizationOf": {"@id": "vf:realizationOf", "@type": "@id"},
    "clauseOf": {"@id": "vf:clauseOf", "@type": "@id"},
    "hasUnit": {"@id": "vf:hasUnit", "@type": "@id"},
    "hasNumericalValue": "vf:hasNumericalValue",
    "resourceQuantity": "vf:resourceQuantity",
    "effortQuantity": "vf:effortQuantity",
    "accountingQuantity": "vf:accountingQuantity",
    "resourceClassifiedAs": "vf:resourceClassifiedAs",
    "hasPointInTime": {"@id": "vf:hasPointInTime", "@type": "xsd:dateTime"},
    "created": {"@id": "vf:created", "@type": "xsd:dateTime"},
}

VALUE_UNIT = "value"  # the unit of a contribution's accepted value (the commons' value points)

# CSV tables: file name -> columns, in order (docs/export.md documents each column).
TABLES: dict[str, tuple[str, ...]] = {
    "pools.csv": ("pool", "unit", "balance", "paid_in", "paid_out"),
    "flows.csv": ("seq", "entry", "time", "pool", "unit", "direction", "amount", "party", "party_name", "why",
                  "balance_after"),
    "shares.csv": ("distribution", "time", "pool", "currency", "distribution_amount", "member", "member_name",
                   "share"),
    "contributions.csv": ("entry", "time", "author", "author_name", "kind", "title", "ref", "claimed", "value",
                          "outside"),
    "ledger.csv": ("member", "member_name", "accepted_count", "value"),
}


def entry_ids(canonical: dict[str, Any]) -> list[str]:
    """The entries whose signed time the export shows (flows, distributions, accepted contributions)."""
    ids = {f["id"] for f in canonical.get("flows", [])}
    ids |= {d["id"] for d in canonical.get("distributions", [])}
    ids |= {c for c, x in canonical.get("contributions", {}).items() if x["status"] == "accepted"}
    return sorted(ids)


def iso(ms: int) -> str:
    """An entry's time (ms since the epoch, UTC) as xsd:dateTime."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Names:
    """IRIs and display names of the commons, its members, outside payers, pools and units."""

    def __init__(self, canonical: dict[str, Any]) -> None:
        self.commons = canonical["commons"]
        self.members = {k: m["name"] for k, m in canonical.get("members", {}).items()}

    def commons_iri(self) -> str:
        return f"urn:p2pcommons:commons:{self.commons}"

    def entry(self, cid: str) -> str:
        return f"urn:p2pcommons:entry:{cid}"

    def pool(self, name: str) -> str:
        return f"{self.commons_iri()}:pool:{quote(name, safe='')}"

    def unit(self, unit: str) -> str:
        return f"urn:p2pcommons:unit:{quote(unit, safe='')}"

    def key(self, hex_key: str) -> str:
        """A member's (or outside author's) author id, z6Mk…."""
        return author_id_text(bytes.fromhex(hex_key))

    def party(self, party: str) -> tuple[str, str, str]:
        """A flow's party -> (IRI, author id or payer text, name): a member's key, or the
        free text naming an outside payer (a grant's council, a company's payback)."""
        if party in self.members or _is_key(party):
            author = self.key(party)
            return f"did:key:{author}", author, self.members.get(party, "")
        return f"{self.commons_iri()}:payer:{quote(party, safe='')}", party, party


def _is_key(text: str) -> bool:
    """A flow's party that is a key (a device's, say) rather than a payer's name."""
    try:
        return len(text) == 64 and len(bytes.fromhex(text)) == 32
    except ValueError:
        return False


def _unit_of(pools: dict[str, Any], name: str) -> str:
    """A pool's unit (a pool whose declaration the rules no longer hold keeps its flows)."""
    return str(pools.get(name, {}).get("unit", "units"))


def _measure(amount: int, unit_iri: str) -> dict[str, Any]:
    return {"@type": "Measure", "hasNumericalValue": amount, "hasUnit": unit_iri}


def valueflows(canonical: dict[str, Any], times: dict[str, int]) -> bytes:
    """The books as one ValueFlows JSON-LD document (UTF-8, keys sorted, one trailing newline)."""
    n = _Names(canonical)
    home = n.commons_iri()
    pools: dict[str, Any] = canonical.get("pools", {})
    graph: list[dict[str, Any]] = [{"@id": home, "@type": "Organization",
                                    "name": canonical.get("info", {}).get("name", "")}]
    agents: dict[str, dict[str, Any]] = {}
    units: set[str] = set()

    def agent(iri: str, name: str) -> str:
        agents.setdefault(iri, {"@id": iri, "@type": "Agent", **({"name": name} if name else {})})
        return iri

    def member(hex_key: str) -> str:
        return agent(f"did:key:{n.key(hex_key)}", n.members.get(hex_key, ""))

    def unit(text: str) -> str:
        units.add(text)
        return n.unit(text)

    def when(cid: str) -> dict[str, Any]:
        return {"hasPointInTime": iso(times[cid])} if cid in times else {}

    for name, pool in sorted(pools.items()):
        graph.append({"@id": n.pool(name), "@type": "EconomicResource", "name": name, "primaryAccountable": home,
                      "accountingQuantity": _measure(pool["balance"], unit(pool["unit"]))})
    for f in canonical.get("flows", []):
        if f["why"] == "distribution" and not f["party"]:
            continue  # its shares below are the events, summing exactly to it
        event: dict[str, Any] = {"@id": n.entry(f["id"]), "@type": "EconomicEvent", "action": "vf:transfer",
                                 "inScopeOf": home, "note": f["why"],
                                 "resourceQuantity": _measure(f["amount"], unit(_unit_of(pools, f["pool"]))),
                                 **when(f["id"])}
        other = agent(*[n.party(f["party"])[i] for i in (0, 2)])
        if f["flow"] == "in":
            event.update(provider=other, receiver=home, toResourceInventoriedAs=n.pool(f["pool"]))
        else:
            event.update(provider=home, receiver=other, resourceInventoriedAs=n.pool(f["pool"]))
        graph.append(event)
    for d in canonical.get("distributions", []):
        deal = n.entry(d["id"])
        graph.append({"@id": deal, "@type": "Agreement", "name": "Distribution",
                      "note": f"{d['amount']} {d['currency']} shared by accepted value"
                              + (f" from the pool {d['pool']}" if "pool" in d else ""),
                      **({"created": iso(times[d["id"]])} if d["id"] in times else {})})
        for hex_key, share in sorted(d["shares"].items()):
            flow: dict[str, Any] = {"@id": f"{deal}#{n.key(hex_key)}", "action": "vf:transfer", "provider": home,
                                    "receiver": member(hex_key), "inScopeOf": home,
                                    "resourceQuantity": _measure(share, unit(d["currency"]))}
            if "pool" in d:  # paid from a pool: an event; else a share owed, a commitment
                flow.update({"@type": "EconomicEvent", "realizationOf": deal,
                             "resourceInventoriedAs": n.pool(d["pool"]), **when(d["id"])})
            else:
                flow.update({"@type": "Commitment", "clauseOf": deal})
            graph.append(flow)
    for cid, c in sorted(canonical.get("contributions", {}).items(), key=lambda kv: (times.get(kv[0], 0), kv[0])):
        if c["status"] != "accepted":
            continue
        graph.append({"@id": n.entry(cid), "@type": "EconomicEvent", "action": "vf:work",
                      "provider": member(c["author"]), "receiver": home, "inScopeOf": home, "note": c["title"],
                      "resourceClassifiedAs": c["kind"],
                      "effortQuantity": _measure(c["value"], unit(VALUE_UNIT)), **when(cid)})
    graph[1:1] = [agents[iri] for iri in sorted(agents)]
    graph[1:1] = [{"@id": n.unit(u), "@type": "Unit", "label": u, "symbol": u} for u in sorted(units)]
    document = {"@context": CONTEXT, "@graph": graph}
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def csv_tables(canonical: dict[str, Any], times: dict[str, int]) -> dict[str, bytes]:
    """The books as CSV tables (file name -> bytes; RFC 4180, UTF-8, header row, \\r\\n)."""
    n = _Names(canonical)
    pools: dict[str, Any] = canonical.get("pools", {})
    flows: list[dict[str, Any]] = canonical.get("flows", [])

    def at(cid: str) -> str:
        return iso(times[cid]) if cid in times else ""

    def name(hex_key: str) -> str:
        return str(n.members.get(hex_key, ""))

    rows: dict[str, list[list[Any]]] = {table: [] for table in TABLES}
    for pool, p in sorted(pools.items()):
        paid_in = sum(f["amount"] for f in flows if f["pool"] == pool and f["flow"] == "in")
        paid_out = sum(f["amount"] for f in flows if f["pool"] == pool and f["flow"] == "out")
        rows["pools.csv"].append([pool, p["unit"], p["balance"], paid_in, paid_out])
    for seq, f in enumerate(flows, 1):
        _, party, party_name = n.party(f["party"]) if f["party"] else ("", "", "")
        rows["flows.csv"].append([seq, f["id"], at(f["id"]), f["pool"], _unit_of(pools, f["pool"]), f["flow"],
                                  f["amount"], party, party_name if party_name != party else "", f["why"],
                                  f["balance"]])
    for d in canonical.get("distributions", []):
        for hex_key, share in sorted(d["shares"].items()):
            rows["shares.csv"].append([d["id"], at(d["id"]), d.get("pool", ""), d["currency"], d["amount"],
                                       n.key(hex_key), name(hex_key), share])
    accepted = [(cid, c) for cid, c in canonical.get("contributions", {}).items() if c["status"] == "accepted"]
    for cid, c in sorted(accepted, key=lambda kv: (times.get(kv[0], 0), kv[0])):
        rows["contributions.csv"].append([cid, at(cid), n.key(c["author"]), name(c["author"]), c["kind"], c["title"],
                                          c["ref"], c["claimed"], c["value"], "yes" if c["outside"] else "no"])
    for hex_key, row in sorted(canonical.get("ledger", {}).items()):
        rows["ledger.csv"].append([n.key(hex_key), name(hex_key), row["accepted"], row["value"]])
    out = {}
    for table, columns in TABLES.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows(rows[table])
        out[table] = buffer.getvalue().encode()
    return out


__all__ = ["CONTEXT", "FORMATS", "TABLES", "VF", "csv_tables", "entry_ids", "iso", "valueflows"]
