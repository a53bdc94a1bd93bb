"""The node's libp2p host, built from libp2p's submodules (not ``libp2p.new_host``).

Why: ``libp2p.new_host`` lives in the package's ``__init__``, which imports everything the
library offers (every key type, SECIO, TLS, Mplex, the persistent peer stores with their
LevelDB/RocksDB probes, identity keystores, ``importlib.metadata`` for its version) and sets
up libp2p's own logging.  A daemon that imports ``libp2p`` pays for all of it.  With
:mod:`p2pcommons.node.lean_imports` installed, ``libp2p`` is loaded hollow (its ``__init__``
skipped) and :func:`build_host` assembles what ``new_host`` would assemble for the options
the node passes — TCP only, the given security and muxer options, the default resource
manager, one :class:`~libp2p.host.basic_host.BasicHost` — from the modules that define them.
libp2p's own logging set-up (``LIBP2P_DEBUG``), which ``__init__`` runs, is left out too: the
node's logging decides what of libp2p's is shown (``P2PC_LIBP2P_LOGS``).

It must stay equivalent to ``new_host`` (libp2p 0.8.1): tests/test_node_lean_imports.py
builds both with the same options in one process and compares their parts (transports,
upgrader options, peer store, resource manager, connection settings, host type), so an
upgrade that changes ``new_host`` fails there, not in the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: ``libp2p.DEFAULT_NEGOTIATE_TIMEOUT`` (seconds): what new_host gives BasicHost
NEGOTIATE_TIMEOUT = 30


def build_host(*, key_pair: Any, sec_opt: Mapping[Any, Any], muxer_opt: Mapping[Any, Any], connection_config: Any,
               enable_mDNS: bool, addrs_factory: Callable[[list[Any]], list[Any]]) -> Any:
    """What ``libp2p.new_host(key_pair=..., sec_opt=..., muxer_opt=..., connection_config=...,
    enable_mDNS=..., addrs_factory=...)`` returns, built without ``libp2p/__init__``."""
    from libp2p.host.basic_host import BasicHost
    from libp2p.network.swarm import Swarm
    from libp2p.peer.id import ID
    from libp2p.peer.peerstore import PeerStore
    from libp2p.rcmgr import new_resource_manager
    from libp2p.transport.manager import TransportManager
    from libp2p.transport.tcp.tcp import TCP
    from libp2p.transport.upgrader import TransportUpgrader

    resource_manager = new_resource_manager()
    peer_id = ID.from_pubkey(key_pair.public_key)
    peerstore = PeerStore()
    peerstore.add_key_pair(peer_id, key_pair)
    upgrader = TransportUpgrader(secure_transports_by_protocol=sec_opt, muxer_transports_by_protocol=muxer_opt)
    swarm = Swarm(peer_id, peerstore, upgrader, transports=[TCP()], retry_config=None,
                  connection_config=connection_config, psk=None, metric_send_channel=None,
                  transport_manager=TransportManager(port_demuxers={}))
    swarm.set_resource_manager(resource_manager)
    return BasicHost(
        network=swarm, enable_mDNS=enable_mDNS, bootstrap=None, enable_upnp=False,
        negotiate_timeout=NEGOTIATE_TIMEOUT, resource_manager=resource_manager, metric_recv_channel=None,
        bootstrap_allow_ipv6=False, bootstrap_dns_timeout=10.0, bootstrap_dns_max_retries=3,
        announce_addrs=None, addrs_factory=addrs_factory, disable_identify_address_discovery=False,
    )


__all__ = ["NEGOTIATE_TIMEOUT", "build_host"]
