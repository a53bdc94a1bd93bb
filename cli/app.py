"""The ``p2pc`` command line: the interface for people and for scripts.

Conventions every command follows (tested in tests/test_cli_*.py):

* ``--json``: machine-readable output on stdout, always one versioned envelope
  (``{"v": 1, "ok": true, "data": …}``, or ``{"v": 1, "ok": false, "error": …}`` for an
  error: see docs/json.md and docs/json-schema.json).  Streams (``log``) print one envelope
  per line.  Every envelope goes through :func:`emit` or :func:`print_error`, so a new
  command gets the format for free.  Without ``--json``, output is for people.
* ``--home`` (or ``P2PC_HOME``): which node's files to use, so several nodes can share a
  machine.
* Errors go to stderr as one sentence (with ``--json``: the error envelope on stdout);
  the exit code says what kind of error it was (see :data:`EXIT_CODES`).
* Ids: people see short ids (:func:`short_id`), and every id argument takes a unique
  prefix of either form, as git does (:func:`resolve_entry`, :func:`resolve_commons`).
* Nothing here imports libp2p at module level: only network commands load it, so
  scripted local commands start fast.

Commands live in sibling modules that register themselves on :data:`app`
(``local`` for the foundation, ``governance`` for the commons state, ``network`` for the
node); this module holds the shared plumbing.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from typer.core import TyperGroup

from p2pcommons.errors import P2PCError
from p2pcommons.shortid import short_id

from .plumbing import (  # re-exported: commands and tests import them from here
    JSON_VERSION,
    MAX_AMOUNT,
    MIN_PREFIX,
    _known_failure,
    _print_json,
    _report_bug,
    ambiguous,
    emit,
    emit_event,
    home_of,
    human_time,
    id_matches,
    identity_of,
    open_store,
    passphrase_for,
    print_error,
    progress_enabled,
    resolve_commons,
    resolve_entry,
)

EXIT_CODES = {
    0: "success",
    1: "unexpected error (a bug: please report it)",
    2: "usage error: a bad argument, a malformed config.toml, or an unknown commons, entry or member",
    3: "invalid data received (a bundle, an entry or a peer's frame was rejected)",
    4: "identity problem (no identity, wrong passphrase, insecure key file, a restored home behind on its own log)",
    5: "store problem (locked, damaged, read-only home, disk full)",
    6: "network problem (peer unreachable, timed out, daemon not running)",
    7: "refused by the rules in force: the write would have no effect (nothing was stored; --force records it)",
}

_EPILOG = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()) + "."



def _click_error_type() -> type[Exception]:
    """click's ClickException (vendored inside typer by recent versions, a separate package
    before): found through typer's public BadParameter so either layout works."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    return typer.BadParameter  # pragma: no cover - every click has ClickException


_CLICK_ERROR = _click_error_type()


def _wants_json(args: Any) -> bool:
    """Whether ``--json`` was given (anywhere before a ``--``): used only when the command
    line itself is malformed, before any option could be parsed."""
    argv = [str(a) for a in (args or [])]
    if "--" in argv:
        argv = argv[: argv.index("--")]
    return "--json" in argv


