"""The sync implementation against the byte-exact vectors in protocols/vectors/sync-*.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from p2pcommons import dagcbor
from p2pcommons.errors import ProtocolViolation
from p2pcommons.protocols import sync

VECTORS = Path(__file__).resolve().parent.parent / "protocols" / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_sync", VECTORS / "generate_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos < len(data):
        decoded = sync.decode_uvarint(data, pos, limit=3)
        assert decoded is not None
        length, pos = decoded
        out.append((data[pos], data[pos + 1:pos + length]))
        pos += length
    return out


def test_frames_match_the_implementation() -> None:
    recorded = load("sync-frames.json")["frames"]
    assert recorded == json.loads(json.dumps(generator().frames()))
    for vector in recorded:
        ((kind, body),) = split_frames(bytes.fromhex(vector["hex"]))
        assert kind == vector["type"]
        fields = vector["fields"]
        if kind == sync.SUMMARY:
            summary = sync.decode_summary(body)
            assert str(summary.commons) == fields["commons"]
            assert [[a.hex(), s, str(i)] for a, s, i in summary.heads] == fields["heads"]
            assert [[a.hex(), s] for a, s in summary.forks] == fields["forks"]
        elif kind == sync.BATCH:
            batch = sync.decode_batch_body(body)
            assert str(batch.commons) == fields["commons"]
            assert [e.hex() for e in batch.entries] == fields["entries"]
        elif kind == sync.ACK:
            assert sync.decode_uvarint(body, 0) == (fields["bytes"], len(body))
        elif kind in (sync.HELLO, sync.TOTALS, sync.STOP):
            assert dagcbor.decode(body) == fields
        else:
            assert body == b"" and fields == {}


def test_session_transcript_is_reproduced() -> None:
    recorded = load("sync-session.json")
    assert recorded == generator().session()
    to_responder = [k for k, _ in split_frames(bytes.fromhex(recorded["initiator_to_responder"]))]
    to_initiator = [k for k, _ in split_frames(bytes.fromhex(recorded["responder_to_initiator"]))]
    for kinds in (to_responder, to_initiator):
        assert kinds[0] == sync.HELLO
        assert kinds.index(sync.SUMMARIES_END) < kinds.index(sync.TOTALS) < kinds.index(sync.DONE)
        assert all(k in (sync.ACK,) for k in kinds[kinds.index(sync.DONE) + 1:])
    # each side sends the one entry the other lacks (responder: two)
    assert to_responder.count(sync.BATCH) == 1 and to_initiator.count(sync.BATCH) == 1


def test_transcript_parses_to_a_complete_session() -> None:
    recorded = load("sync-session.json")
    # The responder's ACKs acknowledge the initiator's batch, which this lone initiator
    # never sends: replay every other frame.
    data = b"".join(sync.frame(k, body) for k, body in split_frames(bytes.fromhex(recorded["responder_to_initiator"]))
                    if k != sync.ACK)
    init = sync.SyncSession(initiator=True, window=sync.MIN_WINDOW)
    hello_and_summaries = split_frames(bytes.fromhex(recorded["initiator_to_responder"]))
    summary = sync.decode_summary(hello_and_summaries[1][1])
    init.start([summary])
    init.receive_data(data)
    events = []
    while (event := init.next_event()) is not sync.NEED_DATA:
        events.append(type(event).__name__)
        if isinstance(event, sync.Batch):
            init.ack(event.nbytes)
    assert events[:3] == ["Hello", "PeerSummary", "SummariesEnd"]
    assert "Totals" in events and "Batch" in events and "PeerDone" in events
    assert init.caught_up


def test_invalid_cases_are_current() -> None:
    assert load("sync-invalid.json")["cases"] == json.loads(json.dumps(generator().invalid()))


def test_non_canonical_bodies_are_well_formed_cbor() -> None:
    """The non-canonical-* cases decode as CBOR and differ from the canonical encoding only
    in form (sync.md §2): a parser must re-encode and compare, not just decode."""
    import cbor2

    cases = {c["name"]: c for c in load("sync-invalid.json")["cases"]}
    for name in ("non-canonical-int", "non-canonical-key-order"):
        ((kind, body),) = split_frames(bytes.fromhex(cases[name]["hex"]))
        assert kind == sync.HELLO
        value = cbor2.loads(body)
        assert value == {"v": 1, "window": 4 * 1024 * 1024}
        assert dagcbor.encode(value) != body


@pytest.mark.parametrize("case", load("sync-invalid.json")["cases"], ids=lambda c: c["name"])
def test_invalid_bytes_are_protocol_violations(case: dict[str, Any]) -> None:
    session = sync.SyncSession(initiator=case["role"] == "initiator")
    with pytest.raises(ProtocolViolation, match=case["error"]):
        session.receive_data(bytes.fromhex(case["hex"]))
        if case["eof"]:
            session.receive_data(b"")
        for _ in range(100):
            if session.next_event() is sync.NEED_DATA:
                break


def test_send_order_is_as_sync_md_says(tmp_path: Path) -> None:
    """sync.md §4: the genesis author's segment goes first only when its range starts at seq 1;
    otherwise segments follow author key order (why sync-session.json sends bob1, bob2, genesis)."""
    from p2pcommons.ingest import Ingestor
    from p2pcommons.node import replica
    from p2pcommons.store import Store

    genesis, (e2, b1, b2) = generator().history()
    assert b1.author < genesis.author  # Bob's key sorts first: the order below is not key order by chance
    with Store(tmp_path / "s.sqlite") as store:
        Ingestor(store).add_batch([genesis.raw, e2.raw, b1.raw, b2.raw])
        # a peer that holds nothing: the genesis author's whole log first, then Bob's
        empty = replica.plan(store, genesis.id, sync.Summary(genesis.id))
        sent = [raw for batch in replica.batches(store, empty) for raw in batch]
        assert sent == [genesis.raw, e2.raw, b1.raw, b2.raw]
        # a peer whose log of Alice is longer (it holds her seq 3): Alice's head (seq 2) goes as
        # her segment's extra entry, after Bob's segment, in key order
        ahead = sync.Summary(genesis.id, ((genesis.author, 3, e2.id),))
        sent = [raw for batch in replica.batches(store, replica.plan(store, genesis.id, ahead)) for raw in batch]
        assert sent == [b1.raw, b2.raw, e2.raw]


def test_a_peer_that_holds_nothing_gets_parents_before_the_entries_naming_them(tmp_path: Path) -> None:
    """sync.md §4: log ranges are merged by clock, so a receiver stores a commons whose
    authors name each other's entries parents first, placing every entry as it is stored
    (one author's whole log after another brought most entries before their parents, each
    then stored as waiting and placed again: about four times the receiver's store CPU)."""
    from p2pcommons.ingest import Ingestor
    from p2pcommons.node import replica
    from p2pcommons.store import Store

    from .support.histories import linear_history

    history = linear_history(4, 300)  # each entry names the previous author's latest entry
    genesis = history[0]
    with Store(tmp_path / "a.sqlite") as store:
        Ingestor(store).add_batch([e.raw for e in history])
        sent = [raw for batch in replica.batches(store, replica.plan(store, genesis.id, sync.Summary(genesis.id)))
                for raw in batch]
    assert sorted(sent) == sorted(e.raw for e in history)
    # The receiver stores batch after batch: an entry waits only if a parent is in a later
    # batch, which the merge allows only within one window of clocks at a batch's end.
    waited = 0
    with Store(tmp_path / "b.sqlite") as receiver:
        Ingestor(receiver).add_batch([genesis.raw])
        for start in range(0, len(sent), 500):
            Ingestor(receiver, commons=genesis.id).add_batch(sent[start:start + 500])
            waited = max(waited, len(receiver.waiting_ids()))
        assert receiver.waiting_ids() == set()
    assert waited <= replica.MERGE_WINDOW
