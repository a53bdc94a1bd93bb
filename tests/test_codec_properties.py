"""Properties of the DAG-CBOR codec and the entry format (hypothesis).

Example counts scale with P2PC_HYPOTHESIS_PROFILE (tests/conftest.py); run with
``--hypothesis-show-statistics`` to see them.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons import entry as entry_module
from p2pcommons.dagcbor import CID
from p2pcommons.entry import MAX_ENTRY_BYTES, SIGNATURE_DOMAIN, Entry, decode_entry
from p2pcommons.errors import BadSignature, InvalidEntry, NonCanonicalEncoding

from .support.signed import SIGNERS, bodies, scaled, single_entries, values

# --- plain DAG-CBOR values ---------------------------------------------------------------------


def _as_decoded(value: Any) -> Any:
    """What decoding yields for ``value``: links come back as tag 42, maps in canonical order."""
    if isinstance(value, CID):
        return cbor2.CBORTag(42, b"\x00" + value.raw)
    if isinstance(value, list):
        return [_as_decoded(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_decoded(v) for k, v in value.items()}
    return value


@settings(max_examples=scaled(3))
@given(values)
def test_value_round_trip(value: Any) -> None:
    data = dagcbor.encode(value)
    decoded = dagcbor.decode(data)
    assert decoded == _as_decoded(value)
    assert dagcbor.encode(decoded) == data  # one encoding per value
    # canonical map order: shorter keys first, then bytewise
    if isinstance(decoded, dict):
        keys = [k.encode() for k in decoded]
        assert keys == sorted(keys, key=lambda k: (len(k), k))


@settings(max_examples=scaled(3))
@given(st.binary(max_size=200))
def test_value_decoder_raises_only_its_own_errors(data: bytes) -> None:
    try:
        value = dagcbor.decode(data)
    except InvalidEntry:
        return
    assert dagcbor.encode(value) == data  # anything accepted is canonical


# --- entries: round trip ---------------------------------------------------------------------


@settings(max_examples=scaled(1))
@given(single_entries())
def test_entry_round_trip(entry: Entry) -> None:
    again = decode_entry(entry.raw)
    again.verify_signature()
    assert again.raw == entry.raw
    assert again.id == entry.id == CID.of(entry.raw)
    for name in ("author", "seq", "prev", "deps", "kind", "body", "time", "sig", "commons"):
        assert getattr(again, name) == getattr(entry, name)
    # the raw bytes are the canonical encoding of their own decoded value
    value = cbor2.loads(entry.raw)
    assert dagcbor.encode(value) == entry.raw
    # the signature covers the domain prefix and the canonical map without "sig"
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    assert entry.signing_bytes() == SIGNATURE_DOMAIN + dagcbor.encode(unsigned)


@settings(max_examples=scaled(1))
@given(single_entries(), st.data())
def test_entry_rejects_a_wider_integer_head(entry: Entry, data: st.DataObject) -> None:
    """Writing seq or time with a longer head than needed is NonCanonicalEncoding."""
    field = data.draw(st.sampled_from(["seq", "time"]))
    value = getattr(entry, field)
    minimal = cbor2.dumps(value)
    widths = [w for w, limit in ((0x18, 1 << 8), (0x19, 1 << 16), (0x1A, 1 << 32), (0x1B, 1 << 64))
              if value < limit and len(minimal) < 1 + (limit.bit_length() - 1) // 8]
    assume(widths)
    head = data.draw(st.sampled_from(widths))
    size = {0x18: 1, 0x19: 2, 0x1A: 4, 0x1B: 8}[head]
    wide = bytes([head]) + value.to_bytes(size, "big")
    key = cbor2.dumps(field)
    raw = entry.raw.replace(key + minimal, key + wide, 1)
    assert raw != entry.raw
    with pytest.raises(NonCanonicalEncoding):
        decode_entry(raw)
    for trusted in (False, True):  # the fast parser itself declines it, for stored bytes too
        assert entry_module._parse(raw, trusted) is None


# --- entries: hostile bytes ------------------------------------------------------------------


def _decode_and_verify(raw: bytes) -> Entry:
    entry = decode_entry(raw)
    entry.verify_signature()
    return entry


def _outcome(fn: Any, raw: bytes) -> tuple[str, bytes]:
    try:
        return ("ok", fn(raw).raw)
    except InvalidEntry as exc:
        return (type(exc).__name__, b"")


@settings(max_examples=scaled(3))
@given(single_entries(), st.data())
def test_any_single_byte_change_is_rejected(entry: Entry, data: st.DataObject) -> None:
    """Changing any one byte of a signed entry makes decoding or the signature fail
    (and, were it accepted, its id would differ: the id is the hash of the bytes)."""
    position = data.draw(st.integers(0, len(entry.raw) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != entry.raw[position]), label="byte")
    raw = bytearray(entry.raw)
    raw[position] = byte
    with pytest.raises(InvalidEntry):
        _decode_and_verify(bytes(raw))
    assert CID.of(bytes(raw)) != entry.id


def test_every_single_byte_change_of_one_entry_is_rejected() -> None:
    """Exhaustively, for one entry: every position, three replacement bytes each."""
    entry = entry_module.sign_entry(
        SIGNERS[0], commons=CID.of(b"c"), seq=300, prev=CID.of(b"p"), kind="contribution",
        body={"title": "x", "n": -3, "b": b"\x00", "l": [True, None]}, deps=[CID.of(b"d")], timestamp=5,
    )
    tried = expected = 0
    for position in range(len(entry.raw)):
        original = entry.raw[position]
        replacements = {original ^ 0x01, original ^ 0x80, (original + 1) % 256}
        expected += len(replacements)
        for byte in replacements:
            raw = bytearray(entry.raw)
            raw[position] = byte
            with pytest.raises(InvalidEntry):
                _decode_and_verify(bytes(raw))
            tried += 1
    assert tried == expected >= 2 * len(entry.raw)


@settings(max_examples=scaled(20))
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xaa")
@example(b"\xbf\xff")
@example(b"\xd8\x1c\x80")  # shared reference tags
@example(b"\xd9\xd9\xf7\xa0")  # self-described CBOR
@example(b"\x9f" * 40)
def test_decoder_raises_only_invalid_entry_on_arbitrary_bytes(data: bytes) -> None:
    fast = _outcome(decode_entry, data)
    # the fast path and the reference path agree on every input
    assert fast == _outcome(entry_module._decode_entry_checked, data)


def _mutate(raw: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(raw)
    for kind, position, byte in ops:
        if not out:
            out.append(byte)
            continue
        at = position % len(out)
        if kind == 0:
            out[at] = byte
        elif kind == 1:
            out.insert(at, byte)
        elif kind == 2:
            del out[at]
        elif kind == 3:
            del out[at:]
        else:
            out.extend(bytes([byte]) * (position % 9))
    return bytes(out)


@settings(max_examples=scaled(5))
@given(single_entries(), st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2**16), st.integers(0, 255)),
                                  min_size=1, max_size=4))
def test_decoder_raises_only_invalid_entry_on_mutated_entries(entry: Entry, ops: list[tuple[int, int, int]]) -> None:
    raw = _mutate(entry.raw, ops)
    fast = _outcome(decode_entry, raw)
    assert fast == _outcome(entry_module._decode_entry_checked, raw)
    if raw != entry.raw:
        assert _outcome(_decode_and_verify, raw)[0] != "ok"


hostile_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.integers(min_value=-(2**64), max_value=2**64 - 1),
        st.floats(allow_nan=True),
        st.text(max_size=10),
        st.binary(max_size=40),
        st.booleans(),
        st.none(),
        st.just(cbor2.undefined),
        st.builds(cbor2.CBORSimpleValue, st.sampled_from([0, 19, 32, 255])),
        st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 3, 24, 28, 29, 42, 99, 258, 55799]),
                  st.one_of(st.integers(0, 5), st.binary(max_size=40), st.text(max_size=5))),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(0, 3)), children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=scaled(5))
@given(single_entries(), st.data())
def test_hostile_field_values_raise_only_invalid_entry(entry: Entry, data: st.DataObject) -> None:
    """Replace one field of a real entry with any CBOR value (floats, foreign tags, simple
    values, non-text keys), re-sign it: decoding still raises only InvalidEntry."""
    fields = cbor2.loads(entry.raw)
    name = data.draw(st.sampled_from([*fields, "extra"]))
    fields[name] = data.draw(hostile_values)
    try:
        raw = cbor2.dumps(fields, canonical=data.draw(st.booleans()))
    except Exception:
        assume(False)
    assume(len(raw) <= MAX_ENTRY_BYTES)
    fast = _outcome(_decode_and_verify, raw)
    assert fast[0] != "ok" or fields[name] == cbor2.loads(entry.raw).get(name)
    assert _outcome(decode_entry, raw) == _outcome(entry_module._decode_entry_checked, raw)


@settings(max_examples=scaled(0.5))
@given(st.sampled_from(SIGNERS), bodies)
def test_signature_binds_the_author(signer: Any, body: dict[str, Any]) -> None:
    """An entry claiming another author's key, with the signer's signature, is BadSignature."""
    entry = entry_module.sign_entry(signer, commons=CID.of(b"c"), seq=1, prev=None, kind="note", body=body)
    other = next(s for s in SIGNERS if s is not signer)
    fields = cbor2.loads(entry.raw)
    fields["author"] = other.public_key
    with pytest.raises(BadSignature):
        _decode_and_verify(cbor2.dumps(fields, canonical=True))


@pytest.mark.parametrize("depth", range(12, 20))
def test_nesting_limit_is_the_same_for_signing_and_decoding(depth: int) -> None:
    """Regression: decoding accepted a body one level deeper than signing (and the generic
    DAG-CBOR decoder) allowed, so peers accepted entries no node could author."""
    body: dict[str, Any] = {}
    for _ in range(depth):
        body = {"n": body}
    signer = SIGNERS[0]
    try:
        entry_module.sign_entry(signer, commons=CID.of(b"c"), seq=1, prev=None, kind="note", body=body)
        can_sign = True
    except InvalidEntry:
        can_sign = False
    fields = {"version": 1, "commons": CID.of(b"c"), "author": signer.public_key, "seq": 1, "prev": None,
              "deps": [], "kind": "note", "body": body, "time": 0}
    unsigned = cbor2.dumps(fields, canonical=True, default=dagcbor._default)
    raw = cbor2.dumps({**fields, "sig": signer.sign(SIGNATURE_DOMAIN + unsigned)}, canonical=True,
                      default=dagcbor._default)
    outcome = _outcome(_decode_and_verify, raw)[0]
    assert (outcome == "ok") == can_sign == (depth <= 15)
    assert outcome in ("ok", "MalformedEntry")
    if can_sign:
        dagcbor.decode(raw)


def test_encoding_links_does_not_load_cbor2s_deferred_encoders() -> None:
    """A CID object met by cbor2's C encoder makes it import the modules of all its deferred
    encoders first (email, uuid, decimal, fractions: 40 ms per process, paid by every local
    write); encode() hands it tags instead, with the same bytes."""
    import subprocess
    import sys

    probe = (
        "import sys, cbor2\n"
        "from p2pcommons.dagcbor import CID, CID_TAG, encode\n"
        "link = CID.of(b'x')\n"
        "value = {'deps': [link, link], 'body': {'ref': link, 'n': [1, {'x': link}]}}\n"
        "out = encode(value)\n"
        "print(sorted(m for m in ('email', 'uuid', 'decimal', 'fractions') if m in sys.modules))\n"
        "tag = cbor2.CBORTag(CID_TAG, b'\\x00' + link.raw)\n"
        "assert out == encode({'deps': [tag, tag], 'body': {'ref': tag, 'n': [1, {'x': tag}]}})\n"
        "assert out == cbor2.dumps(value, canonical=True, default=lambda e, v: e.encode(tag))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@given(raw=st.binary(min_size=36, max_size=36) | st.binary(max_size=80))
def test_cid_text_is_rfc4648_base32(raw: bytes) -> None:
    """A CID's text (the fast base32 of a 36-byte id, base64's for any other length) is
    multibase ``b`` + RFC 4648 lowercase base32 without padding."""
    import base64

    cid = CID.__new__(CID)
    cid.raw = raw
    assert str(cid) == "b" + base64.b32encode(raw).decode().lower().rstrip("=")


_digests = st.binary(min_size=32, max_size=32)


@settings(max_examples=scaled(3))
@given(_digests, _digests, st.sampled_from(["init", "of", "trusted", "link", "text", "parse", "pickle"]))
def test_cids_are_values_keyed_by_their_raw_bytes_and_never_equal_other_types(
        a: bytes, b: bytes, how: str) -> None:
    """Issue 12 (cid12): every way of making a CID gives the same value, which equals, hashes
    and sorts exactly as its 36 raw bytes do among CIDs, equals no other type (raw bytes, its
    text, its tag) and shares no dict slot with them, encodes as tag 42 around 0x00 + raw,
    prints as multibase base32, and survives pickling: the tables the fold keys by CID rely
    on all of it."""
    import base64
    import pickle

    raw_a = dagcbor._CID_PREFIX + a
    raw_b = dagcbor._CID_PREFIX + b
    tag_a = cbor2.CBORTag(42, b"\x00" + raw_a)
    text_a = "b" + base64.b32encode(raw_a).decode().lower().rstrip("=")
    reference = CID(raw_a)
    made = {
        "init": lambda: CID(raw_a),
        "of": lambda: reference,  # (CID.of below: a digest of chosen bytes is not choosable)
        "trusted": lambda: dagcbor._trusted_cid(raw_a),
        "link": lambda: dagcbor.link(tag_a),
        "text": lambda: dagcbor.cid_from_text(text_a),
        "parse": lambda: CID.parse(text_a),
        "pickle": lambda: pickle.loads(pickle.dumps(reference, protocol=pickle.HIGHEST_PROTOCOL)),
    }[how]()
    other = CID(raw_b)
    assert type(made) is CID and made.raw == raw_a and type(made.raw) is bytes
    # identity: equal and same hash as every other CID of the same bytes, ordered by the bytes
    assert made == reference and hash(made) == hash(reference)
    assert (made == other) is (raw_a == raw_b) and (made != other) is (raw_a != raw_b)
    assert (made < other) is (raw_a < raw_b)
    assert sorted([other, made], key=lambda c: c.raw) == sorted([other, made])
    assert len({made, reference, other}) == (1 if raw_a == raw_b else 2)
    # never equal to, nor found in a table as, a plain value of another type
    assert made != bytearray(raw_a) and bytearray(raw_a) != made
    for foreign in (raw_a, text_a, tag_a, b"\x00" + raw_a, a):
        assert made != foreign and foreign != made
        table: dict[Any, str] = {foreign: "foreign"}
        assert made not in table
        table[made] = "cid"
        assert len(table) == 2 and table[foreign] == "foreign" and table[made] == "cid"
    # text and encoding, as before
    assert str(made) == text_a and repr(made) == f"CID({text_a})"
    encoded = dagcbor.encode(made)
    assert encoded == b"\xd8\x2a\x58\x25\x00" + raw_a
    assert dagcbor.encode({"l": [made]}) == b"\xa1\x61l\x81" + encoded
    assert dagcbor.decode(encoded) == tag_a and dagcbor.link(dagcbor.decode(encoded)) == made
    assert CID.of(raw_a).raw == dagcbor._CID_PREFIX + __import__("hashlib").sha256(raw_a).digest()
