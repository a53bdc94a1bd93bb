"""Reading ``p2pc --json`` output in tests: every document is checked against the one
published schema (docs/json-schema.json) before a test looks inside it, so every test that
drives the CLI with --json also checks the envelope and the shared keys (docs/json.md)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "json-schema.json"


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def envelope(text: str) -> dict[str, Any]:
    """One --json document (the last line if there are several), validated, whole."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert lines, "no JSON output"
    document = json.loads(lines[-1])
    check(document)
    return dict(document)


def check(document: Any) -> None:
    """Raise if ``document`` is not a valid envelope (the schema's error says where)."""
    _validator().validate(document)


def unwrap(text: str) -> Any:
    """The ``data`` of a successful command's --json output."""
    document = envelope(text)
    assert document.get("ok") is True, document
    return document["data"]


def error_of(text: str) -> dict[str, Any]:
    """The ``error`` of a failed command's --json output (code, type, message)."""
    document = envelope(text)
    assert document.get("ok") is False, document
    return dict(document["error"])


def stream(text: str) -> list[Any]:
    """The items of a JSON Lines stream (``p2pc log --json``): one envelope per line."""
    items = []
    for line in text.splitlines():
        if line.strip():
            document = json.loads(line)
            check(document)
            assert document["ok"] is True, document
            items.append(document["data"])
    return items
