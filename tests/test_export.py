"""The books exported (issue 16 item 4, docs/export.md): ValueFlows JSON-LD whose every term
is a published ValueFlows term and which expands cleanly (pyld, no network), CSV tables whose
sums are the fold's — and the property: the same state gives the same bytes, whatever order
the entries arrived in, on any node."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from pyld import jsonld  # type: ignore[import-untyped]

from p2pcommons import export
from p2pcommons.identity import author_id_text
from p2pcommons.state.engine import forget
from tests.support.decisions import T0, Town
from tests.test_cli_refusals import p2pc, p2pc_json
from tests.test_state_histories import prop_settings
from tests.test_state_pools import POOLS, _with_ledger, treasuries

VOCABULARY = Path(__file__).parent / "data" / "valueflows-vocabulary.txt"
TERMS = {line.strip() for line in VOCABULARY.read_text().splitlines() if line.strip() and not line.startswith("#")}
KEYWORDS = {"@id", "@type", "@context", "@graph"}


def _no_network(url: str, options: Any = None) -> Any:
    raise AssertionError(f"the export must expand without fetching anything ({url})")


def _times(town: Town) -> dict[str, int]:
    return {str(e.id): e.time for e in town.entries}


def _books(town: Town, order: list[Any] | None = None) -> tuple[bytes, dict[str, bytes]]:
    canonical = town.fold(order).canonical
    times = _times(town)
    return export.valueflows(canonical, times), export.csv_tables(canonical, times)


def _story() -> Town:
    """Dues and a company's payback in, a spend and a distribution out, an accepted contribution."""
    town = Town(stewards=2, rules=POOLS)
    _with_ledger(town, T0 + 10)
    town.write(1, "pay", {"pool": "fund", "amount": 200, "source": "dues"}, T0 + 100)
    town.sync(0, 1)
    town.write(0, "pay", {"pool": "fund", "amount": 2000, "source": "payback", "payer": "Acme Tools Ltd"}, T0 + 200)
    town.write(0, "spend", {"pool": "fund", "amount": 150, "member": town.key(1), "reason": "sick leave"}, T0 + 300)
    town.write(0, "distribution", {"amount": 1001, "pool": "fund"}, T0 + 400)
    return town


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _check_terms(document: dict[str, Any]) -> None:
    """Every key and type the document uses is a term of its context, and every term of the
    context (and every action it names) is a published ValueFlows term."""
    context = document["@context"]
    assert context == export.CONTEXT
    for term, definition in context.items():
        if term in ("vf", "xsd"):
            continue
        iri = definition if isinstance(definition, str) else definition["@id"]
        assert iri.startswith("vf:") and iri[3:] in TERMS, term

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                assert key in KEYWORDS or key in context, f"{key} is not defined in the context"
                if key == "@type":
                    assert value in context, value
                if key == "action":
                    assert value.startswith("vf:") and value[3:] in TERMS, value
                walk(value)

    walk(document["@graph"])


def _statements(node: Any) -> int:
    """(subject, property, value) statements a JSON-LD tree makes, keywords aside."""
    if isinstance(node, list):
        return sum(_statements(item) for item in node)
    if not isinstance(node, dict):
        return 0
    if "@value" in node:
        return 0
    total = 0
    for key, value in node.items():
        if key in ("@context", "@id", "@graph"):
            total += _statements(value) if key == "@graph" else 0
            continue
        values = value if isinstance(value, list) else [value]
        total += len(values) + sum(_statements(v) for v in values)
    return total


def _expand(document: dict[str, Any]) -> list[dict[str, Any]]:
    expanded: list[dict[str, Any]] = jsonld.expand(document, {"documentLoader": _no_network})
    return expanded


def test_valueflows_says_who_paid_who_was_paid_and_why_in_published_terms() -> None:
    town = _story()
    data, _ = _books(town)
    document = json.loads(data)
    _check_terms(document)
    graph = {node["@id"]: node for node in document["@graph"]}
    home = f"urn:p2pcommons:commons:{town.genesis.id}"
    assert graph[home]["@type"] == "Organization"
    fund = graph[f"{home}:pool:fund"]
    assert fund["@type"] == "EconomicResource" and fund["accountingQuantity"]["hasNumericalValue"] == 2200 - 150 - 1001
    events = [n for n in document["@graph"] if n["@type"] == "EconomicEvent"]
    payback = next(e for e in events if e.get("note") == "payback")
    assert payback["provider"] == f"{home}:payer:Acme%20Tools%20Ltd" and payback["receiver"] == home
    assert payback["toResourceInventoriedAs"] == f"{home}:pool:fund" and payback["action"] == "vf:transfer"
    assert payback["resourceQuantity"] == {"@type": "Measure", "hasNumericalValue": 2000,
                                           "hasUnit": "urn:p2pcommons:unit:EUR"}
    assert graph[payback["provider"]] == {"@id": payback["provider"], "@type": "Agent", "name": "Acme Tools Ltd"}
    spend = next(e for e in events if e.get("note") == "sick leave")
    assert spend["provider"] == home and spend["receiver"] == f"did:key:{author_id_text(town.key(1))}"
    shares = [e for e in events if "realizationOf" in e]
    assert sum(e["resourceQuantity"]["hasNumericalValue"] for e in shares) == 1001
    assert graph[shares[0]["realizationOf"]]["@type"] == "Agreement"
    work = [e for e in events if e["action"] == "vf:work"]
    assert [(w["note"], w["effortQuantity"]["hasNumericalValue"]) for w in work] == [("seed bank", 10)]
    assert payback["hasPointInTime"] == "2023-11-14T22:13:20.200Z"  # the entry's signed time


