"""Entry decoding: the fast paths (received and stored entries) against the reference path,
canonical form proven while parsing, and the decoder's bounded memory.

Example counts scale with P2PC_HYPOTHESIS_PROFILE (tests/conftest.py).
"""

from __future__ import annotations

import struct
import tracemalloc
from dataclasses import dataclass
from typing import Any

import cbor2
from hypothesis import event, given, settings
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons import entry as entry_module
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, decode_entry, decode_stored
from p2pcommons.errors import InvalidEntry

from .support.signed import scaled, single_entries

_FIELDS = ("id", "raw", "author", "seq", "prev", "dep_ids", "kind", "body", "time", "sig", "commons")


def _fields(entry: Entry) -> tuple[Any, ...]:
    return tuple(getattr(entry, name) for name in _FIELDS)


def _outcome(fn: Any, raw: bytes) -> tuple[str, str]:
    try:
        return ("ok", repr(_fields(fn(raw))))
    except InvalidEntry as exc:
        return (type(exc).__name__, str(exc))


def _unsigned_entry(body: dict[str, Any]) -> bytes:
    """A structurally valid entry (its signature is never checked here)."""
    return dagcbor.encode({"version": 1, "commons": CID.of(b"c"), "author": bytes(32), "seq": 1, "prev": None,
                           "deps": [], "kind": "note", "body": body, "time": 0, "sig": bytes(64)})


