"""``p2pc verify``: re-check everything the store holds, trusting nothing cached.

Every entry is decoded and its signature verified individually (no segment shortcut: this
is the audit path), its stored id recomputed, its backlink resolved; derived state is then
rebuilt from scratch and compared with the cached state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .dagcbor import CID
from .entry import decode_entry
from .errors import InvalidEntry
from .store import Store


@dataclass
class VerifyReport:
    entries: int = 0
    commons: int = 0
    forks: int = 0
    problems: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "commons": self.commons,
            "forks": self.forks,
            "problems": self.problems,
            "state_hashes": self.states,
        }

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.problems)} PROBLEMS"
        lines = [f"{verdict}: {self.entries} entries in {self.commons} commons verified, {self.forks} forks on record"]
        lines += [f"  problem: {p}" for p in self.problems[:20]]
        return "\n".join(lines)


def verify_store(store: Store, on_progress: Callable[[int], None] | None = None) -> VerifyReport:
    report = VerifyReport()
    try:
        integrity = store._db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"SQLite integrity check failed ({exc})")
        return report
    if integrity != "ok":
        report.problems.append(f"SQLite integrity check failed ({integrity})")
    rows = store._db.execute(
        "SELECT entries.id, entries.seq, entries.raw, logs.commons, logs.author, entries.log "
        "FROM entries JOIN logs ON logs.log = entries.log ORDER BY entries.log, entries.seq"
    )
    ids_at: dict[tuple[int, int], set[bytes]] = {}
    previous_log = None
    while batch := rows.fetchmany(2000):
        for raw_id, seq, raw, commons, author, log in batch:
            if log != previous_log:
                ids_at = {}
                previous_log = log
            report.entries += 1
            label = str(CID(bytes(raw_id)))
            try:
                entry = decode_entry(bytes(raw))
                entry.verify_signature()
            except InvalidEntry as error:
                report.problems.append(f"entry {label}: {error}")
                continue
            if entry.id.raw != bytes(raw_id):
                report.problems.append(f"entry {label}: stored under the wrong id")
            if entry.commons_id.raw != bytes(commons) or entry.author != bytes(author) or entry.seq != seq:
                report.problems.append(f"entry {label}: indexed under the wrong log or position")
            if entry.seq > 1 and (entry.prev is None or entry.prev.raw not in ids_at.get((log, seq - 1), set())):
                report.problems.append(f"entry {label}: its predecessor (seq {seq - 1}) is missing")
            ids_at.setdefault((log, seq), set()).add(entry.id.raw)
        if on_progress:
            on_progress(report.entries)
    for (count,) in store._db.execute(
        "SELECT count(*) FROM (SELECT log, seq FROM entries GROUP BY log, seq HAVING count(*) > 1)"
    ):
        report.forks = int(count)
    recorded = len(store.forks())
    if recorded != report.forks:
        report.problems.append(f"{report.forks} forks are stored but {recorded} are on record as evidence")
    commons_list = store.commons_list()
    report.commons = len(commons_list)
    from .state import verify_state

    for info in commons_list:
        try:
            report.states[str(info.id)] = verify_state(store, info.id)
        except Exception as exc:  # a mismatch or a bug: both are verification failures
            report.problems.append(f"commons {info.id}: derived state does not rebuild ({exc})")
    return report
