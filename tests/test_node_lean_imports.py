"""The daemon imports only the libp2p stacks it uses (issue 18: idle RSS, start-up).

``p2pcommons/node/lean_imports.py`` leaves QUIC, WebSocket, AutoTLS/ACME, UPnP and (without
``--mdns``) mDNS out of the process, with dnspython's DNS-over-QUIC/HTTPS clients.  These
tests read the module set of a real daemon (a separate process, started with
``node start --foreground`` and stopped with ``p2pc node stop``), and pin the stand-ins'
behaviour: a stand-in refuses to be used, and an upgrade that imports another name from one
fails at import time.  The network tests (two-host sync, gossip, relay) run every daemon
through the same finder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: top-level packages of the stacks the node does not use (1,182 modules imported with them)
LEFT_OUT = ("aioquic", "httpx", "requests", "zeroconf", "miniupnpc", "trio_websocket")
#: libp2p modules that are stand-ins or never imported in a lean daemon
LEFT_OUT_LIBP2P = ("libp2p.transport.quic.connection", "libp2p.transport.quic.listener",
                   "libp2p.transport.websocket.connection", "libp2p.discovery.mdns.broadcaster",
                   "libp2p.security.tls.autotls.acme_client", "dns.quic._asyncio")

DAEMON = """
import atexit, json, sys
target = sys.argv[1]
def dump():
    with open(target, "w") as out:
        json.dump(sorted(sys.modules), out)
atexit.register(dump)
sys.argv = ["p2pc", "node", "start", "--foreground", "--listen", "/ip4/127.0.0.1/tcp/0", "--home", sys.argv[2]]
from p2pcommons.cli.app import main
main()
"""


def p2pc(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from p2pcommons.cli.app import main; main()", *args,
                           "--home", str(home)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.network
def test_a_running_daemon_imports_none_of_the_unused_stacks(tmp_path: Path) -> None:
    home, dump = tmp_path / "h", tmp_path / "modules.json"
    assert p2pc(home, "init").returncode == 0
    config = home / "config.toml"  # no dashboard: its web stack is not what this test is about
    config.write_text((config.read_text() if config.exists() else "") + "\n[ui]\nenabled = false\n")
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, str(dump), str(home)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        status: dict[str, object] = {}
        while time.monotonic() < deadline and daemon.poll() is None:
            done = p2pc(home, "node", "status", "--json")
            if done.returncode == 0:
                status = json.loads(done.stdout)
                break
            time.sleep(0.2)  # polling the daemon's start-up with a deadline, not waiting out a race
        assert status, "the daemon did not answer within 60 s"
        assert p2pc(home, "node", "stop").returncode == 0
        _out, err = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
    assert dump.exists(), err
    modules = set(json.loads(dump.read_text()))
    assert "libp2p.host.basic_host" in modules and "libp2p.pubsub.gossipsub" in modules, "a real host ran"
    assert not [m for m in modules if m.split(".")[0] in LEFT_OUT], err
    assert not modules & set(LEFT_OUT_LIBP2P)


def test_stand_ins_refuse_use_and_unknown_names() -> None:
    """In a fresh process: stand-ins hold only the names libp2p's core imports; using one
    raises StackNotLoaded; a host built as the daemon builds it still works on TCP."""
    probe = """
import sys
from p2pcommons.node.lean_imports import StackNotLoaded, install
assert install(mdns=False)
import libp2p
from libp2p.transport.quic.utils import is_quic_multiaddr
from libp2p.transport.quic.transport import QUICTransport
from multiaddr import Multiaddr
assert is_quic_multiaddr(Multiaddr("/ip4/127.0.0.1/udp/1/quic-v1")) is False
try:
    QUICTransport()
except StackNotLoaded:
    pass
else:
    raise AssertionError("a stand-in was built")
try:
    from libp2p.transport.quic.transport import QUICListener
except ImportError:
    pass
else:
    raise AssertionError("a stand-in had a name it does not declare")
try:
    install(mdns=True)
except StackNotLoaded:
    pass
else:
    raise AssertionError("mDNS came back into a process that left it out")
host = libp2p.new_host(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")])
assert host.get_id() is not None
print(sorted(m for m in sys.modules if m.split(".")[0] in ("aioquic", "httpx", "requests", "zeroconf")))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_process_that_imported_libp2p_keeps_it() -> None:
    probe = """
import libp2p
from p2pcommons.node.lean_imports import install, installed
assert install(mdns=False) is False and installed() is None
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.network
def test_the_background_daemon_maps_no_cli_validation_or_quic_libraries(tmp_path: Path) -> None:
    """``p2pc node start`` runs the daemon through p2pcommons/node/launch.py: its memory maps
    hold neither pydantic's compiled core (typer validates options with it: 18 MB with typer)
    nor aioquic's extensions (checked on the real background process, whose modules cannot be
    listed from outside: every compiled extension it loaded is a mapped file)."""
    home = tmp_path / "h"
    assert p2pc(home, "init").returncode == 0
    config = home / "config.toml"
    config.write_text((config.read_text() if config.exists() else "") + "\n[ui]\nenabled = false\n")
    started = p2pc(home, "node", "start", "--listen", "/ip4/127.0.0.1/tcp/0", "--json")
    assert started.returncode == 0, started.stdout + started.stderr
    pid = json.loads(started.stdout)["data"]["pid"]
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        maps = Path(f"/proc/{pid}/maps").read_text()
    finally:
        assert p2pc(home, "node", "stop").returncode == 0
    assert "nacl" in maps or "sodium" in maps, "the maps list the extensions the daemon loaded"
    assert "pydantic_core" not in maps and "aioquic" not in maps
    assert b"p2pcommons.node.launch" in cmdline


def test_the_launcher_refuses_with_one_sentence_and_its_exit_code(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "p2pcommons.node.launch", "--home", str(tmp_path / "nobody")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("p2pc: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
