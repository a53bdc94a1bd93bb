"""The layers of docs/architecture.md, checked: who may import or touch what.

The wire (``protocols/``) imports nothing of the store, so its codecs can be read, tested and
reused without a database; nothing outside ``store.py`` reaches into the store's SQLite
connection, so the store's schema can change behind its methods.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_MODULES = sorted(
    "p2pcommons.protocols" + ("" if path.stem == "__init__" else f".{path.stem}")
    for path in (ROOT / "protocols").glob("*.py")
)
SOURCES = [path for folder in ("p2pcommons", "cli", "protocols") for path in (ROOT / folder).rglob("*.py")]


@pytest.mark.parametrize("module", PROTOCOL_MODULES)
def test_protocols_import_nothing_of_the_store(module: str) -> None:
    """Imported alone in a fresh interpreter, a protocols module loads neither the store nor
    anything that needs it (ingest, bundles, the state)."""
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m in ('p2pcommons.store', 'p2pcommons.ingest', "
        "'p2pcommons.bundle', 'sqlite3') or m.startswith('p2pcommons.state') or m.startswith('p2pcommons.node'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} loads {done.stdout.strip()}"


def test_the_store_connection_stays_private() -> None:
    """Only store.py touches ``_db``: everything else (``p2pc verify`` included) goes through
    Store's methods."""
    offenders = []
    for path in SOURCES:
        if path == ROOT / "p2pcommons" / "store.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in ("_db", "_conn"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
