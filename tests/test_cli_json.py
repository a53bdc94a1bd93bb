"""One CLI language (issue 19 item 4): every ``--json`` output is one versioned envelope that
validates against docs/json-schema.json, errors included; short ids shown and accepted;
``contributions`` in time order; ``log`` with times and names; global options in either
position.  Driven through typer's CliRunner (in-process, fast) and, for the exit paths a
process sees, through real ``p2pc`` processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from p2pcommons.cli.app import get_app, short_id
from tests.support.cli_json import envelope, error_of, stream, unwrap

runner = CliRunner()
P2PC = [sys.executable, "-c", "from p2pcommons.cli.app import main; main()"]

# Every command path exercised with --json below (checked against the app's commands at the end).
EXERCISED: set[str] = set()


def invoke(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(get_app(), list(args), env={"P2PC_NO_PROGRESS": "1", **(env or {})})
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr, result.exception)
    return result


def ok(*args: str, env: dict[str, str] | None = None) -> Any:
    """The data of a successful ``--json`` run (the envelope validated)."""
    EXERCISED.add(_path_of(args))
    return unwrap(invoke(*args, "--json", env=env).stdout)


def err(code: int, *args: str) -> dict[str, Any]:
    """The error of a failed ``--json`` run: the envelope on stdout, nothing on stderr."""
    EXERCISED.add(_path_of(args))
    result = invoke(*args, "--json", code=code)
    error = error_of(result.stdout)
    assert error["code"] == code and not result.stderr.strip(), (result.stdout, result.stderr)
    return error


def _path_of(args: tuple[str, ...]) -> str:
    groups = {"commons", "rules", "resource", "node", "peer", "invite", "config", "proposal", "device", "pool"}
    words = [a for a in args if not a.startswith("-")]
    return " ".join(words[:2]) if words and words[0] in groups else (words[0] if words else "")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A founder and a member (nora) of one commons, with contributions, a review, a rule
    proposal, a resource and its use."""
    root = tmp_path_factory.mktemp("json")
    founder, member = str(root / "founder"), str(root / "member")
    ok("init", "--home", founder)
    ok("init", "--home", member)
    ok("commons", "create", "Forest", "--home", founder)
    bundle = str(root / "forest.bundle")
    ok("export", "-o", bundle, "--home", founder)
    ok("import", bundle, "--home", member)
    ok("join", "--name", "nora", "--home", member, *_commons(founder))
    ok("export", "-o", bundle, "--home", member)
    ok("import", bundle, "--home", founder)
    ok("admit", "--home", founder)
    return {"founder": founder, "member": member, "root": str(root)}


def _commons(home: str) -> list[str]:
    return [unwrap(invoke("commons", "list", "--home", home, "--json").stdout)[0]["commons"]]


# --- every command's output validates against the schema -----------------------------------


