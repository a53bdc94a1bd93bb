"""Keep the daemon from importing the libp2p stacks it never uses.

Why: ``import libp2p`` (0.8.1, pinned) loads about 1,000 modules and 50 MB of resident memory,
because its package ``__init__`` and ``host.basic_host`` import every transport and service
the library offers at module level: the QUIC transport (aioquic), WebSocket (trio-websocket,
wsproto, h11), AutoTLS's ACME client (httpx, requests), UPnP (miniupnpc), mDNS (zeroconf),
DNS over QUIC/HTTPS (dnspython's optional stacks), Prometheus metrics (prometheus_client, with
its HTTP server) and, through the relay transport's optional DHT discovery, Kademlia with
Bitswap and IPNS records.  The node uses TCP, Noise, Yamux, GossipSub, relay v2 and (on
request) Kademlia and mDNS; none of the rest is ever built unless asked for, yet its import
was paid by every daemon.  dnspython itself (2.5 MB, its resolver reads /etc/resolv.conf) is
needed only to dial a ``/dns…`` address, which a node may never do.

:func:`install` (called before the first libp2p import of a process that will run a node)
puts one finder in front of ``sys.meta_path`` that

- makes ``aioquic`` look absent, which libp2p's core imports only inside ``try: ... except
  ImportError`` once the QUIC transport itself is left out;
- loads a few packages *hollow* (their ``__init__`` skipped, their submodules loaded from disk
  as usual), so that light submodules the core needs (``libp2p.transport.quic.exceptions``,
  ``.stream`` and ``.config``; Noise under ``libp2p.security``, whose ``__init__`` imports the
  TLS transport with cryptography's X.509 package, SECIO and the insecure transport) come
  without their heavy siblings;
- replaces the modules that hard-import a removed stack by stand-ins that hold exactly the
  names the core imports from them: classes that refuse to be built
  (:class:`StackNotLoaded`) and ``is_quic_multiaddr``, which is false for every address
  since no QUIC transport exists.  Any other name is an ``AttributeError``, so a libp2p
  upgrade that imports more from them fails at import, loudly, not later in a session;
- defers ``multiaddr.resolvers``: the swarm and the TCP transport build a ``DNSResolver``
  up front; theirs is :class:`LazyDNSResolver`, which imports multiaddr's real resolver
  (and dnspython) the first time a ``/dns…`` address is resolved, then behaves exactly as
  it.  The package's other names load their real submodule when first asked for;
- defers the modules of :data:`p2pcommons.node.deferred.DEFERRED` (RSA and secp256k1 keys,
  SECIO, the pre-shared-key connection, cryptography's X.509 package, psutil, statistics):
  proxies that load the real module at first use;
- loads ``libp2p`` itself lazily: its ``__init__`` (every key type, SECIO, TLS, Mplex, the
  persistent peer stores, ``importlib.metadata`` for its version, libp2p's own logging set-up)
  runs only when a name it defines is asked for (``from libp2p import new_host``); the node
  builds its host from the submodules (:mod:`p2pcommons.node.host`), and identify's agent
  version is read without ``importlib.metadata``.

Nothing here changes what a built host does: the stand-ins are only ever reached by options
the node never passes (``enable_quic``, ``enable_websocket``, ``enable_upnp``,
``enable_autotls``, ``enable_metrics``, the resource manager's ``enable_prometheus``, the
relay's ``dht_discovery_enabled``, ``enable_mDNS`` when mDNS is off; a node without ``--dht``
builds no Kademlia DHT).
tests/test_node_lean_imports.py checks the import set of a real daemon, that every name relied
on exists in libp2p and multiaddr, that resolvers and deferred key types behave as the real
ones once used, and the network tests show that hosts built this way connect, sync, gossip
and relay (they run every daemon through this finder).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from p2pcommons.node import deferred

#: libraries libp2p imports inside ``try/except ImportError``: absent, libp2p does without
ABSENT = ("aioquic",)

#: the package itself: its ``__init__`` runs only when a name it defines is asked for
#: (``libp2p.new_host``...); the node builds its host from the submodules (node/host.py)
ROOT = "libp2p"

#: packages whose ``__init__`` pulls a removed stack; their light submodules stay loadable
HOLLOW = (
    "libp2p.security",
    "libp2p.security.tls",
    "libp2p.transport.quic",
    "libp2p.transport.websocket",
    "libp2p.discovery.upnp",
    "libp2p.security.tls.autotls",
)

#: mDNS's package and module, removed only when the node runs without mDNS
MDNS_PACKAGE = "libp2p.discovery.mdns"
MDNS_MODULE = "libp2p.discovery.mdns.mdns"
#: Kademlia's package and module (they import Bitswap and IPNS records), removed only when
#: the node runs without ``--dht``
DHT_PACKAGE = "libp2p.kad_dht"
DHT_MODULE = "libp2p.kad_dht.kad_dht"
#: multiaddr's resolvers: loaded lazily (see :class:`LazyDNSResolver`)
RESOLVERS = "multiaddr.resolvers"
#: where the real ``multiaddr.resolvers`` package finds each of its names (multiaddr 0.0.x, as
#: libp2p 0.8.1 pins it); a name not listed is an AttributeError, as for a stand-in
RESOLVER_NAMES = {
    "Resolver": "multiaddr.resolvers.base",
    "DNSADDR_TXT_PREFIX": "multiaddr.resolvers.dns",
    "addr_len": "multiaddr.resolvers.util",
    "fqdn": "multiaddr.resolvers.util",
    "is_fqdn": "multiaddr.resolvers.util",
    "matches": "multiaddr.resolvers.util",
    "offset_addr": "multiaddr.resolvers.util",
    "resolve_all": "multiaddr.resolvers.util",
}


class StackNotLoaded(RuntimeError):
    """A libp2p feature the node does not load was asked for (a bug: an option turned on
    without removing it from lean_imports)."""


def _absent_class(module: str, name: str) -> type:
    def refuse(self: object, *_args: object, **_kwargs: object) -> None:
        raise StackNotLoaded(f"{module}.{name} is not loaded in this node (see p2pcommons/node/lean_imports.py).")

    return type(name, (), {"__init__": refuse, "__module__": module})


def _refusing_function(module: str, name: str) -> Callable[..., Any]:
    def refuse(*_args: object, **_kwargs: object) -> Any:
        raise StackNotLoaded(f"{module}.{name} is not loaded in this node (see p2pcommons/node/lean_imports.py).")

    refuse.__name__ = name
    return refuse


def _never_quic(_maddr: object) -> bool:
    """No QUIC transport is built, so no address is one of its addresses."""
    return False


class LazyDNSResolver:
    """multiaddr's ``DNSResolver``, built at its first use.

    libp2p's swarm and TCP transport make one up front (and a fresh one per ``/dns…``
    dial), which imports dnspython (58 modules, 2.5 MB) and reads /etc/resolv.conf even in
    a node that only ever dials IP addresses.  This one imports the real class and builds it
    when an attribute other than its class constants is first asked for (``resolve``), then
    hands every attribute to it."""

    MAX_RECURSIVE_DEPTH = 32
    DEFAULT_TIMEOUT = 5.0

    def __init__(self) -> None:
        self._real: Any = None

    def __getattr__(self, name: str) -> Any:
        if name == "_real":  # during construction or copying: not built yet
            raise AttributeError(name)
        if self._real is None:
            self._real = real_dns_resolver_class()()
        return getattr(self._real, name)


def real_dns_resolver_class() -> type:
    """multiaddr's own ``DNSResolver`` (imports dnspython, without its DNS-over-QUIC/HTTPS
    clients: /dns addresses are resolved over plain DNS)."""
    _no_dns_over_quic_or_https()
    from multiaddr.resolvers.dns import DNSResolver

    real: type = DNSResolver
    return real


class _LazyPackage(types.ModuleType):
    """``libp2p`` with its ``__init__`` run at the first name asked for that is not one of its
    submodules (``from libp2p import new_host`` still works, at the full import's cost)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or self.__dict__.get("_p2pc_initialized"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        self.__dict__["_p2pc_initialized"] = True
        origin = self.__spec__.origin if self.__spec__ is not None else None
        if origin is None:
            raise AttributeError(name)
        with open(origin, encoding="utf-8") as source:
            exec(compile(source.read(), origin, "exec"), self.__dict__)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None


def _agent_version() -> str:
    """What ``libp2p.utils.version.get_agent_version`` returns (``py-libp2p/<version>``, sent by
    identify), read from the installed distribution's directory name: its
    ``importlib.metadata`` lookup imports email, zipfile and csv (2 MB) for one string."""
    spec = importlib.machinery.PathFinder.find_spec(ROOT)
    if spec is not None and spec.origin is not None:
        site = os.path.dirname(os.path.dirname(spec.origin))
        prefix = ROOT + "-"
        for entry in sorted(os.listdir(site)):
            if entry.startswith(prefix) and entry.endswith(".dist-info"):
                return "py-libp2p/" + entry[len(prefix):-len(".dist-info")]
    return "py-libp2p/unknown"


class _LazyResolvers(types.ModuleType):
    """``multiaddr.resolvers`` without its ``__init__``: ``DNSResolver`` is the lazy one, the
    other names come from their real submodule when first asked for."""

    def __getattr__(self, name: str) -> Any:
        where = RESOLVER_NAMES.get(name)
        if where is None:
            raise AttributeError(f"{self.__name__} has no {name!r} here (p2pcommons/node/lean_imports.py)")
        value = getattr(importlib.import_module(where), name)
        setattr(self, name, value)
        return value


def _stand_ins(mdns: bool, dht: bool) -> dict[str, dict[str, Any]]:
    """Module name -> the names the libp2p core imports from it (libp2p 0.8.1)."""
    quic_transport = "libp2p.transport.quic.transport"
    websocket = "libp2p.transport.websocket.transport"
    upnp = "libp2p.discovery.upnp.upnp"
    acme = "libp2p.security.tls.autotls.acme"
    broker = "libp2p.security.tls.autotls.broker"
    out: dict[str, dict[str, Any]] = {
        "libp2p.transport.quic.utils": {"is_quic_multiaddr": _never_quic},
        quic_transport: {"QUICTransport": _absent_class(quic_transport, "QUICTransport")},
        websocket: {"WebsocketTransport": _absent_class(websocket, "WebsocketTransport")},
        upnp: {"UpnpManager": _absent_class(upnp, "UpnpManager")},
        acme: {"ACMEClient": _absent_class(acme, "ACMEClient"),
               "compute_b36_peer_id": _refusing_function(acme, "compute_b36_peer_id")},
        broker: {"BrokerClient": _absent_class(broker, "BrokerClient")},
        # identify's AGENT_VERSION, computed at import
        "libp2p.utils.version": {"get_agent_version": _agent_version},
        # libp2p.metrics.swarm declares its (unused) Prometheus counters with it; the
        # resource manager's exporter imports more names inside try/except ImportError and
        # then does without
        "prometheus_client": {"Counter": _absent_class("prometheus_client", "Counter")},
    }
    if not dht:  # the relay transport imports these for its optional DHT discovery
        out[DHT_MODULE] = {"KadDHT": _absent_class(DHT_MODULE, "KadDHT"),
                           "DHTMode": _absent_class(DHT_MODULE, "DHTMode")}
    if not mdns:
        out[MDNS_MODULE] = {"MDNSDiscovery": _absent_class(MDNS_MODULE, "MDNSDiscovery"),
                            "create_mdns_discovery": _refusing_function(MDNS_MODULE, "create_mdns_discovery")}
    return out


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"{self.__name__} is a stand-in without {name!r} (p2pcommons/node/lean_imports.py)")


