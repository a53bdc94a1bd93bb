"""Reachability through NAT: AutoNAT, circuit relay v2 and DCUtR around the daemon's host.

Why: laptops at home sit behind NAT and cannot accept connections.  A member node with a
public address can offer a circuit relay (``[network] relay_service = true``) to the peers
of its commons; a node that AutoNAT finds unreachable reserves a slot on a relay and is then
reachable at ``<relay>/p2p-circuit/p2p/<itself>`` (announced in ``node status`` and so in
invites); once two nodes talk through a relay, DCUtR tries to punch a direct connection
through both NATs, and the relayed one stays only if that fails.

The decisions are sans-I/O and tested on their own: :func:`reachability` (what the
AutoNAT verdicts mean) and :class:`ReservationPlanner` (which relay to reserve on, when to
refresh, when to give up on one).  :class:`Reach` does the I/O with py-libp2p 0.8.1's
``libp2p.relay.circuit_v2`` (hop/stop protocol, DCUtR) and ``libp2p.host.autonat``.

Two 0.8.1 defects are worked around here (found in the namespace tests, see
docs/operations.md "Relays"):

* the AutoNAT server answers a dial-back request with ``host.connect``, which returns at
  once when the asker is already connected — and it always is, it asked over that
  connection — so every verdict was "reachable", even for a node behind NAT.  Our server
  dials the asked address afresh on a new connection and closes it.
* the swarm never dials ``/p2p-circuit`` addresses (it has no relay transport wired in):
  :meth:`Reach.dial_circuit` dials them through ``CircuitV2Transport``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

log = logging.getLogger("p2pcommons.node.reach")

PUBLIC = "public"
PRIVATE = "private"
UNKNOWN = "unknown"

AUTONAT_INTERVAL = 60.0        # re-ask this often (sooner while the answer is unknown)
AUTONAT_FIRST = 1.0            # first question this soon after a peer connects
AUTONAT_MAX_SERVERS = 3        # ask at most this many peers each round
AUTONAT_DIAL_TIMEOUT = 4.0     # a dial-back that takes longer counts as failed (3 at most)
VERDICT_MAX_AGE = 600.0        # forget verdicts older than this
RESERVE_CHECK = 2.0            # the reservation loop re-plans this often
RESERVE_TIMEOUT = 10.0
REFRESH_MARGIN = 0.2           # refresh a reservation when less than this share of it is left
BACKOFF_MIN = 2.0
BACKOFF_MAX = 300.0
MEMBERS_REFRESH = 5.0          # the relay re-reads who may reserve this often


# --- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class RelaySettings:
    """``[network]`` keys of config.toml about relays (documented in docs/operations.md)."""

    relay_service: bool = False          # offer circuit relay v2 to the peers of our commons
    relays: tuple[str, ...] = ()         # relays to reserve on first (multiaddrs with /p2p/)
    max_reservations: int = 32           # peers holding a slot at once
    reservation_ttl: int = 3600          # seconds a slot lasts before it must be refreshed
    circuit_seconds: int = 3600          # one relayed connection lasts at most this long
    circuit_bytes: int = 256 * 1024 * 1024  # and carries at most this much (both ways)
    circuits_per_peer: int = 8           # relayed connections to one reserved peer at once

    @classmethod
    def from_config(cls, network: dict[str, Any]) -> RelaySettings:
        from p2pcommons.errors import UsageError

        def number(key: str, default: int) -> int:
            value = network.get(key, default)
            if type(value) is not int or value < 1:
                raise UsageError(f"config.toml: [network] {key} must be a positive whole number.")
            return value

        service = network.get("relay_service", False)
        if type(service) is not bool:
            raise UsageError("config.toml: [network] relay_service must be true or false.")
        relays = network.get("relays", [])
        if not isinstance(relays, list) or not all(isinstance(r, str) and "/p2p/" in r for r in relays):
            raise UsageError("config.toml: [network] relays must be a list of addresses ending in /p2p/<peer id>.")
        return cls(
            relay_service=service,
            relays=tuple(relays),
            max_reservations=number("relay_max_reservations", cls.max_reservations),
            reservation_ttl=number("relay_reservation_seconds", cls.reservation_ttl),
            circuit_seconds=number("relay_circuit_seconds", cls.circuit_seconds),
            circuit_bytes=number("relay_circuit_bytes", cls.circuit_bytes),
            circuits_per_peer=number("relay_circuits_per_peer", cls.circuits_per_peer),
        )


# --- sans-I/O decisions -------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One AutoNAT server's answer: could it dial us back on a fresh connection?"""

    reachable: bool
    at: float