def test_every_command_speaks_the_envelope(homes: dict[str, str]) -> None:
    founder, member, root = homes["founder"], homes["member"], homes["root"]
    me = ok("id", "--home", founder)
    assert me["author"].startswith("z6Mk")  # one key for an author id, here as everywhere
    commons = _commons(founder)[0]
    listed = ok("commons", "list", "--home", founder)
    assert listed[0]["entry_count"] >= 1 and listed[0]["author_count"] >= 1
    shown = ok("commons", "show", "--home", founder)
    assert shown["founder"] == me["author"] and shown["entry_count"] == listed[0]["entry_count"]
    entry = ok("contribute", "--title", "trail map", "--value", "3", "--home", founder)["id"]
    ok("review", entry, "accept", "--force", "--home", founder)
    ok("status", entry, "--home", founder)
    state = ok("state", "--home", founder)
    assert state["member_count"] == 2 and isinstance(state["contribution_counts"], dict)
    assert ok("members", "--home", founder)["members"][0]["warning_count"] == 0
    ledger = ok("ledger", "--home", founder)
    assert all(isinstance(row["share_percent"], float) for row in ledger["ledger"])
    ok("contributions", "--home", founder)
    ok("rules", "show", "--home", founder)
    proposal = ok("rules", "propose", "--set", "review.accepts=1", "--home", founder)["id"]
    ok("rules", "vote", proposal, "yes", "--force", "--home", founder)
    ok("resource", "add", "water", "--rivalrous", "--quota", "5", "--home", founder)
    ok("resource", "use", "water", "2", "--home", founder)
    ok("resource", "list", "--home", founder)
    ok("distribute", "10", "--force", "--home", founder)  # nothing accepted yet: refused without --force
    paid = next(item["id"] for item in stream(invoke("log", "--home", founder, "--json").stdout)
                if item["kind"] == "distribution")
    ok("receipt", paid, "--force", "--home", founder)  # (it had no effect: refused without --force)
    explained = ok("ledger", "--explain", me["author"], "--home", founder)
    assert explained["member"] == me["author"] and explained["paid_to_date"] == 0
    ok("role", "nora", "grant", "reviewer", "--home", founder)
    ok("sanction", "nora", "warning", "--reason", "late", "--home", founder)
    assert ok("vouch", "nora", "--home", founder)["id"]
    assert err(7, "vouch", "nora", "--home", founder)["message"].endswith(
        "its author already vouched for this member; nothing was stored (--force records it anyway).")
    ok("leave", "--force", "--home", member)  # its home has not heard of its admission: refused without
    assert ok("verify", "--home", founder)["passed"] is True
    entry_count = ok("state", "--home", founder)["entry_count"]
    assert len(stream(invoke("log", "--home", founder, "--json").stdout)) == entry_count
    EXERCISED.add("log")
    ok("config", "show", "--home", founder)
    ok("config", "set", "mdns", "true", "--home", founder)
    ok("config", "get", "mdns", "--home", founder)
    ok("config", "unset", "mdns", "--home", founder)
    ok("peer", "list", "--home", founder)
    ok("peer", "add", "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRYZDHBembyGJQqQ6WgLqJWLv2NsaWBiSrAajdkQTTzC",
       "--home", founder)
    assert ok("peer", "remove", "12D3KooWGRYZDHBembyGJQqQ6WgLqJWLv2NsaWBiSrAajdkQTTzC", "--home", founder)[
        "removed_count"] == 1
    err(2, "peer", "unban", "12D3KooWGRYZDHBembyGJQqQ6WgLqJWLv2NsaWBiSrAajdkQTTzC", "--home", founder)
    # commands that need the daemon: their refusal is an envelope too
    for args in (("node", "status"), ("node", "stop"), ("invite", "create"), ("sync", "status"), ("ui",)):
        assert err(6, *args, "--home", founder)["type"] == "DaemonNotRunning"
    assert err(2, "sync", "--home", founder)["type"] == "UsageError"  # no peer to sync with
    assert err(4, "node", "start", "--home", str(Path(root) / "nobody"))["type"] == "NoIdentity"
    assert err(2, "join", "p2pc1notacode", "--home", member)["code"] == 2
    assert err(2, "commons", "show", "nope", "--home", founder)["type"] == "NotFound"
    assert err(2, "export", "-o", "-", "--home", founder)["type"] == "UsageError"  # stdout is the envelope's
    assert err(4, "init", "--home", founder)["type"] == "IdentityExists"
    assert commons in {row["commons"] for row in listed}
    _decisions_and_devices(founder, member, root)
    _treasury(founder)
    _every_json_command_was_exercised()


