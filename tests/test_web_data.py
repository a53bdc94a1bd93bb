"""The API's data (p2pcommons/web/data.py) has the CLI's ``--json`` shapes, key for key, on a
real home with members, a reviewed contribution and an open proposal — so the API and the
CLI can share one schema.  Only the API's own additions (``my_verdict``, ``my_vote``) differ.
The CLI builds these documents with the same functions, and each API document, wrapped in
the success envelope, is valid against the CLI's schema (docs/json-schema.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2pcommons.dagcbor import CID
from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from p2pcommons.state.engine import forget
from p2pcommons.store import Store
from p2pcommons.web import data
from tests.support.cli_json import check
from tests.test_cli_decisions import _two_stewards
from tests.test_cli_governance import p2pc_json


@pytest.fixture(autouse=True)
def _fresh_live_state() -> Any:
    forget()
    yield
    forget()


def _cli(*args: str) -> Any:
    out = p2pc_json(*args)
    return out["data"] if isinstance(out, dict) and out.get("v") == 1 and "data" in out else out


def test_api_data_is_the_cli_json(tmp_path: Path) -> None:
    founder, _, _, _, commons = _two_stewards(tmp_path)
    contribution = p2pc_json("contribute", "--title", "oak survey", "--home", founder)["id"]
    p2pc_json("resource", "add", "tractor", "--quota", "10", "--unit", "hours", "--home", founder)
    p2pc_json("rules", "propose", "--set", "review.accepts=2", "--title", "four eyes", "--home", founder)
    home = ["--commons", commons, "--home", founder]
    cid = CID.parse(commons)
    me = load_identity(Home(Path(founder))).signer.public_key
    with Store(Home(Path(founder)).store_file) as store:
        api = {"state": data.state(store, cid), "members": data.members(store, cid),
               "contributions": data.contributions(store, cid, me), "proposals": data.proposals(store, cid, me),
               "ledger": data.ledger(store, cid), "resources": data.resources(store, cid, me),
               "held": {"commons": data.held(store)}, "history": data.history(store, cid)}
    for document in api.values():
        check({"v": 1, "ok": True, "data": document})
    assert api["state"] == _cli("state", *home)
    assert api["members"] == _cli("members", *home)
    assert api["ledger"] == _cli("ledger", *home)
    assert api["resources"] == _cli("resource", "list", *home) and api["resources"]["resources"]
    cli_rows = _cli("contributions", *home)["contributions"]
    assert [{k: v for k, v in r.items() if k != "my_verdict"} for r in api["contributions"]["contributions"]] \
        == cli_rows
    assert [r["id"] for r in cli_rows] == [contribution]
    cli_proposals = _cli("proposals", *home)["proposals"]
    assert [{k: v for k, v in p.items() if k != "my_vote"} for p in api["proposals"]["proposals"]] == cli_proposals
    assert api["proposals"]["proposals"][0]["my_vote"] == "yes"
