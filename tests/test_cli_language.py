"""One CLI language (issue 19, deliverable 4), driven through the installed ``p2pc`` in a
subprocess, since option parsing, exit codes and stdout/stderr are process-level promises:
``--version``, global options before or after the subcommand, and ``p2pc config``."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support.cli_json import error_of, unwrap

from .support.cli import EXE, subprocess_env


def run(*args: str, code: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([EXE, *args], env=subprocess_env(env), capture_output=True, text=True, timeout=60)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("language") / "home")
    run("init", "--home", path)
    run("commons", "create", "Forest", "--home", path)
    return path


# --- --version ----------------------------------------------------------------------------


def test_version_prints_the_installed_version() -> None:
    assert run("--version").stdout == f"p2pc {version('p2pcommons')}\n"


def test_version_as_json_in_either_order() -> None:
    for args in (("--version", "--json"), ("--json", "--version")):
        assert unwrap(run(*args).stdout) == {"name": "p2pcommons", "version": version("p2pcommons")}


# --- global options before or after the subcommand ----------------------------------------


@pytest.mark.slow  # many p2pc processes: out of the fast loop, run by CI
def test_global_options_before_or_after_the_subcommand(home: str) -> None:
    after = run("state", "--home", home, "--json").stdout
    assert unwrap(after)["state_hash"]
    for args in (
        ("--home", home, "--json", "state"),
        ("--json", "--home", home, "state"),
        ("--home", home, "state", "--json"),
        ("--json", "state", "--home", home),
        (f"--home={home}", "state", "--json"),
    ):
        assert run(*args).stdout == after, args


def test_verbose_before_or_after_the_subcommand(home: str) -> None:
    """-v is a global option too: 'p2pc state -v' used to fail with 'No such option: -v'
    (only 'node start' took it after the subcommand)."""
    before = run("-v", "state", "--home", home).stdout
    for args in (("state", "-v", "--home", home), ("state", "--home", home, "-vv"),
                 ("rules", "show", "--verbose", "--home", home)):
        done = run(*args)
        assert done.stdout == before or args[0] == "rules", args
    assert run("node", "start", "--help").stdout.count("-v, --verbose") == 1  # its own, not a second one
    # where -v is the command's own (--value on contribute), --verbose still is verbosity
    assert run("contribute", "--title", "loud", "-v", "2", "--verbose", "--home", home).stdout.startswith("bafyrei")


def test_global_options_reach_nested_commands(home: str) -> None:
    """A subcommand of a group (``rules show``, ``commons list``) sees them too."""
    before = run("--home", home, "--json", "rules", "show").stdout
    assert before == run("rules", "show", "--home", home, "--json").stdout
    listed = unwrap(run("--json", "--home", home, "commons", "list").stdout)
    assert [c["name"] for c in listed] == ["Forest"]


@pytest.mark.slow  # many p2pc processes: out of the fast loop, run by CI
def test_home_precedence(home: str, tmp_path: Path) -> None:
    """After the subcommand beats before it, which beats P2PC_HOME."""
    empty = str(tmp_path / "nobody")
    me = unwrap(run("id", "--json", "--home", home).stdout)
    assert unwrap(run("--home", empty, "id", "--json", "--home", home).stdout) == me
    assert unwrap(run("--home", home, "id", "--json", env={"P2PC_HOME": empty}).stdout) == me
    missing = run("--home", empty, "id", env={"P2PC_HOME": home}, code=4)
    assert missing.stderr.startswith("p2pc: ") and "p2pc init" in missing.stderr


def test_command_options_are_untouched(home: str) -> None:
    """A command's own short options (``-v`` is --value on contribute) still parse."""
    entry = run("--home", home, "contribute", "--title", "Planted oaks", "-v", "7").stdout.strip()
    shown = unwrap(run("--home", home, "--json", "status", entry).stdout)
    assert shown["id"] == entry


def test_no_subcommand_is_a_usage_error() -> None:
    done = run("--home", "/nonexistent", code=2)
    assert done.stdout == "" and "Usage: p2pc" in done.stderr
    asked_json = run("--json", code=2)  # with --json: the error envelope, like every other error
    assert error_of(asked_json.stdout)["type"] == "UsageError" and asked_json.stderr == ""


def test_help_lists_the_global_options() -> None:
    text = run("--help").stdout
    for option in ("--home", "--json", "--version"):
        assert option in text
