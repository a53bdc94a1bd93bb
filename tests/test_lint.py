"""ruff and mypy are part of the test suite, so CI enforces them with the tests."""

from __future__ import annotations

import ast
import re
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


def _module_marks(tree: ast.Module) -> set[str]:
    """The names of the marks a module's `pytestmark` applies (pytest.mark.NAME or NAME(...))."""
    marks: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
                    marks.add(sub.attr)
    return marks


def test_report_tests_share_a_worker_with_what_they_report() -> None:
    """A `test_report_counts` reads counters its module's other tests fill in the same process.
    Under the README's `-n 2 --dist loadgroup`, xdist may send ungrouped tests of one module to
    different workers, and CI failed once when tests/test_fuzz.py's report ran on a worker that had
    run none of its targets; a module-wide xdist_group keeps the module on one worker, in order."""
    reporting = [path for path in sorted((ROOT / "tests").glob("test_*.py"))
                 if re.search(r"^def test_report_counts\b", path.read_text(encoding="utf-8"), re.MULTILINE)]
    assert reporting, "no module reports counts: this check has nothing to check"
    ungrouped = [path.name for path in reporting
                 if "xdist_group" not in _module_marks(ast.parse(path.read_text(encoding="utf-8")))]
    assert not ungrouped, f"modules whose report may run on another worker: {ungrouped}"
