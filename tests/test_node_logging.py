"""Issue 19, deliverable 4: ``-v`` gives one readable line per sync session and per peer
connect/disconnect; ``-vv`` the project's own debug detail, bounded (libp2p's DEBUG only
with ``-vvv``).  Real daemons on 127.0.0.1, their logs read from their log files."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.test_node_integration import NodeProc, converged, copy_genesis, wait_for
from tests.test_node_integration import nodes as nodes  # the fixture

pytestmark = pytest.mark.network

SESSION = re.compile(r"p2pcommons\.events: sync (with|from) peer …\S{8}: commons …\S{8}, sent \d+, "
                     r"received \d+ \(\d+ new\), \d+\.\d\d s, (complete|incomplete|\S+)")


def _pair(nodes: Callable[[str], NodeProc], verbosity: tuple[str, ...]) -> tuple[NodeProc, NodeProc, str]:
    """Two daemons; NodeProc.start passes -v itself, ``verbosity`` adds to it."""
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "Logs")["commons"]
    copy_genesis(a, commons, b)
    a.p2pc("contribute", "--title", "first", "--commons", commons)
    a.start(extra=verbosity)
    b.start(a.addr, extra=verbosity)
    wait_for(converged([a, b], commons), 30, "a and b to converge")
    return a, b, commons


def test_v_logs_one_line_per_session_and_peer_event(nodes: Callable[[str], NodeProc]) -> None:
    a, b, _ = _pair(nodes, ())
    wait_for(lambda: SESSION.search(b.log.read_text()), 30, "a session line in b's log")
    wait_for(lambda: "p2pcommons.events: sync from peer" in a.log.read_text(), 30, "a's inbound session line")
    text = b.log.read_text()
    assert re.search(r"p2pcommons\.events: peer …\S{8} connected", text), text[-2000:]
    both = text + a.log.read_text()
    moved = [m for m in SESSION.finditer(both) if "received 0 " not in m.group(0) or "sent 0," not in m.group(0)]
    assert moved, both[-3000:]  # a's entries went to b in a logged session
    assert "DEBUG" not in text and "libp2p" not in text
    # one line per event: b dialled a (its bootstrap peer), and that connection was logged
    # twice ('peer … connected' and 'connected to 12D3…'); the web server's own start line
    # ('Running on … (CTRL + C to quit)', wrong for a daemon) repeated the dashboard's
    assert len(re.findall(r"connected to |peer …\S{8} connected", text)) == 1, text[-2000:]
    assert "CTRL + C" not in text and text.count("dashboard at http://127.0.0.1:") == 1, text[-2000:]
    b.stop()
    wait_for(lambda: re.search(r"p2pcommons\.events: peer …\S{8} disconnected", a.log.read_text()), 30,
             "a's disconnect line")


def test_vv_is_the_projects_detail_and_bounded(nodes: Callable[[str], NodeProc]) -> None:
    a, b, _ = _pair(nodes, ("-v",))  # -v -v: -vv
    wait_for(lambda: SESSION.search(b.log.read_text()), 30, "a session line in b's log")
    a.stop()
    b.stop()
    for node in (a, b):
        lines = node.log.read_text().splitlines()
        assert len(lines) < 200, (node.name, len(lines), lines[:50])
        assert not [line for line in lines if " libp2p" in line], lines[:50]
        assert any("p2pcommons.events: " in line for line in lines)  # -vv includes -v
