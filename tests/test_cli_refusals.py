"""Issue 19, deliverable 4: a local write the rules in force would reject is refused before
it is stored (exit code 7, the fold's reason, the log unchanged); ``--force`` records it.
Real homes, real signatures, real SQLite, through the CLI (typer's CliRunner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2pcommons.cli.app import EXIT_CODES
from p2pcommons.errors import RuleRefusal
from p2pcommons.state.engine import forget
from tests.support.cli_json import stream, unwrap

from .support.cli import fresh_live_state, invoke  # noqa: F401 (an autouse fixture)

REFUSED = RuleRefusal.exit_code


def p2pc(*args: str, code: int = 0) -> Any:
    return invoke(*args, code=code)


def p2pc_json(*args: str) -> Any:
    return unwrap(p2pc(*args, "--json").stdout)


def refused(home: str, *args: str) -> str:
    """Run a write that must be refused; check the log did not change; return the message."""
    before = log_of(home)
    result = p2pc(*args, "--home", home, code=REFUSED)
    message = result.stderr.strip()
    assert message.startswith("p2pc: Refused by the rules in force: ") and "\n" not in message
    assert "Traceback" not in message and result.stdout == ""
    forget()  # read the store afresh: nothing of the refused entry may remain
    assert log_of(home) == before
    return message


def log_of(home: str) -> list[str]:
    out = p2pc("log", "--json", "--home", home).stdout
    return [item["id"] for item in stream(out)]


def _founded(tmp_path: Path) -> tuple[str, str]:
    home = str(tmp_path / "founder")
    p2pc_json("init", "--home", home)
    commons = p2pc_json("commons", "create", "Forest", "--home", home)["commons"]
    return home, commons


def test_the_exit_code_is_distinct_and_documented() -> None:
    assert REFUSED not in (0, 1, 2, 3, 4, 5, 6) and REFUSED in EXIT_CODES
    root = Path(__file__).resolve().parents[1]
    assert f"| {REFUSED} |" in (root / "docs" / "operations.md").read_text()
    assert f"{REFUSED} a write the rules in force would reject" in (root / "README.md").read_text()
    assert "--force" in p2pc("review", "--help").stdout


def test_self_review_is_refused_and_force_records_it(tmp_path: Path) -> None:
    home, _ = _founded(tmp_path)
    mine = p2pc_json("contribute", "--title", "trail map", "--home", home)["id"]
    message = refused(home, "review", mine, "accept")
    assert "own" in message.lower()
    forced = p2pc_json("review", mine, "accept", "--force", "--home", home)
    assert forced["outcome"]["status"] == "rejected"
    assert forced["id"] in log_of(home)


def test_over_quota_use_is_refused(tmp_path: Path) -> None:
    home, _ = _founded(tmp_path)
    p2pc_json("resource", "add", "water", "--rivalrous", "--quota", "5", "--unit", "m3", "--home", home)
    assert p2pc_json("resource", "use", "water", "4", "--home", home)["outcome"]["status"] == "applied"
    assert "quota" in refused(home, "resource", "use", "water", "2")
    # A valid write after a refusal still works, and sees the store as it is.
    assert p2pc_json("resource", "use", "water", "1", "--home", home)["outcome"]["status"] == "applied"
    used = p2pc_json("resource", "list", "--home", home)["resources"][0]["used"]
    assert sum(used.values()) == 5


def test_vote_on_an_adopted_proposal_is_refused(tmp_path: Path) -> None:
    home, _ = _founded(tmp_path)
    proposal = p2pc_json("rules", "propose", "--set", "review.accepts=1", "--home", home)
    assert proposal["outcome"]["status"] == "applied"  # the sole steward's proposal passes at once
    refused(home, "rules", "vote", proposal["id"], "yes")


def test_repeated_join_is_refused_but_a_pending_join_is_not(tmp_path: Path) -> None:
    home, commons = _founded(tmp_path)
    newcomer = str(tmp_path / "newcomer")
    p2pc_json("init", "--home", newcomer)

    def carry(src: str, dst: str, name: str) -> None:
        bundle = tmp_path / f"{name}.p2pc"
        p2pc("export", "--commons", commons, "-o", str(bundle), "--home", src)
        p2pc("import", str(bundle), "--home", dst)

    carry(home, newcomer, "b0")
    first = p2pc_json("join", commons, "--name", "nora", "--home", newcomer)
    assert first["outcome"]["status"] == "pending"  # awaiting admission: not a refusal
    # An outsider's contribution awaits review: pending, stored, not refused.
    outsider = p2pc_json("contribute", "--title", "x", "--home", newcomer)
    assert outsider["id"] in log_of(newcomer)
    carry(newcomer, home, "b1")
    assert p2pc_json("admit", "--home", home)["admissions"][0]["outcome"]["status"] == "applied"
    carry(home, newcomer, "b2")
    assert "member" in refused(newcomer, "join", commons, "--name", "nora").lower()
    assert "member" in refused(home, "join", commons).lower()  # the founder is a member already


def test_a_refusal_leaves_the_live_fold_and_the_log_consistent(tmp_path: Path) -> None:
    """In one process (no forget between writes): the refused entry is neither stored nor
    left in the live fold, and the next write takes the same seq and is applied."""
    from p2pcommons.author import append, create_commons
    from p2pcommons.entry import Signer
    from p2pcommons.state import genesis_body
    from p2pcommons.state.engine import current_state
    from p2pcommons.store import Store

    signer = Signer(bytes(range(32)))
    with Store(str(tmp_path / "store.sqlite")) as store:
        commons = create_commons(store, signer, genesis_body("C", founders=[signer.public_key])).id
        work = append(store, signer, commons, "contribution", {"title": "t", "kind": "work", "value": 1})
        assert current_state(store, commons).outcome(work.id).status == "applied"  # type: ignore[union-attr]
        with pytest.raises(RuleRefusal):
            append(store, signer, commons, "review", {"contribution": work.id, "verdict": "accept"},
                   extra_deps=[work.id])
        assert store.count(commons) == 2
        nxt = append(store, signer, commons, "contribution", {"title": "u", "kind": "work", "value": 1})
        assert nxt.seq == 3 and store.count(commons) == 3
        state = current_state(store, commons)
        assert state.outcome(nxt.id).status == "applied"  # type: ignore[union-attr]
        forced = append(store, signer, commons, "review", {"contribution": work.id, "verdict": "accept"},
                        extra_deps=[work.id], force=True)
        assert current_state(store, commons).outcome(forced.id).status == "rejected"  # type: ignore[union-attr]
        assert store.count(commons) == 4