def reachability(verdicts: dict[str, Verdict], now: float, *, max_age: float = VERDICT_MAX_AGE) -> str:
    """What the recent AutoNAT verdicts mean: ``public`` if most servers reached us,
    ``private`` if most could not, ``unknown`` with no recent verdict or a tie.

    A small commons may have a single other member to ask, so one verdict decides (the
    AutoNAT spec's "more than three servers agree" would leave such a node unknown for
    ever); a later contrary verdict from any server changes it again."""
    fresh = [v for v in verdicts.values() if now - v.at <= max_age]
    yes = sum(1 for v in fresh if v.reachable)
    no = len(fresh) - yes
    if yes > no:
        return PUBLIC
    if no > yes:
        return PRIVATE
    return UNKNOWN


@dataclass
class Reservation:
    relay: str                 # relay peer id
    relay_addrs: tuple[str, ...]  # the relay's addresses, each ending in /p2p/<relay>
    expires: float             # wall-clock seconds
    granted: float             # when it was (re)granted

    def circuit_addrs(self, me: str) -> list[str]:
        return [f"{addr}/p2p-circuit/p2p/{me}" for addr in self.relay_addrs]


@dataclass(frozen=True)
class Action:
    kind: str                  # "reserve" | "refresh" | "drop" | "wait"
    relay: str = ""


@dataclass
class ReservationPlanner:
    """Which relay to hold a slot on, and when to act.

    Wants a reservation unless AutoNAT says the node is public (an unknown node reserves:
    being reachable matters more than one idle slot).  Keeps one reservation; refreshes it
    when less than ``REFRESH_MARGIN`` of its lifetime is left; drops it when its relay
    disconnects or it expires; after a failed attempt, a relay is left alone for a
    doubling backoff (``BACKOFF_MIN`` … ``BACKOFF_MAX``)."""

    current: Reservation | None = None
    backoff: dict[str, tuple[float, float]] = field(default_factory=dict)  # relay -> (until, delay)

    def plan(self, reach: str, candidates: Sequence[str], connected: set[str], now: float) -> Action:
        current = self.current
        if current is not None:
            if reach == PUBLIC or current.expires <= now or current.relay not in connected:
                return Action("drop", current.relay)
            left = current.expires - now
            due = left <= REFRESH_MARGIN * max(1.0, current.expires - current.granted)
            if due and self.backoff.get(current.relay, (0.0, 0.0))[0] <= now:
                return Action("refresh", current.relay)
            return Action("wait")
        if reach == PUBLIC:
            return Action("wait")
        for relay in candidates:
            if self.backoff.get(relay, (0.0, 0.0))[0] <= now:
                return Action("reserve", relay)
        return Action("wait")

    def granted(self, reservation: Reservation) -> None:
        self.current = reservation
        self.backoff.pop(reservation.relay, None)

    def failed(self, relay: str, now: float) -> None:
        delay = min(BACKOFF_MAX, self.backoff.get(relay, (0.0, BACKOFF_MIN / 2))[1] * 2)
        self.backoff[relay] = (now + delay, delay)
        if len(self.backoff) > 256:  # bounded: forget the relays whose backoff ended longest ago
            for key, _ in sorted(self.backoff.items(), key=lambda kv: kv[1][0])[: len(self.backoff) - 256]:
                del self.backoff[key]

    def dropped(self) -> None:
        self.current = None


