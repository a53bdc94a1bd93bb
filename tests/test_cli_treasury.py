"""``p2pc pool …`` and ``p2pc distribute --pool`` (protocols/commons.md §8) through typer's
CliRunner over real homes: a pool declared by a rule change, dues and a payback paid in, a
spend and a distribution refused before signing when they would overdraw (exit 7, the
fold's numbers, the log unchanged), the open book in --json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2pcommons.state.engine import forget
from tests.test_cli_refusals import p2pc, p2pc_json, refused


def _founded(tmp_path: Path) -> tuple[str, str]:
    home = str(tmp_path / "founder")
    me = p2pc_json("init", "--home", home)["author"]
    p2pc_json("commons", "create", "Mutual aid", "--home", home)
    return home, me


@pytest.fixture(autouse=True)
def _fresh_live_state() -> Any:
    forget()
    yield
    forget()


def test_pools_pay_spend_distribute_and_refuse_overdrafts(tmp_path: Path) -> None:
    home, me = _founded(tmp_path)
    assert p2pc_json("pool", "list", "--home", home)["pools"] == []
    created = p2pc_json("pool", "create", "solidarity", "--unit", "EUR", "--home", home)
    assert created["outcome"]["status"] == "applied"
    assert p2pc_json("pool", "pay", "solidarity", "200", "--home", home)["outcome"]["status"] == "applied"
    p2pc_json("pool", "pay", "solidarity", "2000", "--source", "payback", "--payer", "Acme Tools Ltd",
              "--home", home)
    message = refused(home, "pool", "spend", "solidarity", "5000", me, "--reason", "sick leave")
    assert ("the rules in force: it would overdraw the pool solidarity: it holds 2200 EUR, and 5000 EUR would "
            "leave -2800; nothing was stored") in message
    p2pc_json("pool", "spend", "solidarity", "1500", me, "--reason", "sick leave", "--home", home)
    # distribute: a pool is required now that the rules declare one, and it cannot overdraw it
    p2pc_json("rules", "propose", "--set", "review.self_review=true", "--home", home)
    work = p2pc_json("contribute", "--title", "Seed library", "--value", "10", "--home", home)["id"]
    p2pc_json("review", work, "accept", "--home", home)
    bare = refused(home, "distribute", "1000000")
    assert "the rules declare pools: it must name the pool it draws from;" in bare
    over = refused(home, "distribute", "1000000", "--pool", "solidarity")
    assert "it holds 700 EUR, and 1000000 EUR would leave -999300;" in over
    shared = p2pc_json("distribute", "500", "--pool", "solidarity", "--home", home)
    assert shared["outcome"]["status"] == "applied"
    listed = p2pc_json("pool", "list", "--home", home)["pools"]
    assert listed == [{"name": "solidarity", "unit": "EUR", "balance": 200, "paid_in": 2200, "paid_out": 2000}]
    book = p2pc_json("pool", "show", "solidarity", "--home", home)
    assert [(f["flow"], f["amount"], f["party"], f["why"], f["balance"]) for f in book["flows"]] == [
        ("in", 200, me, "dues", 200), ("in", 2000, "Acme Tools Ltd", "payback", 2200),
        ("out", 1500, me, "sick leave", 700), ("out", 500, "", "distribution", 200)]
    assert "-1500 EUR  sick leave" in p2pc("pool", "show", "solidarity", "--home", home).stdout
    ledger = p2pc_json("ledger", "--home", home)
    assert [d["shares"] for d in ledger["distributions"]] == [{me: 500}]
    assert [d["currency"] for d in ledger["distributions"]] == ["EUR"]


def test_a_spend_proposal_is_a_solidarity_claim(tmp_path: Path) -> None:
    home, me = _founded(tmp_path)
    p2pc_json("pool", "create", "fund", "--unit", "EUR", "--home", home)
    p2pc_json("pool", "pay", "fund", "100", "--home", home)
    claim = p2pc_json("pool", "spend", "fund", "40", me, "--reason", "rent", "--propose", "--home", home)
    assert claim["kind"] == "proposal" and claim["outcome"]["status"] == "applied"
    shown = p2pc_json("proposal", "show", claim["id"], "--home", home)
    assert shown["action"]["act"] == "spend" and shown["action"]["pool"] == "fund"
    assert "spend 40 from fund to" in p2pc("proposals", "--home", home).stdout


def test_resource_capacity_cancel_and_what_is_left(tmp_path: Path) -> None:
    home, _ = _founded(tmp_path)
    p2pc_json("resource", "add", "Seats", "--rivalrous", "--quota", "5", "--capacity", "4", "--unit", "seats",
              "--home", home)
    first = p2pc_json("resource", "use", "Seats", "3", "--home", home)["id"]
    message = refused(home, "resource", "use", "Seats", "2")
    assert "it exceeds the capacity of Seats (3 + 2 > 4 seats per period for the whole commons)" in message
    row = p2pc_json("resource", "list", "--home", home)["resources"][0]
    assert row["capacity"] == 4 and row["left_this_period"] == {"mine": 2, "whole_commons": 1}
    assert "left this period: 2 seats for you, 1 seats for the commons" in p2pc("resource", "list", "--home",
                                                                               home).stdout
    assert p2pc_json("resource", "cancel", first, "--home", home)["outcome"]["status"] == "applied"
    assert p2pc_json("resource", "use", "Seats", "4", "--home", home)["outcome"]["status"] == "applied"
    assert p2pc_json("resource", "list", "--home", home)["resources"][0]["left_this_period"]["whole_commons"] == 0


def test_the_value_equation_from_the_command_line(tmp_path: Path) -> None:
    """``--derives-from`` (checked before writing), a review beyond the cap refused, the
    equation's id on the distribution, ``ledger --explain`` and ``receipt`` (§9)."""
    home, me = _founded(tmp_path)
    p2pc_json("rules", "propose", "--set", "review.self_review=true", "--set", "equation.review_cap=50",
              "--set", "equation.reference_share=1/4", "--home", home)
    original = p2pc_json("contribute", "--title", "Seed drill", "--value", "100", "--home", home)["id"]
    over = refused(home, "review", original, "accept", "--value", "151")
    assert "it must be between 50 and 150;" in over
    p2pc_json("review", original, "accept", "--home", home)
    vote = p2pc_json("rules", "propose", "--set", "retire.after=0", "--home", home)["id"]
    not_work = p2pc("contribute", "--title", "x", "--derives-from", vote, "--home", home, code=2)
    assert "is not a contribution of this commons" in not_work.stderr
    wider = p2pc_json("contribute", "--title", "Wider drill", "--value", "100", "--derives-from", original[:12],
                      "--home", home)["id"]
    p2pc_json("review", wider, "accept", "--home", home)
    paid = p2pc_json("distribute", "200", "--home", home)["id"]
    why = p2pc_json("ledger", "--explain", me, "--home", home)
    assert (why["total"], why["commons_total"], why["paid_to_date"]) == (200, 200, 200)
    (drill,) = [c for c in why["contributions"] if c["id"] == original]
    assert drill["credit_in"] == [{"contribution": wider, "amount": 25}] and drill["final"] == 125
    assert why["distributions"][0]["equation"] == why["equation"]["id"]
    assert p2pc_json("receipt", paid, "--home", home)["outcome"]["status"] == "applied"
    (row,) = p2pc_json("ledger", "--home", home)["ledger"]
    assert (row["paid_to_date"], row["acknowledged_to_date"]) == (200, 200)
    human = p2pc("ledger", "--explain", me, "--home", home).stdout
    assert "+25 from derivatives" in human and "reference_share = 1/4" in human
