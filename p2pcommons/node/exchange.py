"""Peer exchange in the daemon: publish, carry, keep and dial address records
(``protocols/addresses.md``; the records themselves are :mod:`.addresses`).

Kept out of ``daemon.py`` on purpose: the node calls four hooks —
:meth:`PeerExchange.subscribe` for each held commons, :meth:`PeerExchange.after_sync` after
every session it started, :meth:`PeerExchange.handle_stream` for the exchange protocol, and
:meth:`PeerExchange.run` in its nursery.

How a member reaches another it has never been given an address for:

1. Every node signs one record per commons it holds with its dialable addresses
   (:meth:`Node.announced_addrs`), remade when they change and every
   :data:`~.addresses.REPUBLISH_S`.
2. The records travel two ways: a GossipSub topic per commons
   (``/p2pcommons/addrs/<commons id>``: within a second to every connected member), and an
   exchange after every sync session (``/p2pcommons/addrs/1``: both sides send what they
   know for the commons they share, so a node that was offline catches up with the sync).
3. They are kept only for authors of the commons (at least one entry stored), in memory and
   in ``known.json`` in the home, so a restarted node still knows where everyone was.
4. A dialler connects to every known member that is not connected, trying each address,
   with exponential backoff and jitter per peer; before each dial it clears py-libp2p's
   60-second block on a peer whose last dial failed (we pace ourselves).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from typing import TYPE_CHECKING, Any

import trio

from p2pcommons.dagcbor import CID
from p2pcommons.errors import ProtocolViolation
from p2pcommons.identity import public_key_from_peer_id
from p2pcommons.store import Store

from . import addresses as rec
from .eventlog import peer_line_level

if TYPE_CHECKING:
    from .daemon import Node

log = logging.getLogger("p2pcommons.node")

PROTOCOL_ID = "/p2pcommons/addrs/1"
TOPIC_PREFIX = "/p2pcommons/addrs/"
KNOWN_FILE = "known.json"
DIAL_MIN = 1.0            # first redial delay for a known peer (doubling, jittered)
DIAL_PASS = 5.0           # the dialler looks at the book at least this often
MAX_DIALS_PER_PASS = 32
MAX_ADDRS_PER_DIAL = 4
EXCHANGE_TIMEOUT = 10.0
SAVE_DELAY = 1.0          # coalesce writes of known.json


def topic_of(commons: CID) -> str:
    return TOPIC_PREFIX + str(commons)


def _is_author(store: Store, commons: CID, peer: bytes) -> bool:
    return store.has_commons(commons) and store.max_seq(commons, peer) > 0


class PeerExchange:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.book = rec.AddressBook()
        self._own: dict[CID, tuple[tuple[str, ...], float, bytes]] = {}  # commons → (addrs, made, record)
        self._topics: set[str] = set()
        self._wakeup = trio.Event()
        self._dirty = trio.Event()
        self._backoff: dict[str, tuple[float, float]] = {}  # peer id → (delay, next attempt, monotonic)
        self.forgotten: set[str] = set()  # `p2pc peer remove <peer id>`: not dialled this run
        self._load()

    # --- the book on disk ----------------------------------------------------------------

    @property
    def _path(self) -> os.PathLike[str]:
        return self.node.home.path / KNOWN_FILE

    def _load(self) -> None:
        try:
            with open(self._path, encoding="utf-8") as f:
                data = json.load(f)
            items = data.get("records", []) if isinstance(data, dict) else []
            count = self.book.load(items if isinstance(items, list) else [])
            if count:
                log.info("%d address record(s) restored from %s", count, KNOWN_FILE)
        except (FileNotFoundError, ValueError, OSError):
            pass

    def _save(self) -> None:
        from .peers import _write_json

        _write_json(self.node.home, KNOWN_FILE, {"records": self.book.dump()})

    async def _saver(self) -> None:
        while True:
            await self._dirty.wait()
            await trio.sleep(SAVE_DELAY)
            self._dirty = trio.Event()
            try:
                await trio.to_thread.run_sync(self._save)
            except OSError as exc:
                log.warning("cannot save %s: %s", KNOWN_FILE, exc)

    # --- our own records ------------------------------------------------------------------

    def own_record(self, commons: CID) -> bytes | None:
        """This node's current record for ``commons`` (remade if the addresses changed or
        it is due for republishing); None while the node has no dialable address."""
        addrs = tuple(rec.strip_peer(a) for a in self.node.announced_addrs())
        if not addrs:
            return None
        cached = self._own.get(commons)
        if cached is not None and cached[0] == addrs and time.monotonic() - cached[1] < rec.REPUBLISH_S:
            return cached[2]
        record = rec.make_record(self.node.identity.signer, commons, list(addrs))
        self._own[commons] = (addrs, time.monotonic(), record)
        return record

    async def offer(self, records: list[rec.AddressRecord]) -> int:
        """Keep the records of known authors of commons we hold; how many were new."""
        mine = self.node.identity.public_key
        candidates = [r for r in records if r.peer != mine]
        if not candidates:
            return 0
        keep = await self.node.db(lambda s: [_is_author(s, r.commons, r.peer) for r in candidates])
        new = 0
        for record, ok in zip(candidates, keep, strict=True):
            if ok and self.book.offer(record):
                new += 1
        if new:
            self._dirty.set()
            self._wakeup.set()
        return new

    # --- gossip ---------------------------------------------------------------------------

    async def subscribe(self, commons: CID) -> None:
        topic = topic_of(commons)
        if topic in self._topics or self.node.pubsub is None:
            return
        self._topics.add(topic)
        self.node.pubsub.set_topic_validator(topic, self._validator(commons), False)
        subscription = await self.node.pubsub.subscribe(topic)
        self.node._nursery_start(self._reader, subscription)
        self.node._nursery_start(self.publish, commons)

    def _validator(self, commons: CID) -> Any:
        def validate(forwarder: Any, msg: Any) -> bool:
            try:
                record = rec.decode_record(bytes(msg.data))
            except ProtocolViolation:
                return False
            return record.commons == commons and not self.node.is_banned(forwarder.to_base58())

        return validate

    async def _reader(self, subscription: Any) -> None:
        while True:
            msg = await subscription.get()
            with contextlib.suppress(ProtocolViolation):
                await self.offer([rec.decode_record(bytes(msg.data))])

    async def publish(self, commons: CID) -> None:
        record = self.own_record(commons)
        if record is None or self.node.pubsub is None:
            return
        try:
            await self.node.pubsub.publish(topic_of(commons), record)
        except Exception as exc:
            log.debug("address record publish failed: %s", exc)

    async def _republisher(self) -> None:
        """Publish again when our addresses change (checked every few seconds; identify may
        add an observed address at any time) and at least every REPUBLISH_S."""
        while True:
            await trio.sleep(DIAL_PASS)
            for commons in await self.node.held_commons():
                before = self._own.get(commons)
                record = self.own_record(commons)
                if record is not None and (before is None or before[2] != record):
                    await self.publish(commons)

    # --- the exchange after a sync session --------------------------------------------------

    async def _records_for(self, commons: list[CID]) -> list[rec.AddressRecord]:
        out: list[rec.AddressRecord] = []
        for cid in commons:
            own = self.own_record(cid)
            if own is not None:
                out.append(rec.decode_record(own))
            out.extend(self.book.records(cid))
        return out[: rec.MAX_RECORDS]

    async def after_sync(self, peer_id: str) -> None:
        """Initiator side: send our records for the commons we hold, receive theirs."""
        from libp2p.peer.id import ID
        from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited

        held = await self.node.held_commons()
        request = rec.encode_exchange(await self._records_for(held))
        try:
            with trio.fail_after(EXCHANGE_TIMEOUT):
                stream = await self.node.host.new_stream(ID.from_base58(peer_id), [PROTOCOL_ID])
                try:
                    await stream.write(encode_varint_prefixed(request))
                    reply = await read_varint_prefixed_bytes_limited(stream, rec.MAX_EXCHANGE_BYTES)
                finally:
                    with contextlib.suppress(Exception):
                        await stream.close()
            await self.offer(rec.decode_exchange(reply))
        except ProtocolViolation as exc:
            log.info("address exchange with %s: %s", peer_id, exc)
        except Exception as exc:  # an old node without the protocol, a dropped peer
            log.debug("address exchange with %s failed: %s: %s", peer_id, type(exc).__name__, exc)

    async def handle_stream(self, stream: Any) -> None:
        """Responder side: keep what the peer sent, answer with our records for the commons
        the peer showed it belongs to (it sent its own record for them, as an author)."""
        from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited

        peer_id = stream.muxed_conn.peer_id.to_base58()
        try:
            if self.node.is_banned(peer_id):
                raise ProtocolViolation("banned")
            with trio.fail_after(EXCHANGE_TIMEOUT):
                data = await read_varint_prefixed_bytes_limited(stream, rec.MAX_EXCHANGE_BYTES)
                records = rec.decode_exchange(data)
                await self.offer(records)
                sender = public_key_from_peer_id(peer_id)
                shown = [r.commons for r in records if r.peer == sender]
                ok = await self.node.db(lambda s: [c for c in shown if _is_author(s, c, sender)])
                await stream.write(encode_varint_prefixed(rec.encode_exchange(await self._records_for(ok))))
        except Exception as exc:
            log.debug("address exchange from %s ended: %s: %s", peer_id, type(exc).__name__, exc)
            with contextlib.suppress(Exception):
                await stream.reset()
            return
        with contextlib.suppress(Exception):
            await stream.close()

    # --- dialling known members ----------------------------------------------------------------

    def wake(self) -> None:
        self._wakeup.set()

    async def _dialler(self) -> None:
        while True:
            with trio.move_on_after(DIAL_PASS):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            await self._dial_pass()

    async def _dial_pass(self) -> None:
        connected = set(self.node.connected_peers())
        now = time.monotonic()
        dials = 0
        for _peer, records in self.book.peers().items():
            peer_id = records[0].peer_id()
            if (peer_id in connected or peer_id == self.node.peer_id or self.node.is_banned(peer_id)
                    or peer_id in self.forgotten):
                self._backoff.pop(peer_id, None)
                continue
            delay, due = self._backoff.get(peer_id, (DIAL_MIN, 0.0))
            if due > now:
                continue
            if dials >= MAX_DIALS_PER_PASS:
                break
            dials += 1
            addrs: list[str] = []
            for record in sorted(records, key=lambda r: -r.seq):
                addrs += [a for a in record.dial_addrs() if a not in addrs]
            if await self._dial(peer_id, addrs[:MAX_ADDRS_PER_DIAL]):
                self._backoff.pop(peer_id, None)
            else:
                wait = delay * random.uniform(0.8, 1.2)
                self._backoff[peer_id] = (min(delay * 2, self.node.config.max_backoff), time.monotonic() + wait)

    async def _dial(self, peer_id: str, addrs: list[str]) -> bool:
        for addr in addrs:
            try:
                await self.node.connect(addr)  # fresh: clears libp2p's 60 s block first
            except Exception as exc:
                log.debug("known peer %s not at %s (%s)", peer_id, addr, type(exc).__name__)
                continue
            log.log(peer_line_level(), "connected to known member %s at %s", peer_id, addr)
            self.node.request_sync(peer_id)
            return True
        return False

    def status(self) -> dict[str, Any]:
        """What ``node status`` shows about the book: per peer id, its record addresses."""
        out: dict[str, Any] = {}
        for _peer, records in self.book.peers().items():
            newest = max(records, key=lambda r: r.seq)
            out[newest.peer_id()] = {"addrs": list(newest.addrs), "commons": [str(r.commons) for r in records],
                                     "record_age": round(time.time() - newest.seq / 1000, 1)}
        return out

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._saver)
                nursery.start_soon(self._dialler)
                nursery.start_soon(self._republisher)
        finally:
            if self._dirty.is_set():  # records learnt in the last moment before a stop
                try:
                    self._save()
                except OSError as exc:
                    log.warning("cannot save %s: %s", KNOWN_FILE, exc)


__all__ = ["KNOWN_FILE", "PROTOCOL_ID", "PeerExchange", "topic_of"]
