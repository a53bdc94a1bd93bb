"""Devices and backups through the CLI (issue 14), with real homes, stores, signatures and
bundles: a member on two machines (one key each), one lost and revoked; a restored home and
a home whose store was put back from an older copy sign nothing (they would fork their log)
until they know their own latest entries, or become a fresh device."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from p2pcommons.cli.app import get_app
from p2pcommons.state.engine import forget
from tests.support.cli_json import unwrap

runner = CliRunner()


@pytest.fixture(autouse=True)
def _fresh_live_state() -> Any:
    forget()
    yield
    forget()


def p2pc(*args: str, code: int = 0) -> str:
    result = runner.invoke(get_app(), list(args), catch_exceptions=False, env={"P2PC_NO_PROGRESS": "1"})
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    if code:
        message = result.stderr.strip()
        assert message.startswith("p2pc: ") and "\n" not in message and "Traceback" not in message
        return message
    return result.stdout


def p2pc_json(*args: str) -> Any:
    return unwrap(p2pc(*args, "--json"))


def carry(src: Path, dst: Path, tmp: Path) -> None:
    bundle = tmp / f"{src.name}-to-{dst.name}.p2pc"
    p2pc("export", "--commons", "Demo", "-o", str(bundle), "--home", str(src))
    p2pc("import", str(bundle), "--home", str(dst))


def test_a_member_on_two_machines_one_lost_and_revoked(tmp_path: Path) -> None:
    laptop, desktop, other = tmp_path / "laptop", tmp_path / "desktop", tmp_path / "other"
    member = p2pc_json("init", "--home", str(laptop))["author"]
    p2pc("commons", "create", "Demo", "--home", str(laptop))
    p2pc("init", "--home", str(desktop))
    code = p2pc_json("device", "add", "--home", str(desktop))["code"]
    accepted = p2pc_json("device", "accept", code, "--home", str(laptop))
    assert accepted["outcome"]["status"] == "applied"
    carry(laptop, desktop, tmp_path)
    work = p2pc_json("contribute", "--title", "from the desktop", "--value", "4", "--home", str(desktop))
    status = p2pc_json("status", work["id"], "--home", str(desktop))
    assert status["status"] == "applied" and status["member"] == member  # the member's contribution
    carry(desktop, laptop, tmp_path)
    # One member, whatever the key: the laptop may not review the desktop's work (self-review).
    refusal = p2pc("review", work["id"], "accept", "--home", str(laptop), code=7)
    assert "their own contribution" in refusal
    listed = p2pc_json("device", "list", "--home", str(desktop))
    assert listed["member"] == member and [k["status"] for k in listed["keys"]] == ["active", "active"]
    # The laptop is lost: the desktop revokes the member's own key, and carries on.
    carry(laptop, desktop, tmp_path)
    revoked = p2pc_json("device", "revoke", member, "--home", str(desktop))
    assert revoked["outcome"]["status"] == "applied"
    later = p2pc_json("contribute", "--title", "after losing the laptop", "--home", str(desktop))
    assert p2pc_json("status", later["id"], "--home", str(desktop))["status"] == "applied"
    # The lost laptop's later entries (it was not destroyed after all) have no effect.
    stray = p2pc_json("contribute", "--title", "from the lost laptop", "--home", str(laptop), "--force")
    p2pc("init", "--home", str(other))
    carry(desktop, other, tmp_path)
    carry(laptop, other, tmp_path)
    outcome = p2pc_json("status", stray["id"], "--home", str(other))
    assert outcome["status"] == "rejected" and "Strong removal" in outcome["reason"]
    members = p2pc_json("members", "--home", str(other))["members"]
    assert [m["status"] for m in members] == ["active"]
    assert sorted(k["status"] for k in members[0]["keys"]) == ["active", "revoked"]


def test_a_restored_home_signs_nothing_until_it_knows_its_latest_entries(tmp_path: Path) -> None:
    home, restored, fresh = tmp_path / "home", tmp_path / "restored", tmp_path / "desktop"
    p2pc("init", "--home", str(home))
    p2pc("commons", "create", "Demo", "--home", str(home))
    p2pc("contribute", "--title", "one", "--home", str(home))
    backup = tmp_path / "backup.p2pc"
    p2pc("export", "--commons", "Demo", "-o", str(backup), "--home", str(home))
    shutil.copy(home / "keys" / "identity.json", tmp_path / "identity.json")
    p2pc("contribute", "--title", "two (after the backup)", "--home", str(home))
    p2pc("restore", str(tmp_path / "identity.json"), str(backup), "--home", str(restored))
    message = p2pc("contribute", "--title", "would fork", "--home", str(restored), code=4)
    assert "p2pc sync" in message
    # Becoming a fresh device: a new key, accepted from the member's other machine.
    code = p2pc_json("device", "add", "--new-key", "--home", str(restored))["code"]
    p2pc("device", "accept", code, "--home", str(home))
    carry(home, restored, tmp_path)
    work = p2pc_json("contribute", "--title", "three, from the restored machine", "--home", str(restored))
    assert p2pc_json("status", work["id"], "--home", str(restored))["status"] == "applied"
    carry(restored, home, tmp_path)
    members = p2pc_json("members", "--home", str(home))["members"]
    assert all(k["status"] == "active" for k in members[0]["keys"])  # nothing forked
    # A store put back from an older copy under a home that signed more: refused too.
    p2pc("init", "--home", str(fresh))
    shutil.copy(home / "store.sqlite", tmp_path / "old.sqlite")
    p2pc("contribute", "--title", "four", "--home", str(home))
    forget()
    for suffix in ("-wal", "-shm"):
        (home / f"store.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "old.sqlite", home / "store.sqlite")
    message = p2pc("contribute", "--title", "would fork too", "--home", str(home), code=4)
    assert "holds only up to" in message


def test_bad_link_codes_are_usage_errors(tmp_path: Path) -> None:
    p2pc("init", "--home", str(tmp_path / "h"))
    p2pc("commons", "create", "Demo", "--home", str(tmp_path / "h"))
    code = p2pc_json("device", "add", "--home", str(tmp_path / "h"))["code"]
    typo = code[:-1] + ("a" if code[-1] != "a" else "b")
    assert "not a device link code" in p2pc("device", "accept", typo, "--home", str(tmp_path / "h"), code=2)
    # Binding one's own key is refused by the rules (nothing stored).
    p2pc("device", "accept", code, "--home", str(tmp_path / "h"), code=7)


def test_a_fork_costs_the_device_and_is_shown_plainly(tmp_path: Path) -> None:
    """A whole home directory copied and written from twice (the unsafe path the docs warn
    about) forks that device's key: `members` and `status` say so, the member stays active and
    carries on from another key."""
    laptop, desktop, twin = tmp_path / "laptop", tmp_path / "desktop", tmp_path / "twin"
    member = p2pc_json("init", "--home", str(laptop))["author"]
    p2pc("commons", "create", "Demo", "--home", str(laptop))
    p2pc("init", "--home", str(desktop))
    p2pc("device", "accept", p2pc_json("device", "add", "--home", str(desktop))["code"], "--home", str(laptop))
    carry(laptop, desktop, tmp_path)
    forget()
    shutil.copytree(desktop, twin)
    one = p2pc_json("contribute", "--title", "one", "--home", str(desktop))["id"]
    p2pc("contribute", "--title", "one, again", "--home", str(twin))
    carry(desktop, laptop, tmp_path)
    carry(twin, laptop, tmp_path)
    status = p2pc_json("status", one, "--home", str(laptop))
    assert status["status"] == "rejected" and "fork" in status["reason"]
    human = p2pc("status", one, "--home", str(laptop))
    assert "forked at seq 1" in human and "by a device of member" in human
    members = p2pc_json("members", "--home", str(laptop))["members"]
    assert members[0]["author"] == member and members[0]["status"] == "active"
    assert [(k["own"], k["status"], k["forked_at"]) for k in members[0]["keys"]] == [
        (True, "active", None), (False, "forked", 1)]
    assert "FORKED at seq 1" in p2pc("members", "--home", str(laptop))
    after = p2pc_json("contribute", "--title", "carrying on", "--home", str(laptop))["id"]
    assert p2pc_json("status", after, "--home", str(laptop))["status"] == "applied"


def test_stewards_recover_a_member_who_lost_every_device(tmp_path: Path) -> None:
    """Bob, a member, loses every device: the one steward's approval (a majority of the 1
    eligible) binds his new key, which then writes as bob."""
    alice, bob, new = tmp_path / "alice", tmp_path / "bob", tmp_path / "new"
    p2pc("init", "--home", str(alice))
    bob_id = p2pc_json("init", "--home", str(bob))["author"]
    commons = p2pc_json("commons", "create", "Demo", "--home", str(alice))["commons"]
    carry(alice, bob, tmp_path)
    p2pc("join", commons, "--name", "bob", "--home", str(bob))
    carry(bob, alice, tmp_path)
    p2pc("admit", "--home", str(alice))
    p2pc("init", "--home", str(new))
    code = p2pc_json("device", "add", "--home", str(new))["code"]
    approval = p2pc_json("device", "recover", bob_id, code, "--home", str(alice))
    assert approval["outcome"]["status"] == "applied"
    carry(alice, new, tmp_path)
    listed = p2pc_json("device", "list", "--home", str(new))
    assert listed["member"] == bob_id and [k["status"] for k in listed["keys"]] == ["active", "active"]
    work = p2pc_json("contribute", "--title", "back", "--home", str(new))["id"]
    assert p2pc_json("status", work, "--home", str(new))["member"] == bob_id
