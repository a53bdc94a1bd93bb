"""The command line's plumbing that needs no typer: output envelopes, errors, homes,
stores and id resolution.

:mod:`.app` (the typer application) re-exports all of it; :mod:`.fast` (the lean entry point
for the hot commands: ``contribute``, ``state``, ``members``, ``contributions``) uses it
without loading typer, click and pydantic (about 0.2 s of start-up, issue 18).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from p2pcommons.errors import P2PCError, system_error
from p2pcommons.shortid import AUTHOR_ID_PREFIX, ENTRY_ID_PREFIX, short_id  # one definition, the dashboard's too

# The version of the --json envelope (docs/json.md): raised when a key is renamed or removed
# or a type changes; adding keys keeps it.
JSON_VERSION = 1

# The bound on every amount an entry carries (p2pcommons.entry.MAX_AMOUNT, not imported here so
# commands start without the codec; tests/test_cli_local.py checks the two agree): options refuse
# a larger number as a usage error (exit 2) before anything is signed.
MAX_AMOUNT = 2**53


def print_error(error_type: str, code: int, message: str, *, as_json: bool, data: Any = None) -> None:
    """One sentence on stderr, or with --json the error envelope on stdout (docs/json.md):
    ``{"v": 1, "ok": false, "error": {"code", "type", "message"}}`` and, when the command
    had a result before failing, ``data``."""
    if not as_json:
        print(f"p2pc: {message}", file=sys.stderr)
        return
    document: dict[str, Any] = {
        "v": JSON_VERSION, "ok": False, "error": {"code": code, "type": error_type, "message": message}
    }
    if data is not None:
        document["data"] = data
    _print_json(document)



def _report_bug(exc: BaseException, as_json: bool) -> None:
    """An unexpected exception (a bug): with --json a script still gets the error envelope
    (exit code 1); the traceback follows on stderr for the bug report."""
    if as_json:
        print_error("InternalError", 1, f"Unexpected error ({type(exc).__name__}); please report it.", as_json=True)


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
        import typer  # (only to ask on a terminal)

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


# A prefix shorter than this is not taken as an abbreviation (as git asks for four).
MIN_PREFIX = 4


def human_time(millis: int) -> str:
    """An entry's signed time (ms since the epoch, the author's clock) for people: local
    time to the minute."""
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(millis / 1000)) if millis else "-"


def id_matches(full: str, text: str) -> bool:
    """Whether ``text`` names the id ``full``: the id itself, or a prefix (at least
    :data:`MIN_PREFIX` characters) of the id or of its short form's source (the id without
    its fixed prefix)."""
    if not text:
        return False
    if full == text:
        return True
    if len(text) < MIN_PREFIX:
        return False
    if full.startswith(text):
        return True
    return any(
        full.startswith(prefix) and full[len(prefix) :].startswith(text)
        for prefix in (ENTRY_ID_PREFIX, AUTHOR_ID_PREFIX)
    )


def ambiguous(text: str, count: int, what: str, capped: bool = False) -> Exception:
    """The usage error (exit 2) for a prefix that names several things."""
    from p2pcommons.errors import Ambiguous

    many = f"{count}{' or more' if capped else ''}"
    return Ambiguous(f"'{text}' matches {many} {what}; give more of the id.")


def resolve_commons(store: Any, commons: str | None) -> Any:
    """A commons by id, unique id prefix (of the id or its short form) or exact name; the
    only one if none is given."""
    from p2pcommons.errors import Ambiguous, NotFound

    known = store.commons_list()
    if commons is None:
        if len(known) == 1:
            return known[0].id
        if not known:
            raise NotFound("This node holds no commons yet; create one or import a bundle.")
        raise Ambiguous("This node holds several commons; choose one with --commons.")
    matches = [c.id for c in known if str(c.id) == commons or c.name == commons]
    if not matches:
        matches = [c.id for c in known if id_matches(str(c.id), commons)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"No commons '{commons}' on this node.")
    raise ambiguous(commons, len(matches), "commons")


def resolve_entry(store: Any, text: str) -> Any:
    """An entry by full id or unique prefix (of the id, or of its short form)."""
    from p2pcommons.errors import NotFound

    matches = list(store.find_by_prefix(text)) if text else []
    if len(text) >= MIN_PREFIX and not text.startswith(ENTRY_ID_PREFIX):
        matches += [m for m in store.find_by_prefix(ENTRY_ID_PREFIX + text) if m not in matches]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"No entry '{text}' on this node.")
    raise ambiguous(text, len(matches), "entries", capped=len(matches) > 20)


def emit(data: Any, as_json: bool, human: Callable[[], None] | str | None = None) -> None:
    """Print ``data`` in the success envelope (``{"v": 1, "ok": true, "data": data}``, one
    line), or the human form (a string or a function that prints).  A stream calls it once
    per item: one envelope per line."""
    if as_json:
        _print_json({"v": JSON_VERSION, "ok": True, "data": data})
    elif callable(human):
        human()
    elif human is not None:
        print(human)
    else:
        print(data)


def emit_event(data: dict[str, Any], as_json: bool, message: str) -> None:
    """Progress while a command waits (``join``), on stderr so stdout keeps the result: a
    sentence, or with --json one envelope line ``{"v": 1, "event": data}``."""
    if as_json:
        print(json.dumps({"v": JSON_VERSION, "event": data}, sort_keys=True, default=str), file=sys.stderr, flush=True)
    else:
        print(message, file=sys.stderr, flush=True)


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, sort_keys=True, default=str), flush=True)


def progress_enabled() -> bool:
    """Progress bars on a terminal only: piped output stays clean for scripts."""
    return sys.stderr.isatty() and not os.environ.get("P2PC_NO_PROGRESS")


__all__ = ["short_id"]