def connection_kind(transport_addrs: Sequence[str]) -> str:
    """``relayed`` if a connection runs through a relay, else ``direct``."""
    return "relayed" if any("/p2p-circuit" in a for a in transport_addrs) else "direct"


def connection_kinds(host: Any) -> dict[str, str]:
    """Per connected peer: ``direct`` if any connection to it is direct, else ``relayed``.

    Asks the connection's own layers (muxer -> secure session -> raw connection), never
    ``SwarmConn.get_transport_addresses``: in py-libp2p 0.8.1 that falls back to the
    *peerstore's* addresses for the peer when the swarm did not tag the connection, which
    made an untagged relayed connection look direct."""
    result: dict[str, str] = {}
    connections = getattr(host.get_network(), "connections", {}) or {}
    for peer, conns in list(connections.items()):
        kinds = set()
        for conn in conns if isinstance(conns, list) else [conns]:
            with contextlib.suppress(Exception):
                kinds.add(_kind_of(conn.muxed_conn))
        if kinds:
            result[peer.to_base58()] = "direct" if "direct" in kinds else "relayed"
    return result


def _kind_of(muxed: Any) -> str:
    kind = getattr(muxed.get_connection_type(), "value", "")
    if kind in ("direct", "relayed"):
        return str(kind)
    return connection_kind([str(a) for a in muxed.get_transport_addresses()])


def describe(reach: str, reservation: Reservation | None, relay_service: bool) -> str:
    """One line for ``node status``: how other nodes can reach this one."""
    if reach == PUBLIC:
        return "public: other nodes can dial it directly" + ("; relays for its commons" if relay_service else "")
    where = "behind NAT" if reach == PRIVATE else "reachability unknown"
    if reservation is not None:
        return f"{where}, reachable through relay {reservation.relay}"
    return f"{where}, no relay reservation (only outgoing connections work)"


# --- I/O -------------------------------------------------------------------------------


class CircuitDialer:
    """Dials ``…/p2p/<relay>/p2p-circuit/p2p/<peer>`` addresses (the 0.8.1 swarm skips
    them).  Used alone by the one-shot node of ``p2pc sync``/``join``, which offers no
    relay, hole punching or AutoNAT."""

    def __init__(self, host: Any, protocol: Any = None) -> None:
        from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
        from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
        from libp2p.relay.circuit_v2.transport import CircuitV2Transport

        protocol = protocol if protocol is not None else CircuitV2Protocol(host, allow_hop=False)
        # STOP only: the transport would otherwise try a reservation on every dial
        self.transport = CircuitV2Transport(host, protocol, RelayConfig(roles=RelayRole.STOP))

    async def dial_circuit(self, addr: str) -> None:
        from multiaddr import Multiaddr

        await self.transport.dial(Multiaddr(addr))



