"""The daemon imports only the libp2p stacks it uses (issue 18: idle RSS, start-up).

``p2pcommons/node/lean_imports.py`` leaves QUIC, WebSocket, AutoTLS/ACME, UPnP, Prometheus
and (without ``--mdns`` / ``--dht``) mDNS and Kademlia out of the process, defers dnspython
until a /dns address is resolved and, through ``p2pcommons/node/deferred.py``, RSA and
secp256k1 keys, SECIO and PSK connections until first use; ``libp2p/__init__`` itself is not
run (the host is built by ``p2pcommons/node/host.py``).  These tests read the module set of a
real daemon (a separate process, started as ``p2pc node start`` starts it in the background,
stopped with ``p2pc node stop``), and pin what each mechanism relies on in libp2p 0.8.1, so that an
upgrade breaks a test here rather than a node: stand-ins refuse use and unknown names, the
deferred and lazy names exist in the real modules and behave as them, and ``build_host``
builds what ``libp2p.new_host`` builds.  The network tests (two-host sync, gossip, relay)
run every daemon through the same finder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.polling import poll_for

#: top-level packages of the stacks the node does not use (1,182 modules imported with them),
#: or uses only on demand (dnspython: a /dns address; pycryptodome, coincurve, fastecdsa: a
#: peer with an RSA or secp256k1 key)
LEFT_OUT = ("aioquic", "httpx", "requests", "zeroconf", "miniupnpc", "trio_websocket", "dns", "Crypto", "coincurve",
            "fastecdsa", "mmh3", "plyvel", "rocksdb",
            # used on demand: psutil (the resource manager's memory limits, wildcard
            # addresses), statistics (gossipsub's scoring); email came with cryptography.x509;
            # argparse was the launcher's parser
            "psutil", "statistics", "email", "argparse")
#: modules that are stand-ins, deferred or never imported in a lean daemon
LEFT_OUT_LIBP2P = ("libp2p.transport.quic.connection", "libp2p.transport.quic.listener",
                   "libp2p.transport.websocket.connection", "libp2p.discovery.mdns.broadcaster",
                   "libp2p.security.tls.autotls.acme_client", "dns.quic._asyncio",
                   "libp2p.bitswap", "libp2p.kad_dht.routing_table", "libp2p.records.ipns", "libp2p.peer.persistent",
                   "libp2p.crypto.rsa", "libp2p.crypto.secp256k1", "libp2p.security.secio.transport",
                   "libp2p.identity_utils", "prometheus_client.exposition", "importlib.metadata",
                   # the TLS transport and the X.509 package (AutoTLS), SECIO's and the
                   # insecure transport's packages: libp2p.security is loaded hollow
                   "libp2p.security.tls.transport", "libp2p.security.tls.certificate", "libp2p.security.secio",
                   "libp2p.security.insecure", "cryptography.x509", "cryptography.x509.base",
                   "cryptography.x509.verification", "decimal")

DAEMON = """
import atexit, json, sys
target = sys.argv[1]
def dump():  # the modules really loaded: not the stand-ins and deferred modules in their place
    from p2pcommons.node.deferred import DeferredModule
    from p2pcommons.node.lean_imports import _StandIn
    names = sorted(n for n, m in sys.modules.items() if not isinstance(m, (DeferredModule, _StandIn)))
    if "new_host" in vars(sys.modules.get("libp2p", sys)):
        names.append("<libp2p/__init__ ran>")
    with open(target, "w") as out:
        json.dump(names, out)
atexit.register(dump)
# what ``p2pc node start`` runs in the background (p2pcommons/node/launch.py)
from p2pcommons.node.launch import main
sys.exit(main(["--listen", "/ip4/127.0.0.1/tcp/0", "--home", sys.argv[2]]))
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
        def answered() -> dict[str, object] | None:
            assert daemon.poll() is None, "the daemon exited before it answered"
            done = p2pc(home, "node", "status", "--json")
            return json.loads(done.stdout) if done.returncode == 0 else None

        status = poll_for(answered, 60, interval=0.2)  # the daemon's start-up
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
    assert not sorted(modules & set(LEFT_OUT_LIBP2P))
    assert "<libp2p/__init__ ran>" not in modules and "libp2p.utils.version" not in modules


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


