"""The ``p2pc`` entry point: the hot commands without typer, everything else through it.

typer parses every option through pydantic (typer >= 0.26), and importing typer, click and
pydantic costs about 0.2 s of CPU before a command starts — more than ``p2pc contribute``'s
whole budget (issue 18: < 0.15 s).  So the console script starts here: a command line this
module fully understands, for ``contribute``, ``state``, ``members`` or ``contributions``
(:data:`SPECS`), runs the command's work (:mod:`.hot`) directly; anything else — help, an
unknown or malformed option, a value it would have to convert in a way it does not know, any
other command — goes to the typer application (:func:`p2pcommons.cli.app.main`), which
parses it again from scratch and answers exactly as before (errors included).  The lean
parser therefore only has to be right about what it accepts: ``--opt value`` and
``--opt=value``, the short forms the commands declare, flags, repeatable options, and the
global ``--home``/``--json`` before the subcommand (``--home`` after it wins, as in
:func:`p2pcommons.cli.app._apply_globals`).  Errors are reported as :func:`.app.command`
does: one sentence (or the error envelope with ``--json``) and the documented exit code.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from p2pcommons.errors import P2PCError

from .plumbing import MAX_AMOUNT, _known_failure, _report_bug, print_error


class Option(NamedTuple):
    dest: str
    names: tuple[str, ...]
    # "text", "amount" (a whole number 0..MAX_AMOUNT), "count" (1..MAX_AMOUNT), "flag", "many" (repeatable text)
    kind: str


_COMMONS = Option("commons", ("--commons", "-c"), "text")
_HOME = Option("home", ("--home",), "text")
_JSON = Option("as_json", ("--json",), "flag")

# Each hot command's options (as its typer declaration in cli/local.py or cli/governance.py
# has them: tests/test_cli_fast.py checks the two agree), its required ones, and its defaults.
SPECS: dict[str, tuple[tuple[Option, ...], tuple[str, ...], dict[str, Any]]] = {
    "contribute": (
        (Option("title", ("--title", "-t"), "text"), _COMMONS, Option("kind", ("--kind", "-k"), "text"),
         Option("value", ("--value", "-v"), "amount"), Option("ref", ("--ref",), "text"),
         Option("derives_from", ("--derives-from", "-d"), "many"), _HOME, _JSON,
         Option("force", ("--force",), "flag")),
        ("title",),
        {"commons": None, "kind": "work", "value": 1, "ref": None, "derives_from": None, "home": None,
         "as_json": False, "force": False},
    ),
    "state": ((_COMMONS, _HOME, _JSON, Option("full", ("--full",), "flag")), (),
              {"commons": None, "home": None, "as_json": False, "full": False}),
    "members": ((_COMMONS, _HOME, _JSON), (), {"commons": None, "home": None, "as_json": False}),
    "contributions": (
        (Option("status", ("--status", "-s"), "text"), _COMMONS, _HOME, _JSON,
         Option("limit", ("--limit", "-n"), "count"), Option("all_rows", ("--all",), "flag")),
        (),
        {"status": None, "commons": None, "home": None, "as_json": False, "limit": None, "all_rows": False},
    ),
}


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """``(command, keyword arguments)`` for a hot command line this parser fully
    understands, else None (the typer application then handles it)."""
    args = list(argv)
    before_home: str | None = None
    before_json = False
    while args and args[0].startswith("-"):  # the global options before the subcommand
        head = args.pop(0)
        if head == "--json":
            before_json = True
        elif head == "--home" and args and not args[0].startswith("-"):
            before_home = args.pop(0)
        elif head.startswith("--home=") and len(head) > len("--home="):
            before_home = head[len("--home="):]
        else:
            return None
    if not args or args[0] not in SPECS:
        return None
    name, rest = args[0], args[1:]
    options, required, defaults = SPECS[name]
    by_name = {n: option for option in options for n in option.names}
    kw = dict(defaults)
    given: set[str] = set()
    while rest:
        token = rest.pop(0)
        flag, eq, inline = token.partition("=")
        option = by_name.get(flag if (eq and flag.startswith("--")) else token)
        if option is None:
            return None  # a positional argument, --help, -v, --, -tX…: typer decides
        if option.kind == "flag":
            if eq:
                return None
            kw[option.dest] = True
            continue
        if eq and flag.startswith("--"):
            value = inline
        elif rest and not rest[0].startswith("-"):
            value = rest.pop(0)
        else:
            return None
        if option.kind in ("amount", "count"):
            if not value.isascii() or not value.isdigit() or int(value) > MAX_AMOUNT:
                return None  # typer's conversion and its error message
            if option.kind == "count" and int(value) < 1:
                return None
            kw[option.dest] = int(value)
        elif option.kind == "many":
            kw[option.dest] = [*(kw[option.dest] or []), value]
        else:
            kw[option.dest] = value
        given.add(option.dest)
    if any(dest not in given for dest in required):
        return None
    if "home" not in given and before_home is not None:
        kw["home"] = before_home
    if kw.get("home") is not None:
        if not kw["home"]:
            return None
        kw["home"] = Path(kw["home"])
    kw["as_json"] = bool(kw["as_json"] or before_json)
    return name, kw


def _command(name: str) -> Callable[..., None]:
    from . import hot

    commands: dict[str, Callable[..., None]] = {
        "contribute": hot.contribute, "state": hot.state, "members": hot.members, "contributions": hot.contributions,
    }
    return commands[name]


def run(name: str, kw: dict[str, Any]) -> int:
    """Run a parsed hot command; its exit code (project errors reported as
    :func:`p2pcommons.cli.app.command` reports them)."""
    as_json = bool(kw.get("as_json"))
    try:
        _command(name)(**kw)
        return 0
    except P2PCError as error:
        return _report(error, as_json)
    except BrokenPipeError:
        return 0
    except (OSError, sqlite3.Error, BaseExceptionGroup) as exc:
        known = _known_failure(exc)
        if known is None:
            _report_bug(exc, as_json)
            raise
        return _report(known, as_json)
    except KeyboardInterrupt:
        print_error("Interrupted", 130, "Interrupted.", as_json=as_json)
        return 130
    except Exception as exc:
        _report_bug(exc, as_json)
        raise


def _report(error: P2PCError, as_json: bool) -> int:
    print_error(type(error).__name__, error.exit_code, str(error), as_json=as_json)
    return error.exit_code


def run_hot(argv: Sequence[str]) -> int | None:
    """The exit code of a hot command line run here, or None if it is not one."""
    parsed = parse(argv)
    if parsed is None:
        return None
    return run(*parsed)


def main() -> None:
    """The command line in ``sys.argv``: a hot command here, anything else through typer.
    Ends with ``SystemExit`` as usual (callers in the same process go on after it)."""
    code = run_hot(sys.argv[1:])
    if code is None:
        from .app import main as full

        full()
        return
    sys.exit(code)


def console() -> None:
    """Console-script entry point (``p2pc`` and ``p2pcommons``): :func:`main`, except that a
    hot command's process ends at once (``os._exit``) when the command has returned and its
    output is flushed.  The interpreter's ordinary tear-down (a last garbage collection,
    every module and object freed one by one) is about a tenth of a hot command's CPU
    (issue 18), and by then the command has closed its store and written all it writes:
    nothing of this project waits for ``atexit`` or a finalizer.  An exception, and every
    other command, ends the ordinary way."""
    code = run_hot(sys.argv[1:])
    if code is None:
        from .app import main as full

        full()
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # (a closed pipe, an interrupt: the ordinary exit reports it as before)
        sys.exit(code)
    os._exit(code)
