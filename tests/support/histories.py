"""Building real signed histories quickly for tests and benchmarks (no CLI round trips)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry


def seed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def linear_history(authors: int, per_author: int, *, body_bytes: int = 64, label: str = "t") -> list[Entry]:
    """A genesis by author 0, then ``per_author`` contributions from each author,
    interleaved round-robin, each depending on the previous author's latest entry."""
    signers = [Signer(seed(f"{label}-{i}")) for i in range(authors)]
    genesis = sign_entry(signers[0], commons=None, seq=1, prev=None, kind="genesis",
                         body={"name": f"commons {label}"}, timestamp=0)
    entries = [genesis]
    heads: dict[int, Entry] = {0: genesis}
    for round_ in range(per_author):
        for i, signer in enumerate(signers):
            prev = heads.get(i)
            seq = prev.seq + 1 if prev else 1
            other = heads.get((i - 1) % authors)
            deps: list[CID] = [other.id] if other is not None and other is not prev else []
            entry = sign_entry(signer, commons=genesis.id, seq=seq, prev=prev.id if prev else None,
                               kind="contribution", deps=deps,
                               body={"title": f"work {round_}", "note": "x" * body_bytes, "value": 1},
                               timestamp=1000 + len(entries))
            heads[i] = entry
            entries.append(entry)
    return entries


def raws(entries: list[Entry]) -> Iterator[bytes]:
    for entry in entries:
        yield entry.raw
