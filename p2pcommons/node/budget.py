"""How much memory peers may make this node hold through sync sessions, per peer and in
total (issue 11, item 7).

Why: a peer's session makes the node hold what the peer sent and the node has not
finished with: summary pages being planned, batches waiting to be validated and stored.
Each session charges those bytes to its :class:`Share` of one :class:`MemoryBudget`
before holding them and releases them when done.  A session over its own cap, or over
its fair part of the total while the total is exhausted, is the peer's fault (an honest
peer stays within the window it was offered and sends one page at a time): the charge
raises :class:`OverBudget`, a :class:`~p2pcommons.errors.ProtocolViolation`, so the node
cuts the session off and scores the peer like any other violation.  Sessions that stay
within their share are never refused because of another peer.
"""

from __future__ import annotations

from p2pcommons.errors import ProtocolViolation
from p2pcommons.protocols import sync

# Python objects for a decoded summary page take a few times its encoded size.
SUMMARY_EXPANSION = 4
# The window this node offers a peer (bytes of entries sent and not yet acknowledged):
# about four of the session's groups (1 MiB), so the peer keeps sending the group after
# next while one is stored and the next waits in the ingest process (issue 18).  With the
# protocol's 2 MiB, a group's acknowledgement had to come back before the sender could send
# on, and the ingest process at times waited for its next group.
OFFERED_WINDOW = 4 * 1024 * 1024
# An honest session holds at most one summary page (expanded), a frame and one window of
# batches (the same 9 MiB as two of the protocol's default 2 MiB windows, before).
PER_SESSION = SUMMARY_EXPANSION * sync.MAX_FRAME + OFFERED_WINDOW + sync.MAX_FRAME
TOTAL = 16 * PER_SESSION


class OverBudget(ProtocolViolation):
    """A peer made its session hold more than its share of the node's memory budget."""


class MemoryBudget:
    """The node-wide budget; one :class:`Share` per session."""

    def __init__(self, total: int = TOTAL, per_session: int = PER_SESSION) -> None:
        if not 0 < per_session <= total:
            raise ValueError("per_session must be positive and at most total")
        self.total = total
        self.per_session = per_session
        self.held = 0
        self._shares: set[Share] = set()

    def share(self) -> Share:
        share = Share(self)
        self._shares.add(share)
        return share

    @property
    def sessions(self) -> int:
        return len(self._shares)

    def _close(self, share: Share) -> None:
        self._shares.discard(share)
        self.held -= share.held
        share.held = 0


class Share:
    """One session's part of the budget (use as a context manager: closing releases all)."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.held = 0
        self.peak = 0

    def charge(self, nbytes: int, what: str) -> None:
        budget = self.budget
        after = self.held + nbytes
        if after > budget.per_session:
            raise OverBudget(f"The peer made this node hold {after} bytes of {what}; "
                             f"a session may hold {budget.per_session}.")
        if budget.held + nbytes > budget.total:
            fair = budget.total // max(1, budget.sessions)
            if after > fair:
                raise OverBudget(f"The peer made this node hold {after} bytes of {what} while the "
                                 f"node's sync budget is exhausted; its share is {fair}.")
        self.held = after
        self.peak = max(self.peak, after)
        budget.held += nbytes

    def release(self, nbytes: int) -> None:
        nbytes = min(nbytes, self.held)
        self.held -= nbytes
        self.budget.held -= nbytes

    def close(self) -> None:
        self.budget._close(self)

    def __enter__(self) -> Share:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["OFFERED_WINDOW", "PER_SESSION", "SUMMARY_EXPANSION", "TOTAL", "MemoryBudget", "OverBudget", "Share"]