def _treasury(founder: str) -> None:
    """The treasury commands (pools, payments, spends) and booking cancellation."""
    use = ok("resource", "use", "water", "1", "--home", founder)["id"]
    ok("resource", "cancel", use, "--force", "--home", founder)
    ok("resource", "change", "water", "--quota", "6", "--capacity", "20", "--propose", "--force", "--home", founder)
    assert ok("resource", "change", "water", "--quota", "7", "--home", founder)["id"]
    ok("resource", "close", "water", "--home", founder)
    closed = next(r for r in ok("resource", "list", "--home", founder)["resources"] if r["name"] == "water")
    assert closed["closed"] is True and closed["quota"] == 7
    assert "the resource water is closed" in err(7, "resource", "use", "water", "1", "--home", founder)["message"]
    created = ok("pool", "create", "fund", "--unit", "EUR", "--force", "--home", founder)
    ok("rules", "vote", created["id"], "yes", "--force", "--home", founder)
    assert isinstance(ok("pool", "list", "--home", founder)["pools"], list)
    ok("pool", "pay", "fund", "50", "--force", "--home", founder)
    ok("pool", "spend", "fund", "20", "nora", "--reason", "tools", "--force", "--home", founder)
    # (the pool awaits the other member's vote here; tests/test_cli_treasury.py shows a declared one)
    assert err(2, "pool", "show", "fund", "--home", founder)["type"] == "NotFound"


def _decisions_and_devices(founder: str, member: str, root: str) -> None:
    """The decisions commands (proposals, votes, inbox) and the devices commands (link
    codes, binding, revocation, recovery, restore): their outputs validate too."""
    join = next(item["id"] for item in stream(invoke("log", "--home", founder, "--json").stdout)
                if item["kind"] == "join")
    work = next(item["id"] for item in stream(invoke("log", "--home", founder, "--json").stdout)
                if item["kind"] == "contribution")
    ok("proposal", "appeal", work, "--reason", "too generous", "--force", "--home", founder)
    grant = ok("proposal", "grant", "nora", "steward", "--force", "--home", founder)["id"]
    for args in (("admit", join), ("remove", "nora", "--reason", "idle"), ("reinstate", "nora", "--reason", "back"),
                 ("revoke", "nora", "reviewer"), ("distribute", "10"), ("resource", "tools", "--quota", "1")):
        ok("proposal", *args, "--force", "--home", founder)
    ok("vote", grant, "abstain", "--force", "--home", founder)
    shown = ok("proposal", "show", grant, "--home", founder)
    assert shown["id"] == grant
    ok("proposal", "withdraw", grant, "--force", "--home", founder)
    assert isinstance(ok("proposals", "--home", founder), (list, dict))
    ok("inbox", "--home", founder)
    laptop, spare = str(Path(root) / "laptop"), str(Path(root) / "spare")
    ok("init", "--home", laptop)
    code = ok("device", "add", "--home", laptop)["code"]
    ok("device", "accept", code, "--home", founder)
    keys = ok("device", "list", "--home", founder)["keys"]
    device = next(k["author"] for k in keys if not k["own"])
    ok("device", "revoke", device, "--home", founder)
    ok("init", "--home", spare)
    spare_code = ok("device", "add", "--home", spare)["code"]
    ok("device", "recover", "nora", spare_code, "--home", founder)
    spare2 = str(Path(root) / "spare2")
    ok("init", "--home", spare2)
    other_code = ok("device", "add", "--home", spare2)["code"]
    recovery = ok("proposal", "recover", "nora", other_code, "--force", "--home", founder)["id"]
    assert "recovery of" in invoke("proposal", "show", recovery, "--home", founder).stdout
    backup = str(Path(root) / "backup.p2pc")
    ok("export", "-o", backup, "--home", founder)
    ok("restore", str(Path(founder) / "keys" / "identity.json"), backup, "--home", str(Path(root) / "restored"))


def _every_json_command_was_exercised() -> None:
    """A command added later (by anyone) gets the envelope from ``emit``; this asks for it
    to be run above, so its output is checked against the schema too."""
    import typer.main

    group: Any = typer.main.get_command(get_app())
    paths = set()
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        for sub_name, sub in (subcommands or {name: command}).items():
            path = f"{name} {sub_name}" if subcommands else name
            if any("--json" in getattr(p, "opts", []) for p in sub.params):
                paths.add(path)
    assert paths - EXERCISED == set(), "commands with --json output that no test here runs"


# --- errors: the envelope with --json in either position, one sentence without --------------


