"""Addresses that work (issue 17, item 1): a kept port, wildcard listens announced as
real addresses, invites with dialable addresses only, a busy port failing the start.

The integration tests run real daemons as separate processes; they bind 127.0.0.1 (and,
for the wildcard test, 0.0.0.0) and dial 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from p2pcommons.errors import NetworkError
from p2pcommons.home import Home
from p2pcommons.node import addressing
from p2pcommons.protocols.invite import decode_invite
from tests.test_node_integration import P2PC, NodeProc, converged, wait_for
from tests.test_node_integration import nodes as nodes  # the fixture

# --- sans-I/O rules ----------------------------------------------------------------------------


def test_dialable_drops_wildcards_and_keeps_loopback_only_as_a_last_resort() -> None:
    addrs = ["/ip4/0.0.0.0/tcp/4001/p2p/X", "/ip4/127.0.0.1/tcp/4001/p2p/X", "/ip4/192.168.1.5/tcp/4001/p2p/X",
             "/ip4/93.184.216.34/tcp/4001/p2p/X", "/ip6/::/tcp/4001/p2p/X", "/ip6/fe80::1/tcp/4001/p2p/X"]
    assert addressing.dialable(addrs) == ["/ip4/93.184.216.34/tcp/4001/p2p/X", "/ip4/192.168.1.5/tcp/4001/p2p/X"]
    loopback = "/ip4/127.0.0.1/tcp/1/p2p/X"
    assert addressing.dialable(["/ip4/0.0.0.0/tcp/1/p2p/X", loopback]) == [loopback]
    assert addressing.dialable(["/ip4/0.0.0.0/tcp/1/p2p/X"]) == []


def test_wildcards_expand_to_interface_addresses_of_the_same_family() -> None:
    out = addressing.expand_wildcards(["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001", "/ip4/198.51.100.1/tcp/9"],
                                 ["10.0.0.2", "127.0.0.1", "2001:db8::2"])
    assert out == ["/ip4/10.0.0.2/tcp/4001", "/ip4/127.0.0.1/tcp/4001", "/ip6/2001:db8::2/tcp/4001",
                   "/ip4/198.51.100.1/tcp/9"]


def test_the_port_is_chosen_once_and_kept_in_config(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.path.mkdir()
    home.config_file.write_text("# mine\n[network]\nmdns = false\n", encoding="utf-8")
    first = addressing.listen_addresses(home, [])
    port = tomllib.loads(home.config_file.read_text())["network"]["port"]
    assert first == [f"/ip4/0.0.0.0/tcp/{port}"]
    assert addressing.listen_addresses(home, []) == first            # kept
    assert home.config_file.read_text().startswith("# mine\n")  # the file was not rewritten
    assert addressing.listen_addresses(home, ["/ip4/127.0.0.1/tcp/0"]) == ["/ip4/127.0.0.1/tcp/0"]  # flags win


def test_a_busy_port_is_one_sentence_and_exit_code_6() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        with pytest.raises(NetworkError, match=f"Port {port} is already in use") as info:
            addressing.probe_listen([f"/ip4/127.0.0.1/tcp/{port}"])
        assert info.value.exit_code == 6
    finally:
        holder.close()


# --- real daemons ------------------------------------------------------------------------------


def test_node_start_on_a_busy_port_exits_6_with_one_sentence(nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    a.start()
    port = int(a.addr.split("/tcp/")[1].split("/")[0])
    for extra in ([], ["--foreground"]):
        result = subprocess.run([*P2PC, "node", "start", *extra, "--home", str(b.home),
                                 "--listen", f"/ip4/127.0.0.1/tcp/{port}"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 6, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [f"p2pc: Port {port} is already in use (another program or another node holds it); "
                         "choose another with --listen or [network] port in config.toml."], result.stderr
    assert a.status()["addrs"]  # the node that held the port is untouched


def test_wildcard_listen_announces_interface_addresses_and_the_invite_no_wildcard(
        nodes: Callable[[str], NodeProc]) -> None:
    a = nodes("a")
    a.p2pc_json("commons", "create", "garden", "--membership", "open")
    a.start(listen=("/ip4/0.0.0.0/tcp/0",))
    status = a.status()
    assert status["addrs"] and not any("/0.0.0.0/" in x for x in status["addrs"]), status["addrs"]
    code = a.p2pc_json("invite", "create")["code"]
    addrs = decode_invite(code).addrs
    assert addrs and not any("/0.0.0.0/" in x for x in addrs), addrs
    # loopback only when nothing else exists
    if any("/127.0.0.1/" not in x for x in addrs):
        assert not any("/127.0.0.1/" in x for x in addrs), addrs


def test_restart_keeps_the_port_chosen_at_the_first_start(nodes: Callable[[str], NodeProc]) -> None:
    a = nodes("a")
    Home(a.home).config_file.write_text('[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n', encoding="utf-8")
    a.start(listen=())
    first = a.addr
    port = tomllib.loads(Home(a.home).config_file.read_text())["network"]["port"]
    assert f"/tcp/{port}/" in first
    a.stop()
    a.start(listen=())
    assert a.addr == first
    wait_for(lambda: a.status()["addrs"] == [first], 10, "the same address after a restart")


# --- members find each other (item 2) ---------------------------------------------------------


def pid(node: NodeProc) -> str:
    return str(node.status()["peer_id"])


def _port(addr: str) -> int:
    return int(addr.split("/tcp/")[1].split("/")[0])


@pytest.mark.timeout(240)
def test_members_find_each_other_with_the_inviter_stopped_and_after_restarts_on_new_ports(
        nodes: Callable[[str], NodeProc]) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    commons = a.p2pc_json("commons", "create", "garden", "--membership", "open")["commons"]
    a.start(sync_interval=1)
    for newcomer in (b, c):
        newcomer.p2pc_json("join", a.p2pc_json("invite", "create", "--uses", "1")["code"])
    b.start(sync_interval=1)  # no --bootstrap: the invite put a's address in the peer book
    c.start(sync_interval=1)
    wait_for(converged([a, b, c], commons), 40, "the joins and admissions to spread")
    wait_for(lambda: pid(b) in c.status()["known"] and pid(c) in b.status()["known"], 40,
             "b and c to learn each other's address records")
    a.stop()  # the inviter goes away: b and c only know each other through the records
    wait_for(lambda: pid(c) in b.status()["connected"], 40, "b and c to connect without a")
    c.p2pc("contribute", "--title", "without a", "--commons", commons)
    wait_for(converged([b, c], commons), 30, "c's write to reach b directly")

    # c restarts on a new port; b learns the new address from c's new record
    old = c.addr
    c.stop()
    c.start(sync_interval=1)
    assert _port(c.addr) != _port(old)
    wait_for(lambda: pid(c) in b.status()["connected"], 40, "c to reconnect to b from its kept book")
    wait_for(lambda: b.status()["known"].get(pid(c), {}).get("addrs", [None])[0] == c.addr.rsplit("/p2p/", 1)[0],
             40, "b to hold c's new address record")
    # now b restarts on a new port: it dials c at the address from c's record
    b.stop()
    b.start(sync_interval=1)
    wait_for(lambda: pid(c) in b.status()["connected"], 40, "b to find c at its new address")
    b.p2pc("contribute", "--title", "after both moved", "--commons", commons)
    wait_for(converged([b, c], commons), 30, "b's write to reach c")


# --- honest status (item 4) ------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_status_names_peers_says_direct_and_sync_status_answers_from_live_figures(
        nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "garden", "--membership", "open")["commons"]
    a.start(sync_interval=60)  # long interval: sync status must refresh the figures itself
    code = a.p2pc_json("invite", "create")["code"]
    joined = b.p2pc("join", code, "--name", "bea", "--json")
    assert '"waiting_for": "inviter"' in joined.stderr  # join said what it waited for
    b.start(sync_interval=60)
    wait_for(converged([a, b], commons), 40, "b's join to be admitted")
    b_id = pid(b)

    def b_named() -> dict[str, object] | None:
        peer = next((p for p in a.p2pc_json("node", "status")["peers"] if p["peer_id"] == b_id), None)
        return peer if peer is not None and peer["name"] == "bea" else None

    peer = wait_for(b_named, 30, "a's status to name b by its member name")
    assert peer["via"] == "direct" and peer["connected"] and peer["relay"] is None
    assert peer["last_seen_ago"] is not None

    status = a.p2pc_json("sync", "status", "--max-age", "0")
    assert status["in_sync"] is True, status
    figure = status["commons"][commons]["peers"][b_id]
    assert figure["they_lack"] == 0 and figure["we_lack"] == 0 and figure["fresh"], figure
    text = a.p2pc("sync", "status").stdout
    assert "in sync" in text and "bea" in text

    b.stop()  # a keeps b in its table: not connected, with the time it was last seen
    wait_for(lambda: not any(p["connected"] for p in a.status()["peers"] if p["peer_id"] == b_id), 20,
             "a to notice b left")
    gone = next(p for p in a.status()["peers"] if p["peer_id"] == b_id)
    assert gone["last_seen"] is not None and gone["via"] is None
    result = a.p2pc("sync", "status", check=False)
    assert result.returncode == 6 and "none is connected" in result.stderr


def test_a_node_left_with_no_address_stops_with_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """py-libp2p can swallow a listen failure and run with no address: the node checks what
    it ended up with and stops with a NetworkError (exit 6), not an exception group."""
    import trio

    from p2pcommons.identity import create_identity
    from p2pcommons.node import daemon

    home = Home(tmp_path / "h")
    identity = create_identity(home)
    monkeypatch.setattr(daemon.Node, "announced_addrs", lambda self: [])
    config = daemon.NodeConfig(home=home, listen=["/ip4/127.0.0.1/tcp/0"], ingest_process=False)
    with pytest.raises(NetworkError, match="could not listen on any address") as info:
        trio.run(daemon.serve, config, identity)
    assert info.value.exit_code == 6


@pytest.mark.timeout(180)
def test_members_who_never_heard_of_each_other_meet_through_the_dht(nodes: Callable[[str], NodeProc]) -> None:
    """b and c hold the same commons but share no entry author and no peer: only a DHT
    node they both bootstrap from (holding no commons) can introduce them."""
    from tests.test_node_integration import copy_genesis

    origin, hub, b, c = nodes("origin"), nodes("hub"), nodes("b"), nodes("c")
    commons = origin.p2pc_json("commons", "create", "garden")["commons"]
    copy_genesis(origin, commons, b, c)
    hub.start(extra=("--dht",))
    b.start(hub.addr, extra=("--dht",))
    c.start(hub.addr, extra=("--dht",))
    b_id, c_id = pid(b), pid(c)

    def found() -> bool:
        sb, sc = b.status(), c.status()
        return (c_id in sb["connected"] and c_id in sb["dht"]["providers"].get(commons, [])
                and b_id in sc["dht"]["providers"].get(commons, []))

    wait_for(found, 90, "b and c to find each other as providers of the commons in the DHT")
    assert c_id not in b.status()["known"]  # not through an address record
