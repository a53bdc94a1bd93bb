"""Strict DAG-CBOR: the one deterministic encoding every entry uses.

Why strict: an entry's id is the hash of its bytes and its signature covers them, so two
encodings of one value would give one entry two ids.  Decoding therefore re-encodes and
compares, and refuses every CBOR feature DAG-CBOR leaves out (floats are refused outright:
no field of ours needs one, and float canonicality is a classic source of disagreement).
"""

from __future__ import annotations

import base64
import hashlib
import io
from _thread import _local as _thread_local  # (threading.local itself; ``threading`` costs start-up)
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import cbor2

from .errors import MalformedEntry, NonCanonicalEncoding, TrailingBytes

CID_TAG = 42
CIDV1 = 0x01
DAG_CBOR_CODEC = 0x71
SHA2_256 = 0x12
_CID_PREFIX = bytes([CIDV1, DAG_CBOR_CODEC, SHA2_256, 32])
_TAGGED_CID_PREFIX = b"\x00" + _CID_PREFIX
MAX_DEPTH = 16
_INT_MIN = -(2**64)
_INT_MAX = 2**64 - 1


class CID:
    """A CIDv1 (dag-cbor, sha2-256) naming an entry by the hash of its bytes."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 36 or raw[:4] != _CID_PREFIX:
            raise MalformedEntry("A link is not a CIDv1 dag-cbor sha2-256 identifier.")
        self.raw = raw

    @classmethod
    def of(cls, data: bytes) -> CID:
        """The id of an encoded block: the hash of exactly these bytes."""
        return _trusted_cid(_CID_PREFIX + _sha256(data).digest())

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse the multibase base32 ('b…') text form."""
        if not text.startswith("b"):
            raise MalformedEntry(f"'{text}' is not a base32 CID (it should start with 'b').")
        body = text[1:].upper()
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError:
            raise MalformedEntry(f"'{text}' is not valid base32.") from None
        return cls(raw)

    def __str__(self) -> str:
        raw = self.raw
        if len(raw) == _B32_LEN:
            return _b32_cid(raw)
        return "b" + base64.b32encode(raw).decode().lower().rstrip("=")

    def __repr__(self) -> str:
        return f"CID({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other.raw == self.raw

    def __lt__(self, other: CID) -> bool:
        return self.raw < other.raw

    def __hash__(self) -> int:
        return hash(self.raw)


# --- base32 of a 36-byte CID (CIDv1, dag-cbor, sha2-256) without base64.b32encode -------------
# Why: the state hash writes every contribution's and proposal's id as text (the canonical
# state's keys), and base64.b32encode is pure Python, 5 bytes per loop turn: it was the largest
# single cost of hashing a big state (issue 12).  Here the id's 288 bits (padded to 320) are
# spread, in six shift-and-mask steps on one integer, into 64 bytes of 5 bits each, which
# bytes.translate maps to the RFC 4648 lowercase alphabet: the same text, about 3x faster.
# tests/test_codec_properties.py checks it against base64 for random ids.

_B32_LEN = 36
_B32_TABLE = bytes(b"abcdefghijklmnopqrstuvwxyz234567"[i] if i < 32 else 0 for i in range(256))


