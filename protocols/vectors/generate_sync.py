"""Generate the ``/p2pcommons/sync/1`` test vectors (``sync-*.json``) deterministically.

Run from the repository root: ``python protocols/vectors/generate_sync.py``.  Keys come
from fixed seeds and timestamps are fixed, and Ed25519 signatures are deterministic, so
the output is byte-identical on every run; tests/test_sync_vectors.py checks both that the
implementation reproduces these bytes and that it parses them to the recorded events.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.ingest import Ingestor
from p2pcommons.node import memory
from p2pcommons.protocols import sync
from p2pcommons.store import Store

HERE = Path(__file__).resolve().parent
WINDOW = 4 * 1024 * 1024  # fixed here so the vectors do not move with the implementation default


def signer(label: str) -> Signer:
    return Signer(hashlib.sha256(f"sync-vector-{label}".encode()).digest())


def history() -> tuple[Entry, list[Entry]]:
    alice, bob = signer("alice"), signer("bob")
    genesis = sign_entry(alice, commons=None, seq=1, prev=None, kind="genesis", body={"name": "vectors"},
                         timestamp=1_700_000_000_000)
    e2 = sign_entry(alice, commons=genesis.id, seq=2, prev=genesis.id, kind="contribution",
                    body={"title": "map of the spring", "kind": "work", "value": 3}, timestamp=1_700_000_001_000)
    b1 = sign_entry(bob, commons=genesis.id, seq=1, prev=None, kind="join", body={"name": "bob"},
                    deps=[e2.id], timestamp=1_700_000_002_000)
    b2 = sign_entry(bob, commons=genesis.id, seq=2, prev=b1.id, kind="contribution",
                    body={"title": "fence repair", "kind": "work", "value": 1}, timestamp=1_700_000_003_000)
    return genesis, [e2, b1, b2]


def frames() -> list[dict[str, Any]]:
    genesis, rest = history()
    alice, bob = signer("alice").public_key, signer("bob").public_key
    summary = sync.Summary(genesis.id, ((alice, 2, rest[0].id), (bob, 2, rest[2].id)), ((bob, 1),))
    batch_entries = [genesis.raw, rest[0].raw]
    out = [
        {"name": "hello", "type": sync.HELLO, "fields": {"v": 1, "window": WINDOW},
         "hex": sync.frame(sync.HELLO, dagcbor.encode({"v": 1, "window": WINDOW})).hex()},
        {"name": "summary", "type": sync.SUMMARY,
         "fields": {"commons": str(genesis.id),
                    "heads": sorted([[alice.hex(), 2, str(rest[0].id)], [bob.hex(), 2, str(rest[2].id)]]),
                    "forks": [[bob.hex(), 1]]},
         "hex": sync.frame(sync.SUMMARY, summary.encode()).hex()},
        {"name": "summary-want", "type": sync.SUMMARY, "fields": {"commons": str(genesis.id), "heads": [], "forks": []},
         "hex": sync.frame(sync.SUMMARY, sync.Summary(genesis.id).encode()).hex()},
        *summary_pages(),
        {"name": "summaries-end", "type": sync.SUMMARIES_END, "fields": {},
         "hex": sync.frame(sync.SUMMARIES_END).hex()},
        {"name": "totals", "type": sync.TOTALS, "fields": {"entries": 2, "bytes": sum(map(len, batch_entries))},
         "hex": sync.frame(sync.TOTALS, dagcbor.encode({"entries": 2, "bytes": sum(map(len, batch_entries))})).hex()},
        {"name": "batch", "type": sync.BATCH,
         "fields": {"commons": str(genesis.id), "entries": [e.hex() for e in batch_entries]},
         "hex": sync.frame(sync.BATCH, sync.encode_batch_body(genesis.id, batch_entries)).hex()},
        {"name": "ack", "type": sync.ACK, "fields": {"bytes": 300},
         "hex": sync.frame(sync.ACK, sync.encode_uvarint(300)).hex()},
        {"name": "done", "type": sync.DONE, "fields": {}, "hex": sync.frame(sync.DONE).hex()},
        {"name": "stop", "type": sync.STOP, "fields": {"reason": "shutting down"},
         "hex": sync.frame(sync.STOP, dagcbor.encode({"reason": "shutting down"})).hex()},
    ]
    return out


def summary_pages() -> list[dict[str, Any]]:
    """One summary of three heads sent as two pages (2 + 1 heads): a summary of any size
    crosses the wire as consecutive SUMMARY frames of one commons, heads continuing in
    order (this implementation fills pages of 4096; any split is valid)."""
    genesis, rest = history()
    alice, bob, carol = signer("alice").public_key, signer("bob").public_key, signer("carol").public_key
    heads = sorted([(alice, 2, rest[0].id), (bob, 2, rest[2].id), (carol, 1, rest[1].id)],
                   key=lambda h: (h[0], h[1], h[2].raw))
    pages = sync.Summary(genesis.id, tuple(heads)).pages(items=2)
    return [{"name": f"summary-page-{n}", "type": sync.SUMMARY,
             "fields": {"commons": str(genesis.id), "heads": [[a.hex(), s, str(i)] for a, s, i in page.heads],
                        "forks": []},
             "hex": sync.frame(sync.SUMMARY, page.encode()).hex()} for n, page in enumerate(pages, 1)]


def session() -> dict[str, Any]:
    """A whole session: the initiator holds the genesis and Alice's seq 2; the responder
    holds everything but Alice's seq 2.  Each side ends up with the union."""
    genesis, (e2, b1, b2) = history()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Store(Path(tmp) / "a.sqlite"), Store(Path(tmp) / "b.sqlite")
        try:
            Ingestor(a).add_batch([genesis.raw, e2.raw])
            Ingestor(b).add_batch([genesis.raw, b1.raw, b2.raw])
            x = memory.Side(a, sync.SyncSession(initiator=True, window=sync.MIN_WINDOW))
            y = memory.Side(b, sync.SyncSession(initiator=False, window=sync.MIN_WINDOW))
            streams = {"initiator": bytearray(), "responder": bytearray()}
            for side, name in ((x, "initiator"), (y, "responder")):
                original = side.session.data_to_send

                def recording(original: Any = original, name: str = name) -> bytes:
                    data: bytes = original()
                    streams[name] += data
                    return data

                side.session.data_to_send = recording  # type: ignore[method-assign]
            assert memory.run(x, y, rng=random.Random(0))
            assert a.count() == b.count() == 4
        finally:
            a.close()
            b.close()
    return {
        "description": "Initiator holds genesis + alice#2; responder holds genesis + bob#1, bob#2. "
                       "Windows are 65536 bytes; batches are packed up to 4096 entry bytes.",
        "entries": {"genesis": genesis.raw.hex(), "alice2": e2.raw.hex(), "bob1": b1.raw.hex(), "bob2": b2.raw.hex()},
        "initiator_holds": ["genesis", "alice2"],
        "responder_holds": ["genesis", "bob1", "bob2"],
        "initiator_to_responder": bytes(streams["initiator"]).hex(),
        "responder_to_initiator": bytes(streams["responder"]).hex(),
    }


