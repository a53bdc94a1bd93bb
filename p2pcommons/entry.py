"""Entries: one signed record in one author's log for one commons.

The byte-exact format is specified in ``protocols/entry.md``; this module is its only
implementation.  It does no I/O: callers hand it bytes and get entries or typed errors back.
"""

from __future__ import annotations

import re
import struct
import time as _time
from typing import Any

import cbor2

from . import dagcbor, ed25519
from .dagcbor import _CID_PREFIX, _SMALL_HEADS, CID, _head, _sha256, _trusted_cid
from .errors import (
    BadSignature,
    EntryTooLarge,
    MalformedEntry,
    NonCanonicalEncoding,
    TooManyDependencies,
    UnknownVersion,
)

FORMAT_VERSION = 1
MAX_ENTRY_BYTES = 64 * 1024
MAX_DEPS = 16
MAX_KIND_LENGTH = 32
SIGNATURE_DOMAIN = b"p2pcommons/entry/v1\n"
GENESIS = "genesis"

# DAG-CBOR map order: shorter keys first, then bytewise.
_FIELD_ORDER = ("seq", "sig", "body", "deps", "kind", "prev", "time", "author", "commons",
                "version")
_FIELDS = frozenset(_FIELD_ORDER)
_KIND_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_MAX_SEQ = 2**53
# Bounded numbers (protocols/entry.md §3): every time is below MAX_TIME and every amount a
# body of a known kind carries is within [0, MAX_AMOUNT], so the fold's sums (each bounded
# in its turn, protocols/commons.md) never meet a number no node can store or encode.
MAX_TIME = 2**53  # exclusive: milliseconds, about the year 287,000
MAX_AMOUNT = 2**53  # inclusive
# Per kind, the body fields that are amounts; ``resources`` is a list of resource maps.
_AMOUNT_FIELDS: dict[str, tuple[str, ...]] = {
    "contribution": ("value",),
    "review": ("value",),
    "resource_use": ("amount",),
    "distribution": ("amount",),
    "resource_add": ("quota", "period"),
}
_RESOURCE_AMOUNTS = ("quota", "period")
_MAP10_SEQ = b"\xaa\x63seq"  # map of 10 pairs, then the text key "seq"
_SIG_HEADER = b"\x63sig\x58\x40"  # the text key "sig", then a 64-byte byte string header
_SIGNING_PREFIX = SIGNATURE_DOMAIN + b"\xa9"  # the domain, then a map of 9 pairs