def _b32_steps() -> tuple[tuple[int, int, int], ...]:
    steps = []
    width = 512  # 64 slots of 8 bits; a block of ``width`` bits holds width // 8 groups of 5 bits
    while width > 8:
        half = width // 16  # groups in each half of a block
        low = high = 0
        for block in range(512 // width):
            low |= ((1 << (5 * half)) - 1) << (block * width)
            high |= ((1 << (5 * half)) - 1) << (block * width + 5 * half)
        steps.append((low, high, width // 2 - 5 * half))  # the high half moves up to its slot
        width //= 2
    return tuple(steps)


_B32_STEPS = _b32_steps()


def _b32_cid(raw: bytes) -> str:
    x = int.from_bytes(raw, "big") << 32
    for low, high, shift in _B32_STEPS:
        x = (x & low) | ((x & high) << shift)
    return "b" + x.to_bytes(64, "big").translate(_B32_TABLE)[:58].decode()


_sha256 = hashlib.sha256
_new_object = object.__new__


_B32_INVERSE = bytes(max(b"abcdefghijklmnopqrstuvwxyz234567".find(i), 0) for i in range(256))


def cid_from_text(text: str) -> CID:
    """The :class:`CID` whose text form is ``text`` (the inverse of ``str(cid)``), for text this
    process wrote itself: the state-hash stream sorts a table's ids as text and reads each row
    back by its id.  The 36-byte form undoes :func:`_b32_cid`'s steps (about 10x faster than
    :meth:`CID.parse`, which it falls back to for any other text)."""
    if len(text) != 59 or text[0] != "b" or not text.isascii():
        return CID.parse(text)
    x = int.from_bytes(text.encode()[1:].translate(_B32_INVERSE) + bytes(6), "big")
    for low, high, shift in reversed(_B32_STEPS):
        x = (x & low) | ((x >> shift) & high)
    return CID((x >> 32).to_bytes(36, "big"))  # (checks the prefix; tests check the round trip)


def _trusted_cid(raw: bytes) -> CID:
    """A :class:`CID` from bytes already known to be a well-formed CIDv1 (the hot path of
    entry decoding builds several per entry; this skips the re-check in ``__init__``)."""
    cid: CID = _new_object(CID)
    cid.raw = raw
    return cid


def _default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, CID):
        encoder.encode(cbor2.CBORTag(CID_TAG, b"\x00" + value.raw))
        return
    raise TypeError(f"cannot encode {type(value).__name__} in DAG-CBOR")


def encode(value: Any) -> bytes:
    """Encode canonically: shortest integers, map keys length-first then bytewise.

    Accepts :class:`CID` objects (and the ``CBORTag(42, …)`` form decoding yields) as links.
    """
    if _check_value(value, 0, ordered=False):
        # As tags, not CID objects: cbor2's C encoder, meeting a type it does not know, first
        # imports every module of its deferred encoders (email, uuid, decimal, fractions:
        # 40 ms, once per process, paid by every local write).
        value = _tagged(value)
    return cbor2.dumps(value, canonical=True, default=_default)


def _tagged(value: Any) -> Any:
    """``value`` with each :class:`CID` as the ``CBORTag(42, …)`` it encodes as (a copy of
    the maps and lists on the way; a value that holds no CID is not copied)."""
    kind = type(value)
    if kind is CID:
        return cbor2.CBORTag(CID_TAG, b"\x00" + value.raw)
    if kind is dict:
        return {key: _tagged(item) for key, item in value.items()}
    if kind is list:
        return [_tagged(item) for item in value]
    return value


def link(value: Any) -> CID:
    """Turn a decoded link (``CBORTag(42, …)``) or a :class:`CID` into a :class:`CID`."""
    if type(value) is cbor2.CBORTag and value.tag == CID_TAG:
        data = value.value
        if type(data) is bytes and len(data) == 37 and data[:5] == _TAGGED_CID_PREFIX:
            return _trusted_cid(data[1:])
        if type(data) is bytes and data[:1] == b"\x00":
            return CID(data[1:])  # raises MalformedEntry: not a CIDv1 dag-cbor sha2-256
    if type(value) is CID:
        return value
    raise MalformedEntry("A value that should be an entry id is not a CID link.")


def links_in(value: Any) -> Iterator[bytes]:
    """The 36-byte CIDs of the links anywhere in a decoded value (an entry's body): what it
    names.  (Bodies are depth-limited at decoding, so the recursion is bounded.)"""
    kind = type(value)
    if kind is cbor2.CBORTag:
        if value.tag == CID_TAG and type(value.value) is bytes and value.value[:1] == b"\x00":
            yield value.value[1:]
    elif kind is dict:
        for item in value.values():
            yield from links_in(item)
    elif kind is list:
        for item in value:
            yield from links_in(item)
    elif kind is CID:
        yield value.raw


def _refuse_tag(*_: Any) -> Any:
    raise MalformedEntry("The data uses a CBOR tag other than 42 (CID link).")


# cbor2 decodes some tags itself, before any hook could refuse them: shared references
# (28/29) could even expand a small input exponentially.  Refuse every such tag.
_BUILTIN_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260,
                 261, 1004, 55799)
_SEMANTIC_REFUSALS = {tag: _refuse_tag for tag in _BUILTIN_TAGS}


class _Decoders(_thread_local):
    """One strict cbor2 decoder per thread: building a decoder costs more than decoding a
    small entry, and a decoder must not be shared between threads."""

    def __init__(self) -> None:
        self.decoder = cbor2.CBORDecoder(
            io.BytesIO(b""),
            semantic_decoders=_SEMANTIC_REFUSALS,
            max_depth=MAX_DEPTH + 2,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )


_decoders = _Decoders()


def decode_unchecked(data: bytes) -> Any:
    """Decode exactly one CBOR value spanning ``data`` with DAG-CBOR's structural limits
    (definite lengths, no duplicate keys, only tag 42 left undecoded, bounded depth), but
    without the data-model walk or the canonical re-encoding check: callers that know the
    expected shape (the entry decoder) do those more cheaply themselves."""
    stream = io.BytesIO(data)
    decoder = _decoders.decoder
    decoder.fp = stream
    try:
        value = decoder.decode()
    except MalformedEntry:
        raise
    except Exception as exc:  # cbor2 raises a variety of types on hostile input
        raise MalformedEntry(f"The bytes are not valid CBOR ({_short(exc)}).") from None
    finally:
        decoder.fp = _EMPTY
    if stream.tell() != len(data):
        raise TrailingBytes(f"{len(data) - stream.tell()} bytes follow the end of the encoded value.")
    return value


_EMPTY = io.BytesIO(b"")


def loads_nested(data: bytes) -> Any:
    """Like :func:`loads_strict`, for a value one level inside another (an entry's body):
    one level less of nesting allowed, so the limit counts from the enclosing value."""
    return cbor2.loads(
        data,
        semantic_decoders=_SEMANTIC_REFUSALS,
        max_depth=MAX_DEPTH + 1,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    )


def loads_strict(data: bytes) -> Any:
    """Decode with the same structural limits as :func:`decode_unchecked`, from a buffer
    (faster), but *ignoring* bytes after the first value and raising cbor2's own errors:
    only for callers that then prove ``data`` is exactly the canonical encoding of the
    result, and fall back to :func:`decode_unchecked` for the error otherwise."""
    return cbor2.loads(
        data,
        semantic_decoders=_SEMANTIC_REFUSALS,
        max_depth=MAX_DEPTH + 2,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    )


def require_canonical(value: Any, data: bytes) -> None:
    """Raise unless ``data`` is exactly the encoding of ``value``.

    Maps must already be known to be in canonical key order (checked by the walk), so a
    plain, order-preserving re-encoding equals the input exactly when the input is canonical;
    that is about twice as fast as a sorting ``canonical=True`` encoding.
    """
    try:
        again = cbor2.dumps(value)
    except Exception as exc:
        raise MalformedEntry(f"The value cannot be re-encoded ({_short(exc)}).") from None
    if again != data:
        raise NonCanonicalEncoding("The bytes are not the canonical DAG-CBOR encoding of their value.")


def decode(data: bytes) -> Any:
    """Decode one canonical DAG-CBOR value that spans exactly ``data``.

    Links stay as ``CBORTag(42, b"\\x00" + cid)`` (use :func:`link`); they are checked to be
    well-formed CIDs.  Raises only :class:`~p2pcommons.errors.InvalidEntry` subclasses.
    """
    value = decode_unchecked(data)
    check_value(value)
    require_canonical(value, data)
    return value


def check_value(value: Any, depth: int = 0) -> None:
    """Check a decoded value against the data model and canonical map-key order.

    ``depth`` is the nesting level ``value`` sits at inside the whole encoded value (the
    entry decoder checks an entry's body, which sits at level 1 inside the entry map)."""
    _check_value(value, depth)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text[:120]


# Key sets of maps seen, each with the size of its keys' encoding, or -1 if the keys are not
# in canonical order: a body's keys are usually one of a few sets, checked once each.  Only
# small sets are kept, and few, so hostile maps with ever new keys cannot grow the cache.
_key_sets: dict[tuple[str, ...], int] = {}
_KEY_SETS_MAX = 1024
_KEY_SET_MAX_BYTES = 256


def _key_set_size(keys: tuple[str, ...]) -> int:
    """The encoded size of a map's (text) keys, or -1 if they are not in canonical order."""
    known = _key_sets.get(keys)
    if known is None:
        encoded = [k.encode() for k in keys]
        if encoded == sorted(encoded, key=lambda k: (len(k), k)):
            known = sum(len(k) for k in encoded)
            known += sum(1 if len(k) < 24 else 2 if len(k) < 0x100 else 3 if len(k) < 0x10000 else 5
                         for k in encoded)
        else:
            known = -1
        if len(_key_sets) < _KEY_SETS_MAX and len(keys) <= 32 and sum(map(len, keys)) <= _KEY_SET_MAX_BYTES:
            _key_sets[keys] = known
    return known


def _keys_in_canonical_order(keys: tuple[str, ...]) -> bool:
    return _key_set_size(keys) >= 0


_SCALARS = frozenset((int, str, bytes, bool, type(None)))


def _check_value(value: Any, depth: int, ordered: bool = True) -> bool:
    """Allow only the DAG-CBOR data model minus floats: int, str, bytes, bool, None, list,
    str-keyed map (in canonical key order when decoding), CID link.  Returns whether a
    :class:`CID` object occurs in it (:func:`encode` then writes those as tags first).

    This runs on every received entry, so scalars are checked inline without recursion.
    """
    cids = False
    if depth > MAX_DEPTH:
        raise MalformedEntry(f"The value nests deeper than {MAX_DEPTH} levels.")
    kind = type(value)
    if kind is dict:
        keys = tuple(value)
        for key in keys:
            if type(key) is not str:
                raise MalformedEntry("A map key is not a text string.")
        if ordered and not _keys_in_canonical_order(keys):
            raise NonCanonicalEncoding("A map's keys are not in canonical DAG-CBOR order.")
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        items = (value,)
        depth -= 1
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            if kind is int and not _INT_MIN <= item <= _INT_MAX:
                raise MalformedEntry("An integer is outside the 64-bit range DAG-CBOR allows.")
        elif kind is dict or kind is list:
            if _check_value(item, depth + 1, ordered):
                cids = True
        elif kind is cbor2.CBORTag:
            if item.tag != CID_TAG:
                raise MalformedEntry("The data uses a CBOR tag other than 42 (CID link).")
            data = item.value
            if type(data) is not bytes or len(data) != 37 or data[:5] != _TAGGED_CID_PREFIX:
                raise MalformedEntry("A CID link is not a CIDv1 dag-cbor sha2-256 identifier.")
        elif kind is CID:
            cids = True
        elif kind is float:
            raise MalformedEntry("Floating-point numbers are not allowed in entries.")
        else:
            raise MalformedEntry(f"A value of type {kind.__name__} is not allowed in DAG-CBOR.")
    return cids


def canonical_size(value: dict[str, Any] | list[Any], depth: int) -> int:
    """Check a decoded map or array as :func:`check_value` does and return the length of its
    canonical encoding, without encoding it.

    Why this proves canonical form: with the decoder's limits (definite lengths, no
    duplicate keys, no tag it would interpret) and this walk's (the data model, canonical
    key order), the only freedom an encoding of the value has left is the width of its
    heads, and each head is at least as long as its shortest form, equal only when it is
    that form.  So bytes that decode to the value are its canonical encoding exactly when
    there are no more of them than this size.  Raises :class:`MalformedEntry` or
    :class:`NonCanonicalEncoding` (not always the error :func:`check_value` would pick
    first: callers take the reference path for the error).
    """
    if depth > MAX_DEPTH:
        raise MalformedEntry(f"The value nests deeper than {MAX_DEPTH} levels.")
    count = len(value)
    size = 1 if count < 24 else 2 if count < 0x100 else 3 if count < 0x10000 else 5
    if type(value) is dict:
        keys = tuple(value)
        for key in keys:
            if type(key) is not str:
                raise MalformedEntry("A map key is not a text string.")
        known = _key_set_size(keys)
        if known < 0:
            raise NonCanonicalEncoding("A map's keys are not in canonical DAG-CBOR order.")
        size += known
        items: Any = value.values()
    else:
        items = value
    for item in items:
        kind = type(item)
        if kind is str:
            length = len(item) if item.isascii() else len(item.encode())
            size += length + (1 if length < 24 else 2 if length < 0x100 else 3 if length < 0x10000 else 5)
        elif kind is int:
            if item < 0:
                item = -1 - item
            if item < 24:
                size += 1
            elif item < 0x100:
                size += 2
            elif item < 0x10000:
                size += 3
            elif item < 0x100000000:
                size += 5
            elif item <= _INT_MAX:
                size += 9
            else:
                raise MalformedEntry("An integer is outside the 64-bit range DAG-CBOR allows.")
        elif kind is bytes:
            length = len(item)
            size += length + (1 if length < 24 else 2 if length < 0x100 else 3 if length < 0x10000 else 5)
        elif kind is dict or kind is list:
            size += canonical_size(item, depth + 1)
        elif item is None or kind is bool:
            size += 1
        elif kind is cbor2.CBORTag:
            data = item.value
            if item.tag != CID_TAG or type(data) is not bytes or len(data) != 37 or data[:5] != _TAGGED_CID_PREFIX:
                raise MalformedEntry("A CID link is not a CIDv1 dag-cbor sha2-256 identifier.")
            size += 41  # tag 42 (2 bytes), a 37-byte byte string's head (2) and the bytes
        else:
            raise MalformedEntry(f"A value of type {kind.__name__} is not allowed in entries.")
    return size


# --- streaming a canonical encoding into a hash ----------------------------------------------
# Why: the state hash covers the whole canonical state, about 1 KB of Python objects per
# contribution and then one bytes object of all of it (1.4 GB held after a 1M-entry fold,
# measured).  The stream writes the same bytes, map by map and row by row, into the hasher.


class LazyMap(NamedTuple):
    """A text-keyed map written row by row by :func:`encode_to`: ``size`` rows, which
    ``rows()`` yields as ``(key, value)`` in canonical key order (checked: a row out of order,
    a repeated key or a wrong count raises ValueError instead of writing a wrong encoding)."""

    size: int
    rows: Callable[[], Iterable[tuple[str, Any]]]


class LazyList(NamedTuple):
    """A list written item by item by :func:`encode_to`: ``size`` items, from ``items()``."""

    size: int
    items: Callable[[], Iterable[Any]]


_LAZY = (LazyMap, LazyList)


_SMALL_HEADS = {top: [bytes((top | n,)) for n in range(24)] for top in (0x00, 0x60, 0x80, 0xA0)}


def _head(top: int, n: int) -> bytes:
    """A CBOR head in its shortest form (the canonical one): ``top`` is the major type's
    initial byte (0x00 unsigned, 0x60 text, 0x80 array, 0xA0 map), ``n`` >= 0 its argument.
    The entry encoder (entry.py) and the streamed state hash share it."""
    if n < 24:
        return _SMALL_HEADS[top][n]
    if n < 0x100:
        return bytes((top | 24, n))
    if n < 0x10000:
        return bytes((top | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((top | 26,)) + n.to_bytes(4, "big")
    return bytes((top | 27,)) + n.to_bytes(8, "big")


_BATCH = 512  # rows (or items) encoded per encode() call: fewer calls, still bounded memory


def _flush(pending: list[Any], write: Callable[[bytes], Any]) -> None:
    """Write the items of ``pending`` one after the other: the encoding of the list of them
    without its head (one :func:`encode` call for many small rows), and empty the list."""
    if pending:
        write(encode(pending)[len(_head(0x80, len(pending))):])
        pending.clear()


def encode_to(value: Any, write: Callable[[bytes], Any]) -> None:
    """Write :func:`encode` ``(value)`` through ``write`` in pieces, byte for byte the same,
    where ``value`` may hold :class:`LazyMap` and :class:`LazyList` parts as the values of a
    top-level map, the rows of a lazy map or the items of a lazy list (anywhere else they are
    refused by :func:`encode`): those parts are never built whole."""
    kind = type(value)
    pending: list[Any] = []
    if kind is LazyMap:
        write(_head(0xA0, value.size))
        last_size = -1
        last = b""
        n = 0
        for key, item in value.rows():
            data = key.encode()
            size = len(data)
            # canonical key order: the encoded key's length first, then its bytes
            if size < last_size or (size == last_size and data <= last):
                raise ValueError(f"A streamed map's key {key!r} is out of canonical order or repeated.")
            last_size, last = size, data
            pending.append(key)
            if type(item) in _LAZY:
                _flush(pending, write)
                encode_to(item, write)
            else:
                pending.append(item)
                if len(pending) >= 2 * _BATCH:
                    _flush(pending, write)
            n += 1
        _flush(pending, write)
        if n != value.size:
            raise ValueError(f"A streamed map promised {value.size} rows and gave {n}.")
    elif kind is LazyList:
        write(_head(0x80, value.size))
        n = 0
        for item in value.items():
            if type(item) in _LAZY:
                _flush(pending, write)
                encode_to(item, write)
            else:
                pending.append(item)
                if len(pending) >= _BATCH:
                    _flush(pending, write)
            n += 1
        _flush(pending, write)
        if n != value.size:
            raise ValueError(f"A streamed list promised {value.size} items and gave {n}.")
    elif kind is dict and any(type(item) in _LAZY for item in value.values()):
        write(_head(0xA0, len(value)))
        for key in sorted(value, key=lambda k: (len(k.encode()), k.encode())):
            data = key.encode()
            write(_head(0x60, len(data)) + data)
            encode_to(value[key], write)
    else:
        write(encode(value))


def sha256_stream(value: Any) -> str:
    """``hashlib.sha256(encode(value)).hexdigest()`` without building ``encode(value)`` whole
    (see :func:`encode_to`); pieces are gathered into blocks of about 64 KiB per hasher call."""
    hasher = _sha256()
    buffer = bytearray()

    def write(data: bytes) -> None:
        buffer.extend(data)
        if len(buffer) >= 1 << 16:
            hasher.update(buffer)
            buffer.clear()

    encode_to(value, write)
    hasher.update(buffer)
    return hasher.hexdigest()
