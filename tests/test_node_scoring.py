"""Peer scoring (issue 11, item 9): only proven misbehaviour costs points, scores recover
with time, and the network's faults (a dropped link, an end of stream inside a frame, a
stall) are never violations.  The scoreboard runs on trio's clock, driven here by
``trio.testing.MockClock`` (no sleeping)."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons.node import scoring
from p2pcommons.node.scoring import BAN_SCORE, BAN_SECONDS, HALF_LIFE, INVALID, Scoreboard
from p2pcommons.protocols import sync


def run_mocked(fn: object) -> None:
    clock = trio.testing.MockClock()
    trio.run(fn, clock, clock=clock)  # type: ignore[arg-type]


def test_penalties_decay_toward_neutral_with_trio_time() -> None:
    async def main(clock: trio.testing.MockClock) -> None:
        board = Scoreboard(trio.current_time)
        assert board.score("p") == 0
        board.penalize("p", INVALID, "bad frame")
        assert board.score("p") == INVALID and not board.is_banned("p")
        clock.jump(HALF_LIFE)
        assert abs(board.score("p") - INVALID / 2) < 1e-9
        clock.jump(10 * HALF_LIFE)
        assert -0.1 < board.score("p") <= 0  # forgiven, in the end

    run_mocked(main)


def test_two_faults_close_together_ban_and_the_ban_ends_on_time() -> None:
    async def main(clock: trio.testing.MockClock) -> None:
        board = Scoreboard(trio.current_time)
        assert not board.penalize("p", INVALID).banned
        clock.jump(1)
        verdict = board.penalize("p", INVALID, "garbage")
        assert verdict.banned and verdict.score <= BAN_SCORE and board.is_banned("p")
        until = board.banned_until("p")
        assert until is not None and abs(until - (trio.current_time() + BAN_SECONDS)) < 1e-9
        clock.jump(BAN_SECONDS - 1)
        assert board.is_banned("p")
        clock.jump(1.001)
        assert not board.is_banned("p") and board.banned_until("p") is None
        assert board.score("p") < 0  # still recovering: a repeat offender is banned again sooner
        assert board.penalize("p", INVALID).banned

    run_mocked(main)


def test_faults_spread_out_in_time_never_ban() -> None:
    """The old counter never forgot: three faults an hour apart banned a peer for good."""

    async def main(clock: trio.testing.MockClock) -> None:
        board = Scoreboard(trio.current_time)
        for _ in range(20):
            assert not board.penalize("p", INVALID).banned
            clock.jump(3600)
        assert not board.is_banned("p")

    run_mocked(main)


def test_unban_forgets_and_restore_keeps_a_ban_across_a_restart() -> None:
    async def main(clock: trio.testing.MockClock) -> None:
        board = Scoreboard(trio.current_time)
        board.restore_ban("p", -120, 300, "garbage")
        assert board.is_banned("p") and round(board.score("p")) == -120 and board.reason("p") == "garbage"
        clock.jump(299)
        assert board.is_banned("p")
        assert board.forgive("p") and not board.is_banned("p") and board.score("p") == 0
        assert not board.forgive("p")

    run_mocked(main)


def test_forgiven_peers_are_forgotten_so_memory_stays_bounded() -> None:
    async def main(clock: trio.testing.MockClock) -> None:
        board = Scoreboard(trio.current_time)
        for i in range(5000):
            board.penalize(f"peer{i}", scoring.FLOOD)
            if i % 1000 == 999:
                clock.jump(20 * HALF_LIFE)
        assert board.tracked() <= 2048

    run_mocked(main)


@settings(max_examples=settings().max_examples)
@given(st.lists(st.tuples(st.sampled_from([INVALID, scoring.FLOOD, 0]), st.floats(0, 3 * HALF_LIFE)), max_size=40))
def test_score_is_never_positive_and_a_ban_needs_the_threshold(events: list[tuple[int, float]]) -> None:
    """Whatever the sequence of penalties and pauses: the score stays in [sum of penalties,
    0], and a ban starts only when the score is at or below the threshold."""

    async def main(clock: trio.testing.MockClock) -> None:
        board = Scoreboard(trio.current_time)
        total = 0
        for points, pause in events:
            clock.jump(pause)
            before_banned = board.is_banned("p")
            if points:
                verdict = board.penalize("p", points)
                total += points
                assert not verdict.banned or (verdict.score <= BAN_SCORE and not before_banned)
            assert total - 1e-9 <= board.score("p") <= 0

    run_mocked(main)


def test_end_of_stream_inside_a_frame_is_not_a_violation() -> None:
    """The sync spec listed it as a scored violation; a link dropped mid-frame looks the same."""
    session = sync.SyncSession(initiator=False)
    hello = sync.frame(sync.HELLO, dagcbor.encode({"v": sync.VERSION, "window": sync.DEFAULT_WINDOW}))
    session.receive_data(hello[:-3])
    assert session.next_event() is sync.NEED_DATA
    session.receive_data(b"")
    event = session.next_event()
    assert isinstance(event, sync.ConnectionClosed) and event.early
    assert session.next_event() is sync.NEED_DATA


def test_end_of_stream_between_frames_before_the_end_is_early_too() -> None:
    session = sync.SyncSession(initiator=False)
    session.receive_data(sync.frame(sync.HELLO, dagcbor.encode({"v": sync.VERSION, "window": sync.DEFAULT_WINDOW})))
    assert isinstance(session.next_event(), sync.Hello)
    session.receive_data(b"")
    event = session.next_event()
    assert isinstance(event, sync.ConnectionClosed) and event.early