def _run(probe: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_dns_is_imported_at_the_first_resolution_and_resolves_as_multiaddrs_own() -> None:
    """A lean process builds resolvers without dnspython; the first ``resolve`` imports it
    (without DNS over QUIC/HTTPS) and answers as multiaddr's own resolver does."""
    probe = """
import sys, trio
from p2pcommons.node.lean_imports import LazyDNSResolver, install, real_dns_resolver_class
assert install(mdns=False)
from multiaddr import Multiaddr
from multiaddr.resolvers import DNSResolver, Resolver
from libp2p.network.swarm import Swarm
import libp2p.transport.tcp.tcp
assert DNSResolver is LazyDNSResolver and libp2p.transport.tcp.tcp.DNSResolver is LazyDNSResolver
resolver = DNSResolver()
assert "dns" not in sys.modules and "dns.asyncresolver" not in sys.modules
addr = Multiaddr("/ip4/127.0.0.1/tcp/4001")
resolved = trio.run(resolver.resolve, addr)
real = real_dns_resolver_class()
import multiaddr.resolvers.base
assert isinstance(resolver._real, real) and Resolver is multiaddr.resolvers.base.Resolver
assert resolved == trio.run(real().resolve, addr) == [addr]
assert "dns.asyncresolver" in sys.modules
assert not [m for m in sys.modules if m.startswith(("dns.quic._", "httpx", "aioquic"))]
print("ok")
"""
    assert _run(probe).strip() == "ok"


def test_the_lazy_resolver_package_names_are_multiaddrs() -> None:
    """Upgrade guard: the real ``multiaddr.resolvers`` exports what the lazy one knows, each
    from the submodule named, and its DNSResolver has the constants the lazy one copies."""
    from p2pcommons.node.lean_imports import RESOLVER_NAMES, LazyDNSResolver

    probe = """
import importlib, json, sys
import multiaddr.resolvers as r
from multiaddr.resolvers.dns import DNSResolver
names = json.loads(sys.argv[1])
print(json.dumps({"all": sorted(r.__all__),
                  "where": {n: getattr(r, n) is getattr(importlib.import_module(m), n) for n, m in names.items()},
                  "consts": [DNSResolver.MAX_RECURSIVE_DEPTH, DNSResolver.DEFAULT_TIMEOUT]}))
"""
    found = json.loads(_run(probe, json.dumps(RESOLVER_NAMES)))
    assert found["all"] == sorted([*RESOLVER_NAMES, "DNSResolver"])
    assert all(found["where"].values()), found["where"]
    assert found["consts"] == [LazyDNSResolver.MAX_RECURSIVE_DEPTH, LazyDNSResolver.DEFAULT_TIMEOUT]


def test_deferred_key_types_load_at_first_use_and_behave_as_libp2ps() -> None:
    """RSA and secp256k1 keys still deserialize in a lean process (a peer may present one):
    the real module loads then, and ``isinstance`` with the imported names holds."""
    probe = """
import sys
from p2pcommons.node import deferred
from p2pcommons.node.lean_imports import install
assert install(mdns=False)
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.crypto.rsa import RSAPublicKey, create_new_key_pair
from libp2p.crypto.secp256k1 import Secp256k1PublicKey
from libp2p.peer.id import ID
assert not deferred.loaded("libp2p.crypto.rsa") and not deferred.loaded("libp2p.crypto.secp256k1")
assert not [m for m in sys.modules if m.split(".")[0] in ("Crypto", "coincurve", "fastecdsa")]
pair = create_new_key_pair()
key = deserialize_public_key(pair.public_key.serialize())
assert deferred.loaded("libp2p.crypto.rsa") and isinstance(key, RSAPublicKey)
assert key.to_bytes() == pair.public_key.to_bytes()
assert ID.from_pubkey(key) == ID.from_pubkey(pair.public_key)
import libp2p.crypto.secp256k1 as secp
other = secp.create_new_key_pair()
assert isinstance(deserialize_public_key(other.public_key.serialize()), Secp256k1PublicKey)
import libp2p.security.secio.transport as secio
assert secio.ID == "/secio/1.0.0" and deferred.loaded("libp2p.security.secio.transport")
print("ok")
"""
    assert _run(probe).strip() == "ok"


def test_deferred_names_exist_in_libp2p() -> None:
    """Upgrade guard: each deferred name is in its real module, a class with the methods
    read at import time, or a function."""
    from p2pcommons.node.deferred import DEFERRED

    probe = """
import importlib, inspect, json, sys
out = {}
for module, names in json.loads(sys.argv[1]).items():
    real = importlib.import_module(module)
    for name, methods in names.items():
        value = getattr(real, name, None)
        if methods is None:
            out[module + "." + name] = inspect.isfunction(value)
        else:
            out[module + "." + name] = inspect.isclass(value) and all(callable(getattr(value, m, None))
                                                                      for m in methods)
print(json.dumps(out))
"""
    found = json.loads(_run(probe, json.dumps(DEFERRED)))
    assert found and all(found.values()), found


def test_the_agent_version_is_libp2ps() -> None:
    """identify's agent version, read without importlib.metadata, is the one libp2p computes."""
    from p2pcommons.node.lean_imports import _agent_version

    real = _run("from libp2p.utils.version import get_agent_version; print(get_agent_version())").strip()
    assert _agent_version() == real and real != "py-libp2p/unknown"


def test_build_host_builds_what_new_host_builds() -> None:
    """Upgrade guard for p2pcommons/node/host.py: with the daemon's options, ``build_host``
    and ``libp2p.new_host`` give hosts of the same parts (attribute by attribute, by type),
    the same swarm, transports, security and muxer options and resource manager."""
    probe = """
import json
import libp2p
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID, Transport as Noise
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID, Yamux
from p2pcommons.node.host import build_host

def shape(obj):
    return {k: type(v).__name__ for k, v in sorted(vars(obj).items())}

def parts(host):
    swarm = host.get_network()
    up = swarm.upgrader
    return {
        "host": type(host).__name__, "host_attrs": shape(host), "swarm": type(swarm).__name__,
        "swarm_attrs": shape(swarm),
        "transports": sorted(type(t).__name__ for t in swarm.transport_manager.get_transports()),
        "security": sorted(map(str, up.security_multistream.transports)),
        "muxers": sorted(map(str, up.muxer_multistream.transports)),
        "rcmgr": type(swarm._resource_manager).__name__ if hasattr(swarm, "_resource_manager") else None,
        "peer": swarm.get_peer_id().to_base58() == host.get_id().to_base58(),
        "key": host.get_private_key() is not None,
        "negotiate": getattr(host, "negotiate_timeout", None),
        "config": swarm.connection_config.max_connections_per_peer,
    }

pair = create_new_key_pair()
def options():
    return dict(key_pair=pair, sec_opt={NOISE_ID: Noise(pair, new_x25519().private_key)},
                muxer_opt={TProtocol(YAMUX_ID): Yamux},
                connection_config=ConnectionConfig(max_connections_per_peer=1), enable_mDNS=False,
                addrs_factory=lambda addrs: addrs)
print(json.dumps([parts(libp2p.new_host(**options())), parts(build_host(**options()))]))
"""
    theirs, ours = json.loads(_run(probe))
    assert ours == theirs
    assert ours["security"] and ours["muxers"] and ours["peer"] and ours["config"] == 1


def test_psutil_loads_at_the_first_memory_reading_and_reads_this_process() -> None:
    """The resource manager builds ``psutil.Process()`` up front; in a lean process psutil
    loads when its memory statistics are first read, and they are this process's."""
    probe = """
import os, sys
from p2pcommons.node import deferred
from p2pcommons.node.lean_imports import install
assert install(mdns=False)
from libp2p.rcmgr import new_resource_manager
import multiaddr.utils
manager = new_resource_manager()
assert not deferred.loaded("psutil") and "psutil._pslinux" not in sys.modules
stats = manager.memory_stats_cache.get_memory_stats(force_refresh=True)
assert deferred.loaded("psutil")
import psutil
real = psutil.Process()
assert manager.memory_stats_cache._process.pid == os.getpid() == real.pid
assert 0 < stats.process_memory_bytes and 0 < stats.system_memory_total == psutil.virtual_memory().total
assert multiaddr.utils.psutil.net_if_addrs() == psutil.net_if_addrs()
assert isinstance(deferred.make("psutil").Process(os.getpid()), psutil.Process)
print("ok")
"""
    assert _run(probe).strip() == "ok"


def test_statistics_and_x509_load_at_first_use_and_are_the_real_modules() -> None:
    """gossipsub's ``statistics`` and basic_host's ``x509`` are deferred: the first use loads
    the real module and answers as it; the TLS transport still imports on demand."""
    probe = """
import sys
from p2pcommons.node import deferred
from p2pcommons.node.lean_imports import install
assert install(mdns=False)
import libp2p.host.basic_host as basic_host
import libp2p.pubsub.gossipsub as gossipsub
from libp2p.security.noise.transport import Transport
assert not deferred.loaded("statistics") and not deferred.loaded("cryptography.x509")
assert "libp2p.security.tls.transport" not in sys.modules and "libp2p.security.secio" not in sys.modules
assert gossipsub.statistics.median([3.0, 1.0, 2.0]) == 2.0 and deferred.loaded("statistics")
from cryptography.x509.oid import ExtensionOID
assert basic_host.ExtensionOID is ExtensionOID
assert not deferred.loaded("cryptography.x509")
dns_name = basic_host.x509.DNSName
import cryptography.x509
assert deferred.loaded("cryptography.x509") and dns_name is cryptography.x509.DNSName
from libp2p.security.tls.transport import TLSTransport
assert TLSTransport.__module__ == "libp2p.security.tls.transport"
print("ok")
"""
    assert _run(probe).strip() == "ok"


def test_the_hollow_security_packages_define_nothing_of_their_own() -> None:
    """Upgrade guard: ``libp2p.security`` and ``libp2p.security.tls`` are loaded without their
    ``__init__``, which must only gather submodules (a name defined there would be missing)."""
    probe = """
import ast, json
import libp2p.security, libp2p.security.tls
out = {}
for package in (libp2p.security, libp2p.security.tls):
    with open(package.__file__, encoding="utf-8") as source:
        body = ast.parse(source.read()).body
    for node in body:
        gathers = isinstance(node, (ast.Import, ast.ImportFrom)) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) or (
            isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["__all__"])
        out[package.__name__ + ":" + str(node.lineno)] = gathers
        if isinstance(node, ast.ImportFrom):  # only from its own submodules
            out[package.__name__ + ":" + str(node.lineno)] = node.level > 0 or (node.module or "").startswith(
                package.__name__ + ".")
print(json.dumps(out))
"""
    found = json.loads(_run(probe))
    assert found and all(found.values()), found


def test_the_launcher_reads_the_command_line_the_cli_writes(tmp_path: Path) -> None:
    from p2pcommons.errors import UsageError
    from p2pcommons.home import Home
    from p2pcommons.node.launch import child_args, parse_args

    args = child_args(Home(tmp_path), ["/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/2"], bootstrap=["/ip4/10.0.0.1/tcp/3"],
                      mdns=True, dht=False, ingest_process=False, sync_interval=12.5, stall_timeout=7.0,
                      verbose=2, log_json=True)
    assert args[1:3] == ["-m", "p2pcommons.node.launch"]
    got = parse_args(args[3:])
    assert vars(got) == {"home": str(tmp_path), "sync_interval": 12.5, "stall_timeout": 7.0,
                         "listen": ["/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/2"], "bootstrap": ["/ip4/10.0.0.1/tcp/3"],
                         "mdns": True, "dht": False, "no_ingest_process": True, "verbose": 2, "log_json": True}
    assert parse_args(["--home=h", "-vv"]).verbose == 2
    for bad in (["--listen", "x"], ["--home", "h", "--sync-interval", "soon"], ["--home", "h", "--what"],
                ["--home"], ["--home", "h", "--mdns=1"]):
        with pytest.raises(UsageError):
            parse_args(bad)
    done = subprocess.run([sys.executable, "-m", "p2pcommons.node.launch", "--bogus"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("p2pc: ") and len(done.stderr.splitlines()) == 1
