"""Generate the gossip test vectors (``gossip.json``, see ``protocols/gossip.md``).

    python protocols/vectors/generate_gossip.py           # rewrite gossip.json next to this script
    python protocols/vectors/generate_gossip.py --check   # exit 1 if it is not what this would write

Deterministic (fixed seeds and timestamps; Ed25519 signatures are deterministic).  The
announcements are built by the daemon's own ``_announcement`` from a real store, the signed
pubsub message with py-libp2p's own protobuf and key classes, and every invalid case is
checked against ``decode_announcement`` while generating; ``tests/test_gossip_vectors.py``
checks them again.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from p2pcommons import dagcbor
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.errors import InvalidEntry, ProtocolViolation
from p2pcommons.identity import peer_id_text
from p2pcommons.ingest import Ingestor
from p2pcommons.node.daemon import _announcement
from p2pcommons.protocols.gossip import MAX_GOSSIP_BYTES, decode_announcement, topic_of
from p2pcommons.store import Store

HERE = Path(__file__).resolve().parent
ALICE, BOB = bytes(range(32)), bytes(range(32, 64))  # "alice" and "bob" of entries.json
T0 = 1_700_000_000_000


def history() -> tuple[Entry, list[Entry]]:
    alice, bob = Signer(ALICE), Signer(BOB)
    genesis = sign_entry(alice, commons=None, seq=1, prev=None, kind="genesis", body={"name": "gossip vectors"},
                         timestamp=T0)
    a2 = sign_entry(alice, commons=genesis.id, seq=2, prev=genesis.id, kind="contribution",
                    body={"title": "seed swap notes"}, timestamp=T0 + 1000)
    b1 = sign_entry(bob, commons=genesis.id, seq=1, prev=None, kind="join", body={"name": "bob"},
                    deps=[a2.id], timestamp=T0 + 2000)
    return genesis, [a2, b1]


def announcements() -> list[dict[str, Any]]:
    genesis, (a2, b1) = history()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "g.sqlite")
        try:
            Ingestor(store).add_batch([genesis.raw, a2.raw, b1.raw])
            cases = [
                ("new-entries", "Alice's node announces after a write: the heads that moved since its last "
                 "announcement (it had announced Alice at seq 1 and nothing of Bob) and those entries.",
                 {Signer(ALICE).public_key: 1}),
                ("first", "A first announcement (nothing announced before): every head, and all three entries.",
                 {}),
            ]
            for name, description, last in cases:
                data, _seqs = _announcement(store, genesis.id, last)
                assert data is not None
                heads, entries = decode_announcement(data, genesis.id, verify=True)
                out.append({
                    "name": name, "description": description, "topic": topic_of(genesis.id),
                    "fields": {"commons": str(genesis.id),
                               "heads": [[a.hex(), s, str(c)] for a, s, c in heads],
                               "entries": [e.hex() for e in entries]},
                    "data_hex": data.hex(), "message_id_hex": hashlib.sha256(data).hexdigest(),
                })
        finally:
            store.close()
    return out


def invalid() -> list[dict[str, Any]]:
    genesis, (a2, _b1) = history()
    g = genesis.id
    other = sign_entry(Signer(BOB), commons=None, seq=1, prev=None, kind="genesis", body={"name": "other"},
                       timestamp=T0)
    author = Signer(ALICE).public_key
    head: list[Any] = [author, 2, a2.id]

    def msg(**fields: Any) -> bytes:
        value: dict[str, Any] = {"commons": g, "heads": [head], "entries": []}
        value.update(fields)
        return dagcbor.encode(value)

    bad_sig = bytearray(a2.raw)
    bad_sig[a2.raw.index(a2.sig)] ^= 0x01
    good = msg()
    cases = [
        ("too-large", msg(entries=[b"\x00" * 60_000] * 5), "too large"),
        ("not-canonical", good.replace(b"\x65heads", b"\x78\x05heads"), "not canonical"),
        ("not-cbor", good[:-1], "not canonical"),
        ("wrong-fields", dagcbor.encode({"commons": g, "heads": [head]}), "wrong fields"),
        ("other-commons", msg(commons=other.id), "another commons than its topic"),
        ("too-many-heads", msg(heads=[head] * 257), "heads are not a short list"),
        ("too-many-entries", msg(entries=[a2.raw] * 34), "too many entries"),
        ("head-seq-zero", msg(heads=[[author, 0, a2.id]]), "not [author, seq, id]"),
        ("head-short-author", msg(heads=[[author[:31], 2, a2.id]]), "not [author, seq, id]"),
        ("entry-not-bytes", msg(entries=[a2.raw.hex()]), "not an entry"),
        ("entry-malformed", msg(entries=[a2.raw + b"\x00"]), "TrailingBytes"),
        ("entry-other-commons", msg(entries=[other.raw]), "belongs to another commons"),
        ("entry-bad-signature", msg(entries=[bytes(bad_sig)]), "BadSignature"),
    ]
    out = []
    for name, data, error in cases:
        try:
            decode_announcement(data, g, verify=True)
        except (ProtocolViolation, InvalidEntry) as exc:
            got = f"{type(exc).__name__}: {exc}"
            assert error in got, (name, got)
        else:
            raise AssertionError(f"gossip vector {name} is accepted")
        out.append({"name": name, "topic": topic_of(g), "data_hex": data.hex(), "error": error})
    assert len(msg(entries=[b"\x00" * 60_000] * 5)) > MAX_GOSSIP_BYTES
    return out


def signed_message() -> dict[str, Any]:
    """One pubsub message as a StrictSign node publishes it (py-libp2p's own classes)."""
    from libp2p.crypto.ed25519 import Ed25519PrivateKey
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX, signature_validator

    genesis, _ = history()
    data = announcements()[0]["data_hex"]
    private = Ed25519PrivateKey.from_bytes(ALICE)
    public = private.get_public_key()
    from_id = bytes.fromhex("0024080112 20".replace(" ", "")) + Signer(ALICE).public_key
    msg = rpc_pb2.Message(data=bytes.fromhex(data), topicIDs=[topic_of(genesis.id)], from_id=from_id,
                          seqno=(1).to_bytes(8, "big"))
    signing_input = PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString()
    msg.signature = private.sign(signing_input)
    msg.key = public.serialize()
    assert signature_validator(msg)
    return {
        "description": "The first message a StrictSign node with Alice's key publishes on the topic: from = her "
                       "peer id's bytes, seqno = 1 as 8 bytes big-endian, signature over 'libp2p-pubsub:' and the "
                       "protobuf Message without signature and key.",
        "peer_id": peer_id_text(Signer(ALICE).public_key),
        "seed": ALICE.hex(),
        "from_hex": from_id.hex(),
        "seqno_hex": msg.seqno.hex(),
        "topic": topic_of(genesis.id),
        "data_hex": data,
        "signing_input_hex": signing_input.hex(),
        "signature_hex": msg.signature.hex(),
        "key_hex": msg.key.hex(),
        "message_hex": msg.SerializeToString().hex(),
        "message_id_hex": hashlib.sha256(bytes.fromhex(data)).hexdigest(),
    }


def document() -> dict[str, Any]:
    return {
        "format": "p2pcommons gossip test vectors, version 1",
        "spec": "protocols/gossip.md",
        "generator": "protocols/vectors/generate_gossip.py",
        "announcements": announcements(),
        "invalid": invalid(),
        "signed_message": signed_message(),
    }


def render() -> str:
    return json.dumps(document(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    path = HERE / "gossip.json"
    text = render()
    if "--check" in argv:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print("out of date: gossip.json", file=sys.stderr)
            return 1
        print("checked gossip.json")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