class Reach:
    """The relay, DCUtR and AutoNAT services of one daemon.

    ``members`` returns the peer ids allowed to reserve a slot when this node is a relay
    (the authors of the commons it holds); ``on_change`` is called when the node's
    announced addresses change (a reservation granted or lost)."""

    def __init__(self, host: Any, settings: RelaySettings,
                 members: Callable[[], Awaitable[set[str]]],
                 on_change: Callable[[], None] = lambda: None) -> None:
        from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
        from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
        from libp2p.relay.circuit_v2.resources import RelayLimits

        self.host = host
        self.settings = settings
        self._members = members
        self._on_change = on_change
        self.me = host.get_id().to_base58()
        limits = RelayLimits(
            duration=settings.circuit_seconds, data=settings.circuit_bytes,
            max_circuit_conns=settings.circuits_per_peer, max_reservations=settings.max_reservations,
            reservation_ttl=settings.reservation_ttl,
        )
        self.protocol = CircuitV2Protocol(host, limits=limits, allow_hop=settings.relay_service)
        self.allowed: set[str] = set()
        self.protocol.resource_manager = _members_only(limits, host, self.allowed)
        self.circuits = CircuitDialer(host, self.protocol)
        self.dcutr = DCUtRProtocol(host)
        self.autonat = _autonat_service(host)
        self.verdicts: dict[str, Verdict] = {}
        self.planner = ReservationPlanner()
        self._connected_event = trio.Event()
        self._last_reach = UNKNOWN

    # -- lifecycle

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from libp2p.tools.anyio_service import background_trio_service

        async with background_trio_service(self.protocol), background_trio_service(self.dcutr), \
                trio.open_nursery() as nursery:
            nursery.start_soon(self._autonat_loop)
            nursery.start_soon(self._reservation_loop)
            if self.settings.relay_service:
                nursery.start_soon(self._members_loop)
            task_status.started()
            await trio.sleep_forever()

    def peer_connected(self) -> None:
        self._connected_event.set()

    # -- state

    def reachability(self) -> str:
        return reachability(self.verdicts, time.time())

    def circuit_addrs(self) -> list[str]:
        res = self.planner.current
        return res.circuit_addrs(self.me) if res is not None and res.expires > time.time() else []

    def connection_kinds(self) -> dict[str, str]:
        """Per connected peer: ``direct`` if any connection to it is direct, else ``relayed``."""
        return connection_kinds(self.host)

    def status(self) -> dict[str, Any]:
        reach = self.reachability()
        res = self.planner.current
        now = time.time()
        service: dict[str, Any] = {"enabled": self.settings.relay_service}
        if self.settings.relay_service:
            reservations = getattr(self.protocol.resource_manager, "_reservations", {})
            service.update({
                "reservations": sum(1 for r in reservations.values() if not r.is_expired()),
                "max_reservations": self.settings.max_reservations,
                "circuit_seconds": self.settings.circuit_seconds,
                "circuit_bytes": self.settings.circuit_bytes,
            })
        return {
            "reachability": reach,
            "summary": describe(reach, res, self.settings.relay_service),
            "autonat": {peer: {"reachable": v.reachable, "ago": round(now - v.at, 1)}
                        for peer, v in sorted(self.verdicts.items())},
            "reservation": None if res is None else {
                "relay": res.relay, "expires_in": round(res.expires - now, 1),
                "addrs": res.circuit_addrs(self.me),
            },
            "relay_service": service,
        }

    # -- AutoNAT client

    def _servers(self) -> list[Any]:
        """Connected peers with a direct connection (relayed requests are refused) that
        speak AutoNAT, fewest-recently-asked first."""
        from libp2p.host.autonat.autonat import AUTONAT_PROTOCOL_ID

        kinds = self.connection_kinds()
        store = self.host.get_peerstore()
        result = []
        for peer in self.host.get_connected_peers():
            text = peer.to_base58()
            if kinds.get(text) != "direct":
                continue
            with contextlib.suppress(Exception):
                if store.supports_protocols(peer, [AUTONAT_PROTOCOL_ID]):
                    result.append(peer)
        result.sort(key=lambda p: self.verdicts.get(p.to_base58(), Verdict(False, 0.0)).at)
        return result[:AUTONAT_MAX_SERVERS]

    def _my_addrs(self) -> list[bytes]:
        from multiaddr import Multiaddr

        addrs = [a for a in self.host.get_addrs() if "/p2p-circuit" not in str(a)]
        manager = getattr(self.host, "_observed_addr_manager", None)
        if manager is not None:
            with contextlib.suppress(Exception):
                addrs += list(manager.addrs(min_observers=1))
        seen: set[bytes] = set()
        result = []
        for addr in addrs:
            text = str(addr).split("/p2p/")[0]
            raw = Multiaddr(text).to_bytes()
            if raw not in seen:
                seen.add(raw)
                result.append(raw)
        return result[:16]

    async def _autonat_loop(self) -> None:
        from libp2p.host.autonat.pb.autonat_pb2 import Message

        while True:
            with trio.move_on_after(AUTONAT_INTERVAL if self.reachability() != UNKNOWN else 5.0):
                await self._connected_event.wait()
                await trio.sleep(AUTONAT_FIRST)  # let identify tell us what the peer speaks
            self._connected_event = trio.Event()
            for server in self._servers():
                text = server.to_base58()
                try:
                    with trio.fail_after(AUTONAT_DIAL_TIMEOUT * 3 + 5):
                        status, _ = await self.autonat.query_server(server, self._my_addrs())
                except Exception as exc:
                    log.debug("AutoNAT question to %s failed: %s", text, exc)
                    continue  # no answer is no verdict
                if status in (Message.OK, Message.E_DIAL_ERROR, Message.E_DIAL_REFUSED):
                    self.verdicts[text] = Verdict(status == Message.OK, time.time())
            before, self._last_reach = self._last_reach, self.reachability()
            if self._last_reach != before:
                log.info("reachability: %s", self._last_reach)
            if len(self.verdicts) > 64:
                for key in sorted(self.verdicts, key=lambda k: self.verdicts[k].at)[:-64]:
                    del self.verdicts[key]

    # -- reservations

    def _candidates(self) -> list[str]:
        """Configured relays first, then connected peers that offer the hop protocol."""
        from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP

        result = [addr.rsplit("/p2p/", 1)[1] for addr in self.settings.relays]
        store = self.host.get_peerstore()
        kinds = self.connection_kinds()
        for peer in sorted(self.host.get_connected_peers(), key=lambda p: p.to_base58()):
            text = peer.to_base58()
            if text in result or kinds.get(text) != "direct":
                continue
            with contextlib.suppress(Exception):
                if store.supports_protocols(peer, [HOP]):
                    result.append(text)
        return [r for r in result if r != self.me]

    async def _reservation_loop(self) -> None:
        from libp2p.peer.peerinfo import info_from_p2p_addr
        from multiaddr import Multiaddr

        configured = {addr.rsplit("/p2p/", 1)[1]: addr for addr in self.settings.relays}
        while True:
            connected = {p.to_base58() for p in self.host.get_connected_peers()}
            kinds = self.connection_kinds()
            direct = {p for p in connected if kinds.get(p) == "direct"}
            action = self.planner.plan(self.reachability(), self._candidates(), direct, time.time())
            if action.kind == "drop":
                log.info("relay reservation on %s dropped", action.relay)
                self.planner.dropped()
                self._on_change()
                continue
            if action.kind in ("reserve", "refresh"):
                relay = action.relay
                try:
                    if relay not in direct and relay in configured:
                        with trio.fail_after(RESERVE_TIMEOUT):
                            await self.host.connect(info_from_p2p_addr(Multiaddr(configured[relay])))
                    reservation = await self._reserve(relay, configured.get(relay))
                except Exception as exc:
                    log.info("no relay reservation on %s: %s", relay, exc or type(exc).__name__)
                    self.planner.failed(relay, time.time())
                else:
                    fresh = self.planner.current is None
                    self.planner.granted(reservation)
                    if fresh:
                        log.info("reachable through relay %s until %s", relay,
                                 time.strftime("%H:%M:%S", time.localtime(reservation.expires)))
                        self._on_change()
                    continue
            await trio.sleep(RESERVE_CHECK)

    async def _reserve(self, relay: str, configured_addr: str | None) -> Reservation:
        from libp2p.peer.id import ID
        from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
        from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as CircuitPeerId
        from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP
        from libp2p.relay.circuit_v2.protocol_buffer import StatusCode
        from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
        from multiaddr import Multiaddr

        relay_id = ID.from_base58(relay)
        with trio.fail_after(RESERVE_TIMEOUT):
            stream = await self.host.new_stream(relay_id, [HOP])
            try:
                await write_delimited_msg(stream, HopMessage(
                    type=HopMessage.RESERVE, peer=CircuitPeerId(id=self.host.get_id().to_bytes())))
                resp = await read_delimited_msg(stream, HopMessage)
            finally:
                with contextlib.suppress(Exception):
                    await stream.close()
        status = StatusCode(resp.status) if resp.HasField("status") else StatusCode.OK
        if status != StatusCode.OK or not resp.HasField("reservation"):
            raise ConnectionError(f"the relay refused ({status.name})")
        now = time.time()
        expires = float(resp.reservation.expire) or now + 60
        addrs: list[str] = []
        for raw in list(resp.reservation.addrs)[:8]:
            with contextlib.suppress(Exception):
                text = str(Multiaddr(bytes(raw)))
                if text.endswith(f"/p2p/{relay}") and "/p2p-circuit" not in text:
                    addrs.append(text)
        if configured_addr and configured_addr not in addrs:
            addrs.insert(0, configured_addr)
        if not addrs:
            addrs = [f"{a}/p2p/{relay}" for a in self.host.get_peerstore().addrs(relay_id)[:4]
                     if "/p2p-circuit" not in str(a)]
        if not addrs:
            raise ConnectionError("the relay gave no address to be reached at")
        return Reservation(relay, tuple(addrs), min(expires, now + 24 * 3600), now)

    # -- relay service

    async def _members_loop(self) -> None:
        while True:
            try:
                members = await self._members()
            except Exception as exc:
                log.warning("cannot read who may use the relay: %s", exc)
            else:
                self.allowed.clear()
                self.allowed.update(members)
            await trio.sleep(MEMBERS_REFRESH)