class _LeanFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The one finder :func:`install` adds (see the module's docstring)."""

    def __init__(self, mdns: bool, dht: bool) -> None:
        self.mdns = mdns
        self.dht = dht
        self.stand_ins = _stand_ins(mdns, dht)
        self.hollow = (*HOLLOW, *(() if mdns else (MDNS_PACKAGE,)), *(() if dht else (DHT_PACKAGE,)), RESOLVERS)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {fullname!r} (left out of this node)", name=fullname)
        if fullname in deferred.PACKAGES:
            return self._package_spec(fullname, path)
        if fullname in self.stand_ins or fullname in deferred.DEFERRED:
            return importlib.machinery.ModuleSpec(fullname, self)
        if fullname == ROOT:
            return self._package_spec(fullname, path, located=True)
        if fullname in self.hollow:
            return self._package_spec(fullname, path)
        return None

    def _package_spec(self, fullname: str, path: Sequence[str] | None, *,
                      located: bool = False) -> importlib.machinery.ModuleSpec | None:
        """A spec this finder loads, at the real package's location, so its other submodules
        are found as usual (``located``: with the real origin, as ``__file__``)."""
        real = importlib.machinery.PathFinder.find_spec(fullname, path)
        if real is None or real.submodule_search_locations is None:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=real.origin if located else None,
                                              is_package=True)
        spec.submodule_search_locations = list(real.submodule_search_locations)
        if located:
            spec.has_location = True
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if spec.name in deferred.DEFERRED:
            return deferred.make(spec.name)
        if spec.name == ROOT:
            return _LazyPackage(spec.name)
        if spec.name == RESOLVERS:
            module: types.ModuleType = _LazyResolvers(spec.name)
            module.__dict__["DNSResolver"] = LazyDNSResolver
            return module
        module = _StandIn(spec.name) if spec.name in self.stand_ins else types.ModuleType(spec.name)
        module.__dict__.update(self.stand_ins.get(spec.name, {}))
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: a hollow package has no ``__init__`` code, a stand-in no body.

        Except for ``libp2p`` itself: its submodules import each other in a cycle
        (transport -> abc -> custom_types -> transport.quic -> transport) that resolves only
        when ``libp2p.transport`` is imported first, as the real ``__init__`` does."""
        if module.__name__ == ROOT:
            importlib.import_module(ROOT + ".transport")


def installed() -> _LeanFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, _LeanFinder)), None)


def install(*, mdns: bool, dht: bool = False) -> bool:
    """Leave the unused stacks out of this process's libp2p (see the module docstring).

    Returns whether the finder is in place.  A process that imported libp2p already keeps it
    as it is (False).  Installing again is a no-op, except that a process installed without
    mDNS or the DHT cannot get it back: :class:`StackNotLoaded`.
    """
    current = installed()
    if current is not None:
        if mdns and not current.mdns:
            raise StackNotLoaded("This process left mDNS out of libp2p; run the mDNS node in its own process.")
        if dht and not current.dht:
            raise StackNotLoaded("This process left the DHT out of libp2p; run the DHT node in its own process.")
        return True
    if "libp2p" in sys.modules:
        return False
    sys.meta_path.insert(0, _LeanFinder(mdns, dht))
    return True


def _no_dns_over_quic_or_https() -> None:
    """multiaddr's resolver uses dnspython, which imports its DNS-over-QUIC (aioquic, asyncio)
    and DNS-over-HTTPS (httpx) clients when those packages are installed; /dns addresses
    are resolved over plain DNS, so tell dnspython they are not."""
    if importlib.util.find_spec("dns") is None:
        return
    import dns._features

    for feature in ("doq", "doh"):
        dns._features.force(feature, False)


__all__ = ["ABSENT", "HOLLOW", "LazyDNSResolver", "StackNotLoaded", "install", "installed", "real_dns_resolver_class"]
