"""Address records (protocols/addresses.md): vectors, and properties of signing, checking
and keeping them (hypothesis; example counts from the loaded profile, tests/conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.errors import ProtocolViolation
from p2pcommons.node import addresses as rec

VECTORS = Path(__file__).resolve().parent.parent / "protocols" / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "addresses.json").read_text(encoding="utf-8"))
T0 = 1_700_000_000_000


def test_vectors_are_current() -> None:
    spec = importlib.util.spec_from_file_location("p2pc_generate_addresses", VECTORS / "generate_addresses.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert (VECTORS / "addresses.json").read_text(encoding="utf-8") == module.render()
    finally:
        del sys.modules[spec.name]


@pytest.mark.parametrize("vector", DOC["valid"], ids=lambda v: v["name"])
def test_valid_vector(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["record_hex"])
    record = rec.decode_record(raw, now=vector["now"])
    fields = vector["fields"]
    assert (str(record.commons), record.peer.hex(), record.peer_id()) == (fields["commons"], fields["peer"],
                                                                          fields["peer_id"])
    assert (list(record.addrs), record.seq, record.expires) == (fields["addrs"], fields["seq"], fields["expires"])
    unsigned = {k: v for k, v in dagcbor.decode(raw).items() if k != "sig"}
    assert rec.DOMAIN + dagcbor.encode(unsigned) == bytes.fromhex(vector["signing_input_hex"])


@pytest.mark.parametrize("vector", DOC["invalid"], ids=lambda v: v["name"])
def test_invalid_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(ProtocolViolation, match=vector["error"]):
        rec.decode_record(bytes.fromhex(vector["record_hex"]), now=vector["now"])


addr_text = st.builds(lambda a, b, p: f"/ip4/10.{a}.{b}.1/tcp/{p}", st.integers(0, 255), st.integers(0, 255),
                      st.integers(1, 65535))
seeds = st.binary(min_size=32, max_size=32)


@given(seed=seeds, addrs=st.lists(addr_text, max_size=12), seq=st.integers(0, 2**48),
       ttl=st.integers(1, rec.MAX_TTL_MS * 2))
def test_a_made_record_verifies_and_round_trips(seed: bytes, addrs: list[str], seq: int, ttl: int) -> None:
    signer = Signer(seed)
    raw = rec.make_record(signer, CID.of(b"c"), addrs, seq=seq, ttl_ms=ttl)
    record = rec.decode_record(raw, now=seq)
    assert record.peer == signer.public_key and record.seq == seq
    assert list(record.addrs) == list(dict.fromkeys(addrs))[: rec.MAX_ADDRS]
    assert record.expires - record.seq == min(ttl, rec.MAX_TTL_MS)
    assert len(raw) <= rec.MAX_RECORD_BYTES


@given(seed=seeds, addrs=st.lists(addr_text, min_size=1, max_size=4), position=st.integers(0, 10_000),
       flip=st.integers(1, 255))
def test_any_changed_byte_is_refused(seed: bytes, addrs: list[str], position: int, flip: int) -> None:
    raw = bytearray(rec.make_record(Signer(seed), CID.of(b"c"), addrs, seq=T0))
    raw[position % len(raw)] ^= flip
    try:
        record = rec.decode_record(bytes(raw), now=T0)
    except ProtocolViolation:
        return
    # only a change that leaves the same signed content can pass (none exists for a canonical map)
    raise AssertionError(f"a changed record was accepted: {record}")


@given(ops=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(0, 10_000)), max_size=60))
def test_the_book_keeps_the_newest_record_per_peer_and_commons(ops: list[tuple[int, int, int]]) -> None:
    signers = [Signer(bytes([i + 1]) * 32) for i in range(6)]
    commons = [CID.of(bytes([c])) for c in range(4)]
    book = rec.AddressBook()
    newest: dict[tuple[int, int], int] = {}
    for peer, c, seq in ops:
        raw = rec.make_record(signers[peer], commons[c], [f"/ip4/10.0.0.{peer}/tcp/{seq % 65535 + 1}"], seq=T0 + seq)
        book.offer(rec.decode_record(raw, now=T0), now=T0)
        newest[(peer, c)] = max(newest.get((peer, c), -1), seq)
    got = {(next(i for i, s in enumerate(signers) if s.public_key == r.peer), commons.index(r.commons)): r.seq - T0
           for r in book.all(now=T0)}
    assert got == newest
    again = rec.AddressBook()
    again.load(book.dump(now=T0), now=T0)
    assert [r.raw for r in again.all(now=T0)] == [r.raw for r in book.all(now=T0)]


def test_the_book_is_bounded_per_commons() -> None:
    book = rec.AddressBook()
    for i in range(rec.MAX_RECORDS + 20):
        raw = rec.make_record(Signer(i.to_bytes(32, "big")), CID.of(b"c"), ["/ip4/10.0.0.1/tcp/1"],
                              seq=T0, ttl_ms=1000 + i)
        book.offer(rec.decode_record(raw, now=T0), now=T0)
    kept = book.records(CID.of(b"c"), now=T0)
    assert len(kept) == rec.MAX_RECORDS
    assert min(r.expires for r in kept) == T0 + 1000 + 20  # the soonest-expiring went first


def test_exchange_messages_skip_bad_records_and_refuse_bad_shapes() -> None:
    good = rec.decode_record(rec.make_record(Signer(b"\1" * 32), CID.of(b"c"), ["/ip4/10.0.0.1/tcp/1"], seq=T0),
                             now=T0)
    expired = rec.make_record(Signer(b"\2" * 32), CID.of(b"c"), ["/ip4/10.0.0.2/tcp/1"], seq=T0 - 10, ttl_ms=5)
    data = dagcbor.encode({"records": [good.raw, expired]})
    assert [r.raw for r in rec.decode_exchange(data, now=T0)] == [good.raw]
    for bad in ({"records": "x"}, {"records": [1]}, {"other": []}, [good.raw]):
        with pytest.raises(ProtocolViolation):
            rec.decode_exchange(dagcbor.encode(bad), now=T0)