@pytest.mark.parametrize("position", ["before", "after"])
def test_errors_are_envelopes_in_either_position(homes: dict[str, str], position: str) -> None:
    founder = homes["founder"]
    cases = [
        (("status", "no-such-entry"), 2, "NotFound"),
        (("status", "bafyrei"), 2, "Ambiguous"),  # every entry id starts so
        (("contribute", "--title", "x", "--commons", "nope"), 2, "NotFound"),
        (("contribute", "--bogus"), 2, "UsageError"),  # click's own parse errors too
        (("review",), 2, "UsageError"),
        (("contribute", "--title", "x", "--value", "many"), 2, "UsageError"),
        (("nosuchcommand",), 2, "UsageError"),
        (("rules",), 2, "UsageError"),
        ((), 2, "UsageError"),  # no subcommand at all
    ]
    for args, code, kind in cases:
        argv = ["--json", "--home", founder, *args] if position == "before" else [*args, "--home", founder, "--json"]
        done = subprocess.run([*P2PC, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == code, (argv, done.returncode, done.stdout, done.stderr)
        error = error_of(done.stdout)
        assert error["type"] == kind and error["code"] == code, (argv, error)
        assert "\n" not in error["message"] and done.stderr == "", (argv, done.stderr)
        plain = subprocess.run([*P2PC, *[a for a in argv if a != "--json"]], capture_output=True, text=True,
                               timeout=60)
        assert plain.returncode == code and plain.stdout == "" and "Traceback" not in plain.stderr, argv


def test_a_failure_with_a_result_carries_both(tmp_path: Path) -> None:
    """``verify`` that finds damage: exit 5, one envelope with the error and the report."""
    import sqlite3

    home = str(tmp_path / "h")
    ok("init", "--home", home)
    ok("commons", "create", "C", "--home", home)
    ok("contribute", "--title", "x", "--home", home)
    db = sqlite3.connect(Path(home, "store.sqlite"))
    raw = db.execute("SELECT raw FROM entries WHERE seq = 2").fetchone()[0]
    db.execute("UPDATE entries SET raw = ? WHERE seq = 2", (raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:],))
    db.commit()
    db.close()
    document = envelope(invoke("verify", "--home", home, "--json", code=5).stdout)
    assert document["ok"] is False and document["error"]["type"] == "StoreCorrupt"
    assert document["data"]["passed"] is False and document["data"]["problems"]


def test_verbose_before_the_subcommand_is_a_global_option(homes: dict[str, str]) -> None:
    """``p2pc -v CMD`` is the root's verbosity, never a command's own ``-v`` (contribute's
    value): the write still gets the default value."""
    founder = homes["founder"]
    written = unwrap(invoke("-v", "--json", "contribute", "--title", "verbose", "--home", founder).stdout)
    assert unwrap(invoke("-vv", "status", written["id"], "--home", founder, "--json").stdout)["status"]
    log = stream(invoke("log", "--kind", "contribution", "--json", "--home", founder).stdout)
    assert [e["body"]["value"] for e in log if e["id"] == written["id"]] == [1]


# --- short ids --------------------------------------------------------------------------------


def test_short_ids_are_shown_and_accepted(homes: dict[str, str]) -> None:
    founder = homes["founder"]
    entry = unwrap(invoke("contribute", "--title", "short ids", "--home", founder, "--json").stdout)["id"]
    short = short_id(entry)
    assert len(short) == 12 and entry == "bafyrei" + entry[7:] and short == entry[7:19]
    listing = invoke("log", "--home", founder).stdout
    assert short in listing and entry not in listing  # people see the short form
    for text in (short, short[:6], entry[:14], entry):
        assert unwrap(invoke("status", text, "--home", founder, "--json").stdout)["id"] == entry  # JSON: full ids
    commons = _commons(founder)[0]
    assert unwrap(invoke("state", "--commons", short_id(commons), "--home", founder, "--json").stdout)[
        "commons"] == commons
    members = unwrap(invoke("members", "--home", founder, "--json").stdout)["members"]
    nora = next(m["author"] for m in members if m["name"] == "nora")
    assert short_id(nora) in invoke("members", "--home", founder).stdout
    role = unwrap(invoke("role", short_id(nora)[:8], "revoke", "reviewer", "--force", "--home", founder,
                         "--json").stdout)
    assert role["outcome"]["status"] in ("applied", "rejected")
    by_nora = stream(invoke("log", "--author", short_id(nora), "--json", "--home", founder).stdout)
    assert by_nora and {e["author"] for e in by_nora} == {nora}
    assert stream(invoke("log", "--author", "nora", "--json", "--home", founder).stdout) == by_nora


def test_an_ambiguous_prefix_is_a_usage_error_saying_how_many(homes: dict[str, str]) -> None:
    founder = homes["founder"]
    count = len(stream(invoke("log", "--json", "--home", founder).stdout))
    error = error_of(invoke("status", "bafyrei", "--home", founder, "--json", code=2).stdout)
    many = "21 or more" if count > 20 else str(count)  # the store stops looking after 21
    assert error["type"] == "Ambiguous" and f"matches {many} entries" in error["message"], error
    error = error_of(invoke("role", "z6Mk", "grant", "reviewer", "--home", founder, "--json", code=2).stdout)
    assert error["type"] == "Ambiguous" and "matches 2 members" in error["message"], error
    too_short = error_of(invoke("status", "abc", "--home", founder, "--json", code=2).stdout)
    assert too_short["type"] == "NotFound"  # under 4 characters is not taken as an abbreviation


# --- contributions in time order, log with times and names --------------------------------------


def test_contributions_are_listed_in_time_order(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    ok("init", "--home", home)
    ok("commons", "create", "C", "--home", home)
    made = [unwrap(invoke("contribute", "--title", f"work {i}", "--home", home, "--json").stdout)["id"]
            for i in range(8)]
    rows = ok("contributions", "--home", home)["contributions"]
    assert [(r["time"], r["id"]) for r in rows] == sorted((r["time"], r["id"]) for r in rows)
    times = {r["id"]: r["time"] for r in rows}
    assert [times[i] for i in made] == sorted(times[i] for i in made)  # written one after another
    human = invoke("contributions", "--home", home).stdout.splitlines()
    assert [line.split()[0] for line in human] == [short_id(r["id"]) for r in rows]


def test_log_shows_times_and_names(homes: dict[str, str]) -> None:
    lines = invoke("log", "--kind", "join", "--home", homes["founder"]).stdout.splitlines()
    assert lines and all(re.search(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b", line) for line in lines), lines
    assert any(" nora " in line for line in lines), lines


# --- short ids: a property over random ids --------------------------------------------------

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
ENTRY_IDS = st.text(alphabet=BASE32, min_size=52, max_size=52).map(lambda tail: "bafyrei" + tail)


@given(ids=st.lists(ENTRY_IDS, min_size=1, max_size=30, unique=True), data=st.data())
def test_every_long_enough_prefix_of_either_form_names_exactly_the_ids_that_start_with_it(
    ids: list[str], data: st.DataObject
) -> None:
    """What ``resolve_entry``/``resolve_commons``/``_resolve_member`` rely on: a text names an
    id iff it is the id, or at least 4 characters that begin the id or its short form's source;
    the short form people see names its id (unless another id shares those 12 characters)."""
    from p2pcommons.cli.app import MIN_PREFIX, id_matches

    target = data.draw(st.sampled_from(ids))
    assert id_matches(target, short_id(target)) and id_matches(target, target)
    length = data.draw(st.integers(min_value=1, max_value=len(target)))
    for text in (target[:length], target[7:][:length]):
        named = {i for i in ids if id_matches(i, text)}
        if len(text) < MIN_PREFIX and text != target:
            assert named == set()
        else:
            expected = {i for i in ids if i.startswith(text) or i[7:].startswith(text)}
            assert target in named and named == expected
