"""The governance CLI (cli/governance.py) through typer's CliRunner, including the scripted
two-home scenario of issue 3: founder, newcomer, review, rule change by vote, removal,
distribution — converging to one state hash through bundles, in either import order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from p2pcommons.cli.app import get_app
from tests.support.cli_json import unwrap

from .support.cli import fresh_live_state, invoke  # noqa: F401 (an autouse fixture)

runner = CliRunner()


def p2pc(*args: str, code: int = 0) -> str:
    return invoke(*args, code=code).stdout


def p2pc_json(*args: str) -> Any:
    return unwrap(p2pc(*args, "--json"))


def fails(*args: str, code: int = 2) -> str:
    result = runner.invoke(get_app(), list(args), catch_exceptions=False)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("p2pc: ") and "\n" not in message and "Traceback" not in message
    return message


def _init(path: Path) -> tuple[str, str]:
    data = p2pc_json("init", "--home", str(path))
    return str(path), data["author"]


def _carry(src: str, dst: str, commons: str, tmp: Path, name: str) -> None:
    bundle = tmp / f"{name}.p2pc"
    p2pc("export", "--commons", commons, "-o", str(bundle), "--home", src)
    p2pc("import", str(bundle), "--home", dst)


def _hash(home: str, commons: str) -> str:
    return str(p2pc_json("state", "--commons", commons, "--home", home)["state_hash"])


def test_two_homes_scenario_converges_in_either_order(tmp_path: Path) -> None:
    founder, founder_id = _init(tmp_path / "founder")
    newcomer, newcomer_id = _init(tmp_path / "newcomer")
    commons = p2pc_json("commons", "create", "Forest", "--description", "a community forest",
                        "--home", founder)["commons"]
    state = p2pc_json("state", "--home", founder)
    assert state["commons"] == commons and state["member_count"] == 1 and state["entry_count"] == 1
    assert state["rules"]["membership"]["policy"] == "open"

    # The newcomer gets the commons by bundle, joins and contributes without asking.
    _carry(founder, newcomer, commons, tmp_path, "b0")
    join = p2pc_json("join", commons, "--name", "nora", "--home", newcomer)
    assert join["outcome"]["status"] == "pending"
    contribution = p2pc_json("contribute", "--title", "trail map", "--value", "5", "--home", newcomer)["id"]
    status = p2pc_json("status", contribution, "--home", newcomer)
    assert status["status"] == "pending"

    # The founder's node admits the newcomer and reviews the contribution.
    _carry(newcomer, founder, commons, tmp_path, "b1")
    admitted = p2pc_json("admit", "--home", founder)["admissions"]
    assert len(admitted) == 1 and admitted[0]["outcome"]["status"] == "applied"
    review = p2pc_json("review", contribution, "accept", "--value", "8", "--comment", "great", "--home", founder)
    assert review["outcome"]["status"] == "applied"
    members = p2pc_json("members", "--home", founder)["members"]
    assert {m["author"] for m in members} == {founder_id, newcomer_id}

    # Rule change by vote: with two stewards, a majority needs both.
    p2pc_json("role", newcomer_id, "grant", "steward", "--home", founder)
    proposal = p2pc_json("rules", "propose", "--set", "review.accepts=2", "--title", "four eyes",
                         "--home", founder)["id"]
    assert p2pc_json("rules", "show", "--home", founder)["rules"]["review"]["accepts"] == 1
    _carry(founder, newcomer, commons, tmp_path, "b2")
    vote = p2pc_json("rules", "vote", proposal, "yes", "--home", newcomer)
    assert vote["outcome"]["status"] == "applied"
    assert p2pc_json("rules", "show", "--home", newcomer)["rules"]["review"]["accepts"] == 2

    # Removal and distribution.
    _carry(newcomer, founder, commons, tmp_path, "b3")
    assert p2pc_json("rules", "show", "--home", founder)["rules"]["review"]["accepts"] == 2
    removal = p2pc_json("sanction", "nora", "remove", "--reason", "left the valley", "--home", founder)
    assert removal["outcome"]["status"] == "applied"
    distribution = p2pc_json("distribute", "100", "--currency", "EUR", "--home", founder)
    assert distribution["outcome"]["status"] == "applied"
    ledger = p2pc_json("ledger", "--home", founder)
    assert ledger["ledger"][0]["author"] == newcomer_id and ledger["ledger"][0]["value"] == 8
    assert ledger["distributions"][0]["shares"] == {newcomer_id: 100}

    # A late entry from the removed member, written before they heard of the removal.
    late = p2pc_json("contribute", "--title", "after removal", "--home", newcomer)["id"]

    # Exchange everything; then two fresh homes import the two bundles in opposite orders.
    full_f, full_n = tmp_path / "full-f.p2pc", tmp_path / "full-n.p2pc"
    p2pc("export", "--commons", commons, "-o", str(full_f), "--home", founder)
    p2pc("export", "--commons", commons, "-o", str(full_n), "--home", newcomer)
    p2pc("import", str(full_n), "--home", founder)
    p2pc("import", str(full_f), "--home", newcomer)
    hashes = {_hash(founder, commons), _hash(newcomer, commons)}
    for name, order in (("x", (full_f, full_n)), ("y", (full_n, full_f))):
        other, _ = _init(tmp_path / name)
        for bundle in order:
            p2pc("import", str(bundle), "--home", other)
        hashes.add(_hash(other, commons))
    assert len(hashes) == 1
    late_status = p2pc_json("status", late, "--home", founder)
    assert late_status["status"] == "rejected" and "removal" in late_status["reason"].lower()
    final = p2pc_json("state", "--home", founder)
    assert final["contribution_counts"] == {"accepted": 1, "pending": 0, "rejected": 0}
    assert final["member_count"] == 1


def test_resources_quota_and_listing(tmp_path: Path) -> None:
    home, _ = _init(tmp_path / "h")
    p2pc_json("commons", "create", "Well", "--home", home)
    added = p2pc_json("resource", "add", "water", "--rivalrous", "--quota", "5", "--period", "86400", "--unit", "m3",
                      "--home", home)
    assert added["outcome"]["status"] == "applied"
    assert p2pc_json("resource", "use", "water", "4", "--home", home)["outcome"]["status"] == "applied"
    assert "quota" in fails("resource", "use", "water", "2", "--note", "garden", "--home", home, code=7)
    over = p2pc_json("resource", "use", "water", "2", "--note", "garden", "--force", "--home", home)
    assert over["outcome"]["status"] == "rejected" and "quota" in over["outcome"]["reason"]
    listed = p2pc_json("resource", "list", "--home", home)["resources"]
    assert listed[0]["name"] == "water" and sum(listed[0]["used"].values()) == 4
    assert "water" in p2pc("resource", "list", "--home", home)


def test_errors_are_one_sentence(tmp_path: Path) -> None:
    home, _ = _init(tmp_path / "h")
    commons = p2pc_json("commons", "create", "C", "--home", home)["commons"]
    assert "accept or reject" in fails("review", commons, "maybe", "--home", home)
    assert "not a contribution" in fails("review", commons, "accept", "--home", home)
    assert "No member" in fails("sanction", "zzz", "warning", "--reason", "x", "--home", home)
    assert "There is no rule" in fails("rules", "propose", "--set", "no.such=1", "--home", home)
    assert "positive integer" in fails("rules", "propose", "--set", "review.accepts=0", "--home", home)
    assert "at least one change" in fails("rules", "propose", "--home", home)
    assert "yes, no or abstain" in fails("rules", "vote", commons, "maybe", "--home", home)
    assert "No entry" in fails("status", "bafyzzzz", "--home", home)


def test_rules_file_and_human_output(tmp_path: Path) -> None:
    home, _ = _init(tmp_path / "h")
    p2pc_json("commons", "create", "C", "--home", home)
    rules = tmp_path / "change.toml"
    rules.write_text('[review]\naccepts = 3\n[rule_change]\nthreshold = "2/3"\n', encoding="utf-8")
    proposal = p2pc_json("rules", "propose", "--file", str(rules), "--home", home)
    assert proposal["outcome"]["status"] == "applied"
    shown = p2pc_json("rules", "show", "--home", home)["rules"]
    assert shown["review"]["accepts"] == 3 and shown["rule_change"]["threshold"] == {"num": 2, "den": 3}
    text = p2pc("rules", "show", "--home", home)
    assert "review.accepts = 3" in text and "rule_change.threshold = 2/3" in text
    assert "state hash" in p2pc("state", "--home", home)
    assert "No accepted contributions" in p2pc("ledger", "--home", home)


def test_genesis_body_from_toml_and_flag() -> None:
    from p2pcommons.state import InvalidRules, genesis_body

    body = genesis_body("X", rules={"membership": {"policy": "approval", "approvals": 2}}, membership=None,
                        founders=[b"\x01" * 32])
    assert body["rules"]["membership"] == {"policy": "approval", "approvals": 2, "admitters": ["member"]}
    assert genesis_body("X", membership="invite")["rules"]["membership"]["policy"] == "invite"
    with pytest.raises(InvalidRules, match=r"membership\.policy"):
        genesis_body("X", membership="closed")
    with pytest.raises(InvalidRules, match="no rule"):
        genesis_body("X", rules={"review": {"acepts": 2}})


def test_contributions_listing_by_status(tmp_path: Path) -> None:
    founder, _ = _init(tmp_path / "f")
    newcomer, newcomer_id = _init(tmp_path / "n")
    commons = p2pc("commons", "create", "Queue", "--home", founder).strip()
    _carry(founder, newcomer, commons, tmp_path, "a")
    good = p2pc("contribute", "--title", "Good work", "--value", "4", "--home", newcomer).strip()
    spam = p2pc("contribute", "--title", "Spam", "--home", newcomer).strip()
    waiting = p2pc("contribute", "--title", "Not yet reviewed", "--home", newcomer).strip()
    _carry(newcomer, founder, commons, tmp_path, "b")
    p2pc("review", good, "accept", "--value", "3", "--home", founder)
    p2pc("review", spam, "reject", "--comment", "off topic", "--home", founder)
    listed = p2pc_json("contributions", "--home", founder)["contributions"]
    by_id = {row["id"]: row for row in listed}
    assert by_id[good]["status"] == "accepted" and by_id[good]["value"] == 3 and by_id[good]["claimed"] == 4
    assert by_id[spam]["status"] == "rejected" and by_id[waiting]["status"] == "pending"
    assert all(row["author"] == newcomer_id for row in listed)
    pending = p2pc_json("contributions", "--status", "pending", "--home", founder)["contributions"]
    assert [row["id"] for row in pending] == [waiting]
    assert "Not yet reviewed" in p2pc("contributions", "--status", "pending", "--home", founder)
    fails("contributions", "--status", "bogus", "--home", founder)