class Entry:
    """A decoded, structurally valid entry.  Its signature is checked separately, so bulk
    paths can verify one signature per chain segment (see DESIGN.md §5).

    A plain slotted class rather than a frozen dataclass: entries are built on the ingest
    hot path, where a frozen dataclass pays an ``object.__setattr__`` call per field.
    Treat instances as immutable.  Links inside ``body`` stay in their decoded
    ``CBORTag(42, …)`` form; :func:`p2pcommons.dagcbor.link` turns one into a :class:`CID`.

    ``dep_ids`` holds the dependencies' raw 36-byte ids; ``deps`` the same as :class:`CID`
    objects, built on first use: the fold and the store key everything by raw id, and
    building a dozen CID objects per entry was a third of decoding a stored entry.
    """

    __slots__ = (
        "_deps",
        "author",
        "body",
        "commons",
        "dep_ids",
        "id",
        "kind",
        "prev",
        "raw",
        "seq",
        "sig",
        "time",
    )

    id: CID
    raw: bytes
    seq: int
    sig: bytes
    body: dict[str, Any]
    dep_ids: tuple[bytes, ...]
    kind: str
    prev: CID | None
    time: int
    author: bytes
    commons: CID | None
    _deps: tuple[CID, ...] | None

    @property
    def deps(self) -> tuple[CID, ...]:
        """The dependencies (sorted by id bytes, no repeats) as :class:`CID` objects."""
        deps = self._deps
        if deps is None:
            deps = self._deps = tuple(map(_trusted_cid, self.dep_ids))
        return deps

    @property
    def commons_id(self) -> CID:
        """The commons this entry belongs to; a genesis entry founds its own."""
        return self.id if self.commons is None else self.commons

    @property
    def is_genesis(self) -> bool:
        return self.commons is None

    def signing_bytes(self) -> bytes:
        """What the signature covers: the domain prefix and the entry minus its signature.

        An entry's bytes are canonical: ``0xaa`` (a map of 10 pairs), ``"seq"`` and its
        minimal integer, ``"sig"`` and its 64 bytes, then the other eight fields in order.
        Cutting the ``sig`` pair out and writing the header of a map of 9 pairs gives
        exactly the canonical encoding of the map without ``sig``, with no re-encoding.
        """
        raw = self.raw
        seq = self.seq
        at = 6 if seq < 24 else 7 if seq < 0x100 else 8 if seq < 0x10000 else 10 if seq < 0x100000000 else 14
        if raw[at:at + 6] == _SIG_HEADER and raw[:5] == _MAP10_SEQ:
            return _SIGNING_PREFIX + raw[1:at] + raw[at + 70:]
        # not reached for decoded entries; kept as the plain definition
        unsigned = {"seq": seq, "body": self.body, "deps": list(self.deps), "kind": self.kind, "prev": self.prev,
                    "time": self.time, "author": self.author, "commons": self.commons, "version": FORMAT_VERSION}
        return SIGNATURE_DOMAIN + dagcbor.encode(unsigned)

    def verify_signature(self) -> None:
        """Raise :class:`BadSignature` unless the author's key signed this entry."""
        if not ed25519.verify(self.sig, self.signing_bytes(), self.author):
            raise BadSignature(f"Entry {self.id} (seq {self.seq}) has a signature that does not verify.")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Entry({self.kind} seq={self.seq} id={self.id})"


_new_entry = object.__new__


def _make(raw: bytes, seq: int, sig: bytes, body: dict[str, Any], dep_ids: tuple[bytes, ...], kind: str,
          prev: CID | None, timestamp: int, author: bytes, commons: CID | None) -> Entry:
    """An :class:`Entry` from fields already checked (the one place entries are built)."""
    entry: Entry = _new_entry(Entry)
    entry.id = _trusted_cid(_CID_PREFIX + _sha256(raw).digest())  # CID.of(raw), inlined
    entry.raw = raw
    entry.seq = seq
    entry.sig = sig
    entry.body = body
    entry.dep_ids = dep_ids
    entry._deps = None
    entry.kind = kind
    entry.prev = prev
    entry.time = timestamp
    entry.author = author
    entry.commons = commons
    return entry


def decode_entry(raw: bytes) -> Entry:
    """Decode and structurally validate one entry (not its signature).

    Raises only :class:`~p2pcommons.errors.InvalidEntry` subclasses.
    """
    if len(raw) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(
            f"The entry is {len(raw)} bytes; the maximum is {MAX_ENTRY_BYTES} bytes."
        )
    # Fast path for the common case, a valid entry: it accepts only bytes it has proven to
    # be exactly the canonical encoding of a valid entry, and declines everything else.
    # The reference path below then decides which error to raise, so errors are the same
    # either way (tests/test_codec_properties.py and tests/test_entry_decoding.py check that
    # the two agree).
    try:
        entry = _parse(raw, False)
    except Exception:  # the reference path reports the error
        entry = None
    return _decode_entry_checked(raw) if entry is None else entry


def decode_stored(raw: bytes, stored_id: bytes | None = None) -> Entry:
    """Decode an entry read back from the local store, which took it only after
    :func:`decode_entry` accepted those exact bytes: the layout is followed as always, but
    the body is neither re-encoded nor walked, and the dependencies' order is not checked
    (the state fold decodes every stored entry).  Anything unexpected falls back to
    :func:`decode_entry`, so errors are the same.

    ``stored_id``: the id the store holds with those bytes (:meth:`Store.in_order_rows`),
    taken instead of hashing them again (a sha256 per entry, about 3 % of a fresh fold).
    Safe for the fold's read path only: the store wrote that id at insert from an entry
    :func:`decode_entry` built, whose id is the hash of exactly the bytes stored beside it.
    Whatever must not trust the store (``p2pc verify``, sync) hashes (passes no id)."""
    try:
        entry = _parse(raw, True, stored_id)
    except Exception:  # the full path reports the error
        entry = None
    return decode_entry(raw) if entry is None else entry