def _members_only(limits: Any, host: Any, allowed: set[str]) -> Any:
    """The relay's resource manager, accepting reservations only from peers of the
    commons this node holds (a stranger cannot use our bandwidth to be reachable)."""
    from libp2p.relay.circuit_v2.resources import RelayResourceManager

    class MembersOnly(RelayResourceManager):
        def can_accept_reservation(self, peer_id: Any) -> bool:
            if peer_id.to_base58() not in allowed:
                return False
            return bool(super().can_accept_reservation(peer_id))

    return MembersOnly(limits, host)


def _autonat_service(host: Any) -> Any:
    """py-libp2p's AutoNAT service with a dial-back that really dials (see the module
    docstring): a fresh connection to the asked address, closed again."""
    from libp2p.host.autonat.autonat import AutoNATService
    from libp2p.peer.id import ID
    from multiaddr import Multiaddr

    class FreshDialAutoNAT(AutoNATService):
        async def _try_dial(self, peer_id: ID, addrs: list[bytes]) -> bytes | None:
            # Dial and authenticate (Noise proves it is that peer), then hang up: the
            # test connection is never registered with the swarm, which with one
            # connection per peer would otherwise close the asker's existing one.
            network: Any = self.host.get_network()  # the swarm: its transports and upgrader
            for raw in addrs[:3]:
                addr = Multiaddr(raw)
                conn: Any = None
                try:
                    with trio.fail_after(AUTONAT_DIAL_TIMEOUT):
                        transport = network.transport_manager.transport_for_dialing(addr)
                        if transport is None:
                            continue
                        conn = await transport.dial(addr)
                        secured = await network.upgrader.upgrade_security(conn, True, peer_id)
                        await secured.close()
                except Exception:
                    continue
                finally:
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                return bytes(raw)
            return None

    return FreshDialAutoNAT(host, serve=True, confirmations=1)


__all__ = [
    "PRIVATE", "PUBLIC", "UNKNOWN", "Action", "CircuitDialer", "Reach", "RelaySettings", "Reservation",
    "ReservationPlanner", "Verdict", "connection_kind", "connection_kinds", "describe", "reachability",
]
