"""A small commons with explicit times and explicit causal knowledge, for decision tests.

Each author knows some prefix of every log (``know``); an entry depends on the latest entry
it knows of every other author, so "in the causal past" is exactly what the author knew.
Times are given per entry, so a test can set any clock it likes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import fold, genesis_body
from p2pcommons.state.views import CommonsState

SIGNERS = [Signer(hashlib.sha256(b"decision-author-%d" % i).digest()) for i in range(6)]
T0 = 1_700_000_000_000


class Town:
    """Founders ``0 .. stewards-1`` (stewards and reviewers); others join on request."""

    def __init__(self, stewards: int = 3, rules: dict[str, Any] | None = None, authors: int = 4) -> None:
        self.n = authors
        body = genesis_body("decisions", rules=rules, founders=[s.public_key for s in SIGNERS[:stewards]])
        self.genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body=body,
                                  timestamp=T0)
        self.entries: list[Entry] = [self.genesis]
        self.logs: list[list[Entry]] = [[] for _ in range(authors)]
        self.logs[0].append(self.genesis)
        self.know = [[0] * authors for _ in range(authors)]  # know[i][j]: entries of j's log i has seen
        self.know[0][0] = 1
        self.parents: dict[bytes, list[bytes]] = {self.genesis.id.raw: []}

    def key(self, i: int) -> bytes:
        return SIGNERS[i].public_key

    def sync(self, i: int, j: int) -> None:
        """``i`` learns everything ``j`` knows."""
        self.know[i] = [max(a, b) for a, b in zip(self.know[i], self.know[j], strict=True)]

    def write(self, i: int, kind: str, body: dict[str, Any], time: int) -> Entry:
        log = self.logs[i]
        deps = [self.genesis.id] + [self.logs[j][self.know[i][j] - 1].id for j in range(self.n)
                                    if j != i and self.know[i][j]]
        entry = sign_entry(SIGNERS[i], commons=self.genesis.id, seq=len(log) + 1,
                           prev=log[-1].id if log else None, kind=kind, body=body,
                           deps=list(dict.fromkeys(deps)), timestamp=time)
        log.append(entry)
        self.know[i][i] = len(log)
        self.entries.append(entry)
        self.parents[entry.id.raw] = [d.raw for d in entry.deps] + ([entry.prev.raw] if entry.prev else [])
        return entry

    def ancestors(self, entry: Entry) -> set[bytes]:
        """Every id in ``entry``'s causal past (itself included)."""
        seen: set[bytes] = set()
        stack = [entry.id.raw]
        while stack:
            raw = stack.pop()
            if raw not in seen:
                seen.add(raw)
                stack.extend(self.parents.get(raw, []))
        return seen

    def fold(self, order: list[Entry] | None = None) -> CommonsState:
        return fold(order if order is not None else self.entries, self.genesis.id)

    def proposal(self, state: CommonsState, target: Entry) -> dict[str, Any]:
        doc: dict[str, Any] = state.canonical["proposals"][str(target.id)]
        return doc

    def member_hex(self, i: int) -> str:
        return self.key(i).hex()


def cid(entry: Entry) -> CID:
    return entry.id
