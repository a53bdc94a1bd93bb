"""The lean entry point (p2pcommons.cli.fast): the hot commands run without typer, click or
pydantic, parse exactly what their typer declarations accept, and answer as the typer path
does; anything else goes to typer unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from p2pcommons.cli.fast import SPECS, parse
from tests.support.cli import EXE, invoke, subprocess_env
from tests.support.cli import fresh_live_state as fresh_live_state

HEAVY = ("typer", "click", "pydantic", "pydantic_core", "rich", "libp2p")


@pytest.fixture
def home(tmp_path: Path) -> str:
    path = str(tmp_path / "h")
    invoke("init", "--home", path)
    invoke("commons", "create", "Fast", "--home", path)
    return path


def test_hot_commands_import_no_typer_click_or_pydantic(home: str) -> None:
    """The point of the entry point: about 0.2 s of imports saved on every hot command."""
    probe = (
        "import sys\n"
        "from p2pcommons.cli.fast import main\n"
        "home = sys.argv[1]\n"
        "for args in (['contribute', '-t', 'x', '--value', '4'], ['state'], ['members'],\n"
        "             ['contributions', '--status', 'pending'], ['--json', 'state']):\n"
        "    sys.argv = ['p2pc', *args, '--home', home]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), (args, e.code)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, home], capture_output=True, text=True, timeout=120,
                          env=subprocess_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_contribute_imports_only_what_it_uses(home: str) -> None:
    """``p2pc contribute --home H`` on a home without config.toml and without a daemon loads
    neither the platform-directories lookup (tempfile, shutil), the TOML parser, the settings'
    spelling suggestions nor the control socket's client (issue 18: its start-up budget)."""
    probe = (
        "import sys\n"
        "from p2pcommons.cli.fast import main\n"
        "sys.argv = ['p2pc', 'contribute', '-t', 'x', '--home', sys.argv[1]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('platformdirs', 'tomllib', 'difflib', 'tempfile', 'shutil', 'socket', 'selectors')\n"
        "             or m in ('p2pcommons.settings', 'p2pcommons.node.notify')))\n"
    )
    assert not (Path(home) / "config.toml").exists()
    done = subprocess.run([sys.executable, "-c", probe, home], capture_output=True, text=True, timeout=120,
                          env=subprocess_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# What the plain hot commands must not load (issue 18: ``p2pc contribute`` < 0.15 s): the
# fold's package (dozens of modules; the query tables decide), ``dataclasses`` (it imports
# ``inspect``, ``ast``, ``dis``, ``tokenize``), ``secrets`` (the tables' writer token), ``threading``,
# ``nacl.bindings`` (fifteen modules: :mod:`p2pcommons.ed25519` calls libsodium itself) and
# ``nacl.utils`` (random seeds, for ``p2pc init``).
NOT_ON_THE_PLAIN_PATH = ("p2pcommons.state", "dataclasses", "inspect", "secrets", "threading", "nacl.bindings",
                         "nacl.utils")


def _unexpected_modules(home: str, *commands: list[str]) -> list[str]:
    probe = (
        "import sys\n"
        "from p2pcommons.cli.fast import main\n"
        "home, commands = sys.argv[1], [c.split(' ') for c in sys.argv[2:]]\n"
        "for args in commands:\n"
        "    sys.argv = ['p2pc', *args, '--home', home]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), (args, e.code)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({NOT_ON_THE_PLAIN_PATH!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, home, *(" ".join(c) for c in commands)],
                          capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')))


def test_plain_hot_commands_on_a_new_commons_load_only_what_they_use(home: str) -> None:
    """Right after ``p2pc commons create``, a member's plain contribution is decided from the
    query tables (the creation wrote them), and ``state``, ``members`` and ``contributions``
    read them: none of these processes loads the fold, ``dataclasses`` or the other modules
    of :data:`NOT_ON_THE_PLAIN_PATH` (each costs start-up on every run)."""
    assert _unexpected_modules(home, ["contribute", "-t", "x", "--value", "4"]) == []
    assert _unexpected_modules(home, ["state"], ["members"], ["contributions", "--status", "pending"],
                               ["contributions"]) == []
    done = subprocess.run([EXE, "--json", "contributions", "--home", home], capture_output=True, text=True,
                          timeout=60, env=subprocess_env())
    assert done.returncode == 0, done.stderr
    assert [row["title"] for row in json.loads(done.stdout)["data"]["contributions"]] == ["x"]


def test_the_console_script_ends_a_hot_command_at_once_after_its_output(home: str,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``p2pc`` starts at :func:`console`, which ends a hot command's process with
    ``os._exit`` (no interpreter tear-down) once the output is flushed, with the command's
    exit code; what the command wrote is durable and its output complete."""
    import tomllib

    from p2pcommons.cli import fast

    scripts = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"p2pc": "p2pcommons.cli.fast:console", "p2pcommons": "p2pcommons.cli.fast:console"}

    class Exited(Exception):
        pass

    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(fast.os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["p2pc", "--json", "contribute", "-t", "in process", "--home", home])
    with pytest.raises(Exited) as exited:
        fast.console()
    assert exited.value.args == (0,)
    written = json.loads(capsys.readouterr().out)["data"]["id"]
    monkeypatch.setattr(sys, "argv", ["p2pc", "contribute", "-t", "x", "--home", str(Path(home) / "nobody")])
    with pytest.raises(Exited) as exited:
        fast.console()
    assert exited.value.args == (4,) and capsys.readouterr().err.startswith("p2pc: No identity")

    done = subprocess.run([EXE, "--json", "contribute", "-t", "piped", "--home", home], capture_output=True, text=True,
                          timeout=60, env=subprocess_env())
    assert done.returncode == 0, done.stderr
    piped = json.loads(done.stdout)["data"]["id"]
    listed = subprocess.run([EXE, "--json", "contributions", "--home", home], capture_output=True, text=True,
                            timeout=60, env=subprocess_env())
    assert {row["id"] for row in json.loads(listed.stdout)["data"]["contributions"]} == {written, piped}


def test_the_lean_parser_knows_each_hot_commands_options() -> None:
    """SPECS names exactly the options the typer commands declare (but the hidden
    ``--verbose``, which the lean path leaves to typer)."""
    import typer.main

    from p2pcommons.cli.app import get_app

    group = typer.main.get_command(get_app())
    for name, (options, required, defaults) in SPECS.items():
        command = group.commands[name]  # type: ignore[attr-defined]
        declared = {n for p in command.params if not getattr(p, "hidden", False) for n in p.opts}
        assert declared == {n for option in options for n in option.names}, name
        for param in command.params:
            if param.name in defaults:
                assert param.default == defaults[param.name] or (param.default, defaults[param.name]) == ((), None), \
                    (name, param.name)
            if param.required:
                assert param.name in required, (name, param.name)


@pytest.mark.parametrize("argv", [
    ["contribute"],  # the required --title is missing
    ["contribute", "--title"],
    ["contribute", "-tX"],
    ["contribute", "-t", "x", "--value", "-3"],
    ["contribute", "-t", "x", "--value", "3.5"],
    ["contribute", "-t", "x", "--value", str(2**53 + 1)],
    ["contribute", "-t", "x", "--force=yes"],
    ["contribute", "-t", "x", "--verbose"],
    ["state", "--help"],
    ["state", "-h"],
    ["state", "-v"],
    ["state", "extra"],
    ["state", "--"],
    ["-v", "state"],
    ["--version"],
    ["--home", "--json", "state"],
    ["--home=", "state"],
    ["log"],
    [],
])
def test_what_the_lean_parser_does_not_know_goes_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


def test_the_lean_parser_reads_forms_and_globals_as_click_does() -> None:
    parsed = parse(["--home", "/a", "--json", "contribute", "--title=t", "-v", "7", "-d", "x", "--derives-from", "y",
                    "--force", "-k", "code", "--kind", "design"])
    assert parsed == ("contribute", {"title": "t", "commons": None, "kind": "design", "value": 7, "ref": None,
                                     "derives_from": ["x", "y"], "home": Path("/a"), "as_json": True, "force": True})
    # --home after the subcommand wins over --home before it
    assert parse(["--home=/a", "state", "--home", "/b"]) == ("state", {"commons": None, "home": Path("/b"),
                                                                        "as_json": False, "full": False})
    assert parse(["contributions", "-s", "pending", "--limit", "5"]) == ("contributions", {
        "status": "pending", "commons": None, "home": None, "as_json": False, "limit": 5, "all_rows": False})
    assert parse(["contributions", "--limit", "0"]) is None  # (typer's min=1 and its message)
    assert parse(["contributions", "-s", "pending", "-c", "X"]) == (
        "contributions", {"status": "pending", "commons": "X", "home": None, "as_json": False, "limit": None,
                          "all_rows": False})


def _exe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120, env=subprocess_env())


def test_hot_commands_answer_as_the_typer_path_does(home: str) -> None:
    written = json.loads(_exe("contribute", "--title", "fast", "--value", "5", "--home", home, "--json").stdout)
    assert written["ok"] and written["data"]["seq"] >= 1
    for args in (["state"], ["members"], ["contributions"], ["contributions", "--status", "pending"]):
        lean = _exe(*args, "--home", home, "--json")
        assert lean.returncode == 0, lean.stderr
        typed = invoke(*args, "--home", home, "--json")
        assert json.loads(lean.stdout) == json.loads(typed.stdout), args
        assert _exe(*args, "--home", home).stdout == invoke(*args, "--home", home).stdout, args


def test_hot_command_errors_are_one_sentence_and_their_exit_code(home: str, tmp_path: Path) -> None:
    done = _exe("state", "--commons", "nope", "--home", home)
    assert done.returncode == 2 and done.stderr == "p2pc: No commons 'nope' on this node.\n"
    done = _exe("--json", "contributions", "--status", "open", "--home", home)
    assert done.returncode == 2 and json.loads(done.stdout)["error"]["type"] == "UsageError"
    done = _exe("contribute", "-t", "x", "--home", str(tmp_path / "nobody"))
    assert done.returncode == 4 and "Traceback" not in done.stderr
    # typer's own usage errors still come from typer
    done = _exe("contribute", "-t", "x", "--value", "-1", "--home", home)
    assert done.returncode == 2 and "--value" in done.stderr