class _Group(TyperGroup):
    """The root group: a malformed command line (unknown option, missing argument, bad
    value) is reported as the error envelope when ``--json`` was asked for, like every
    other error, instead of click's usage text."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        wants = _wants_json(args)
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except _CLICK_ERROR as exc:
            if not wants:
                raise
            raise _usage_exit(exc) from None
        ctx.meta["p2pc_json"] = wants
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _CLICK_ERROR as exc:
            if not ctx.meta.get("p2pc_json"):
                raise
            raise _usage_exit(exc) from None


def _usage_exit(exc: Exception) -> typer.Exit:
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError":
        message = "A subcommand is missing; see --help."
    else:
        message = str(getattr(exc, "format_message", lambda: str(exc))()).strip().rstrip(".") + "."
    print_error("UsageError", code, message, as_json=True)
    return typer.Exit(code)


app = typer.Typer(
    cls=_Group,
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

    def __init__(self, home: Path | None, as_json: bool, verbose: int = 0) -> None:
        self.home = home
        self.as_json = as_json
        self.verbose = verbose


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
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True,
            help="More log lines on stderr (-v: sessions and peer events; -vv: detail), as "
            "'node start -v' (also accepted after the subcommand).",
        ),
    ] = 0,
) -> None:
    """Global options: stored on the root context for :func:`command` to apply."""
    ctx.obj = GlobalOptions(home, as_json, verbose)
    if show_version:
        version = package_version()
        emit({"name": "p2pcommons", "version": version}, as_json, f"p2pc {version}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        if as_json:
            raise fail("A subcommand is missing; see --help.", 2, as_json=True)
        print(ctx.get_help(), file=sys.stderr)
        raise typer.Exit(2)


_CTX = "_p2pc_context"
_VERBOSE = "_p2pc_verbose"
# -v after the subcommand, on every command that has no verbosity of its own (node start has
# one): a global option, like --home and --json, is accepted on either side.  Where -v is the
# command's own short option (--value on contribute and review), only --verbose is.
_VERBOSE_AFTER = Annotated[int, typer.Option("--verbose", "-v", count=True, hidden=True)]
_VERBOSE_LONG_ONLY = Annotated[int, typer.Option("--verbose", count=True, hidden=True)]


def _short_options(signature: inspect.Signature) -> set[str]:
    """The option names (``-v``, ``--value``…) a command's parameters declare."""
    names: set[str] = set()
    for parameter in signature.parameters.values():
        for meta in getattr(parameter.annotation, "__metadata__", ()):
            names.update(getattr(meta, "param_decls", None) or ())
    return names


def _apply_globals(ctx: typer.Context | None, kw: dict[str, Any], verbose_after: int = 0) -> None:
    """Fill a command's ``home``/``as_json`` from the options given before the subcommand.

    Precedence for the home: ``--home`` after the subcommand, then ``--home`` before it,
    then ``P2PC_HOME``, then the default.  ``--json`` before the subcommand is refused (exit
    2) by a command that has no JSON output, as it would be after it."""
    options = ctx.find_root().obj if ctx is not None else None
    if ctx is None or not isinstance(options, GlobalOptions):
        if verbose_after:
            _log_to_stderr(verbose_after)
        return
    source = ctx.get_parameter_source("home") if "home" in kw else None
    if options.home is not None and "home" in kw and (source is None or source.name != "COMMANDLINE"):
        kw["home"] = options.home
    if options.as_json:
        if "as_json" not in kw:
            from p2pcommons.errors import UsageError

            raise UsageError(f"'{ctx.command_path}' has no --json output.")
        kw["as_json"] = True
    verbose = max(options.verbose, verbose_after)
    if verbose:
        if "verbose" in kw:
            kw["verbose"] = max(int(kw["verbose"] or 0), verbose)
        else:
            _log_to_stderr(verbose)


