"""Honest status: who each peer is, how we are connected to it, and whether we are in sync.

Kept out of ``daemon.py``: the node calls :func:`peer_view` from ``status`` and
:func:`sync_status` for the ``sync_status`` control command.

* **Who**: a peer id is derived from the same Ed25519 key as the member's author id, so a
  connected peer is named by the member name the commons state gives that key (cached by
  :class:`Names`, refreshed whenever the node folds a commons), else by a short id.
* **How**: ``direct`` or ``relayed`` from the live connection's transport address (a
  ``/p2p-circuit`` address is relayed); ``relay`` is left for the relay details.
* **In sync**: figures from a session with the peer at most ``max_age`` seconds old; older
  ones are refreshed by running a session now (which also closes the gap it measures).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import trio

from p2pcommons.dagcbor import CID

if TYPE_CHECKING:
    from .daemon import Node, PeerState


def short_id(peer_id: str) -> str:
    """``12D3KooWAbCd…wxyz``: enough to tell peers apart at a glance."""
    return peer_id if len(peer_id) <= 16 else f"{peer_id[:12]}…{peer_id[-4:]}"


class Names:
    """Member names by author key, from the latest folded state of each commons."""

    def __init__(self) -> None:
        self._by_commons: dict[CID, dict[bytes, str]] = {}
        self._asked: set[CID] = set()

    def asked(self, commons: CID) -> bool:
        """Whether names for ``commons`` were asked for already (then ask no more: the
        state worker refreshes them at every fold)."""
        if commons in self._asked or commons in self._by_commons:
            return True
        self._asked.add(commons)
        return False

    def remember(self, commons: CID, state: Any) -> None:
        """Called in the state worker after a fold (``state`` is the commons' state)."""
        names: dict[bytes, str] = {}
        try:
            members = state.members  # {author hex: {"name": …, …}} (the canonical state form)
        except Exception:
            return
        if isinstance(members, dict):
            for author, member in members.items():
                name = member.get("name", "") if isinstance(member, dict) else ""
                with contextlib.suppress(ValueError, TypeError):
                    if isinstance(name, str) and name:
                        names[bytes.fromhex(author)] = name
        self._by_commons[commons] = names

    def known(self, commons: CID) -> bool:
        return commons in self._by_commons

    def name_of(self, peer_id: str) -> str | None:
        from p2pcommons.identity import public_key_from_peer_id

        try:
            key = public_key_from_peer_id(peer_id)
        except Exception:
            return None
        for names in self._by_commons.values():
            if key in names:
                return names[key]
        return None


def connection_via(node: Node, peer_id: str) -> tuple[str | None, str | None]:
    """(``direct``/``relayed``/None, the remote transport address) of the live connection."""
    if node.host is None:
        return None, None
    from libp2p.peer.id import ID

    try:
        conns = node.host.get_network().get_connections(ID.from_base58(peer_id))
    except Exception:
        return None, None
    for conn in conns:
        try:
            addrs = [str(a) for a in conn.get_transport_addresses()]
        except Exception:
            addrs = []
        relayed = any("/p2p-circuit" in a for a in addrs)
        return ("relayed" if relayed else "direct"), (addrs[0] if addrs else None)
    return None, None


def peer_view(node: Node, state: PeerState, connected: bool) -> dict[str, Any]:
    """The fields ``node status`` adds per peer (``relay`` is filled by the relay code)."""
    via, remote = connection_via(node, state.peer_id) if connected else (None, None)
    last_seen = time.time() if connected else (state.last_seen or None)
    return {
        "name": node.names.name_of(state.peer_id),
        "short_id": short_id(state.peer_id),
        "via": via,
        "remote_addr": remote,
        "relay": None,
        "last_seen": None if last_seen is None else round(last_seen, 3),
        "last_seen_ago": None if last_seen is None else round(max(0.0, time.time() - last_seen), 1),
    }


async def sync_status(node: Node, max_age: float, timeout: float) -> dict[str, Any]:
    """"Am I in sync?": per connected peer and per commons, from session figures at most
    ``max_age`` seconds old (older ones are refreshed by a session now, in parallel, within
    ``timeout``)."""
    connected = node.connected_peers()
    stale = [p for p in connected if (at := node.peer(p).behind_at) is None or time.monotonic() - at > max_age]
    if stale:
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                for peer_id in stale:
                    nursery.start_soon(_refresh, node, peer_id)
    held = await node.held_commons()
    now = time.monotonic()
    peers = []
    per_commons: dict[str, dict[str, Any]] = {str(c): {"peers": {}, "in_sync": None} for c in held}
    for peer_id in connected:
        state = node.peer(peer_id)
        age = None if state.behind_at is None else round(now - state.behind_at, 1)
        fresh = age is not None and age <= max_age + timeout
        figures = {str(c): {"they_lack": t, "we_lack": w} for c, (t, w) in state.behind.items()}
        peers.append({"peer_id": peer_id, "name": node.names.name_of(peer_id), "short_id": short_id(peer_id),
                      "age": age, "fresh": fresh, "commons": figures})
        for commons, figure in figures.items():
            if commons in per_commons:
                per_commons[commons]["peers"][peer_id] = {**figure, "age": age, "fresh": fresh}
    for info in per_commons.values():
        measured = list(info["peers"].values())
        if measured:
            info["in_sync"] = all(f["fresh"] and not f["they_lack"] and not f["we_lack"] for f in measured)
    answered = [c for c in per_commons.values() if c["in_sync"] is not None]
    return {
        "connected": len(connected),
        "in_sync": bool(answered) and all(c["in_sync"] for c in answered),
        "commons": per_commons,
        "peers": peers,
        "max_age": max_age,
    }


async def _refresh(node: Node, peer_id: str) -> None:
    for _ in range(100):  # wait for a running session (either direction) to end, then run ours
        if not node._in_session(peer_id):
            break
        event = node._peer_synced.setdefault(peer_id, trio.Event())
        await event.wait()
    await node.sync_with(peer_id)


__all__ = ["Names", "peer_view", "short_id", "sync_status"]
