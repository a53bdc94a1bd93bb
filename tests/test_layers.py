"""The layers of docs/architecture.md, checked: who may import or touch what.

Nothing outside ``store.py`` reaches into the store's SQLite connection, so the store's schema
can change behind its methods.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [path for folder in ("p2pcommons", "cli", "protocols") for path in (ROOT / folder).rglob("*.py")]


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
