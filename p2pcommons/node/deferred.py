"""Deferred libp2p modules: imported by name at start-up, loaded for real at first use.

Why: libp2p 0.8.1's core imports a few modules at package import time for features the node
reaches rarely or never: RSA and secp256k1 keys (pycryptodome, cffi with pycparser,
coincurve: the node's peers are Ed25519 peers, but a peer may still present another key
type), SECIO (fastecdsa, AES; only offered when no security transport is chosen), the
pre-shared-key connection (Salsa20; only with ``psk=``) and multihash's MurmurHash3
extension; and a few libraries it imports for one rare use (X.509 for AutoTLS, psutil for
memory limits, statistics for one median).  Together about 5 MB of a daemon
that should stay near 60.  Unlike lean_imports' stand-ins, these stay fully usable: the
finder of :mod:`p2pcommons.node.lean_imports` gives each a :class:`DeferredModule` whose
names are proxies, and the first real use (building a key from bytes, an ``isinstance``
check, any other attribute of the module) loads the real module in its place and hands
over to it.  Nothing a host does behaves differently, it only costs the import later.

The names each module is asked for at import time are listed in :data:`DEFERRED` (libp2p
0.8.1).  A name not listed loads the real module at once (correct, only not lean):
tests/test_node_lean_imports.py checks both that the listed names exist in the real modules
and that a running daemon never loaded them.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

#: module -> {name: the class methods read at import time (empty for functions)}; each
#: name is a class unless it has ``None`` for methods (a function)
DEFERRED: dict[str, dict[str, tuple[str, ...] | None]] = {
    # libp2p.crypto.serialization builds its deserializer tables from ``from_bytes`` at
    # import; peer records and envelopes import the public key classes
    "libp2p.crypto.rsa": {"RSAPublicKey": ("from_bytes",), "RSAPrivateKey": ("from_bytes",),
                          "create_new_key_pair": None},
    "libp2p.crypto.secp256k1": {"Secp256k1PublicKey": ("from_bytes",), "Secp256k1PrivateKey": ("from_bytes",)},
    # libp2p/__init__ imports the module itself (``import ... as secio``) for new_swarm's
    # default security options, which the node never uses (it passes Noise only)
    "libp2p.security.secio.transport": {},
    # the swarm's protector wraps connections in it when a pre-shared key is set
    "libp2p.security.pnet.psk_conn": {"PskConn": ()},
    # multihash's MurmurHash3 hasher (a compiled extension no libp2p peer id uses; its BLAKE3
    # one is built at import time, so it is not deferred)
    "mmh3": {},
    # X.509 certificates (1.7 MB with the email package it imports): libp2p.host.basic_host
    # imports them at module level for AutoTLS, which the node never enables; the Noise
    # handshake uses cryptography's primitives, not this package
    "cryptography.x509": {},
    # the standard library's statistics (with fractions, decimal and its C extension: 0.4 MB):
    # gossipsub imports it at module level for one ``statistics.median`` in its scoring,
    # computed only once peers are in the mesh
    "statistics": {},
    # psutil (0.6 MB): multiaddr.utils imports it for listing network interfaces (dialling or
    # listening on a wildcard address), the resource manager for its memory limits, which
    # build a ``psutil.Process()`` up front (see :data:`BUILT_AT_FIRST_USE`) and read it
    # when a connection is checked against them
    "psutil": {},
}

#: module -> names of classes whose instances built without arguments are made at their
#: first use (:class:`_BuiltAtFirstUse`): libp2p's ``MemoryStatsCache`` builds
#: ``psutil.Process()`` (this process) in its constructor, with the resource manager
BUILT_AT_FIRST_USE: dict[str, tuple[str, ...]] = {"psutil": ("Process",)}

#: the deferred modules that are packages: their submodules (``cryptography.x509.oid``,
#: which basic_host imports too) load from disk as usual, without the package's ``__init__``
PACKAGES = frozenset({"cryptography.x509"})

_lock = threading.RLock()


def load(name: str) -> types.ModuleType:
    """The real module ``name``, executed now in place of its deferred stand-in (once)."""
    with _lock:
        current = sys.modules.get(name)
        if current is not None and not isinstance(current, DeferredModule):
            return current
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules[parent_name] if parent_name else None
        spec = importlib.machinery.PathFinder.find_spec(name, None if parent is None else parent.__path__)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            if current is not None:
                sys.modules[name] = current
            raise
        if parent is not None:
            setattr(parent, child, module)
        return module


class DeferredModule(types.ModuleType):
    """A module whose listed names are proxies; any other attribute loads the real module."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(load(self.__name__), name)


class _DeferredClass(type):
    """Metaclass of a proxy class: calling it, ``isinstance`` and every attribute other
    than the deferred methods go to the real class (loading its module)."""

    _module: str
    _name: str

    def real(cls) -> Any:
        return getattr(load(cls._module), cls._name)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(cls.real(), name)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real()(*args, **kwargs)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.real())

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.real())


def _deferred_method(module: str, name: str, method: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(load(module), name), method)(*args, **kwargs)

    call.__name__ = method
    call.__qualname__ = f"{name}.{method}"
    return call


def _deferred_function(module: str, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(load(module), name)(*args, **kwargs)

    call.__name__ = name
    call.__module__ = module
    return call


class _BuiltAtFirstUse:
    """``cls()`` of a deferred module's class, built (and its module loaded) when one of its
    attributes is first asked for; then every attribute is the real object's."""

    def __init__(self, module: str, name: str) -> None:
        self._where = (module, name)
        self._real: Any = None

    def __getattr__(self, attr: str) -> Any:
        if attr in ("_where", "_real"):  # during construction or copying
            raise AttributeError(attr)
        with _lock:
            if self._real is None:
                module, name = self._where
                self._real = getattr(load(module), name)()
        return getattr(self._real, attr)


def _built_at_first_use(module: str, name: str) -> Callable[..., Any]:
    def build(*args: Any, **kwargs: Any) -> Any:
        if args or kwargs:  # not this process: built now, as the real class would
            return getattr(load(module), name)(*args, **kwargs)
        return _BuiltAtFirstUse(module, name)

    build.__name__ = name
    build.__module__ = module
    return build


def make(name: str) -> DeferredModule:
    """The deferred stand-in of ``name`` (one of :data:`DEFERRED`)."""
    module = DeferredModule(name)
    for attr, methods in DEFERRED[name].items():
        if methods is None:
            module.__dict__[attr] = _deferred_function(name, attr)
            continue
        namespace: dict[str, Any] = {"_module": name, "_name": attr, "__module__": name}
        namespace.update({m: staticmethod(_deferred_method(name, attr, m)) for m in methods})
        module.__dict__[attr] = _DeferredClass(attr, (), namespace)
    for attr in BUILT_AT_FIRST_USE.get(name, ()):
        module.__dict__[attr] = _built_at_first_use(name, attr)
    return module


def loaded(name: str) -> bool:
    """Whether the real module ``name`` runs in this process."""
    module = sys.modules.get(name)
    return module is not None and not isinstance(module, DeferredModule)


__all__ = ["DEFERRED", "DeferredModule", "load", "loaded", "make"]