# The canonical encoding of an entry (protocols/entry.md §1-3): a map of ten pairs, each key a
# short text string, in the order of _FIELD_ORDER.  Every field but ``body`` has a fixed shape,
# so the bytes before the body and after it are each matched by one pattern that admits only
# their canonical form: every integer head in shortest form (a one-byte argument >= 24, a
# two-byte one >= 0x100, a four-byte one >= 0x10000; an eight-byte one >= 2^32 is checked in
# code), every link tag 42 around the 0x00 prefix and a CIDv1 dag-cbor sha2-256, every length
# exact.
_UINT = rb"[\x00-\x17]|\x18[\x18-\xff]|\x19[\x01-\xff].|\x1a(?:[\x01-\xff].|\x00[\x01-\xff])..|\x1b.{8}"
_LINK = rb"\xd8\x2a\x58\x25\x00(\x01\x71\x12\x20.{32})"  # group: the 36-byte CID
_BEFORE_BODY = re.compile(rb"\xaa\x63seq(" + _UINT + rb")\x63sig\x58\x40(.{64})\x64body", re.DOTALL)
_AFTER_BODY = re.compile(
    # 0-16 links; possessive (*+: no backtracking state kept per link, a fifth of the search's
    # time): giving a link back could never help, as a link starts with 0xd8 and "kind" with 0x64
    rb"\x64deps([\x80-\x90])((?:\xd8\x2a\x58\x25\x00\x01\x71\x12\x20.{32})*+)"
    rb"\x64kind((?:[\x61-\x77]|\x78[\x18-\x20])[a-z][a-z0-9_]{0,31})"  # head and text, 1-32 bytes
    rb"\x64prev(?:\xf6|" + _LINK + rb")"
    rb"\x64time(" + _UINT + rb")"
    rb"\x66author\x58\x20(.{32})"
    rb"\x67commons(?:\xf6|" + _LINK + rb")"
    rb"\x67version\x01\Z",
    re.DOTALL,
)
# The ids of n links in a row, in one call: per link, skip its 5-byte head, take the 36-byte CID.
_DEP_IDS = [struct.Struct("5x36s" * n) for n in range(MAX_DEPS + 1)]
_kinds: dict[bytes, str] = {}  # encoded kinds (head and text) seen valid, bounded: one str each
_last_commons = _trusted_cid(bytes(36))  # the last commons link decoded: entries mostly share it
_MIN_LONG = 1 << 32
_from_bytes = int.from_bytes
_loads = cbor2.loads
_SEMANTIC_REFUSALS = dagcbor._SEMANTIC_REFUSALS
_BODY_DEPTH = dagcbor.MAX_DEPTH + 1  # (the body sits one level inside the entry map)
_new_cid = object.__new__


