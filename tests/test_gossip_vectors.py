"""Gossip against the byte-exact vectors in protocols/vectors/gossip.json (protocols/gossip.md)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nacl.bindings
import pytest

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.errors import InvalidEntry, ProtocolViolation
from p2pcommons.node.daemon import _message_id
from p2pcommons.protocols.gossip import decode_announcement, message_id, topic_of

VECTORS = Path(__file__).resolve().parent.parent / "protocols" / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "gossip.json").read_text(encoding="utf-8"))


def test_vectors_are_current() -> None:
    spec = importlib.util.spec_from_file_location("p2pc_generate_gossip", VECTORS / "generate_gossip.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert (VECTORS / "gossip.json").read_text(encoding="utf-8") == module.render()
    finally:
        del sys.modules[spec.name]


@pytest.mark.parametrize("vector", DOC["announcements"], ids=lambda v: v["name"])
def test_announcement(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    commons = CID.parse(fields["commons"])
    data = bytes.fromhex(vector["data_hex"])
    assert vector["topic"] == topic_of(commons) == "/p2pcommons/commons/" + fields["commons"]
    rebuilt = dagcbor.encode({
        "commons": commons,
        "heads": [[bytes.fromhex(a), s, CID.parse(c)] for a, s, c in fields["heads"]],
        "entries": [bytes.fromhex(e) for e in fields["entries"]],
    })
    assert rebuilt == data
    heads, entries = decode_announcement(data, commons, verify=True)
    assert [[a.hex(), s, str(c)] for a, s, c in heads] == fields["heads"]
    assert [e.hex() for e in entries] == fields["entries"]
    assert message_id(data).hex() == vector["message_id_hex"] == hashlib.sha256(data).hexdigest()
    assert _message_id(SimpleNamespace(data=data)) == message_id(data)  # what the node hands GossipSub


@pytest.mark.parametrize("vector", DOC["invalid"], ids=lambda v: v["name"])
def test_invalid_announcement(vector: dict[str, Any]) -> None:
    commons = CID.parse(vector["topic"].removeprefix("/p2pcommons/commons/"))
    with pytest.raises((ProtocolViolation, InvalidEntry)) as caught:
        decode_announcement(bytes.fromhex(vector["data_hex"]), commons, verify=True)
    assert vector["error"] in f"{type(caught.value).__name__}: {caught.value}"


def test_signed_message_is_strict_sign() -> None:
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.validators import signature_validator

    vector = DOC["signed_message"]
    msg = rpc_pb2.Message()
    msg.ParseFromString(bytes.fromhex(vector["message_hex"]))
    assert msg.from_id.hex() == vector["from_hex"] and msg.seqno.hex() == vector["seqno_hex"]
    assert list(msg.topicIDs) == [vector["topic"]] and msg.data.hex() == vector["data_hex"]
    assert msg.key.hex() == vector["key_hex"] == "08011220" + vector["from_hex"][12:]
    unsigned = rpc_pb2.Message(data=msg.data, topicIDs=msg.topicIDs, from_id=msg.from_id, seqno=msg.seqno)
    signing_input = b"libp2p-pubsub:" + unsigned.SerializeToString()
    assert signing_input.hex() == vector["signing_input_hex"]
    nacl.bindings.crypto_sign_open(msg.signature + signing_input, msg.from_id[6:])  # raises if it does not verify
    assert signature_validator(msg)
    # py-libp2p, as the daemon runs it, drops an unsigned message and a tampered one
    msg.signature = b""
    assert not signature_validator(msg)
    msg.signature = bytes.fromhex(vector["signature_hex"])
    msg.data = msg.data + b"\x00"
    assert not signature_validator(msg)