def invalid() -> list[dict[str, Any]]:
    genesis, _ = history()
    hello = sync.frame(sync.HELLO, dagcbor.encode({"v": 1, "window": WINDOW}))
    cases = [
        ("empty-frame", b"\x00", "empty"),
        ("oversize-frame", sync.encode_uvarint(sync.MAX_FRAME + 1), "exceeds the limit"),
        ("varint-too-long", b"\xff\xff\xff\xff", "too long"),
        ("non-minimal-varint", b"\x81\x00", "minimally"),
        ("first-frame-not-hello", sync.frame(sync.SUMMARIES_END), "first frame must be HELLO"),
        ("unknown-type", hello + sync.frame(0x7F), "Unknown frame type"),
        ("wrong-version", sync.frame(sync.HELLO, dagcbor.encode({"v": 2, "window": WINDOW})),
         "version"),
        ("window-too-small", sync.frame(sync.HELLO, dagcbor.encode({"v": 1, "window": 1024})), "below the minimum"),
        ("hello-twice", hello + hello, "twice"),
        ("non-canonical-cbor", sync.frame(sync.HELLO, bytes.fromhex("a2667769")), "CBOR"),
        ("summary-unsorted-heads", hello + sync.frame(sync.SUMMARY, dagcbor.encode({
            "commons": genesis.id, "forks": [],
            "heads": [[b"\x02" * 32, 1, genesis.id], [b"\x01" * 32, 1, genesis.id]]})), "sorted"),
        ("summary-twice", hello + sync.frame(sync.SUMMARY, sync.Summary(genesis.id).encode()) * 2, "twice"),
        ("summary-page-out-of-order", hello + b"".join(bytes.fromhex(p["hex"]) for p in reversed(summary_pages())),
         "twice"),
        ("summary-page-not-consecutive", hello + bytes.fromhex(summary_pages()[0]["hex"])
         + sync.frame(sync.SUMMARY, sync.Summary(CID.of(b"another commons")).encode())
         + bytes.fromhex(summary_pages()[1]["hex"]), "twice"),
        ("totals-before-summaries", hello + sync.frame(sync.TOTALS, dagcbor.encode({"entries": 0, "bytes": 0})),
         "before both sides"),
        ("batch-before-totals", hello + sync.frame(sync.BATCH, sync.encode_batch_body(genesis.id, [genesis.raw])),
         "outside TOTALS"),
        ("ack-unsent", hello + sync.frame(sync.ACK, sync.encode_uvarint(5)), "never sent"),
        ("done-body", hello + sync.frame(sync.DONE, b"\x00"), "no body"),
        # (an end of stream inside a frame is not a violation: a dropped link looks the same, §3)
        # "non-canonical-cbor" above is cut-short CBOR; these are well-formed but not canonical
        ("non-canonical-int", sync.frame(sync.HELLO, bytes.fromhex("a26176180166") + b"window"
                                         + dagcbor.encode(WINDOW)), "not the canonical DAG-CBOR encoding"),
        ("non-canonical-key-order", sync.frame(sync.HELLO, bytes.fromhex("a266") + b"window" + dagcbor.encode(WINDOW)
                                               + bytes.fromhex("617601")), "keys are not in canonical"),
    ]
    return [{"name": n, "role": "responder", "hex": data.hex(), "eof": False, "error": e}
            for n, data, e in cases]


def main() -> None:
    outputs = {
        "sync-frames.json": {"description": "One of each /p2pcommons/sync/1 frame: uvarint(length) type body.",
                             "frames": frames()},
        "sync-session.json": session(),
        "sync-invalid.json": {"description": "Byte strings a fresh responder must reject with ProtocolViolation "
                                             "(error: a substring of the message).", "cases": invalid()},
    }
    check = "--check" in sys.argv
    for name, data in outputs.items():
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        path = HERE / name
        if check:
            if path.read_text() != text:
                raise SystemExit(f"{name} is out of date")
        else:
            path.write_text(text)


if __name__ == "__main__":
    main()
