"""The API's data (p2pcommons/web/data.py) has the CLI's ``--json`` shapes, key for key, on a
real home with members, a reviewed contribution and an open proposal — so the API and the
CLI can share one schema.  Only the API's own additions (``my_verdict``, ``my_vote``) differ.
The CLI builds these documents with the same functions, and each API document, wrapped in
the success envelope, is valid against the CLI's schema (docs/json-schema.json)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.errors import NotFound
from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from p2pcommons.shortid import short_id
from p2pcommons.state.engine import forget
from p2pcommons.store import Store
from p2pcommons.web import data, pages
from tests.support.cli_json import check
from tests.test_cli_decisions import _two_stewards
from tests.test_cli_governance import _carry, p2pc_json
from tests.test_state_histories import _ACTORS, _CODES, ACTIONS, History, prop_settings


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
    assert api["state"] == _cli("state", "--full", *home)
    assert api["state"] == _cli("state", *home)  # (--json keeps every proposal: version 1's keys)
    assert api["state"]["proposal_counts"] == {"open": 1}
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


def test_ledger_series_is_each_members_value_over_time(tmp_path: Path) -> None:
    """The ledger's ``series`` (drawn by the dashboard) is in ``p2pc ledger --json`` and the
    API alike: one series per member of the ledger, a point per accepted contribution at the
    accepting review's time, ending at the member's value; two homes holding the same entries,
    received in another order, give the same series."""
    founder, founder_id, newcomer, newcomer_id, commons = _two_stewards(tmp_path)
    p2pc_json("role", "nora", "grant", "reviewer", "--home", founder)
    first = p2pc_json("contribute", "--title", "oak survey", "--value", "3", "--home", newcomer)["id"]
    _carry(newcomer, founder, commons, tmp_path, "s1")
    p2pc_json("review", first, "accept", "--home", founder)
    mine = p2pc_json("contribute", "--title", "trail map", "--value", "5", "--home", founder)["id"]
    _carry(founder, newcomer, commons, tmp_path, "s2")
    p2pc_json("review", mine, "accept", "--home", newcomer)
    later = p2pc_json("contribute", "--title", "bird count", "--value", "4", "--home", newcomer)["id"]
    _carry(newcomer, founder, commons, tmp_path, "s3")
    p2pc_json("review", later, "accept", "--home", founder)
    _carry(founder, newcomer, commons, tmp_path, "s4")
    ledger = _cli("ledger", "--commons", commons, "--home", founder)
    check({"v": 1, "ok": True, "data": ledger})
    series = {s["author"]: s for s in ledger["series"]}
    assert [s["author"] for s in ledger["series"]] == [row["author"] for row in ledger["ledger"]]
    assert [(p["contribution"], p["value"]) for p in series[newcomer_id]["points"]] == [(first, 3), (later, 7)]
    assert [(p["contribution"], p["value"]) for p in series[founder_id]["points"]] == [(mine, 5)]
    assert series[newcomer_id]["name"] == "nora"
    times = sorted((p["time"], p["contribution"]) for s in ledger["series"] for p in s["points"])
    assert [c for _, c in times] == [first, mine, later] and times[0][0] > 0
    for row in ledger["ledger"]:
        assert series[row["author"]]["points"][-1]["value"] == row["value"]
    assert _cli("ledger", "--commons", commons, "--home", newcomer)["series"] == ledger["series"]
    with Store(Home(Path(founder)).store_file) as store:
        assert data.ledger(store, CID.parse(commons)) == ledger
    page = pages.ledger({"id": commons, "name": "Forest"}, ledger, {})
    assert page.count("<path class=series") == 2 and "id=ledger-chart" in page and "nora" in page


def test_pools_api_is_the_cli_json(tmp_path: Path) -> None:
    """``GET …/pools`` and ``…/pools/NAME`` are ``p2pc pool list --json`` and ``pool show
    --json``; an unknown pool is NotFound (404 in the API)."""
    home = str(tmp_path / "founder")
    me = p2pc_json("init", "--home", home)["author"]
    commons = p2pc_json("commons", "create", "Mutual aid", "--home", home)["commons"]
    p2pc_json("pool", "create", "solidarity", "--unit", "EUR", "--home", home)
    p2pc_json("pool", "pay", "solidarity", "200", "--home", home)
    p2pc_json("pool", "pay", "solidarity", "2000", "--source", "payback", "--payer", "Acme Tools Ltd", "--home", home)
    p2pc_json("pool", "spend", "solidarity", "1500", me, "--reason", "sick leave", "--home", home)
    with Store(Home(Path(home)).store_file) as store:
        cid = CID.parse(commons)
        listed, shown = data.pools(store, cid), data.pool(store, cid, "solidarity")
        with pytest.raises(NotFound):
            data.pool(store, cid, "nope")
    for document in (listed, shown):
        check({"v": 1, "ok": True, "data": document})
    assert listed == _cli("pool", "list", "--home", home)
    assert shown == _cli("pool", "show", "solidarity", "--home", home)
    assert listed["pools"] == [{"name": "solidarity", "unit": "EUR", "balance": 700, "paid_in": 2200,
                                "paid_out": 1500}]
    page = pages.pools({"id": commons, "name": "Mutual aid"}, listed["pools"], {"solidarity": shown["flows"]}, {})
    # newest first: the spend, the payback, the dues
    assert page.index("sick leave") < page.index("Acme Tools Ltd") < page.index("dues")
    assert "700 EUR" in page
    # ids as the CLI shows them (and takes them back): the entries' and the unnamed founder's
    assert all(f">{short_id(f['id'])}</code>" in page for f in shown["flows"])
    assert f">{short_id(me)}</code>" in page and "…" not in page


def test_resources_page_shows_what_is_left_this_period(tmp_path: Path) -> None:
    home = str(tmp_path / "founder")
    p2pc_json("init", "--home", home)
    commons = p2pc_json("commons", "create", "Workshop", "--home", home)["commons"]
    p2pc_json("resource", "add", "Seats", "--rivalrous", "--quota", "5", "--capacity", "4", "--unit", "seats",
              "--home", home)
    p2pc_json("resource", "use", "Seats", "3", "--home", home)
    rows = _cli("resource", "list", "--home", home)["resources"]
    assert rows[0]["left_this_period"] == {"mine": 2, "whole_commons": 1}
    page = pages.resources({"id": commons, "name": "Workshop"}, rows, {})
    assert "<td class=left-mine>2 seats</td>" in page and "<td class=left-commons>1 seats</td>" in page
    assert [pages.period_text(n) for n in (0, 604800, 172800, 3600, 90)] == [
        "in all", "per week", "every 2 days", "per hour", "every 90 s"]


def _with_accepted_work(actions: list[tuple[int, int, int]], extra: list[tuple[int, int]]) -> History:
    """A random history with contributions by the two founding stewards, each accepted by
    the other (where the rules in force then allow), spliced in at random places: the
    random alphabet alone rarely accepts anything, and almost never for two members."""
    history = History()
    spliced: list[tuple[int, int, int] | tuple[int, int]] = list(actions)
    for author, p in extra:
        spliced.insert(p % (len(spliced) + 1), (author, p))
    for step in spliced:
        if len(step) == 3:
            actor, code, p = step
            history.act(_ACTORS[actor % len(_ACTORS)], _CODES[code % len(_CODES)], p)
            continue
        author, p = step
        work = history.write(author, "contribution", {"title": f"work {p}", "kind": ("code", "docs")[p % 2],
                                                      "value": 1 + p % 7})
        history.view[1 - author] |= history.view[author]
        history.write(1 - author, "review", {"contribution": work.id, "verdict": "accept"}, (work.id,))
    return history


@prop_settings(100)
@given(ACTIONS, st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1000)), max_size=8), st.integers(0, 2**32 - 1))
def test_ledger_series_ends_at_the_ledger_whatever_the_delivery_order(actions: list[tuple[int, int, int]],
                                                                        extra: list[tuple[int, int]],
                                                                        seed: int) -> None:
    """Over random histories (reviews, value weights changed by vote, forks, backdated
    entries, sanctions): one series per ledger row, in its order, a point per accepted
    contribution, values never falling and ending at the ledger's value, times never going
    back — and the same series from a store that received the entries in another order."""
    history = _with_accepted_work(actions, extra)
    shuffled = list(history.entries[1:])
    random.Random(seed).shuffle(shuffled)
    results = []
    with tempfile.TemporaryDirectory(prefix="p2pc-series-") as tmp:
        for n, order in enumerate((history.entries, [history.genesis, *shuffled])):
            forget()
            with Store(Path(tmp) / f"{n}.sqlite") as store:
                store._db.execute("PRAGMA synchronous=OFF")  # durability is not what this tests
                store.insert(order)
                document = data.ledger(store, history.commons)
            results.append((document["ledger"], document["series"]))
    (ledger, series), (ledger_again, series_again) = results
    assert ledger == ledger_again and series == series_again
    assert [s["author"] for s in series] == [row["author"] for row in ledger]
    times = []
    for s, row in zip(series, ledger, strict=True):
        values = [p["value"] for p in s["points"]]
        assert len(values) == row["accepted_count"] and values == sorted(values)
        assert (values[-1] if values else 0) == row["value"]
        times.append([p["time"] for p in s["points"]])
    for t in times:
        assert t == sorted(t) and all(time > 0 for time in t)  # each the accepting review's own time
