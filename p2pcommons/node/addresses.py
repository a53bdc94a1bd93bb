"""Address records: how members of a commons learn where the others are (peer exchange).

Specified in ``protocols/addresses.md`` (vectors: ``protocols/vectors/addresses.json``).
Sans-I/O: building, checking and keeping records; the daemon moves them (gossip topic, the
exchange after each sync session) and saves the book (``known.json``).

A record says "node K can be reached at these addresses", for one commons, signed by K's
node key (the same Ed25519 key as its author id and libp2p peer id), numbered by the time it
was made (``seq``, milliseconds) and valid until ``expires``.  Why this shape:

* Signed by the node itself: a relaying peer cannot redirect others to an address of its
  choosing; only K can say where K is.
* Expiring (at most :data:`MAX_TTL_MS`): a dead address stops being dialled; a node
  republishes its record long before it expires, and whenever its addresses change.
* Per commons, kept only by nodes that hold the commons and only for authors that have an
  entry in it (:meth:`AddressBook.offer` is told which authors are known): a stranger
  cannot fill a member's book, and a node tells a commons' members where it is, not the
  whole network.
* Bounded: :data:`MAX_ADDRS` addresses of :data:`MAX_ADDR_CHARS` each, at most
  :data:`MAX_RECORDS` records per commons (the ones expiring soonest are dropped first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.errors import InvalidEntry, ProtocolViolation

DOMAIN = b"p2pcommons/addrs/v1\n"
VERSION = 1
MAX_ADDRS = 8
MAX_ADDR_CHARS = 256
MAX_RECORD_BYTES = 4096
MAX_TTL_MS = 7 * 24 * 3600 * 1000      # no record claims to be valid for more than a week
DEFAULT_TTL_MS = 24 * 3600 * 1000      # what this node signs; republished every REPUBLISH
REPUBLISH_S = 3600.0
MAX_SKEW_MS = 10 * 60 * 1000           # a record "made" further in the future is refused
MAX_RECORDS = 256                      # per commons
FIELDS = frozenset({"v", "commons", "peer", "addrs", "seq", "expires", "sig"})


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class AddressRecord:
    commons: CID
    peer: bytes                 # the node's Ed25519 public key (= author id = peer id key)
    addrs: tuple[str, ...]      # multiaddrs without /p2p/<id>
    seq: int                    # ms since the epoch when it was made; newer replaces older
    expires: int                # ms since the epoch
    raw: bytes = field(repr=False, compare=False)

    def peer_id(self) -> str:
        from p2pcommons.identity import peer_id_text

        return peer_id_text(self.peer)

    def dial_addrs(self) -> list[str]:
        """The addresses with ``/p2p/<peer id>`` appended, ready to dial."""
        pid = self.peer_id()
        return [f"{a}/p2p/{pid}" for a in self.addrs]


def _unsigned(commons: CID, peer: bytes, addrs: list[str], seq: int, expires: int) -> dict[str, Any]:
    return {"v": VERSION, "commons": commons, "peer": peer, "addrs": addrs, "seq": seq, "expires": expires}


def strip_peer(addr: str) -> str:
    """``/ip4/…/tcp/…/p2p/<id>`` → ``/ip4/…/tcp/…`` (records name the peer once)."""
    head, sep, _tail = addr.rpartition("/p2p/")
    return head if sep else addr


def make_record(signer: Signer, commons: CID, addrs: list[str], *, seq: int | None = None,
                ttl_ms: int = DEFAULT_TTL_MS) -> bytes:
    """This node's record for ``commons`` (the encoded, signed map)."""
    seq = now_ms() if seq is None else seq
    clean = []
    for addr in addrs:
        bare = strip_peer(addr)
        if bare not in clean and 0 < len(bare) <= MAX_ADDR_CHARS:
            clean.append(bare)
    unsigned = _unsigned(commons, signer.public_key, clean[:MAX_ADDRS], seq, seq + min(ttl_ms, MAX_TTL_MS))
    sig = signer.sign(DOMAIN + dagcbor.encode(unsigned))
    return dagcbor.encode({**unsigned, "sig": sig})


