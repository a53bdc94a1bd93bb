"""Gossip announcements (``protocols/gossip.md``): the topic, the message id and the
announcement's codec, as pure functions.

The node (``p2pcommons/node/daemon.py``) chooses what to announce from its store, publishes
on py-libp2p's GossipSub and applies what it receives; everything a peer can get wrong in a
message's bytes is checked here and raises :class:`~p2pcommons.errors.ProtocolViolation`
(or :class:`~p2pcommons.errors.InvalidEntry` for a carried entry), so the format can be
tested and reused without a store or a network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import MAX_ENTRY_BYTES, decode_entry
from p2pcommons.errors import InvalidEntry, ProtocolViolation

TOPIC_PREFIX = "/p2pcommons/commons/"
MAX_GOSSIP_BYTES = 256 * 1024
MAX_GOSSIP_ENTRIES = 32
MAX_GOSSIP_HEADS = 256

Head = tuple[bytes, int, CID]  # (author, seq, entry id)


def topic_of(commons: CID) -> str:
    """The commons' pubsub topic (§1)."""
    return TOPIC_PREFIX + str(commons)


def message_id(data: bytes) -> bytes:
    """Content-addressed message ids (§2): one announcement relayed by many peers is one message."""
    return hashlib.sha256(data).digest()


def encode_announcement(commons: CID, heads: Sequence[Head], entries: Sequence[bytes]) -> bytes:
    """The announcement (§3): the heads in (author, seq, id) order, at most
    ``MAX_GOSSIP_HEADS`` of them, and the carried entries as given."""
    ordered = sorted(heads, key=lambda head: (head[0], head[1], head[2].raw))[:MAX_GOSSIP_HEADS]
    return dagcbor.encode({
        "commons": commons,
        "heads": [[author, seq, entry_id] for author, seq, entry_id in ordered],
        "entries": list(entries),
    })


def decode_announcement(data: bytes, commons: CID, *, verify: bool) -> tuple[list[Head], list[bytes]]:
    """Check a gossip message; ``verify`` also checks every entry's signature (gossiped
    entries are verified one by one, DESIGN.md §5)."""
    if len(data) > MAX_GOSSIP_BYTES:
        raise ProtocolViolation("The gossip message is too large.")
    try:
        value = dagcbor.decode(data)
    except InvalidEntry:
        raise ProtocolViolation("The gossip message is not canonical DAG-CBOR.") from None
    if type(value) is not dict or set(value) != {"commons", "heads", "entries"}:
        raise ProtocolViolation("The gossip message has the wrong fields.")
    if dagcbor.link(value["commons"]) != commons:
        raise ProtocolViolation("The gossip message names another commons than its topic.")
    heads_in, entries_in = value["heads"], value["entries"]
    if type(heads_in) is not list or len(heads_in) > MAX_GOSSIP_HEADS:
        raise ProtocolViolation("The gossip message's heads are not a short list.")
    if type(entries_in) is not list or len(entries_in) > MAX_GOSSIP_ENTRIES + 1:
        raise ProtocolViolation("The gossip message carries too many entries.")
    heads = []
    for item in heads_in:
        if (type(item) is not list or len(item) != 3 or type(item[0]) is not bytes or len(item[0]) != 32
                or type(item[1]) is not int or item[1] < 1):
            raise ProtocolViolation("A gossiped head is not [author, seq, id].")
        heads.append((item[0], item[1], dagcbor.link(item[2])))
    entries = []
    for raw in entries_in:
        if type(raw) is not bytes or len(raw) > MAX_ENTRY_BYTES:
            raise ProtocolViolation("A gossiped entry is not an entry.")
        if verify:
            entry = decode_entry(raw)
            if entry.commons_id != commons:
                raise ProtocolViolation("A gossiped entry belongs to another commons.")
            entry.verify_signature()
        entries.append(raw)
    return heads, entries
