"""The repository's layout and what gets installed from it.

``cli/`` and ``protocols/`` sit at the top of the repository and are installed as
``p2pcommons.cli`` and ``p2pcommons.protocols`` through pyproject's ``package-dir`` — one path
per file, no symlinks. The package list there is written out by hand (setuptools cannot
discover packages across mapped folders), so a package missing from it would be silently
left out of a wheel while every editable-install test still passed: these tests catch that,
and the slow one installs a real wheel and drives it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for package, folder in SETUPTOOLS["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rest = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([package, *rest]))
    return found


def test_no_symlinks_in_the_tree() -> None:
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    links = [line.split("\t", 1)[1] for line in tracked.stdout.splitlines() if line.startswith("120000")]
    assert links == []


def test_every_package_is_installed() -> None:
    assert set(SETUPTOOLS["packages"]) == _packages_on_disk()


def test_specs_and_vectors_are_package_data() -> None:
    patterns = SETUPTOOLS["package-data"]["p2pcommons.protocols"]
    assert "*.md" in patterns
    assert "vectors/*.json" in patterns


@pytest.mark.slow
def test_wheel_install_round_trip(tmp_path: Path) -> None:
    """A regular (non-editable) install works on its own: `p2pc --help`, a commons created,
    a contribution, a bundle exported and imported into a second home, the same state."""
    target = tmp_path / "site"
    source = tmp_path / "source"  # pip builds in the source tree: keep build/ out of the repository
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=240,
    )
    if built.returncode != 0 and "No matching distribution" in built.stderr:
        pytest.skip("no package index to build the wheel with")
    assert built.returncode == 0, built.stderr
    assert (target / "p2pcommons" / "cli" / "app.py").is_file()
    assert (target / "p2pcommons" / "protocols" / "sync.md").is_file()
    work = tmp_path / "work"  # not the repository: nothing may come from the source tree
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "P2PC_HOME": ""}

    def p2pc(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", "from p2pcommons.cli.app import main; main()", *args],
            cwd=work, env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    origin = subprocess.run(
        [sys.executable, "-c", "import p2pcommons.cli.app, p2pcommons.protocols.sync as s; print(s.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, timeout=60,
    )
    assert origin.stdout.strip().startswith(str(target)), origin
    assert "Usage" in p2pc("--help")
    p2pc("--home", "a", "init")
    p2pc("--home", "b", "init")
    p2pc("--home", "a", "commons", "create", "Forest")
    p2pc("--home", "a", "contribute", "--title", "Planted 40 oaks", "--kind", "fieldwork", "--value", "5")
    p2pc("--home", "a", "export", "-c", "Forest", "-o", "forest.bundle")
    p2pc("--home", "b", "import", "forest.bundle")
    state_a = json.loads(p2pc("--home", "a", "--json", "state"))
    state_b = json.loads(p2pc("--home", "b", "--json", "state"))
    assert state_a == state_b
    assert "Planted 40 oaks" in p2pc("--home", "b", "--json", "contributions")