def decode_record(data: bytes, *, now: int | None = None) -> AddressRecord:
    """Check one record (shape, bounds, time, signature, in that order); every failure is a
    :class:`ProtocolViolation` with one sentence."""
    now = now_ms() if now is None else now
    if len(data) > MAX_RECORD_BYTES:
        raise ProtocolViolation("The address record is too large.")
    try:
        value = dagcbor.decode(data)
    except InvalidEntry:
        raise ProtocolViolation("The address record is not canonical DAG-CBOR.") from None
    if type(value) is not dict or set(value) != FIELDS:
        raise ProtocolViolation("The address record has the wrong fields.")
    if value["v"] != VERSION:
        raise ProtocolViolation("The address record's version is not supported.")
    try:
        commons = dagcbor.link(value["commons"])
    except InvalidEntry:
        raise ProtocolViolation("The address record does not name a commons.") from None
    peer, addrs, sig = value["peer"], value["addrs"], value["sig"]
    if type(peer) is not bytes or len(peer) != 32:
        raise ProtocolViolation("The address record's peer is not an Ed25519 key.")
    if type(addrs) is not list or len(addrs) > MAX_ADDRS:
        raise ProtocolViolation("The address record's addresses are not a short list.")
    for addr in addrs:
        if type(addr) is not str or not addr.startswith("/") or not 1 < len(addr) <= MAX_ADDR_CHARS \
                or "/p2p/" in addr:
            raise ProtocolViolation("An address in the address record is malformed.")
    seq, expires = value["seq"], value["expires"]
    if type(seq) is not int or type(expires) is not int or seq < 0 or expires < seq:
        raise ProtocolViolation("The address record's times are not counts.")
    if expires - seq > MAX_TTL_MS:
        raise ProtocolViolation("The address record claims to be valid for too long.")
    if seq > now + MAX_SKEW_MS:
        raise ProtocolViolation("The address record was made in the future.")
    if expires <= now:
        raise ProtocolViolation("The address record has expired.")
    if type(sig) is not bytes or len(sig) != 64:
        raise ProtocolViolation("The address record's signature is malformed.")
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    try:
        nacl.bindings.crypto_sign_open(sig + DOMAIN + dagcbor.encode(unsigned), peer)
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise ProtocolViolation("The address record's signature does not verify.") from None
    return AddressRecord(commons, peer, tuple(addrs), seq, expires, bytes(data))


class AddressBook:
    """The newest valid record per (commons, peer), bounded per commons."""

    def __init__(self) -> None:
        self._records: dict[CID, dict[bytes, AddressRecord]] = {}

    def offer(self, record: AddressRecord, *, now: int | None = None) -> bool:
        """Keep ``record`` if it is newer than what we have; whether it was new."""
        now = now_ms() if now is None else now
        if record.expires <= now:
            return False
        book = self._records.setdefault(record.commons, {})
        old = book.get(record.peer)
        if old is not None and old.seq >= record.seq:
            return False
        book[record.peer] = record
        if len(book) > MAX_RECORDS:
            self.expire(now)
            while len(book) > MAX_RECORDS:
                del book[min(book, key=lambda k: (book[k].expires, k))]
        return record.peer in book

    def records(self, commons: CID, *, now: int | None = None) -> list[AddressRecord]:
        now = now_ms() if now is None else now
        return sorted((r for r in self._records.get(commons, {}).values() if r.expires > now),
                      key=lambda r: r.peer)

    def all(self, *, now: int | None = None) -> list[AddressRecord]:
        return [r for c in sorted(self._records, key=lambda c: c.raw) for r in self.records(c, now=now)]

    def peers(self, *, now: int | None = None) -> dict[bytes, list[AddressRecord]]:
        """Every peer with a live record, and its records (one per commons)."""
        out: dict[bytes, list[AddressRecord]] = {}
        for record in self.all(now=now):
            out.setdefault(record.peer, []).append(record)
        return out

    def expire(self, now: int | None = None) -> None:
        now = now_ms() if now is None else now
        for commons in list(self._records):
            book = self._records[commons]
            for peer in [p for p, r in book.items() if r.expires <= now]:
                del book[peer]
            if not book:
                del self._records[commons]

    def dump(self, *, now: int | None = None) -> list[str]:
        """The live raw records as hex, for ``known.json``."""
        return [r.raw.hex() for r in self.all(now=now)]

    def load(self, items: list[Any], *, now: int | None = None) -> int:
        """Records from ``known.json``, each checked again (a damaged one is skipped)."""
        count = 0
        for item in items[: MAX_RECORDS * 64]:
            try:
                record = decode_record(bytes.fromhex(str(item)), now=now)
            except (ProtocolViolation, ValueError):
                continue
            count += self.offer(record, now=now)
        return count


def encode_exchange(records: list[AddressRecord]) -> bytes:
    """One message of the exchange protocol: ``{records: [record bytes, …]}``."""
    return dagcbor.encode({"records": [r.raw for r in records[:MAX_RECORDS]]})


def decode_exchange(data: bytes, *, now: int | None = None) -> list[AddressRecord]:
    """Check an exchange message; invalid records inside it are skipped (they may have
    expired in flight), a malformed message is a :class:`ProtocolViolation`."""
    try:
        value = dagcbor.decode(data)
    except InvalidEntry:
        raise ProtocolViolation("The address exchange message is not canonical DAG-CBOR.") from None
    if type(value) is not dict or set(value) != {"records"} or type(value["records"]) is not list \
            or len(value["records"]) > MAX_RECORDS:
        raise ProtocolViolation("The address exchange message has the wrong shape.")
    out = []
    for raw in value["records"]:
        if type(raw) is not bytes:
            raise ProtocolViolation("An exchanged address record is not bytes.")
        try:
            out.append(decode_record(raw, now=now))
        except ProtocolViolation:
            continue
    return out


MAX_EXCHANGE_BYTES = MAX_RECORDS * MAX_RECORD_BYTES + 16

__all__ = [
    "AddressBook", "AddressRecord", "decode_exchange", "decode_record", "encode_exchange", "make_record",
]
