"""ruff and mypy are part of the test suite, so CI enforces them with the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed in this environment")
    return found


def test_ruff_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_clean() -> None:
    """Strict mypy over p2pcommons/, cli/ and protocols/ under their installed names: plain
    `mypy p2pcommons` cannot see cli/ and protocols/, which pyproject's package-dir maps in."""
    _tool("mypy")
    result = subprocess.run([sys.executable, ROOT / ".ci" / "typecheck.py"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = int(result.stdout.split("no issues found in ")[1].split()[0])
    files = [path for folder in ("p2pcommons", "cli", "protocols") for path in (ROOT / folder).rglob("*.py")]
    assert checked == len(files), "some source files were not type-checked"
