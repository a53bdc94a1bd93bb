"""The fold against the published commons-state vectors (protocols/vectors/commons-*.json):
every vector's entries, in several delivery orders, must give exactly its state hash,
canonical state and per-entry outcomes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from p2pcommons.dagcbor import CID
from p2pcommons.entry import decode_entry
from p2pcommons.state import fold

VECTORS = sorted((Path(__file__).resolve().parent.parent / "protocols" / "vectors").glob("commons-*.json"))


def test_there_are_commons_vectors() -> None:
    names = {p.stem for p in VECTORS}
    assert {"commons-basic", "commons-mutual-removal", "commons-backdated", "commons-backdated-leave",
            "commons-fork", "commons-adversarial", "commons-waiting", "commons-overflow",
            "commons-rejected-sanction", "commons-decisions", "commons-acts", "commons-budget",
            "commons-treasury", "commons-capacity", "commons-time", "commons-appeal", "commons-probation"} <= names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_commons_vector(path: Path) -> None:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    entries = [decode_entry(bytes.fromhex(item["raw"])) for item in doc["entries"]]
    for item, entry in zip(doc["entries"], entries, strict=True):
        assert str(entry.id) == item["id"]
        entry.verify_signature()
    commons = CID.parse(doc["commons"])
    for seed in range(4):
        order = list(entries)
        random.Random(seed).shuffle(order)
        state = fold(order + order[:2], commons)
        assert state.state_hash == doc["state_hash"]
        assert json.loads(json.dumps(state.canonical)) == doc["state"]
        for expected in doc["outcomes"]:
            outcome = state.outcome(CID.parse(expected["id"]))
            assert outcome is not None
            assert (outcome.status, outcome.reason) == (expected["status"], expected["reason"]), expected["label"]


def test_commons_vectors_are_current() -> None:
    """generate_commons.py --check: the committed files are what the generator writes."""
    import importlib.util
    import sys

    here = VECTORS[0].parent
    spec = importlib.util.spec_from_file_location("p2pc_generate_commons", here / "generate_commons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        for name in module.SCENARIOS:
            text = json.dumps(module.vector(name), indent=1, sort_keys=True) + "\n"
            assert (here / f"commons-{name}.json").read_text(encoding="utf-8") == text, name
    finally:
        del sys.modules[spec.name]


def test_defaults_vector_shows_the_canonical_form() -> None:
    """commons.md §5: the value types and defaults of the canonical state, as the vector has them."""
    path = next(p for p in VECTORS if p.stem == "commons-defaults")
    state = json.loads(path.read_text(encoding="utf-8"))["state"]
    assert state["info"] == {"name": "defaults", "description": "", "license": ""}
    assert state["rules"]["rule_change"]["threshold"] == {"num": 60, "den": 100}  # 60 %, not reduced
    members = state["members"].values()
    assert sorted(m["status"] for m in members) == ["active", "active", "left"]
    for m in members:
        assert m["roles"] == ([] if m["status"] == "left" else ["member", "reviewer", "steward"])
        assert m["name"] in ("", "dave") and m["warnings"] == 0 and m["since"].startswith("bafyrei")
    (join,) = state["joins"].values()
    assert join["name"] == "" and isinstance(join["approvals"], list) and len(join["approvals"]) == 1
    pending = [c for c in state["contributions"].values() if c["status"] == "pending"]
    assert [(c["value"], c["claimed"], c["kind"], c["ref"]) for c in pending] == [(0, 1, "work", "")]
    (proposal,) = state["proposals"].values()
    assert proposal["status"] == "open" and proposal["title"] == "" and proposal["no"] == []
    assert proposal["changes"] == {"rule_change.threshold": 75}  # as written in the body
    (resource,) = state["resources"].values()
    assert resource["unit"] == "unit"
    (period,) = resource["used"]
    assert period.isdigit() and int(period) == 1_700_000_013_000 // 3_600_000
    (distribution,) = state["distributions"]
    assert distribution["currency"] == "units" and list(distribution["shares"].values()) == [10]
    assert len(state["ledger"]) == 2  # the member whose share is 0 is in the ledger, not in the shares
    assert state["sanctions"] == [] and state["waiting"] == 0 and "invalid" not in state
