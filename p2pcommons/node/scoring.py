"""Peer scores and bans: a small sans-I/O state machine the daemon consults.

What it promises (tests/test_node_scoring.py drives it under ``trio.testing.MockClock``):

* Only a peer's *proven* misbehaviour costs points: malformed or invalid data
  (:data:`INVALID`) and gossip floods (:data:`FLOOD`).  A dropped connection, an end of
  stream or a timeout is the network's fault as often as the peer's, so the daemon never
  scores one (it ends the session and disconnects; the next session resumes).
* Scores recover: a penalty decays toward neutral (0) with a half-life of
  :data:`HALF_LIFE` seconds of the injected clock, so a peer that once sent one bad frame is
  not held to it for ever, and a long-lived daemon does not slowly ban its honest peers.
* A peer whose score falls to :data:`BAN_SCORE` or below is banned for
  :data:`BAN_SECONDS`; the ban ends on time even if the score is still low (it keeps
  decaying, so a repeat offender is banned again at its next fault).
* Memory is bounded: a peer whose score has decayed back to about neutral and who is not
  banned is forgotten.

The clock is a function returning seconds (``trio.current_time`` in the daemon), so the
machine does no I/O and needs no event loop of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

BAN_SCORE = -100
BAN_SECONDS = 600.0
HALF_LIFE = 600.0       # a penalty halves every ten minutes
INVALID = -60           # malformed or invalid data: bad frames, bad entries, garbage
FLOOD = -10             # more gossip messages per second than allowed
_FORGET_BELOW = 0.5     # |score| under this, and not banned: the peer is forgotten
MAX_TRACKED = 100_000   # a flood of throwaway peer ids must not grow this without bound


@dataclass
class _Record:
    score: float         # at time ``at``
    at: float
    banned_until: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """What one penalty did: the score after it, and whether it started a ban."""

    score: float
    banned: bool
    banned_until: float


class Scoreboard:
    """Scores of peers, decaying toward neutral with time; bans below the threshold."""

    def __init__(self, clock: Callable[[], float], *, half_life: float = HALF_LIFE,
                 ban_score: float = BAN_SCORE, ban_seconds: float = BAN_SECONDS) -> None:
        self.clock = clock
        self.half_life = half_life
        self.ban_score = ban_score
        self.ban_seconds = ban_seconds
        self._peers: dict[str, _Record] = {}
        self._prune_at = 1024

    def _decayed(self, record: _Record, now: float) -> float:
        elapsed = max(0.0, now - record.at)
        return float(record.score * 0.5 ** (elapsed / self.half_life))

    def score(self, peer_id: str) -> float:
        """The peer's score now (0 for a peer never penalized, or long forgiven)."""
        record = self._peers.get(peer_id)
        return 0.0 if record is None else self._decayed(record, self.clock())

    def is_banned(self, peer_id: str) -> bool:
        record = self._peers.get(peer_id)
        return record is not None and record.banned_until > self.clock()

    def banned_until(self, peer_id: str) -> float | None:
        """When the peer's ban ends (on the injected clock), or None if it is not banned."""
        record = self._peers.get(peer_id)
        if record is None or record.banned_until <= self.clock():
            return None
        return record.banned_until

    def penalize(self, peer_id: str, points: float, reason: str = "") -> Verdict:
        """Add ``points`` (negative) for proven misbehaviour; ban at the threshold."""
        if points > 0:
            raise ValueError("a penalty is negative")
        now = self.clock()
        record = self._peers.get(peer_id)
        if record is None:
            self._prune(now)
            record = self._peers[peer_id] = _Record(0.0, now)
        record.score = self._decayed(record, now) + points
        record.at = now
        record.reason = reason
        started = False
        if record.score <= self.ban_score and record.banned_until <= now:
            record.banned_until = now + self.ban_seconds
            started = True
        return Verdict(record.score, started, record.banned_until)

    def restore_ban(self, peer_id: str, score: float, remaining: float, reason: str = "") -> None:
        """A ban kept across a restart (``bans.json``): ``remaining`` seconds from now."""
        now = self.clock()
        self._peers[peer_id] = _Record(min(score, self.score(peer_id)), now, now + max(0.0, remaining), reason)

    def forgive(self, peer_id: str) -> bool:
        """Lift a ban and forget the score (``p2pc peer unban``); whether it was banned."""
        record = self._peers.pop(peer_id, None)
        return record is not None and record.banned_until > self.clock()

    def reason(self, peer_id: str) -> str:
        record = self._peers.get(peer_id)
        return "" if record is None else record.reason

    def tracked(self) -> int:
        return len(self._peers)

    def _prune(self, now: float) -> None:
        """Forget peers back at neutral and not banned; at MAX_TRACKED, the mildest.  Runs
        when the table has doubled since the last pass, so its cost per new peer is O(1)."""
        if len(self._peers) < min(self._prune_at, MAX_TRACKED):
            return
        for peer_id, record in list(self._peers.items()):
            if record.banned_until <= now and abs(self._decayed(record, now)) < _FORGET_BELOW:
                del self._peers[peer_id]
        if len(self._peers) >= MAX_TRACKED:
            mildest = sorted(self._peers, key=lambda p: (self._peers[p].banned_until > now,
                                                         abs(self._decayed(self._peers[p], now))))
            for peer_id in mildest[: len(self._peers) - MAX_TRACKED // 2]:
                del self._peers[peer_id]
        self._prune_at = max(1024, 2 * len(self._peers))


__all__ = ["BAN_SCORE", "BAN_SECONDS", "FLOOD", "HALF_LIFE", "INVALID", "Scoreboard", "Verdict"]
