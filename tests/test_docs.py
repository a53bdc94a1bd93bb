"""Every command shown in the docs runs, as written, in a scratch directory.

Each document's ```sh blocks are joined into one bash script (``set -euo pipefail``) and run
with the installed ``p2pc`` first on PATH.  README's set-up lines (virtualenv and pip) are
replaced by the already-installed environment; the ``p2pc`` commands they chain are run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
# Documents that show shell commands (a reference page with none has nothing to run).
DOCS = [d for d in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"] if BLOCK.search(d.read_text("utf-8"))]


def script_of(doc: Path) -> str:
    blocks = BLOCK.findall(doc.read_text(encoding="utf-8"))
    lines = []
    for block in blocks:
        for line in block.splitlines():
            if "python3 -m venv" in line:
                # "python3 -m venv .venv && .venv/bin/pip install … && .venv/bin/p2pc init && …":
                # keep the p2pc commands; the environment is already installed.
                parts = [p.strip().replace(".venv/bin/", "") for p in line.split("&&")]
                kept = [p for p in parts if not p.startswith(("python3 -m venv", "pip ", "python -m pytest"))]
                line = " && ".join(kept) if kept else ":"
            lines.append(line)
    return "\n".join(lines)


@pytest.mark.slow  # every tutorial, run as written (minutes): out of the fast loop, run by CI
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_doc_commands_run(doc: Path, tmp_path: Path) -> None:
    script = script_of(doc)
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["P2PC_HOME"] = str(tmp_path / "default-home")
    env["P2PC_NO_PROGRESS"] = "1"
    env["HOME"] = str(tmp_path)  # e.g. shell completion installs into ~/.bashrc
    env["SHELL"] = "/bin/bash"
    try:
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )
    finally:
        _stop_daemons(tmp_path, env)
    assert done.returncode == 0, f"{doc.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _stop_daemons(root: Path, env: dict[str, str]) -> None:
    """A doc that failed half-way may leave daemons running: stop every one it started."""
    for lock in root.rglob("node.lock"):
        subprocess.run(["p2pc", "node", "stop", "--home", str(lock.parent)], env=env,
                       capture_output=True, timeout=60, check=False)
