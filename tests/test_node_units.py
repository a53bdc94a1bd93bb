"""Node pieces that need no network: invites, the peer book, the lock, notify_daemon."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.errors import DaemonRunning, InvalidInvite, InviteExpired, UsageError
from p2pcommons.home import Home
from p2pcommons.node import peers
from p2pcommons.node.invite import parse_duration
from p2pcommons.node.lock import NodeLock, running_pid
from p2pcommons.node.notify import notify_daemon
from p2pcommons.protocols.invite import Invite, decode_invite, encode_invite, make_token

COMMONS = CID.of(b"a commons")
ADDR = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWLdUfXhpRy8u2QQhCnCsz4W82w2H8xnDD3YiCXqjY2Wy5"


def test_invite_round_trip_with_token() -> None:
    signer = Signer(b"\x01" * 32)
    token = make_token(signer, COMMONS, uses=2, expires=0)
    code = encode_invite(Invite(COMMONS, (ADDR,), 0, 2, token))
    assert code.startswith("p2pc1")
    invite = decode_invite(code)
    assert invite.commons == COMMONS and invite.addrs == (ADDR,) and invite.uses == 2
    assert invite.nonce == token["nonce"]
    assert decode_invite("  " + code[:40] + "\n" + code[40:]) == invite  # whitespace from pasting


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda c: "p2pc2" + c[5:], "not an invite"),
    (lambda c: c[:-3], "damaged or incomplete"),
    (lambda c: c[:-4], "damaged or incomplete"),
    (lambda c: c[:-1], "damaged or incomplete"),
    (lambda c: c[:20] + ("a" if c[20] != "a" else "b") + c[21:], "damaged or incomplete"),
    (lambda c: c + "!", "characters"),
    (lambda c: "p2pc1", "damaged or incomplete"),
])
def test_malformed_invites_have_clear_errors(mangle: object, message: str) -> None:
    code = encode_invite(Invite(COMMONS, (ADDR,)))
    with pytest.raises(InvalidInvite, match=message):
        decode_invite(mangle(code))  # type: ignore[operator]


def test_forged_token_is_refused() -> None:
    token = make_token(Signer(b"\x01" * 32), COMMONS, uses=1, expires=0)
    token["uses"] = 100  # widen the token after signing
    code = encode_invite(Invite(COMMONS, (ADDR,), 0, 100, token))
    with pytest.raises(InvalidInvite, match="signature does not verify"):
        decode_invite(code)


def test_token_for_another_commons_is_refused() -> None:
    token = make_token(Signer(b"\x01" * 32), CID.of(b"other"), uses=1, expires=0)
    with pytest.raises(InvalidInvite, match="another commons"):
        decode_invite(encode_invite(Invite(COMMONS, (ADDR,), 0, 1, token)))


def test_expired_invite() -> None:
    invite = decode_invite(encode_invite(Invite(COMMONS, (ADDR,), expires=int(time.time() * 1000) - 1000)))
    with pytest.raises(InviteExpired, match="expired"):
        invite.check_expiry()
    decode_invite(encode_invite(Invite(COMMONS, (ADDR,), expires=0))).check_expiry()


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2h") == 7200 and parse_duration("7d") == 604800
    with pytest.raises(InvalidInvite):
        parse_duration("soon")
    with pytest.raises(InvalidInvite):
        parse_duration("-1d")


def test_invite_payload_is_strict() -> None:
    # a checksum-valid code whose payload is not our format
    import hashlib

    payload = b"\xa1\x61\x76\x02"  # {"v": 2}
    data = payload + hashlib.sha256(payload).digest()[:4]
    code = "p2pc1" + base64.b32encode(data).decode().lower().rstrip("=")
    with pytest.raises(InvalidInvite, match="wrong fields"):
        decode_invite(code)


def test_peer_book(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert peers.load(home) == []
    assert peers.add(home, ADDR) is True
    assert peers.add(home, ADDR) is False
    assert peers.load(home) == [ADDR]
    with pytest.raises(UsageError, match="not a peer address"):
        peers.add(home, "/ip4/127.0.0.1/tcp/4001")
    assert peers.remove(home, ADDR.rsplit("/", 1)[1]) == [ADDR]
    assert peers.load(home) == []
    other = ADDR.replace("4001", "4002")
    for addr in (ADDR, other):
        peers.add(home, addr)
    assert peers.remove(home, other) == [other]  # one address of several
    assert peers.load(home) == [ADDR]
    assert peers.remove(home, "/ip4/127.0.0.1/tcp/4001") == []  # not a prefix match
    assert peers.matches(ADDR, ADDR.rsplit("/", 1)[1]) and not peers.matches(ADDR, "12D3KooW")


def test_bans_persist_atomically_privately_and_expire(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert peers.load_bans(home) == {}
    now = 1_000_000.0
    bans = {
        "12D3KooWlive": peers.Ban("12D3KooWlive", now + 600, -120, "invalid entries"),
        "12D3KooWgone": peers.Ban("12D3KooWgone", now - 1, -100, "gossip flood"),
    }
    peers.save_bans(home, bans, now=now)
    path = tmp_path / peers.BANS_FILE
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [peers.BANS_FILE]  # no temporary left
    assert peers.load_bans(home, now=now) == {"12D3KooWlive": bans["12D3KooWlive"]}  # expired not saved
    assert peers.load_bans(home, now=now + 601) == {}  # and expired on load
    path.write_text("{not json")
    assert peers.load_bans(home) == {}  # a damaged file forgets bans, never stops the node
    path.write_text('{"bans": {"x": {"until": "soon", "score": -1}, "y": {"until": 1e18, "score": true}}}')
    assert peers.load_bans(home) == {}


def test_daemon_restores_bans_at_start(tmp_path: Path) -> None:
    """Node construction reads bans.json: a banned peer is refused before it says anything."""
    import trio

    from p2pcommons.identity import create_identity
    from p2pcommons.node.daemon import Node, NodeConfig

    home = Home(tmp_path)
    identity = create_identity(home, None)
    now = time.time()
    peers.save_bans(home, {"12D3KooWbad": peers.Ban("12D3KooWbad", now + 300, -120, "garbage"),
                           "12D3KooWold": peers.Ban("12D3KooWold", now - 0.5, -100, "flood")})

    async def check() -> None:
        node = Node(NodeConfig(home=home), identity)
        try:
            assert node.is_banned("12D3KooWbad") and round(node.scores.score("12D3KooWbad")) == -120
            assert not node.is_banned("12D3KooWold") and "12D3KooWold" not in node.peers  # expired
            until = node.scores.banned_until("12D3KooWbad")
            assert until is not None
            remaining = until - trio.current_time()
            assert 290 < remaining <= 300
        finally:
            node.store.close()

    trio.run(check)


def test_lock_names_the_holder_and_dies_with_it(tmp_path: Path) -> None:
    home = Home(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from p2pcommons.home import Home;"
         "from p2pcommons.node.lock import NodeLock; lock = NodeLock(Home(Path(sys.argv[1]))); lock.acquire();"
         "print('locked', flush=True); time.sleep(60)", str(tmp_path)],  # deliberate: holds the lock till killed
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        assert running_pid(home) == child.pid
        with pytest.raises(DaemonRunning, match=f"PID {child.pid}"):
            NodeLock(home).acquire()
    finally:
        child.kill()  # like kill -9: the kernel releases the lock
        child.wait()
    assert running_pid(home) is None
    with NodeLock(home):
        assert running_pid(home) == os.getpid()


def test_notify_daemon_returns_at_once_without_a_daemon(tmp_path: Path) -> None:
    home = Home(tmp_path)
    start = time.perf_counter()
    assert notify_daemon(home) is False
    home.control_socket.parent.mkdir(parents=True, exist_ok=True)
    home.control_socket.write_text("")  # a stale file, not a socket
    assert notify_daemon(home) is False
    assert notify_daemon(tmp_path / "missing") is False
    assert time.perf_counter() - start < 0.5


def test_notify_and_cli_modules_do_not_import_libp2p() -> None:
    code = ("import sys, p2pcommons.node.notify as n; n.notify_daemon('/nonexistent');"
            "import p2pcommons.cli.network;"
            "assert 'libp2p' not in sys.modules and 'trio' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_json_logs_are_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from p2pcommons.node.logsetup import setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(0, True)
        logging.getLogger("p2pcommons.node").info("peer %s connected", "x")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = json.loads(line)
        assert record["message"] == "peer x connected" and record["level"] == "info"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_the_nodes_own_peer_lines_give_way_to_the_event_lines() -> None:
    """By default the node logs a kept peer connected or lost (INFO); with -v the events
    logger has that line already, so the node's own goes to DEBUG: one line per event."""
    import logging

    from p2pcommons.node.eventlog import EVENTS, peer_line_level

    before = EVENTS.level
    try:
        EVENTS.setLevel(logging.WARNING)  # the default (cli/network.py setup_logging)
        assert peer_line_level() == logging.INFO
        EVENTS.setLevel(logging.INFO)  # -v
        assert peer_line_level() == logging.DEBUG
    finally:
        EVENTS.setLevel(before)
