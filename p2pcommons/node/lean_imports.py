"""Keep the daemon from importing the libp2p stacks it never uses.

Why: ``import libp2p`` (0.8.1, pinned) loads about 1,000 modules and 50 MB of resident memory,
because its package ``__init__`` and ``host.basic_host`` import every transport and service
the library offers at module level: the QUIC transport (aioquic), WebSocket (trio-websocket,
wsproto, h11), AutoTLS's ACME client (httpx, requests), UPnP (miniupnpc), mDNS (zeroconf),
and DNS over QUIC/HTTPS (dnspython's optional stacks).  The node uses TCP,
Noise, Yamux, GossipSub, Kademlia, relay v2 and (on request) mDNS; none of the rest is ever
built unless asked for, yet its import was paid by every daemon.

:func:`install` (called before the first libp2p import of a process that will run a node)
puts one finder in front of ``sys.meta_path`` that

- makes ``aioquic`` look absent, which libp2p's core imports only inside ``try: ... except
  ImportError`` once the QUIC transport itself is left out;
- loads a few packages *hollow* (their ``__init__`` skipped, their submodules loaded from disk
  as usual), so that light submodules the core needs (``libp2p.transport.quic.exceptions``,
  ``.stream`` and ``.config``) come without their heavy siblings;
- replaces the modules that hard-import a removed stack by stand-ins that hold exactly the
  names the core imports from them: classes that refuse to be built
  (:class:`StackNotLoaded`) and ``is_quic_multiaddr``, which is false for every address
  since no QUIC transport exists.  Any other name is an ``AttributeError``, so a libp2p
  upgrade that imports more from them fails at import, loudly, not later in a session.

Nothing here changes what a built host does: the stand-ins are only ever reached by options
the node never passes (``enable_quic``, ``enable_websocket``, ``enable_upnp``,
``enable_autotls``, ``enable_mDNS`` when mDNS is off).
tests/test_lean_imports.py checks the import set of a real daemon and that hosts built this
way connect, sync and gossip (the network tests run every daemon through it).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

#: libraries libp2p imports inside ``try/except ImportError``: absent, libp2p does without
ABSENT = ("aioquic",)

#: packages whose ``__init__`` pulls a removed stack; their light submodules stay loadable
HOLLOW = (
    "libp2p.transport.quic",
    "libp2p.transport.websocket",
    "libp2p.discovery.upnp",
    "libp2p.security.tls.autotls",
)

#: mDNS's package and module, removed only when the node runs without mDNS
MDNS_PACKAGE = "libp2p.discovery.mdns"
MDNS_MODULE = "libp2p.discovery.mdns.mdns"


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


def _stand_ins(mdns: bool) -> dict[str, dict[str, Any]]:
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
    }
    if not mdns:
        out[MDNS_MODULE] = {"MDNSDiscovery": _absent_class(MDNS_MODULE, "MDNSDiscovery"),
                            "create_mdns_discovery": _refusing_function(MDNS_MODULE, "create_mdns_discovery")}
    return out


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"{self.__name__} is a stand-in without {name!r} (p2pcommons/node/lean_imports.py)")


class _LeanFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The one finder :func:`install` adds (see the module's docstring)."""

    def __init__(self, mdns: bool) -> None:
        self.mdns = mdns
        self.stand_ins = _stand_ins(mdns)
        self.hollow = HOLLOW if mdns else (*HOLLOW, MDNS_PACKAGE)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {fullname!r} (left out of this node)", name=fullname)
        if fullname in self.stand_ins:
            return importlib.machinery.ModuleSpec(fullname, self)
        if fullname in self.hollow:
            # the real package's location, so its other submodules are found as usual
            real = importlib.machinery.PathFinder.find_spec(fullname, path)
            if real is None or real.submodule_search_locations is None:
                return None
            spec = importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            spec.submodule_search_locations = list(real.submodule_search_locations)
            return spec
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StandIn(spec.name) if spec.name in self.stand_ins else types.ModuleType(spec.name)
        module.__dict__.update(self.stand_ins.get(spec.name, {}))
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: a hollow package has no ``__init__`` code, a stand-in no body."""


def installed() -> _LeanFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, _LeanFinder)), None)


def install(*, mdns: bool) -> bool:
    """Leave the unused stacks out of this process's libp2p (see the module docstring).

    Returns whether the finder is in place.  A process that imported libp2p already keeps it
    as it is (False).  Installing again is a no-op, except that a process installed without
    mDNS cannot get it back: :class:`StackNotLoaded`.
    """
    current = installed()
    if current is not None:
        if mdns and not current.mdns:
            raise StackNotLoaded("This process left mDNS out of libp2p; run the mDNS node in its own process.")
        return True
    if "libp2p" in sys.modules:
        return False
    sys.meta_path.insert(0, _LeanFinder(mdns))
    _no_dns_over_quic_or_https()
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


__all__ = ["ABSENT", "HOLLOW", "StackNotLoaded", "install", "installed"]
