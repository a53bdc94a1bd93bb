"""The decisions CLI (cli/decisions.py, and status/leave/rules in cli/governance.py) through
typer's CliRunner over real homes and bundles: proposals, show, inbox, vote with abstain,
withdraw, acts, deadlines, `status` saying "open", and the last steward's leave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2pcommons.state.engine import forget
from tests.test_cli_governance import _carry, _init, fails, p2pc, p2pc_json


@pytest.fixture(autouse=True)
def _fresh_live_state() -> Any:
    forget()
    yield
    forget()


def _two_stewards(tmp_path: Path) -> tuple[str, str, str, str, str]:
    founder, founder_id = _init(tmp_path / "founder")
    newcomer, newcomer_id = _init(tmp_path / "newcomer")
    commons = p2pc_json("commons", "create", "Forest", "--home", founder)["commons"]
    _carry(founder, newcomer, commons, tmp_path, "b0")
    p2pc_json("join", commons, "--name", "nora", "--home", newcomer)
    _carry(newcomer, founder, commons, tmp_path, "b1")
    p2pc_json("admit", "--home", founder)
    p2pc_json("role", "nora", "grant", "steward", "--home", founder)
    _carry(founder, newcomer, commons, tmp_path, "b2")
    return founder, founder_id, newcomer, newcomer_id, commons


def test_status_says_open_for_an_undecided_proposal(tmp_path: Path) -> None:
    founder, _, _, _, _ = _two_stewards(tmp_path)
    proposal = p2pc_json("rules", "propose", "--set", "review.accepts=2", "--home", founder)["id"]
    line = p2pc("status", proposal, "--home", founder).splitlines()[0]
    assert line.endswith("rule_proposal  open"), line
    assert p2pc_json("status", proposal, "--home", founder)["decision"] == "open"


def test_proposals_show_inbox_vote_and_withdraw(tmp_path: Path) -> None:
    founder, founder_id, newcomer, newcomer_id, commons = _two_stewards(tmp_path)
    proposal = p2pc_json("rules", "propose", "--set", "review.accepts=2", "--title", "four eyes",
                         "--deadline", "3600", "--home", founder)["id"]
    _carry(founder, newcomer, commons, tmp_path, "b3")
    inbox = p2pc_json("inbox", "--home", newcomer)
    assert [v["id"] for v in inbox["votes"]] == [proposal]
    assert p2pc_json("inbox", "--home", founder)["votes"] == []
    listed = p2pc_json("proposals", "--open", "--home", newcomer)["proposals"]
    assert [p["id"] for p in listed] == [proposal] and listed[0]["status"] == "open"
    vote = p2pc_json("vote", proposal, "abstain", "--home", newcomer)
    assert vote["outcome"]["status"] == "applied"
    shown = p2pc_json("proposal", "show", proposal, "--home", newcomer)
    assert shown["yes"] == [founder_id] and shown["abstain"] == [newcomer_id] and shown["no"] == []
    assert shown["tally"] == {"yes": 1, "no": 0, "abstain": 1}
    assert shown["electorate"]["size"] == 2 and shown["deadline"] is not None and shown["status"] == "open"
    assert "abstain" in p2pc("proposal", "show", proposal, "--home", newcomer)
    assert p2pc_json("inbox", "--home", newcomer)["votes"] == []
    refused = fails("proposal", "withdraw", proposal, "--home", newcomer, code=7)
    assert "only the proposer may withdraw" in refused
    _carry(newcomer, founder, commons, tmp_path, "b4")
    withdrawn = p2pc_json("proposal", "withdraw", proposal, "--home", founder)
    assert withdrawn["outcome"]["status"] == "applied"
    assert p2pc_json("proposals", "--open", "--home", founder)["proposals"] == []
    assert p2pc_json("proposals", "--home", founder)["proposals"][0]["status"] == "withdrawn"
    assert "applied, withdrawn" in p2pc("status", proposal, "--home", founder)


def test_act_proposals_and_the_last_stewards_leave(tmp_path: Path) -> None:
    founder, _, newcomer, newcomer_id, commons = _two_stewards(tmp_path)
    revoke = p2pc_json("proposal", "revoke", "nora", "steward", "--home", founder)
    # Nora may not vote on her own role; the founder alone is 1 of 2 stewards: open.
    assert revoke["outcome"]["status"] == "applied"
    shown = p2pc_json("proposal", "show", revoke["id"], "--home", founder)
    assert shown["act"] == "revoke" and shown["action"]["member"] == newcomer_id and shown["status"] == "open"
    _carry(founder, newcomer, commons, tmp_path, "b5")
    fails("vote", revoke["id"], "no", "--home", newcomer, code=7)
    # The founder is not the last steward: leaving needs no --force.  Nora then is, and is warned.
    p2pc_json("leave", "--home", founder)
    _carry(founder, newcomer, commons, tmp_path, "b6")
    message = fails("leave", "--home", newcomer, code=7)
    assert "last steward" in message
    left = p2pc_json("leave", "--force", "--home", newcomer)
    assert left["outcome"]["status"] == "applied"


def test_admission_removal_and_grant_by_decision_from_the_cli(tmp_path: Path) -> None:
    """One founder with approval by 2 (the docs' charter): admissions alone never reach 2,
    a decision admits; then a community role granted and a removal decided."""
    founder, _ = _init(tmp_path / "founder")
    newcomer, newcomer_id = _init(tmp_path / "newcomer")
    charter = tmp_path / "charter.toml"
    charter.write_text('[membership]\npolicy = "approval"\napprovals = 2\n[roles]\ncustom = ["ecologist"]\n'
                       '[decide]\nremoval = true\n', encoding="utf-8")
    commons = p2pc_json("commons", "create", "Valley", "--rules", str(charter), "--home", founder)["commons"]
    _carry(founder, newcomer, commons, tmp_path, "c0")
    join = p2pc_json("join", commons, "--name", "nora", "--home", newcomer)["id"]
    _carry(newcomer, founder, commons, tmp_path, "c1")
    admitted = p2pc_json("proposal", "admit", join, "--title", "welcome", "--home", founder)
    assert p2pc_json("proposal", "show", admitted["id"], "--home", founder)["status"] == "adopted"
    grant = p2pc_json("proposal", "grant", "nora", "ecologist", "--home", founder)
    assert p2pc_json("proposal", "show", grant["id"], "--home", founder)["status"] == "adopted"
    members = {m["name"]: m for m in p2pc_json("members", "--home", founder)["members"]}
    assert members["nora"]["roles"] == ["ecologist", "member"]
    assert "decide.removal" in fails("sanction", "nora", "remove", "--reason", "x", "--home", founder, code=7)
    removal = p2pc_json("proposal", "remove", "nora", "--reason", "logging", "--home", founder)
    shown = p2pc_json("proposal", "show", removal["id"], "--home", founder)
    assert shown["status"] == "adopted" and shown["action"] == {"act": "removal", "member": newcomer_id,
                                                                "reason": "logging"}
    assert "removal nora" not in p2pc("proposals", "--home", founder)  # members shown by id
    assert {m["name"]: m for m in p2pc_json("members", "--home", founder)["members"]}["nora"]["status"] == "removed"


def test_a_review_appealed_from_the_cli_is_reviewed_again(tmp_path: Path) -> None:
    """A single founder (the only steward and reviewer) rejects a contribution, then appeals
    her own review: adopted at once (1 of 1), the contribution is pending and reviewed anew."""
    founder, founder_id = _init(tmp_path / "founder")
    charter = tmp_path / "charter.toml"
    charter.write_text("[review]\nself_review = true\n", encoding="utf-8")
    p2pc_json("commons", "create", "Mill", "--rules", str(charter), "--home", founder)
    work = p2pc_json("contribute", "--title", "Page: the weir", "--home", founder)["id"]
    p2pc_json("review", work, "reject", "--home", founder)
    appeal = p2pc_json("proposal", "appeal", work, "--reason", "sources found", "--home", founder)
    shown = p2pc_json("proposal", "show", appeal["id"], "--home", founder)
    assert shown["act"] == "appeal" and shown["status"] == "adopted"
    assert shown["action"]["contribution"] == work and shown["action"]["reason"] == "sources found"
    accepted = p2pc_json("review", work, "accept", "--home", founder)
    assert accepted["outcome"]["status"] == "applied"
    pending = p2pc_json("contribute", "--title", "Page: the sluice", "--home", founder)["id"]
    assert "only a decided" in fails("proposal", "appeal", pending, "--reason", "x", "--home", founder, code=7)
    assert "No entry" in fails("proposal", "appeal", founder_id, "--reason", "x", "--home", founder, code=2)