def _parse(raw: bytes, trusted: bool, stored_id: bytes | None = None) -> Entry | None:
    """Read an entry by matching its canonical layout; None if the bytes are not it.

    Why this proves canonical form while parsing: every field but ``body`` has exactly one
    canonical encoding, which the two patterns match byte for byte.  The body is decoded
    from the bytes between them with the codec's structural limits, and accepted only if
    they are no more than the length of its canonical encoding, computed while checking
    its data model and key order (:func:`p2pcommons.dagcbor.canonical_size`): given those
    limits, each head of an encoding is at least as long as its shortest form and equal
    only when it is that form.  So ``raw`` is accepted exactly when it is the canonical
    encoding of a valid entry, with nothing re-encoded and no tag object built for a link
    outside the body.

    ``trusted`` (bytes from the local store, accepted by :func:`decode_entry` before):
    the body is neither walked nor measured, and the rules that only reject (the
    dependencies' order, amounts) are not checked again; ``stored_id`` (only with
    ``trusted``, see :func:`decode_stored`) is the id, not hashed again.  Raises anything on malformed
    bytes; the callers catch it and take the reference path, which reports the error.
    """
    global _last_commons
    if type(raw) is not bytes:
        return None  # (a buffer of another type: the reference path, as before)
    match = _BEFORE_BODY.match(raw)
    if match is None:
        return None
    seq_head, sig = match.groups()
    # The unsigned heads matched by _UINT are read inline (a helper's two calls were a tenth of
    # this function); an eight-byte head holding a value that fits in four is refused below.
    seq = seq_head[0] if len(seq_head) == 1 else _from_bytes(seq_head[1:], "big")
    at = match.end()
    # The first place from which the rest matches is the body's end: the true end is one,
    # and any earlier one lies inside the body, which then cannot be decoded from the bytes
    # before it (a CBOR value needs all its bytes), so the reference path runs.
    after = _AFTER_BODY.search(raw, at)
    if after is None:
        return None
    end = after.start()
    body = _loads(raw[at:end], semantic_decoders=_SEMANTIC_REFUSALS, max_depth=_BODY_DEPTH,  # loads_nested, inline
                  allow_indefinite=False, allow_duplicate_keys=False, strict_hashable_types=True)
    if type(body) is not dict:
        return None
    if not trusted and dagcbor.canonical_size(body, 1) != end - at:
        return None  # (the body's bytes are its canonical encoding exactly when this holds)
    count_head, links, encoded_kind, prev_id, time_head, author, commons_id = after.groups()
    count = count_head[0] - 0x80
    if len(links) != 41 * count:
        return None
    dep_ids: tuple[bytes, ...] = _DEP_IDS[count].unpack(links)
    kind = _kinds.get(encoded_kind)
    if kind is None:
        head = encoded_kind[0]
        if len(encoded_kind) != (head - 0x5F if head < 0x78 else encoded_kind[1] + 2):
            return None
        kind = encoded_kind[1 if head < 0x78 else 2:].decode("ascii")
        if len(_kinds) < 1024:
            _kinds[encoded_kind] = kind
    timestamp = time_head[0] if len(time_head) == 1 else _from_bytes(time_head[1:], "big")
    if not 1 <= seq <= _MAX_SEQ or not 0 <= timestamp < MAX_TIME:
        return None
    if (len(seq_head) == 9 and seq < _MIN_LONG) or (len(time_head) == 9 and timestamp < _MIN_LONG):
        return None  # an eight-byte head holding a value that fits in four: not the shortest form
    if (seq == 1) is not (prev_id is None):
        return None  # a backlink iff not the first entry of a log
    if commons_id is None:
        commons = None
        if kind != GENESIS or seq != 1 or count:
            return None
    elif kind == GENESIS:
        return None
    else:
        commons = _last_commons
        if commons_id != commons.raw:
            commons = _last_commons = _trusted_cid(commons_id)
    if not trusted:
        if count > 1 and not all(map(bytes.__lt__, dep_ids, dep_ids[1:])):
            return None
        if kind in _AMOUNT_FIELDS or kind == GENESIS:
            _check_amounts(kind, body)
    entry: Entry = _new_entry(Entry)  # as _make does, inline: this runs for every entry
    cid: CID = _new_cid(CID)  # CID.of(raw), inlined (as _trusted_cid builds it)
    cid.raw = _CID_PREFIX + _sha256(raw).digest() if stored_id is None else stored_id
    entry.id = cid
    entry.raw = raw
    entry.seq = seq
    entry.sig = sig
    entry.body = body
    entry.dep_ids = dep_ids
    entry._deps = None
    entry.kind = kind
    if prev_id is None:
        entry.prev = None
    else:
        cid = _new_cid(CID)
        cid.raw = prev_id
        entry.prev = cid
    entry.time = timestamp
    entry.author = author
    entry.commons = commons
    return entry


