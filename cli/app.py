"""The ``p2pc`` command line: the interface for people and for scripts.

Conventions every command follows (tested in tests/test_cli_*.py):

* ``--json``: machine-readable output on stdout (one JSON document, or JSON Lines for
  streams).  Without it, output is for people.
* ``--home`` (or ``P2PC_HOME``): which node's files to use, so several nodes can share a
  machine.
* Errors go to stderr as one sentence; the exit code says what kind of error it was
  (see :data:`EXIT_CODES`).
* Nothing here imports libp2p at module level: only network commands load it, so
  scripted local commands start fast.

Commands live in sibling modules that register themselves on :data:`app`
(``local`` for the foundation, ``governance`` for the commons state, ``network`` for the
node); this module holds the shared plumbing.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from p2pcommons.errors import P2PCError, system_error

# The bound on every amount an entry carries (p2pcommons.entry.MAX_AMOUNT, not imported here so
# commands start without the codec; tests/test_cli_local.py checks the two agree): options refuse
# a larger number as a usage error (exit 2) before anything is signed.
MAX_AMOUNT = 2**53

EXIT_CODES = {
    0: "success",
    1: "unexpected error (a bug: please report it)",
    2: "usage error: a bad argument, a malformed config.toml, or an unknown commons, entry or member",
    3: "invalid data received (a bundle, an entry or a peer's frame was rejected)",
    4: "identity problem (no identity, wrong passphrase, insecure key file)",
    5: "store problem (locked, damaged, read-only home, disk full)",
    6: "network problem (peer unreachable, timed out, daemon not running)",
    7: "refused by the rules in force: the write would have no effect (nothing was stored; --force records it)",
}

_EPILOG = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()) + "."

app = typer.Typer(
    name="p2pc",
    help=(
        "p2pcommons: keep a commons' shared record (members, rules, contributions, reviews, "
        "resources) in signed logs that sync peer to peer, on a LAN, over the internet, or "
        "by carrying a bundle file."
    ),
    epilog=_EPILOG,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="P2PC_HOME",
        help="Node home directory (identity, store, daemon files). Default: the platform data dir.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Record the entry even if the rules in force would reject it (without --force such a "
        "write is refused before it is signed, exit code 7, and nothing is stored).",
    ),
]

P = ParamSpec("P")
R = TypeVar("R")


class GlobalOptions:
    """The options given before the subcommand (``p2pc --home H --json state``).

    They are parsed by click itself in :func:`_root` (no hand-written argv rewriting, so an
    option value that happens to look like a command name, ``--``, or ``--home=H`` all
    behave as click defines) and handed to every command by :func:`command`, where the
    command's own ``--home``/``--json`` (given after the subcommand) still win."""

    def __init__(self, home: Path | None, as_json: bool) -> None:
        self.home = home
        self.as_json = as_json


