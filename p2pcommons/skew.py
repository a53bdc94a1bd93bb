"""Time a node can trust: how far ahead of its own clock an entry may be dated.

An entry's ``time`` is its author's clock (``protocols/entry.md``); deadlines and quota
periods are judged by it (``protocols/commons.md`` §2.4).  Two rules make that time
trustworthy without making the fold depend on any node's clock:

* the fold rejects an entry dated before an entry in its causal past (a pure function of
  the entries, so every node agrees); and
* a node does not *take* an entry dated more than :data:`SKEW_MS` after its own clock: it
  neither stores nor acknowledges it (ingest counts it as deferred), and takes it when its
  clock has come within the bound — a later sync or bundle brings it again.

So every store only ever holds entries that were not dated beyond the skew when taken, and
"same entries ⇒ same state" is untouched: a fast clock delays its owner's entries, nothing
more.  A slow clock cannot date an entry before anything it has seen.
"""

from __future__ import annotations

SKEW_MS = 5 * 60 * 1000  # five minutes: how far ahead of a node's clock an entry may be dated


def too_early(entry_time: int, now_ms: int, skew_ms: int = SKEW_MS) -> bool:
    """Is an entry dated ``entry_time`` (ms) still in the future beyond the skew at ``now_ms``?"""
    return entry_time > now_ms + skew_ms
