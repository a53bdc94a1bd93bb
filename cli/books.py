"""``p2pc export --format valueflows|csv``: the commons' books for an accountant or another
tool (docs/export.md).  The bundle export (the default format) carries entries to another
node; these carry what the fold made of them — pools, movements, distributions and their
shares, accepted contributions — as ValueFlows JSON-LD or CSV tables, written by
p2pcommons/export.py from the state alone, so the same state gives the same bytes."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from .app import emit, open_store, resolve_commons


def _write_atomic(path: Path, data: bytes) -> None:
    """Whole or not at all: a reader never sees half an export."""
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def export_books(home: Path | None, commons: str | None, fmt: str, out: Path | None, as_json: bool) -> None:
    """Write the books in ``fmt``: valueflows to a file (or stdout), csv to a directory."""
    from p2pcommons import export
    from p2pcommons.dagcbor import CID
    from p2pcommons.errors import UsageError
    from p2pcommons.state.engine import current_state

    if fmt not in export.FORMATS:
        raise UsageError(f"--format must be bundle, {' or '.join(export.FORMATS)}, not '{fmt}'.")
    if fmt == "csv" and (out is None or str(out) == "-"):
        raise UsageError("CSV writes several tables: name a directory for them with --out DIR.")
    if as_json and (out is None or str(out) == "-"):
        raise UsageError("With --json, stdout carries the result: write the export to a file with --out FILE.")
    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        state = current_state(store, cid)
        canonical = state.canonical
        times = {}
        for entry_id in export.entry_ids(canonical):
            found = store.get(CID.parse(entry_id))
            if found is not None:
                times[entry_id] = int(found.time)
        state_hash = state.state_hash
    files: dict[str, bytes] = ({"": export.valueflows(canonical, times)} if fmt == "valueflows"
                               else export.csv_tables(canonical, times))
    if out is None or str(out) == "-":
        sys.stdout.buffer.write(files[""])
        sys.stdout.buffer.flush()
        return
    written = []
    if fmt == "csv":
        out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = out / name if name else out
        _write_atomic(path, data)
        written.append({"file": str(path), "byte_count": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    result: dict[str, Any] = {
        "commons": str(cid), "state_hash": state_hash, "format": fmt, "files": written,
        "pool_count": len(canonical.get("pools", {})), "flow_count": len(canonical.get("flows", [])),
        "distribution_count": len(canonical.get("distributions", [])),
        "contribution_count": sum(1 for c in canonical.get("contributions", {}).values()
                                  if c["status"] == "accepted"),
    }
    emit(result, as_json, f"Wrote the books ({fmt}) to {out}: {result['flow_count']} movements, "
                          f"{result['distribution_count']} distributions, {result['contribution_count']} "
                          "accepted contributions")
