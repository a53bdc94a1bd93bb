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

_PROGRESS_EVERY = 2000  # entries between progress reports


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
        integrity = store.quick_check()
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"SQLite integrity check failed ({exc})")
        return report
    if integrity != "ok":
        report.problems.append(f"SQLite integrity check failed ({integrity})")
    ids_at: dict[tuple[int, int], set[bytes]] = {}
    previous_log = None
    for row in store.stored_rows():
        if row.log != previous_log:
            ids_at = {}
            previous_log = row.log
        report.entries += 1
        if on_progress and report.entries % _PROGRESS_EVERY == 0:
            on_progress(report.entries)
        label = str(CID(row.id))
        try:
            entry = decode_entry(row.raw)
            entry.verify_signature()
        except InvalidEntry as error:
            report.problems.append(f"entry {label}: {error}")
            continue
        if entry.id.raw != row.id:
            report.problems.append(f"entry {label}: stored under the wrong id")
        if entry.commons_id.raw != row.commons or entry.author != row.author or entry.seq != row.seq:
            report.problems.append(f"entry {label}: indexed under the wrong log or position")
        if entry.seq > 1 and (entry.prev is None or entry.prev.raw not in ids_at.get((row.log, row.seq - 1), set())):
            report.problems.append(f"entry {label}: its predecessor (seq {row.seq - 1}) is missing")
        ids_at.setdefault((row.log, row.seq), set()).add(entry.id.raw)
    if on_progress and report.entries % _PROGRESS_EVERY:
        on_progress(report.entries)
    unfound, stray = store.id_table_faults()
    if unfound:
        report.problems.append(f"{unfound} stored entries cannot be found by their id (the id tables miss them)")
    if stray:
        report.problems.append(f"the store's id tables name {stray} entries that are not stored as named")
    named = store.named_faults()
    if named is not None:
        report.problems.append(f"the store's table of which entries name which does not match the stored entries "
                               f"({named[0]} rows, {named[1]} expected: the store's derived data is damaged)")
    wrong = store.vector_faults()
    if wrong:
        report.problems.append(f"{wrong} stored entries hold a version vector their parents' vectors do not give "
                               "(the store's derived causal data is damaged)")
    report.forks = store.stored_fork_count()
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
