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
            "commons-rejected-sanction"} <= names


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
