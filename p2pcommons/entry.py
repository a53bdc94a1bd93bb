"""Entries: one signed record in one author's log for one commons.

The byte-exact format is specified in ``protocols/entry.md``; this module is its only
implementation.  It does no I/O: callers hand it bytes and get entries or typed errors back.
"""

from __future__ import annotations

import re
import time as _time
from typing import Any

import cbor2
import nacl.bindings
import nacl.exceptions

from . import dagcbor
from .dagcbor import CID
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


class Entry:
    """A decoded, structurally valid entry.  Its signature is checked separately, so bulk
    paths can verify one signature per chain segment (see DESIGN.md §5).

    A plain slotted class rather than a frozen dataclass: entries are built on the ingest
    hot path, where a frozen dataclass pays an ``object.__setattr__`` call per field.
    Treat instances as immutable.  Links inside ``body`` stay in their decoded
    ``CBORTag(42, …)`` form; :func:`p2pcommons.dagcbor.link` turns one into a :class:`CID`.
    """

    __slots__ = (
        "_fields",
        "author",
        "body",
        "commons",
        "deps",
        "id",
        "kind",
        "prev",
        "raw",
        "seq",
        "sig",
        "time",
    )

    def __init__(self, raw: bytes, fields: dict[str, Any], commons: CID | None,
                 prev: CID | None, deps: tuple[CID, ...]) -> None:
        self.id = CID.of(raw)
        self.raw = raw
        self.commons = commons
        self.author: bytes = fields["author"]
        self.seq: int = fields["seq"]
        self.prev = prev
        self.deps = deps
        self.kind: str = fields["kind"]
        self.body: dict[str, Any] = fields["body"]
        self.time: int = fields["time"]
        self.sig: bytes = fields["sig"]
        self._fields = fields

    @property
    def commons_id(self) -> CID:
        """The commons this entry belongs to; a genesis entry founds its own."""
        return self.id if self.commons is None else self.commons

    @property
    def is_genesis(self) -> bool:
        return self.commons is None

    def signing_bytes(self) -> bytes:
        """What the signature covers: the domain prefix and the entry minus its signature.

        The decoded fields are in canonical order already, so dropping ``sig`` and
        re-encoding in order gives the canonical unsigned encoding.
        """
        unsigned = {k: v for k, v in self._fields.items() if k != "sig"}
        return SIGNATURE_DOMAIN + cbor2.dumps(unsigned)

    def verify_signature(self) -> None:
        """Raise :class:`BadSignature` unless the author's key signed this entry."""
        try:
            nacl.bindings.crypto_sign_open(self.sig + self.signing_bytes(), self.author)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            raise BadSignature(
                f"Entry {self.id} (seq {self.seq}) has a signature that does not verify."
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Entry({self.kind} seq={self.seq} id={self.id})"


def decode_entry(raw: bytes) -> Entry:
    """Decode and structurally validate one entry (not its signature).

    Raises only :class:`~p2pcommons.errors.InvalidEntry` subclasses.
    """
    if len(raw) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(
            f"The entry is {len(raw)} bytes; the maximum is {MAX_ENTRY_BYTES} bytes."
        )
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
    dagcbor.require_canonical(value, raw)
    return entry


def _build(raw: bytes, value: dict[str, Any]) -> Entry:
    commons = None if value["commons"] is None else dagcbor.link(value["commons"])
    prev = None if value["prev"] is None else dagcbor.link(value["prev"])
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
    if type(kind) is not str or len(kind) > MAX_KIND_LENGTH or not _KIND_RE.match(kind):
        raise MalformedEntry("The kind must be a short lower-case identifier.")
    if type(body) is not dict:
        raise MalformedEntry("The body must be a map.")
    dagcbor.check_value(body)
    if type(timestamp) is not int or timestamp < 0:
        raise MalformedEntry("The time must be a non-negative integer (milliseconds).")
    if type(sig) is not bytes or len(sig) != 64:
        raise MalformedEntry("The signature must be 64 bytes.")
    if type(deps) is not list:
        raise MalformedEntry("The dependencies must be a list of entry ids.")
    if len(deps) > MAX_DEPS:
        raise TooManyDependencies(
            f"The entry names {len(deps)} dependencies; at most {MAX_DEPS} are allowed."
        )
    dep_ids = tuple(dagcbor.link(dep) for dep in deps)
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
    return Entry(raw, value, commons, prev, dep_ids)


class Signer:
    """An Ed25519 signing key; its public key is the author id."""

    __slots__ = ("_secret", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        self.public_key: bytes = public
        self._secret: bytes = secret

    def sign(self, message: bytes) -> bytes:
        return nacl.bindings.crypto_sign(message, self._secret)[:64]


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