def _decode_entry_checked(raw: bytes) -> Entry:
    """The reference decoding path, which raises the specific error for invalid bytes."""
    value = dagcbor.decode_unchecked(raw)
    if type(value) is not dict:
        raise MalformedEntry("An entry must be a CBOR map.")
    if tuple(value) != _FIELD_ORDER:
        version = value.get("version")
        if version != FORMAT_VERSION:
            raise UnknownVersion(f"Entry format version {version!r} is not supported (expected 1).")
        if value.keys() == _FIELDS:
            raise NonCanonicalEncoding("The entry's fields are not in canonical DAG-CBOR order.")
        missing = sorted(_FIELDS - value.keys())
        extra = sorted(str(k) for k in value.keys() - _FIELDS)
        raise MalformedEntry(f"The entry's fields are wrong (missing {missing}, unexpected {extra}).")
    version = value["version"]
    if version != FORMAT_VERSION or type(version) is not int:
        raise UnknownVersion(f"Entry format version {version!r} is not supported (expected 1).")
    entry = _build(raw, value)
    if raw != _canonical_bytes(entry):
        raise NonCanonicalEncoding("The bytes are not the canonical DAG-CBOR encoding of their value.")
    return entry


_UINT_HEADS = _SMALL_HEADS[0x00]
_TEXT_HEADS = _SMALL_HEADS[0x60]
_ARRAY_HEADS = _SMALL_HEADS[0x80]
_TAGGED_LINK_HEAD = b"\xd8\x2a\x58\x25\x00"  # tag 42, a 37-byte byte string, the 0x00 prefix
_NULL = b"\xf6"


def _canonical_bytes(entry: Entry) -> bytes:
    """The canonical DAG-CBOR encoding of a structurally valid entry's value.

    Equivalent to ``cbor2.dumps`` of the decoded map (whose keys ``_build``'s caller has
    checked to be in canonical order, and whose body's maps the data-model walk has), but
    the fixed fields are written directly: only the free-form body goes through cbor2.
    Decoding compares this with the received bytes, so every non-minimal head, anywhere,
    is refused.
    """
    try:
        body = cbor2.dumps(entry.body)
    except Exception as exc:
        raise MalformedEntry(f"The value cannot be re-encoded ({str(exc)[:120]}).") from None
    kind = entry.kind.encode()
    seq = entry.seq
    prev = entry.prev
    commons = entry.commons
    parts = [
        b"\xaa\x63seq", _UINT_HEADS[seq] if seq < 24 else _head(0x00, seq),
        b"\x63sig\x58\x40", entry.sig,
        b"\x64body", body,
        b"\x64deps", _ARRAY_HEADS[len(entry.deps)],
    ]
    for dep in entry.dep_ids:
        parts.append(_TAGGED_LINK_HEAD)
        parts.append(dep)
    parts += (
        b"\x64kind", _TEXT_HEADS[len(kind)] if len(kind) < 24 else _head(0x60, len(kind)), kind,
        b"\x64prev", _NULL if prev is None else _TAGGED_LINK_HEAD + prev.raw,
        b"\x64time", _head(0x00, entry.time),
        b"\x66author\x58\x20", entry.author,
        b"\x67commons", _NULL if commons is None else _TAGGED_LINK_HEAD + commons.raw,
        b"\x67version\x01",
    )
    return b"".join(parts)


_link = dagcbor.link
_valid_kinds: set[str] = set()  # kinds already seen to be valid (a small, bounded cache)