def _log_to_stderr(verbose: int) -> None:
    """``p2pc -v CMD`` for a command with no logging of its own: the project's log lines
    (INFO with -v, DEBUG with -vv) on stderr, so stdout stays the command's output."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    project = logging.getLogger("p2pcommons")
    project.addHandler(handler)
    project.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)


def _json_requested(ctx: typer.Context | None, kw: dict[str, Any]) -> bool:
    """Whether this run prints JSON: ``--json`` after the subcommand, or before it."""
    if kw.get("as_json"):
        return True
    options = ctx.find_root().obj if ctx is not None else None
    return bool(isinstance(options, GlobalOptions) and options.as_json)


class CommandFailed(Exception):
    """A project error that comes with the result so far (a sync that did not catch up,
    a verification that found problems): one envelope carries both (see :func:`fail_with`)."""

    def __init__(self, error: P2PCError, data: Any) -> None:
        super().__init__(str(error))
        self.error = error
        self.data = data


def fail_with(
    error: P2PCError, data: Any, as_json: bool, human: Callable[[], None] | str | None = None
) -> CommandFailed:
    """The exception to raise for a command that has a result but failed: for people the
    result is printed now (then the sentence on stderr); with --json the one error envelope
    carries both the error and the result under ``data``."""
    if not as_json:
        emit(data, False, human)
    return CommandFailed(error, data)


# Whether the command running now was asked for --json (set by :func:`command` before the
# command runs), so a bare ``raise fail(...)`` in any command answers in the right format.
_json_mode = False


def fail(message: str, code: int = 2, *, as_json: bool | None = None, error_type: str = "UsageError",
         data: Any = None) -> typer.Exit:
    """Report an error (one sentence on stderr, or the error envelope on stdout with
    --json; by default as the running command was asked) and return the Exit to raise.
    Commands mostly raise typed errors instead; this is where those become output."""
    print_error(error_type, code, message, as_json=_json_mode if as_json is None else as_json, data=data)
    return typer.Exit(code)


def _report(error: P2PCError, as_json: bool, data: Any = None) -> typer.Exit:
    return fail(str(error), error.exit_code, as_json=as_json, error_type=type(error).__name__, data=data)


def command(*names: str, **kwargs: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Register a command on :data:`app` whose project errors become one-line messages
    with the documented exit code, instead of tracebacks."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kw: P.kwargs) -> R:
            global _json_mode
            ctx = kw.pop(_CTX, None)
            verbose_after = int(kw.pop(_VERBOSE, 0) or 0)  # type: ignore[call-overload]
            as_json = _json_mode = _json_requested(ctx, kw)  # type: ignore[arg-type]
            try:
                _apply_globals(ctx, kw, verbose_after)  # type: ignore[arg-type]
                return func(*args, **kw)
            except CommandFailed as failed:
                raise _report(failed.error, as_json, failed.data) from None
            except P2PCError as error:
                raise _report(error, as_json) from None
            except BrokenPipeError:
                raise typer.Exit(0) from None
            except (OSError, sqlite3.Error, BaseExceptionGroup) as exc:
                # A read-only home, a full disk or a damaged database page can surface in any
                # command (even inside the daemon's task groups): one sentence, its exit code.
                known = _known_failure(exc)
                if known is None:
                    _report_bug(exc, as_json)
                    raise
                raise _report(known, as_json) from None
            except KeyboardInterrupt:
                raise fail("Interrupted.", 130, as_json=as_json, error_type="Interrupted") from None
            except Exception as exc:
                _report_bug(exc, as_json)
                raise

        # typer hands a parameter annotated typer.Context the command's context: added to the
        # signature typer reads (not to ``func``), so commands need not declare it.
        signature = inspect.signature(func, eval_str=True)
        context = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        extra = [context]
        if "verbose" not in signature.parameters:
            own = _short_options(signature)
            extra.append(inspect.Parameter(_VERBOSE, inspect.Parameter.KEYWORD_ONLY, default=0,
                                           annotation=_VERBOSE_LONG_ONLY if "-v" in own else _VERBOSE_AFTER))
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), *extra]
        )
        target = kwargs.pop("app", app)
        target.command(*names, **kwargs)(wrapper)
        return wrapper

    return decorate


def main() -> None:
    """Entry point (the console script starts at :func:`p2pcommons.cli.fast.console`, which
    comes here for all but the hot commands): a hot command line runs without typer's
    parsing (:mod:`.fast`), everything else through typer."""
    from .fast import run_hot

    code = run_hot(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    _register_commands()
    app()


_registered = False


def _register_commands() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    from importlib import import_module

    for module in ("local", "governance", "decisions", "treasury", "config", "network", "devices"):
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
    "EXIT_CODES",
    "JSON_VERSION",
    "MAX_AMOUNT",
    "MIN_PREFIX",
    "CommandFailed",
    "ForceOption",
    "HomeOption",
    "JsonOption",
    "_known_failure",
    "_print_json",
    "_report_bug",
    "ambiguous",
    "app",
    "command",
    "emit",
    "emit_event",
    "fail",
    "fail_with",
    "get_app",
    "home_of",
    "human_time",
    "id_matches",
    "identity_of",
    "main",
    "open_store",
    "package_version",
    "passphrase_for",
    "print_error",
    "progress_enabled",
    "resolve_commons",
    "resolve_entry",
    "short_id",
]
_ = Path
