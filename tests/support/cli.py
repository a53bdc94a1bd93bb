"""Running ``p2pc`` in tests, two ways, shared by the CLI test files.

* In process, through typer's CliRunner (:func:`invoke`): fast, for commands that need no
  daemon. The state engine caches folds per process, so tests that write through it start
  and end with a forgotten cache (:func:`fresh_live_state`, imported into a test module it
  applies to every test there).
* As the installed ``p2pc`` executable (:data:`EXE`, :func:`subprocess_env`): exit codes and
  stderr exactly as a user sees them, with no ``P2PC_HOME`` leaking in from the caller.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

EXE = shutil.which("p2pc", path=str(Path(sys.executable).parent)) or shutil.which("p2pc") or "p2pc"
runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_live_state() -> Iterator[None]:
    from p2pcommons.state.engine import forget

    forget()
    yield
    forget()


def invoke(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    """``p2pc args`` in process; asserts the exit code (the output is in the assertion)."""
    from p2pcommons.cli.app import get_app

    result = runner.invoke(get_app(), list(args), catch_exceptions=False, env={"P2PC_NO_PROGRESS": "1", **(env or {})})
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    return result


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The environment for a ``p2pc`` process: no progress bars, no inherited ``P2PC_HOME``."""
    env = {**os.environ, "P2PC_NO_PROGRESS": "1"}
    env.pop("P2PC_HOME", None)
    env.update(extra or {})
    return env