def package_version() -> str:
    """The installed distribution's version (what ``p2pc --version`` prints)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("p2pcommons")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Node home directory, for every command (also accepted after the subcommand; "
            "default: P2PC_HOME, then the platform data dir).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON on stdout (also accepted after the subcommand).")
    ] = False,
    show_version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Global options: stored on the root context for :func:`command` to apply."""
    ctx.obj = GlobalOptions(home, as_json)
    if show_version:
        version = package_version()
        emit({"name": "p2pcommons", "version": version}, as_json, f"p2pc {version}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        print(ctx.get_help(), file=sys.stderr)
        raise typer.Exit(2)


_CTX = "_p2pc_context"


def _apply_globals(ctx: typer.Context | None, kw: dict[str, Any]) -> None:
    """Fill a command's ``home``/``as_json`` from the options given before the subcommand.

    Precedence for the home: ``--home`` after the subcommand, then ``--home`` before it,
    then ``P2PC_HOME``, then the default.  ``--json`` before the subcommand is refused (exit
    2) by a command that has no JSON output, as it would be after it."""
    if ctx is None:
        return
    options = ctx.find_root().obj
    if not isinstance(options, GlobalOptions):
        return
    source = ctx.get_parameter_source("home") if "home" in kw else None
    if options.home is not None and "home" in kw and (source is None or source.name != "COMMANDLINE"):
        kw["home"] = options.home
    if options.as_json:
        if "as_json" not in kw:
            raise fail(f"'{ctx.command_path}' has no --json output.", 2)
        kw["as_json"] = True


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one sentence to stderr and return the Exit to raise."""
    print(f"p2pc: {message}", file=sys.stderr)
    return typer.Exit(code)


def command(*names: str, **kwargs: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Register a command on :data:`app` whose project errors become one-line messages
    with the documented exit code, instead of tracebacks."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kw: P.kwargs) -> R:
            _apply_globals(kw.pop(_CTX, None), kw)  # type: ignore[arg-type]
            try:
                return func(*args, **kw)
            except P2PCError as error:
                raise fail(str(error), error.exit_code) from None
            except (OSError, sqlite3.Error, BaseExceptionGroup) as exc:
                # A read-only home, a full disk or a damaged database page can surface in any
                # command (even inside the daemon's task groups): one sentence, its exit code.
                known = _known_failure(exc)
                if known is None:
                    raise
                raise fail(str(known), known.exit_code) from None
            except KeyboardInterrupt:
                raise fail("Interrupted.", 130) from None
            except BrokenPipeError:
                raise typer.Exit(0) from None

        # typer hands a parameter annotated typer.Context the command's context: added to the
        # signature typer reads (not to ``func``), so commands need not declare it.
        signature = inspect.signature(func, eval_str=True)
        context = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), context]
        )
        target = kwargs.pop("app", app)
        target.command(*names, **kwargs)(wrapper)
        return wrapper

    return decorate


def _known_failure(exc: BaseException) -> P2PCError | None:
    """The project error behind ``exc`` (a trio task group's only real failure included),
    or None when it is not one the project knows how to explain."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [e for e in _leaves(exc) if not isinstance(e, KeyboardInterrupt)]
        known = [error for error in map(_known_failure, leaves) if error is not None]
        return known[0] if known and len(known) == len(leaves) else None
    return system_error(exc)


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for inner in group.exceptions:
        if isinstance(inner, BaseExceptionGroup):
            yield from _leaves(inner)
        else:
            yield inner


def home_of(home: Path | None) -> Any:
    from p2pcommons.home import Home, resolve_home

    return Home(resolve_home(home))


def passphrase_for(home_path: Path | None) -> str | None:
    """The passphrase for an encrypted key: ``P2PC_PASSPHRASE``, or a prompt on a terminal."""
    from p2pcommons.home import PASSPHRASE_ENV
    from p2pcommons.identity import is_encrypted

    home = home_of(home_path)
    if not is_encrypted(home):
        return None
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    if sys.stdin.isatty():
        return str(typer.prompt("Passphrase", hide_input=True))
    return None


def identity_of(home_path: Path | None) -> Any:
    from p2pcommons.identity import load_identity

    return load_identity(home_of(home_path), passphrase_for(home_path))


@contextmanager
def open_store(home_path: Path | None, *, must_exist: bool = True, reader: bool = False) -> Iterator[Any]:
    """The home's store; refuses a home with no identity (``p2pc init`` comes first).

    ``reader``: a read-only command.  It never waits on a writer (a running import, the
    daemon): it reads the last committed snapshot and skips caching derived state while
    the write lock is held elsewhere."""
    from p2pcommons.errors import NoIdentity
    from p2pcommons.store import Store

    home = home_of(home_path)
    if must_exist and not home.exists():
        raise NoIdentity(f"No identity in {home.path}; run 'p2pc init' first.")
    store = Store(home.store_file, reader=reader)
    try:
        yield store
    finally:
        store.close()


def resolve_commons(store: Any, commons: str | None) -> Any:
    """A commons by id, unique id prefix or exact name; the only one if none is given."""
    from p2pcommons.errors import Ambiguous, NotFound

    known = store.commons_list()
    if commons is None:
        if len(known) == 1:
            return known[0].id
        if not known:
            raise NotFound("This node holds no commons yet; create one or import a bundle.")
        raise Ambiguous("This node holds several commons; choose one with --commons.")
    matches = [c.id for c in known if str(c.id) == commons]
    if not matches:
        matches = [c.id for c in known if str(c.id).startswith(commons) or c.name == commons]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"No commons '{commons}' on this node.")
    raise Ambiguous(f"'{commons}' matches {len(matches)} commons; give more of the id.")


def resolve_entry(store: Any, text: str) -> Any:
    """An entry by full id or unique prefix."""
    from p2pcommons.errors import Ambiguous, NotFound

    matches = store.find_by_prefix(text)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"No entry '{text}' on this node.")
    raise Ambiguous(f"'{text}' matches several entries; give more of the id.")


def emit(data: Any, as_json: bool, human: Callable[[], None] | str | None = None) -> None:
    """Print ``data`` as JSON, or the human form (a string or a function that prints)."""
    if as_json:
        print(json.dumps(data, sort_keys=True, default=str))
    elif callable(human):
        human()
    elif human is not None:
        print(human)
    else:
        print(data)


def progress_enabled() -> bool:
    """Progress bars on a terminal only: piped output stays clean for scripts."""
    return sys.stderr.isatty() and not os.environ.get("P2PC_NO_PROGRESS")


def main() -> None:
    """Console-script entry point (``p2pc`` and ``p2pcommons``)."""
    _register_commands()
    app()


_registered = False


def _register_commands() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    from importlib import import_module

    for module in ("local", "governance", "decisions", "treasury", "config", "network"):
        try:
            import_module(f"p2pcommons.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"p2pcommons.cli.{module}":
                raise


def get_app() -> typer.Typer:
    """The fully registered app (for tests using typer's CliRunner)."""
    _register_commands()
    return app


__all__ = [
    "EXIT_CODES", "ForceOption", "HomeOption", "JsonOption", "app", "command", "emit", "fail", "get_app",
    "home_of", "identity_of", "main", "open_store", "package_version", "progress_enabled", "resolve_commons",
    "resolve_entry",
]
_ = Path