def test_valueflows_expands_cleanly_without_the_network() -> None:
    document = json.loads(_books(_story())[0])
    expanded = _expand(document)
    assert _statements(expanded) == _statements(document["@graph"])  # nothing dropped as undefined
    for node in expanded:
        for key in node:
            assert key in ("@id", "@type") or (key.startswith(export.VF) and key[len(export.VF):] in TERMS), key
        assert all(t.startswith(export.VF) for t in node["@type"])


def test_a_distribution_without_a_pool_is_shares_owed() -> None:
    town = Town(stewards=2)
    _with_ledger(town, T0 + 10)
    town.write(0, "distribution", {"amount": 7, "currency": "CAD"}, T0 + 100)
    document = json.loads(_books(town)[0])
    _check_terms(document)
    owed = [n for n in document["@graph"] if n["@type"] == "Commitment"]
    assert [(c["resourceQuantity"]["hasNumericalValue"], c["resourceQuantity"]["hasUnit"]) for c in owed] == [
        (7, "urn:p2pcommons:unit:CAD")]
    assert _statements(_expand(document)) == _statements(document["@graph"])


def test_csv_tables_are_the_fold_s_books() -> None:
    town = _story()
    _, tables = _books(town)
    assert list(tables) == list(export.TABLES)
    for name, columns in export.TABLES.items():
        assert tables[name].decode().split("\r\n", 1)[0] == ",".join(columns)
    pools = {r["pool"]: r for r in _rows(tables["pools.csv"])}
    assert pools["fund"] == {"pool": "fund", "unit": "EUR", "balance": "1049", "paid_in": "2200", "paid_out": "1151"}
    flows = _rows(tables["flows.csv"])
    assert [(f["direction"], f["amount"], f["party_name"], f["why"], f["balance_after"]) for f in flows] == [
        ("in", "200", "", "dues", "200"), ("in", "2000", "", "payback", "2200"),
        ("out", "150", "", "sick leave", "2050"), ("out", "1001", "", "distribution", "1049")]
    assert flows[1]["party"] == "Acme Tools Ltd" and flows[0]["party"] == author_id_text(town.key(1))
    shares = _rows(tables["shares.csv"])
    assert sum(int(s["share"]) for s in shares) == 1001 and {s["distribution_amount"] for s in shares} == {"1001"}
    assert [(c["title"], c["value"]) for c in _rows(tables["contributions.csv"])] == [("seed bank", "10")]
    assert _rows(tables["ledger.csv"]) == [{"member": author_id_text(town.key(1)), "member_name": "",
                                            "accepted_count": "1", "value": "10"}]


@prop_settings(150)
@given(treasuries())
def test_the_same_state_gives_the_same_bytes_in_any_delivery_order(case: tuple[Town, int]) -> None:
    town, seed = case
    rng = random.Random(seed)
    books = _books(town)
    document = json.loads(books[0])
    _check_terms(document)
    assert _statements(_expand(document)) == _statements(document["@graph"])
    events = sum(1 for node in document["@graph"] if node["@type"] == "EconomicEvent")
    event(f"economic events exported: {'0-3' if events <= 3 else '4-9' if events <= 9 else '10+'}")
    for _ in range(3):
        order = list(town.entries)
        rng.shuffle(order)
        assert _books(town, order) == books
    # the CSV's books agree with the document's: every movement, every share
    flows = _rows(books[1]["flows.csv"])
    assert len(flows) == len(town.fold().canonical.get("flows", []))


# --- the command ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_live_state() -> Any:
    forget()
    yield
    forget()


def test_p2pc_export_writes_the_books_and_says_what_it_wrote(tmp_path: Path) -> None:
    home = str(tmp_path / "founder")
    p2pc_json("init", "--home", home)
    p2pc_json("commons", "create", "Mutual aid", "--home", home)
    p2pc_json("pool", "create", "solidarity", "--unit", "EUR", "--home", home)
    p2pc_json("pool", "pay", "solidarity", "200", "--home", home)
    p2pc_json("pool", "pay", "solidarity", "50", "--source", "grant", "--payer", "Council", "--home", home)
    out = tmp_path / "books.jsonld"
    result = p2pc_json("export", "--format", "valueflows", "--out", str(out), "--home", home)
    assert result["format"] == "valueflows" and result["flow_count"] == 2 and result["pool_count"] == 1
    assert result["files"][0]["byte_count"] == out.stat().st_size
    _check_terms(json.loads(out.read_bytes()))
    again = p2pc_json("export", "--format", "valueflows", "--out", str(tmp_path / "again.jsonld"), "--home", home)
    assert again["files"][0]["sha256"] == result["files"][0]["sha256"]  # same state, same bytes
    tables = p2pc_json("export", "--format", "csv", "--out", str(tmp_path / "books"), "--home", home)
    assert sorted(Path(f["file"]).name for f in tables["files"]) == sorted(export.TABLES)
    assert _rows((tmp_path / "books" / "pools.csv").read_bytes())[0]["balance"] == "250"
    usage = p2pc("export", "--format", "csv", "--home", home, code=2).stderr
    assert usage.strip() == "p2pc: CSV writes several tables: name a directory for them with --out DIR."
    assert "--format must be bundle, valueflows or csv" in p2pc("export", "--format", "xml", "--home", home,
                                                               code=2).stderr
    streamed = p2pc("export", "--format", "valueflows", "--home", home).stdout
    assert streamed.encode() == out.read_bytes()  # no --out: the document on stdout