def test_decoding_maps_with_new_key_sets_keeps_memory_bounded() -> None:
    """Regression: the cache of map key orders kept up to 4,096 key tuples of any size, so a
    peer sending bodies with ever new, large key sets made every node keep up to 4,096 of
    them (hundreds of megabytes at 64 KiB per entry)."""
    raws = [_unsigned_entry({f"k{i:05d}{j:03d}": 0 for j in range(300)}) for i in range(600)]
    decode_entry(raws[0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for raw in raws[1:]:
            decode_entry(raw)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2_000_000, f"decoding kept {grown:,} bytes"


# --- a CBOR head walker, to build non-canonical forms of real entries -----------------------


@dataclass
class _Item:
    at: int  # where the head starts
    head: int  # the head's length in bytes
    end: int  # where the item (head and content) ends
    major: int
    arg: int
    children: list[_Item]


def _items(raw: bytes, at: int = 0) -> _Item:
    """The item starting at ``raw[at]`` (definite lengths only, as canonical bytes have)."""
    first = raw[at]
    major, info = first >> 5, first & 31
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info, 0)
    arg = info if info < 24 else int.from_bytes(raw[at + 1:at + 1 + size], "big")
    head = 1 + size
    children: list[_Item] = []
    end = at + head
    if major in (2, 3):
        end += arg
    elif major in (4, 5, 6):
        for _ in range(arg * 2 if major == 5 else arg if major == 4 else 1):
            child = _items(raw, end)
            children.append(child)
            end = child.end
    return _Item(at, head, end, major, arg, children)


def _all(item: _Item) -> list[_Item]:
    found = [item]
    for child in item.children:
        found += _all(child)
    return found


def _wide_head(major: int, arg: int, info: int) -> bytes:
    size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
    return bytes([major << 5 | info]) + arg.to_bytes(size, "big")


def _non_canonical(raw: bytes, data: st.DataObject) -> tuple[str, bytes]:
    """A form of ``raw`` that is not its canonical encoding (or not DAG-CBOR at all): one
    head widened, map pairs out of order or repeated, an indefinite length, a float for an
    integer, a foreign or non-minimal tag, a bignum, a two-byte simple value, trailing bytes."""
    root = _items(raw)
    items = _all(root)
    how = data.draw(st.sampled_from(["widen", "reorder", "duplicate", "indefinite", "float", "tag", "bignum",
                                     "simple", "trailing"]), label="how")
    if how == "widen":
        limits = {24: 1 << 8, 25: 1 << 16, 26: 1 << 32, 27: 1 << 64}
        sizes = {24: 2, 25: 3, 26: 5, 27: 9}

        def widths(item: Any) -> list[int]:
            return [info for info, limit in limits.items() if item.arg < limit and sizes[info] > item.head]

        # (an item whose argument already takes eight bytes, e.g. a time past 2**32 ms, has no
        # wider form: only items that can be widened are drawn)
        item = data.draw(st.sampled_from([i for i in items if i.major != 7 and widths(i)]), label="item")
        wider = widths(item)
        info = data.draw(st.sampled_from(wider), label="width")
        return how, raw[:item.at] + _wide_head(item.major, item.arg, info) + raw[item.at + item.head:]
    if how in ("reorder", "duplicate"):
        maps = [i for i in items if i.major == 5 and i.arg >= (2 if how == "reorder" else 1)]
        item = data.draw(st.sampled_from(maps), label="map")
        pairs = [(item.children[k].at, item.children[k + 1].end) for k in range(0, len(item.children), 2)]
        spans = [raw[a:b] for a, b in pairs]
        if how == "reorder":
            k = data.draw(st.integers(0, len(spans) - 2), label="pair")
            spans[k], spans[k + 1] = spans[k + 1], spans[k]
            head = raw[item.at:item.at + item.head]
        else:
            k = data.draw(st.integers(0, len(spans) - 1), label="pair")
            spans.insert(k, spans[k])
            head = cbor2.dumps({str(n): 0 for n in range(item.arg + 1)})[:1 if item.arg + 1 < 24 else 2]
        return how, raw[:item.at] + head + b"".join(spans) + raw[pairs[-1][1]:]
    if how == "indefinite":
        item = data.draw(st.sampled_from([i for i in items if i.major in (2, 3, 4, 5)]), label="item")
        content = raw[item.at + item.head:item.end]
        if item.major in (2, 3):  # one definite chunk inside an indefinite string
            replaced = bytes([item.major << 5 | 31]) + raw[item.at:item.end] + b"\xff"
        else:
            replaced = bytes([item.major << 5 | 31]) + content + b"\xff"
        return how, raw[:item.at] + replaced + raw[item.end:]
    if how == "float":
        item = data.draw(st.sampled_from([i for i in items if i.major in (0, 1) and i.arg < 2**53]), label="item")
        value = item.arg if item.major == 0 else -1 - item.arg
        width = data.draw(st.sampled_from(["e", "f", "d"] if abs(value) <= 65504 else ["f", "d"]), label="width")
        packed = {"e": b"\xf9", "f": b"\xfa", "d": b"\xfb"}[width] + struct.pack(">" + width, float(value))
        return how, raw[:item.at] + packed + raw[item.end:]
    if how == "tag":
        item = data.draw(st.sampled_from(items), label="item")
        if item.major == 6 and data.draw(st.booleans(), label="retag"):
            # the link's own tag: another number, or 42 in a longer head
            tag = data.draw(st.sampled_from([41, 43, 0x2a + 0x100, -1]), label="tag")
            head = b"\xd9\x00\x2a" if tag == -1 else cbor2.dumps(cbor2.CBORTag(tag, None))[:-1]
            return how, raw[:item.at] + head + raw[item.at + item.head:]
        tag = data.draw(st.sampled_from([0, 1, 2, 3, 24, 25, 28, 29, 41, 43, 55799, 2**20]), label="tag")
        return how, raw[:item.at] + cbor2.dumps(cbor2.CBORTag(tag, None))[:-1] + raw[item.at:]
    if how == "bignum":
        item = data.draw(st.sampled_from([i for i in items if i.major in (0, 1)]), label="item")
        digits = item.arg.to_bytes(max(1, (item.arg.bit_length() + 7) // 8), "big")
        return how, raw[:item.at] + bytes([0xC2 + item.major]) + cbor2.dumps(digits) + raw[item.end:]
    if how == "simple":
        item = data.draw(st.sampled_from([i for i in items if i.major == 7] or [root]), label="item")
        if item.major != 7:
            return how, raw + b"\xf8\x16"
        return how, raw[:item.at] + b"\xf8" + bytes([raw[item.at] & 31]) + raw[item.end:]
    return how, raw + data.draw(st.binary(min_size=1, max_size=3), label="trailing")


@settings(max_examples=scaled(5))
@given(single_entries(), st.data())
def test_non_canonical_forms_are_refused_as_by_the_reference(entry: Entry, data: st.DataObject) -> None:
    """Issue 18: canonical form is proven while parsing.  Every non-canonical form of a real
    entry is refused, by decode_entry with the same error type and message as the reference
    path (which re-encodes and compares), and never accepted by the fast parser."""
    how, raw = _non_canonical(entry.raw, data)
    event(how)
    assert raw != entry.raw
    fast = _outcome(decode_entry, raw)
    assert fast[0] != "ok", how
    assert fast == _outcome(entry_module._decode_entry_checked, raw)
    try:
        parsed = entry_module._parse(raw, False)
    except Exception:
        parsed = None  # a refusal by raising is as good as declining
    assert parsed is None


@settings(max_examples=scaled(3))
@given(single_entries())
def test_valid_entries_decode_as_by_the_reference(entry: Entry) -> None:
    """Every valid entry takes the fast path (received or stored) and decodes to the same
    fields as the reference path."""
    reference = entry_module._decode_entry_checked(entry.raw)
    for fast in (entry_module._parse(entry.raw, False), entry_module._parse(entry.raw, True)):
        assert fast is not None
        assert _fields(fast) == _fields(reference)
    assert _fields(decode_entry(entry.raw)) == _fields(decode_stored(entry.raw)) == _fields(reference)
    assert decode_entry(entry.raw).deps == reference.deps == tuple(CID(i) for i in reference.dep_ids)


def test_every_tag_the_decoder_would_interpret_into_an_allowed_type_is_refused() -> None:
    """The size proof (dagcbor.canonical_size) relies on no tag but 42 reaching the decoded
    value as an allowed type: a bignum (tags 2, 3) can be shorter than the integer's own
    encoding, a string reference shorter than the string.  Guard against a cbor2 release
    that interprets one more tag."""
    allowed = (int, str, bytes, bool, type(None), list, dict)
    interpreted = set()
    for tag in [*range(0x10000), 2**32, 2**63]:
        for inner in (5, b"\x01\x02", "x", [1], {"a": 1}):
            try:
                out = cbor2.loads(cbor2.dumps(cbor2.CBORTag(tag, inner)))
            except Exception:
                continue
            if isinstance(out, allowed):
                interpreted.add(tag)
    assert interpreted <= set(dagcbor._SEMANTIC_REFUSALS), interpreted - set(dagcbor._SEMANTIC_REFUSALS)