def _build(raw: bytes, value: dict[str, Any]) -> Entry:
    commons = None if value["commons"] is None else _link(value["commons"])
    prev = None if value["prev"] is None else _link(value["prev"])
    author = value["author"]
    seq = value["seq"]
    deps = value["deps"]
    kind = value["kind"]
    body = value["body"]
    timestamp = value["time"]
    sig = value["sig"]
    if type(author) is not bytes or len(author) != 32:
        raise MalformedEntry("The author must be a 32-byte Ed25519 public key.")
    if type(seq) is not int or not 1 <= seq <= _MAX_SEQ:
        raise MalformedEntry("The sequence number must be a positive integer.")
    if type(kind) is not str or kind not in _valid_kinds:
        if type(kind) is not str or len(kind) > MAX_KIND_LENGTH or not _KIND_RE.match(kind):
            raise MalformedEntry("The kind must be a short lower-case identifier.")
        if len(_valid_kinds) < 1024:
            _valid_kinds.add(kind)
    if type(body) is not dict:
        raise MalformedEntry("The body must be a map.")
    dagcbor.check_value(body, 1)  # the body is one level inside the entry map
    if type(timestamp) is not int or not 0 <= timestamp < MAX_TIME:
        shown = f" (it is {timestamp})" if type(timestamp) is int else ""
        raise MalformedEntry(f"The time must be an integer in [0, 2^53) milliseconds{shown}.")
    if type(sig) is not bytes or len(sig) != 64:
        raise MalformedEntry("The signature must be 64 bytes.")
    if kind in _AMOUNT_FIELDS or kind == GENESIS:
        _check_amounts(kind, body)
    if type(deps) is not list:
        raise MalformedEntry("The dependencies must be a list of entry ids.")
    if len(deps) > MAX_DEPS:
        raise TooManyDependencies(
            f"The entry names {len(deps)} dependencies; at most {MAX_DEPS} are allowed."
        )
    dep_ids = tuple(map(_link, deps))
    if len(dep_ids) > 1:
        for i in range(1, len(dep_ids)):
            if not dep_ids[i - 1].raw < dep_ids[i].raw:
                raise MalformedEntry("Dependencies must be sorted by id bytes with no repeats.")
    if seq == 1:
        if prev is not None:
            raise MalformedEntry("The first entry of a log must have no backlink.")
    elif prev is None:
        raise MalformedEntry("Every entry after the first must link to its predecessor.")
    if kind == GENESIS:
        if commons is not None or seq != 1 or dep_ids:
            raise MalformedEntry("A genesis entry must be seq 1 with no commons and no dependencies.")
    elif commons is None:
        raise MalformedEntry("A non-genesis entry must name its commons.")
    return _make(raw, seq, sig, body, tuple([d.raw for d in dep_ids]), kind, prev, timestamp, author, commons)


def _check_amounts(kind: str, body: dict[str, Any]) -> None:
    """Refuse an integer amount outside [0, MAX_AMOUNT] in a body of a known kind (other
    types are left to the fold, which rejects the entry with a reason)."""
    if kind == GENESIS:
        resources = body.get("resources")
        maps = [r for r in resources if type(r) is dict] if type(resources) is list else []
        fields = [(f"resources[].{name}", r.get(name)) for r in maps for name in _RESOURCE_AMOUNTS]
    else:
        for name in _AMOUNT_FIELDS[kind]:  # (the common case, without building a list)
            value = body.get(name)
            if type(value) is int and not 0 <= value <= MAX_AMOUNT:
                raise MalformedEntry(f"The {kind}'s {name} {value} is outside [0, 2^53].")
        return
    for name, value in fields:
        if type(value) is int and not 0 <= value <= MAX_AMOUNT:
            raise MalformedEntry(f"The {kind}'s {name} {value} is outside [0, 2^53].")


class Signer:
    """An Ed25519 signing key; its public key is the author id."""

    __slots__ = ("_secret", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        public, secret = ed25519.seed_keypair(seed)
        self.public_key: bytes = public
        self._secret: bytes = secret

    def sign(self, message: bytes) -> bytes:
        return ed25519.sign(message, self._secret)


def sign_entry(
    signer: Signer,
    *,
    commons: CID | None,
    seq: int,
    prev: CID | None,
    kind: str,
    body: dict[str, Any],
    deps: list[CID] | tuple[CID, ...] = (),
    timestamp: int | None = None,
) -> Entry:
    """Build and sign a new entry; the result has been through :func:`decode_entry`."""
    unsigned: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "commons": commons,
        "author": signer.public_key,
        "seq": seq,
        "prev": prev,
        "deps": sorted(set(deps), key=lambda c: c.raw),
        "kind": kind,
        "body": body,
        "time": int(_time.time() * 1000) if timestamp is None else timestamp,
    }
    signature = signer.sign(SIGNATURE_DOMAIN + dagcbor.encode(unsigned))
    raw = dagcbor.encode({**unsigned, "sig": signature})
    return decode_entry(raw)
