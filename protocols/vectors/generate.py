"""Generate the entry and bundle test vectors (``entries.json``, ``bundle-*.bin``).

    python protocols/vectors/generate.py           # rewrite the files next to this script
    python protocols/vectors/generate.py --check   # exit 1 if the files are not what it would write

Deterministic: fixed 32-byte seeds, fixed timestamps, and Ed25519 signatures are
deterministic, so running it twice writes identical files.  Every vector is checked against
the implementation while it is generated (a valid entry must decode, verify and round-trip;
an invalid one must raise exactly its labelled error), so the generator refuses to write
vectors the implementation disagrees with.  ``tests/test_vectors.py`` checks them again.

Format of ``entries.json`` (see ``protocols/entry.md`` §7):

* ``authors``: name, seed, public key, author id (``z6Mk…``) and libp2p peer id (``12D3KooW…``).
* ``valid``: an entry's bytes (hex), id, signature, the exact signing input, and the fields
  it was built from (``body_hex`` is the body's own DAG-CBOR encoding).
* ``invalid``: bytes and the exception class (from :mod:`p2pcommons.errors`) that
  ``decode_entry`` (``stage: "decode"``) or, after a successful decode,
  ``Entry.verify_signature`` (``stage: "signature"``) must raise.
* ``chains``: ingest scenarios: ``setup`` entries are stored first, then ``input`` is
  ingested as one batch (optionally scoped to ``commons``); the outcome (ids accepted,
  duplicates, the error class of each rejection, forks reported) must be the same in both
  verification modes, ``segment`` and ``each``.
* ``bundles``: files in this directory and the result of importing each into an empty store.
* ``valid_unusual``: entries that must decode, verify and be accepted though no seed builds
  them (the mixed-order Ed25519 key of entry.md §4).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

import cbor2

from p2pcommons import errors
from p2pcommons.bundle import MAGIC, import_bundle, write_bundle
from p2pcommons.dagcbor import CID, encode
from p2pcommons.entry import (
    MAX_ENTRY_BYTES,
    SIGNATURE_DOMAIN,
    Entry,
    Signer,
    decode_entry,
    sign_entry,
)
from p2pcommons.identity import author_id_text, peer_id_text
from p2pcommons.ingest import Ingestor
from p2pcommons.protocols.framing import encode_uvarint
from p2pcommons.store import Store

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z in milliseconds

SEEDS = {
    "alice": bytes(range(32)),
    "bob": bytes(range(32, 64)),
    "carol": bytes([0xC0]) * 32,
}
SIGNERS = {name: Signer(seed) for name, seed in SEEDS.items()}


def _tag(cid: CID) -> cbor2.CBORTag:
    return cbor2.CBORTag(42, b"\x00" + cid.raw)


def _fields(entry: Entry) -> dict[str, Any]:
    """The entry's decoded map, in its canonical order, as a mutable dict."""
    value = cbor2.loads(entry.raw)
    assert isinstance(value, dict)
    return value


def _sign_map(signer: Signer, fields: dict[str, Any]) -> bytes:
    """Sign ``fields`` (without ``sig``) canonically and return the canonical signed map.

    Unlike :func:`sign_entry` this signs whatever it is given, so it can build entries
    that are well signed but invalid in one chosen respect."""
    unsigned = {k: v for k, v in fields.items() if k != "sig"}
    sig = signer.sign(SIGNATURE_DOMAIN + cbor2.dumps(unsigned, canonical=True))
    return cbor2.dumps({**unsigned, "sig": sig}, canonical=True)


def _resign(signer: Signer, entry: Entry, **changes: Any) -> bytes:
    fields = _fields(entry)
    fields.update(changes)
    for key in [k for k, v in changes.items() if v is _DROP]:
        del fields[key]
    return _sign_map(signer, fields)


_DROP = object()


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, (old, data.count(old))
    return data.replace(old, new)


# --- Ed25519 edge cases -----------------------------------------------------------------------
# A few lines of plain Edwards-curve arithmetic (RFC 8032 §5.1), used only to *construct*
# signatures that a lenient verifier accepts and libsodium (hence p2pcommons) rejects, and to
# check, while generating, that each such vector really is accepted by the lenient rule it
# names.  Slow but exact; nothing here is used by the implementation.

ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
_ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
_ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)
Point = tuple[int, int]
ED_IDENTITY: Point = (0, 1)


def _ed_add(p: Point, q: Point) -> Point:
    (x1, y1), (x2, y2) = p, q
    t = _ED_D * x1 * x2 * y1 * y2 % ED_P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, ED_P - 2, ED_P) % ED_P,
            (y1 * y2 + x1 * x2) * pow(1 - t, ED_P - 2, ED_P) % ED_P)


def _ed_mul(k: int, p: Point) -> Point:
    result = ED_IDENTITY
    while k:
        if k & 1:
            result = _ed_add(result, p)
        p = _ed_add(p, p)
        k >>= 1
    return result


def _ed_x(y: int, sign: int) -> int | None:
    """The x with this y and sign bit, or None if y is not on the curve."""
    xx = (y * y - 1) * pow(_ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
    if xx == 0:
        return 0
    x = pow(xx, (ED_P + 3) // 8, ED_P)
    if (x * x - xx) % ED_P:
        x = x * _ED_SQRT_M1 % ED_P
    if (x * x - xx) % ED_P:
        return None
    return x if x & 1 == sign else ED_P - x


def _ed_encode(p: Point, *, y_plus_p: bool = False, sign: int | None = None) -> bytes:
    """RFC 8032 encoding; ``y_plus_p`` writes y + p (non-canonical), ``sign`` forces bit 255."""
    x, y = p
    return ((y + (ED_P if y_plus_p else 0)) | ((x & 1 if sign is None else sign) << 255)).to_bytes(32, "little")


def _ed_decode_lenient(data: bytes) -> Point:
    """Decode as a lenient verifier would: y reduced mod p, the sign bit ignored when x = 0."""
    n = int.from_bytes(data, "little")
    y = (n & ((1 << 255) - 1)) % ED_P
    x = _ed_x(y, n >> 255)
    assert x is not None, data.hex()
    return (x, y)


ED_B: Point = (_ed_x(4 * pow(5, ED_P - 2, ED_P) % ED_P, 0) or 0, 4 * pow(5, ED_P - 2, ED_P) % ED_P)
# an order-8 point (the y of libsodium's first order-8 blacklist entry)
_ED_T8_Y = int.from_bytes(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little")
ED_T8: Point = (_ed_x(_ED_T8_Y, 0) or 0, _ED_T8_Y)


def _ed_k(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % ED_L


def _ed_secret_scalar(seed: bytes) -> int:
    h = hashlib.sha512(seed).digest()
    return (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)


def ed_verify_lenient(sig: bytes, message: bytes, key: bytes, *, cofactored: bool) -> bool:
    """What a permissive verifier checks: [S]B = R + [k]A (or 8x both sides), with R and A
    decoded leniently, S used unreduced, and no small-order or canonicity checks."""
    r, a = _ed_decode_lenient(sig[:32]), _ed_decode_lenient(key)
    left = _ed_mul(int.from_bytes(sig[32:], "little"), ED_B)
    right = _ed_add(r, _ed_mul(_ed_k(sig[:32], key, message), a))
    if cofactored:
        left, right = _ed_mul(8, left), _ed_mul(8, right)
    return left == right


def _ed_nonce(label: str) -> int:
    return int.from_bytes(hashlib.sha512(b"p2pcommons ed25519 vector " + label.encode()).digest(), "little") % ED_L



class Builder:
    def __init__(self) -> None:
        self.valid: list[dict[str, Any]] = []
        self.invalid: list[dict[str, Any]] = []
        self.chains: list[dict[str, Any]] = []
        self.bundles: list[dict[str, Any]] = []
        self.valid_unusual: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}

    # --- valid ------------------------------------------------------------------------

    def valid_entry(self, name: str, description: str, author: str, *, commons: CID | None, seq: int,
                    prev: CID | None, kind: str, body: dict[str, Any], deps: list[CID] | None = None,
                    timestamp: int) -> Entry:
        signer = SIGNERS[author]
        entry = sign_entry(signer, commons=commons, seq=seq, prev=prev, kind=kind, body=body,
                           deps=deps or [], timestamp=timestamp)
        entry.verify_signature()
        again = decode_entry(entry.raw)
        assert again.raw == entry.raw and encode(cbor2.loads(entry.raw)) == entry.raw
        self.valid.append({
            "name": name,
            "description": description,
            "author": author,
            "seed": SEEDS[author].hex(),
            "author_id": author_id_text(signer.public_key),
            "peer_id": peer_id_text(signer.public_key),
            "id": str(entry.id),
            "id_hex": entry.id.raw.hex(),
            "signature": entry.sig.hex(),
            # omitted (null) for the 64 KiB vector, to keep this file small
            "signing_input_hex": entry.signing_bytes().hex() if len(entry.raw) <= 4096 else None,
            "size": len(entry.raw),
            "hex": entry.raw.hex(),
            "fields": {
                "version": 1,
                "commons": None if commons is None else str(commons),
                "author": signer.public_key.hex(),
                "seq": seq,
                "prev": None if prev is None else str(prev),
                "deps": [str(d) for d in entry.deps],
                "kind": kind,
                "time": timestamp,
                "body_hex": encode(body).hex(),
            },
        })
        return entry

    # --- invalid ----------------------------------------------------------------------

    def invalid_entry(self, name: str, description: str, data: bytes, error: type[errors.InvalidEntry]) -> None:
        stage = "signature" if error is errors.BadSignature else "decode"
        try:
            entry = decode_entry(data)
            if stage == "signature":
                entry.verify_signature()
        except errors.InvalidEntry as exc:
            if type(exc) is not error:
                raise AssertionError(f"vector {name}: expected {error.__name__}, got {exc!r}") from None
        else:
            raise AssertionError(f"vector {name}: expected {error.__name__}, but the entry is valid")
        self.invalid.append({
            "name": name,
            "description": description,
            "stage": stage,
            "error": error.__name__,
            "hex": data.hex(),
        })

    def valid_unusual_entry(self, name: str, description: str, data: bytes) -> None:
        """An entry that is valid (decodes, verifies, is accepted by ingest) though it was not
        built from a seed: an edge of the signature rules that must be accepted."""
        entry = decode_entry(data)
        entry.verify_signature()
        self.valid_unusual.append({"name": name, "description": description, "id": str(entry.id),
                                   "hex": data.hex()})

    # --- chains -----------------------------------------------------------------------

    def chain(self, name: str, description: str, *, setup: list[Entry], input: list[bytes],
              commons: CID | None = None, accepted: list[Entry], duplicates: int = 0,
              errors_: tuple[type[errors.InvalidEntry], ...] | list[type[errors.InvalidEntry]] = (),
              forks: tuple[tuple[str, int], ...] | list[tuple[str, int]] = ()) -> None:
        expected_ids = sorted(str(e.id) for e in accepted)
        modes: tuple[Literal["segment", "each"], ...] = ("segment", "each")
        for verify in modes:
            with tempfile.TemporaryDirectory() as tmp:
                store = Store(Path(tmp) / "v.sqlite")
                if setup:
                    report = Ingestor(store, verify="each", atomic=True).add_batch(e.raw for e in setup)
                    assert report.added_count == len(setup)
                report = Ingestor(store, commons=commons, verify=verify).add_batch(input)
                got = (
                    sorted(str(e.id) for e in report.added),
                    report.duplicates,
                    [type(x).__name__ for x in report.rejected],
                    sorted((author_id_text(a), s) for _c, a, s in report.forks),
                )
                want = (
                    expected_ids,
                    duplicates,
                    [e.__name__ for e in errors_],
                    sorted((author_id_text(SIGNERS[n].public_key), s) for n, s in forks),
                )
                store.close()
                assert got == want, (name, verify, got, want)
        self.chains.append({
            "name": name,
            "description": description,
            "commons": None if commons is None else str(commons),
            "setup": [e.raw.hex() for e in setup],
            "input": [raw.hex() for raw in input],
            "accepted": expected_ids,
            "duplicates": duplicates,
            "errors": [e.__name__ for e in errors_],
            "forks": [{"author_id": author_id_text(SIGNERS[n].public_key), "seq": s} for n, s in forks],
        })

    # --- bundles ----------------------------------------------------------------------

    def bundle(self, file: str, description: str, data: bytes, error: type[errors.ReceivedDataError] | None,
               entries: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "b.sqlite")
            try:
                _header, report = import_bundle(store, io.BytesIO(data))
            except errors.ReceivedDataError as exc:
                assert error is not None and type(exc) is error, (file, exc)
                assert store.count() == 0
            else:
                assert error is None, (file, "imported")
                assert report.added_count == entries == store.count()
            store.close()
        self.files[file] = data
        self.bundles.append({
            "file": file,
            "description": description,
            "error": None if error is None else error.__name__,
            "entries": entries if error is None else 0,
            "sha256": hashlib.sha256(data).hexdigest(),
        })


def build() -> Builder:
    b = Builder()
    alice, bob, carol = SIGNERS["alice"], SIGNERS["bob"], SIGNERS["carol"]

    # --- valid entries ------------------------------------------------------------------
    genesis = b.valid_entry(
        "genesis", "Alice founds a commons; its id is this entry's id.", "alice",
        commons=None, seq=1, prev=None, kind="genesis",
        body={"name": "Riverside Seed Library", "license": "CC-BY-SA-4.0",
              "description": "Open-pollinated seeds, shared and documented."},
        timestamp=T0,
    )
    g = genesis.id
    a2 = b.valid_entry(
        "alice-2", "Alice's second entry: a contribution linking back to her genesis.", "alice",
        commons=g, seq=2, prev=g, kind="contribution",
        body={"title": "Catalogue of heirloom tomatoes", "value": 3, "ref": "https://example.org/t"},
        timestamp=T0 + 60_000,
    )
    b1 = b.valid_entry(
        "bob-1", "Bob's first entry (no backlink) joins, depending on the genesis.", "bob",
        commons=g, seq=1, prev=None, kind="join", body={"name": "Bob"}, deps=[g], timestamp=T0 + 120_000,
    )
    b2 = b.valid_entry(
        "bob-2", "A body using every allowed data-model type, a link in the body, and two dependencies.",
        "bob", commons=g, seq=2, prev=b1.id, kind="contribution",
        body={
            "title": "Germination notes ✓ ünïcode",
            "bytes": b"\x00\x01\xfe\xff",
            "negative": -5,
            "big": 2**64 - 1,
            "most_negative": -(2**64),
            "flag": True,
            "off": False,
            "nothing": None,
            "list": [1, "two", [3, []], {}],
            "nested": {"zeta": {"b": 1, "a": 2}, "aa": ""},
            "see": a2.id,
        },
        deps=[a2.id, genesis.id], timestamp=T0 + 180_000,
    )
    c1 = b.valid_entry(
        "carol-1", "Carol reviews Bob's contribution; time 0 is allowed (it is advisory).", "carol",
        commons=g, seq=1, prev=None, kind="review", body={"target": b2.id, "verdict": "accept"},
        deps=[b2.id], timestamp=0,
    )
    sixteen = [CID.of(b"dependency %d" % i) for i in range(17)]
    b.valid_entry(
        "sixteen-deps", "The maximum number of dependencies, 16, sorted by id bytes.", "carol",
        commons=g, seq=2, prev=c1.id, kind="note", body={}, deps=sixteen[:16], timestamp=T0 + 240_000,
    )
    b.valid_entry(
        "body-nesting-limit", "A body with 15 maps nested inside it: the entry map is level 0, the body "
        "level 1, and no container may sit deeper than level 16.", "carol",
        commons=g, seq=2, prev=c1.id, kind="note", body=_nest(15), timestamp=T0 + 240_000,
    )
    b.valid_entry(
        "text-leading-bom", "Text is byte-exact: a body string that starts with U+FEFF (EF BB BF) keeps it; "
        "a decoder that strips a leading byte-order mark gets other bytes, another id and a bad signature.",
        "carol", commons=g, seq=2, prev=c1.id, kind="note", body={"title": "\ufeffSeed list"},
        timestamp=T0 + 240_000,
    )
    # an entry of exactly MAX_ENTRY_BYTES: pad a text field to fit
    base = sign_entry(carol, commons=g, seq=3, prev=c1.id, kind="note", body={"pad": ""}, timestamp=T0)
    pad = MAX_ENTRY_BYTES - len(base.raw) - 2  # the empty text had a 1-byte header, this one 3
    big = b.valid_entry(
        "max-size", f"Exactly {MAX_ENTRY_BYTES} bytes, the maximum entry size.", "carol",
        commons=g, seq=3, prev=c1.id, kind="note", body={"pad": "p" * pad}, timestamp=T0,
    )
    assert len(big.raw) == MAX_ENTRY_BYTES

    # --- invalid: encoding ----------------------------------------------------------------
    raw = a2.raw
    fields = _fields(a2)
    b.invalid_entry("keys-unsorted", "The entry's keys are in alphabetical instead of length-first order.",
                    cbor2.dumps(dict(sorted(fields.items()))), errors.NonCanonicalEncoding)
    b.invalid_entry("seq-not-minimal", "seq 2 written as a two-byte integer (0x18 0x02).",
                    _replace_once(raw, b"\x63seq\x02", b"\x63seq\x18\x02"), errors.NonCanonicalEncoding)
    b.invalid_entry("int-not-minimal", "The body's value 3 written as a two-byte integer (0x18 0x03).",
                    _replace_once(raw, b"\x65value\x03", b"\x65value\x18\x03"), errors.NonCanonicalEncoding)
    b.invalid_entry("length-not-minimal", "The 4-byte text key 'kind' with a two-byte length header (0x78 0x04).",
                    _replace_once(raw, b"\x64kind", b"\x78\x04kind"), errors.NonCanonicalEncoding)
    # the entry's own keys stay in canonical order; only the body's are reversed
    ordered = {k: (dict(reversed(list(fields["body"].items()))) if k == "body" else v) for k, v in fields.items()}
    b.invalid_entry("body-keys-unsorted", "A map inside the body has its keys out of canonical order.",
                    cbor2.dumps(ordered), errors.NonCanonicalEncoding)
    b.invalid_entry("trailing-byte", "One zero byte follows a valid entry.", raw + b"\x00", errors.TrailingBytes)
    b.invalid_entry("trailing-entry", "A valid entry followed by a second copy of itself.", raw + raw,
                    errors.TrailingBytes)

    # --- invalid: version, size, dependencies --------------------------------------------
    b.invalid_entry("version-2", "Format version 2 (well signed).", _resign(alice, a2, version=2),
                    errors.UnknownVersion)
    b.invalid_entry("version-0", "Format version 0 (well signed).", _resign(alice, a2, version=0),
                    errors.UnknownVersion)
    b.invalid_entry("version-text", "The version as the text \"1\".", _resign(alice, a2, version="1"),
                    errors.UnknownVersion)
    b.invalid_entry("version-true", "The version as the boolean true.", _resign(alice, a2, version=True),
                    errors.UnknownVersion)
    b.invalid_entry("version-missing", "No version field at all.", _resign(alice, a2, version=_DROP),
                    errors.UnknownVersion)
    big_fields = _fields(big)
    big_fields["body"] = {"pad": "p" * (pad + 1)}
    b.invalid_entry("too-large", f"{MAX_ENTRY_BYTES + 1} bytes, one over the maximum (well signed).",
                    _sign_map(carol, big_fields), errors.EntryTooLarge)
    b.invalid_entry("seventeen-deps", "17 dependencies, one over the maximum (well signed).",
                    _resign(carol, c1, deps=[_tag(c) for c in sorted(sixteen, key=lambda c: c.raw)]),
                    errors.TooManyDependencies)

    # --- invalid: malformed ---------------------------------------------------------------
    def malformed(name: str, description: str, data: bytes) -> None:
        b.invalid_entry(name, description, data, errors.MalformedEntry)

    malformed("empty", "No bytes at all.", b"")
    malformed("truncated", "A valid entry missing its last byte.", raw[:-1])
    malformed("not-a-map", "A CBOR array holding the entry's values.", cbor2.dumps(list(fields.values())))
    malformed("not-cbor", "A CBOR break code (0xff) outside any indefinite-length item.", b"\xff")
    malformed("indefinite-map", "The entry map with an indefinite length (0xbf … 0xff).",
              b"\xbf" + raw[1:] + b"\xff")
    malformed("indefinite-text", "A text string with an indefinite length inside the body.",
              _replace_once(raw, b"\x65title\x78\x1eCatalogue", b"\x65title\x7f\x78\x1eCatalogue")
              .replace(b"tomatoes", b"tomatoes\xff", 1))
    malformed("duplicate-key", "The entry map lists seq twice (11 pairs).",
              b"\xab" + raw[1:6] + raw[1:])
    malformed("invalid-utf8", "A text string that is not valid UTF-8.",
              _replace_once(raw, b"heirloom", b"heirl\xffom"))
    malformed("float-in-body", "A floating-point number in the body (well signed).",
              _resign(alice, a2, body={"title": "x", "value": 1.5}))
    malformed("float-time", "The time as a floating-point number (well signed).",
              _resign(alice, a2, time=1.5))
    malformed("tag-in-body", "An unknown CBOR tag (99) in the body.",
              _resign(alice, a2, body={"x": cbor2.CBORTag(99, 1)}))
    malformed("datetime-tag", "A CBOR date-time tag (1) in the body.",
              _resign(alice, a2, body={"x": cbor2.CBORTag(1, 0)}))
    malformed("bignum-tag", "A CBOR bignum tag (2) in the body.",
              _resign(alice, a2, body={"x": cbor2.CBORTag(2, b"\x01" + bytes(9))}))
    malformed("undefined", "The CBOR simple value undefined (0xf7) in the body.",
              _replace_once(raw, b"\x65value\x03", b"\x65value\xf7"))
    malformed("nesting-over-limit", "A body with 16 maps nested inside it (one level too deep).",
              _resign(alice, a2, body=_nest(16)))
    malformed("too-deep", "A body nested 20 maps deep.",
              _resign(alice, a2, body=_nest(20)))
    malformed("author-short", "A 31-byte author key.", _resign(alice, a2, author=alice.public_key[:31]))
    malformed("author-text", "The author key as text.", _resign(alice, a2, author=author_id_text(alice.public_key)))
    malformed("seq-zero", "Sequence number 0.", _resign(alice, a2, seq=0, prev=None))
    malformed("seq-negative", "Sequence number -1.", _resign(alice, a2, seq=-1))
    malformed("seq-too-big", "Sequence number 2^53 + 1.", _resign(alice, a2, seq=2**53 + 1))
    malformed("seq-text", "Sequence number as text.", _resign(alice, a2, seq="2"))
    malformed("kind-uppercase", "A kind with an upper-case letter.", _resign(alice, a2, kind="Contribution"))
    malformed("kind-empty", "An empty kind.", _resign(alice, a2, kind=""))
    malformed("kind-too-long", "A kind of 33 characters.", _resign(alice, a2, kind="k" * 33))
    malformed("kind-digit-first", "A kind starting with a digit.", _resign(alice, a2, kind="1st"))
    malformed("body-list", "The body as a list.", _resign(alice, a2, body=[1, 2]))
    malformed("body-null", "The body as null.", _resign(alice, a2, body=None))
    malformed("time-negative", "A negative time.", _resign(alice, a2, time=-1))
    malformed("time-too-big", "A time of 2^53 ms: times are below 2^53.", _resign(alice, a2, time=2**53))
    malformed("time-2-63", "A time of 2^63 ms (did not fit a signed 64-bit store column).",
              _resign(alice, genesis, time=2**63))
    malformed("value-too-big", "A contribution claiming a value of 2^53 + 1: amounts are within [0, 2^53].",
              _resign(alice, a2, body={"title": "x", "value": 2**53 + 1}))
    malformed("amount-too-big", "A resource use of 2^64 - 1 units.",
              _resign(alice, a2, kind="resource_use", body={"resource": _tag(g), "amount": 2**64 - 1}))
    malformed("amount-negative", "A distribution of -1 units.",
              _resign(alice, a2, kind="distribution", body={"amount": -1}))
    malformed("quota-too-big", "A genesis resource with a quota of 2^53 + 1.",
              _resign(alice, genesis, body={"name": "x", "resources": [{"name": "w", "quota": 2**53 + 1}]}))
    malformed("sig-short", "A 63-byte signature.", _replace_once(raw, b"\x63sig\x58\x40", b"\x63sig\x58\x3f")
              .replace(a2.sig, a2.sig[:63], 1))
    malformed("deps-not-list", "The dependencies as a single link instead of a list.",
              _resign(bob, b1, deps=_tag(g)))
    malformed("deps-unsorted", "Two dependencies not sorted by id bytes.",
              _resign(bob, b2, deps=[_tag(c) for c in sorted([a2.id, g], key=lambda c: c.raw, reverse=True)]))
    malformed("deps-repeated", "The same dependency twice.", _resign(bob, b1, deps=[_tag(g), _tag(g)]))
    malformed("dep-not-link", "A dependency as plain bytes instead of a tag-42 link.",
              _resign(bob, b1, deps=[b"\x00" + g.raw]))
    malformed("commons-not-link", "The commons as plain bytes.", _resign(alice, a2, commons=b"\x00" + g.raw))
    malformed("link-no-prefix", "A tag-42 link without its 0x00 multibase prefix.",
              _resign(alice, a2, prev=cbor2.CBORTag(42, g.raw)))
    malformed("link-raw-codec", "A link whose CID names the raw codec (0x55), not dag-cbor.",
              _resign(alice, a2, prev=cbor2.CBORTag(42, b"\x00\x01\x55" + g.raw[2:])))
    malformed("link-cidv0", "A link holding a bare sha2-256 multihash (a CIDv0).",
              _resign(alice, a2, prev=cbor2.CBORTag(42, b"\x00" + g.raw[2:])))
    malformed("link-in-body-bad", "A malformed link inside the body.",
              _resign(alice, a2, body={"see": cbor2.CBORTag(42, b"\x00\x01")}))
    malformed("link-in-body-raw-codec", "A well-formed CIDv1 naming the raw codec (0x55), in a list inside the "
              "body: every link, body links included, must be CIDv1 dag-cbor sha2-256.",
              _resign(alice, a2, body={"title": "x", "see": [cbor2.CBORTag(42, b"\x00\x01\x55" + g.raw[2:])]}))
    malformed("genesis-with-commons", "A genesis entry naming a commons.", _resign(alice, genesis, commons=_tag(g)))
    malformed("genesis-with-deps", "A genesis entry with a dependency.", _resign(alice, genesis, deps=[_tag(g)]))
    malformed("first-with-prev", "A seq-1 entry with a backlink.", _resign(bob, b1, prev=_tag(g)))
    malformed("second-without-prev", "A seq-2 entry without a backlink.", _resign(alice, a2, prev=None))
    malformed("no-commons", "A non-genesis entry without a commons.", _resign(bob, b1, commons=None))
    malformed("field-missing", "No time field.", _resign(alice, a2, time=_DROP))
    malformed("field-extra", "An eleventh, unknown field.", _resign(alice, a2, extra=1))

    # --- invalid: several faults at once (entry.md §3 says which error wins) ------------------
    b.invalid_entry("faults-size-first", "65,537 bytes of 0xff: the size is checked before anything is decoded.",
                    b"\xff" * (MAX_ENTRY_BYTES + 1), errors.EntryTooLarge)
    b.invalid_entry("faults-version-and-kind", "Version 2 and an upper-case kind: the version is checked first.",
                    _resign(alice, a2, version=2, kind="Contribution"), errors.UnknownVersion)
    b.invalid_entry("faults-time-and-deps", "A negative time and 17 dependencies: time is checked before deps.",
                    _resign(carol, c1, time=-1, deps=[_tag(c) for c in sorted(sixteen, key=lambda c: c.raw)]),
                    errors.MalformedEntry)
    b.invalid_entry("faults-deps-and-non-minimal", "17 dependencies and seq 1 written as 0x18 0x01: field checks "
                    "come before the canonical-bytes comparison.",
                    _replace_once(_resign(carol, c1, deps=[_tag(c) for c in sorted(sixteen, key=lambda c: c.raw)]),
                                  b"\x63seq\x01", b"\x63seq\x18\x01"), errors.TooManyDependencies)
    b.invalid_entry("faults-body-order-and-sig", "Body keys out of order and a 63-byte signature: the body is "
                    "walked (its key order checked) before the signature's length.",
                    cbor2.dumps({**ordered, "sig": a2.sig[:63]}), errors.NonCanonicalEncoding)
    b.invalid_entry("faults-version-and-date-tag", "Version 2 and a date-time tag (1) in the body: tags the decoder "
                    "itself interprets are refused while decoding, before the version is looked at.",
                    _resign(alice, a2, version=2, body={"x": cbor2.CBORTag(1, 0)}), errors.MalformedEntry)
    b.invalid_entry("faults-version-and-tag-99", "Version 2 and an unknown tag (99) in the body: other tags are "
                    "refused in the field checks, after the version.",
                    _resign(alice, a2, version=2, body={"x": cbor2.CBORTag(99, 1)}), errors.UnknownVersion)

    # --- invalid: signatures ---------------------------------------------------------------
    flipped = bytearray(raw)
    at = raw.index(a2.sig) + 10
    flipped[at] ^= 0x01
    b.invalid_entry("sig-bit-flipped", "One bit of the signature flipped.", bytes(flipped), errors.BadSignature)
    unsigned = {k: v for k, v in fields.items() if k != "sig"}
    no_domain = alice.sign(cbor2.dumps(unsigned, canonical=True))
    b.invalid_entry("sig-without-domain", "Signed over the map without the domain-separation prefix.",
                    cbor2.dumps({**fields, "sig": no_domain}), errors.BadSignature)
    b.invalid_entry("sig-other-key", "Bob's key as author, signed by Alice.",
                    _resign(alice, a2, author=bob.public_key), errors.BadSignature)
    with_sig = {**fields, "sig": SIGNERS["alice"].sign(SIGNATURE_DOMAIN + cbor2.dumps(unsigned, canonical=True)
                                                        + b"\x00")}
    b.invalid_entry("sig-other-message", "A valid signature by the author over other bytes.",
                    cbor2.dumps(with_sig), errors.BadSignature)
    body_changed = _replace_once(raw, b"heirloom", b"heirlooM")
    b.invalid_entry("body-changed", "One character of the body changed after signing.", body_changed,
                    errors.BadSignature)

    # --- invalid: Ed25519 edge cases (entry.md §4) -------------------------------------------
    # Each is accepted by a lenient verifier (checked here with plain curve arithmetic) and
    # rejected by libsodium's crypto_sign_open, hence by p2pcommons.
    message = SIGNATURE_DOMAIN + cbor2.dumps(unsigned, canonical=True)
    a_scalar = _ed_secret_scalar(SEEDS["alice"])
    a_key = alice.public_key

    def signature_edge(name: str, description: str, sig: bytes, *, cofactored: bool, cofactorless: bool,
                       fields_: dict[str, Any] | None = None) -> None:
        base = unsigned if fields_ is None else fields_
        signed = SIGNATURE_DOMAIN + cbor2.dumps(base, canonical=True)
        assert ed_verify_lenient(sig, signed, base["author"], cofactored=True) is cofactored, name
        assert ed_verify_lenient(sig, signed, base["author"], cofactored=False) is cofactorless, name
        b.invalid_entry(name, description, cbor2.dumps({**base, "sig": sig}, canonical=True), errors.BadSignature)

    r = _ed_nonce("r-plus-order-8")
    big_r = _ed_encode(_ed_add(_ed_mul(r, ED_B), ED_T8))
    s_value = (r + _ed_k(big_r, a_key, message) * a_scalar) % ED_L
    signature_edge("ed25519-r-order-8-component", "R = rB + T, T of order 8, S = r + k·a: a cofactored verifier "
                   "(8SB = 8R + 8kA) accepts it; the cofactorless equation SB = R + kA does not hold.",
                   big_r + s_value.to_bytes(32, "little"), cofactored=True, cofactorless=False)
    for name, description, big_r in (
        ("ed25519-r-identity", "R = the identity point (01 00…00), S = k·a: the cofactorless equation holds, "
         "but R has small order.", _ed_encode(ED_IDENTITY)),
        ("ed25519-r-identity-sign-bit", "R = the identity with the sign bit set (01 00…80), S = k·a: holds for a "
         "verifier that ignores the sign of x = 0; R has small order and is not the canonical encoding.",
         _ed_encode(ED_IDENTITY, sign=1)),
        ("ed25519-r-non-canonical", "R = the identity written as y = p + 1 (ee ff…7f), S = k·a: holds for a "
         "verifier that reduces y mod p; R has small order and is not canonical.",
         _ed_encode(ED_IDENTITY, y_plus_p=True)),
    ):
        s_value = _ed_k(big_r, a_key, message) * a_scalar % ED_L
        signature_edge(name, description, big_r + s_value.to_bytes(32, "little"), cofactored=True, cofactorless=True)
    s_value = int.from_bytes(a2.sig[32:], "little") + ED_L
    signature_edge("ed25519-s-not-reduced", "Alice's valid signature with S replaced by S + L (still < 2^256): the "
                   "equation holds, but S must be < L.", a2.sig[:32] + s_value.to_bytes(32, "little"),
                   cofactored=True, cofactorless=True)

    # small-order and mixed-order author keys, on a seq-1 entry (Bob's join, author replaced)
    join_fields = {k: v for k, v in _fields(b1).items() if k != "sig"}
    t8b = (_ed_x(ED_P - _ED_T8_Y, 0) or 0, ED_P - _ED_T8_Y)
    order4 = (_ed_x(0, 0) or 0, 0)
    small_keys = (
        ("identity", "the identity point, order 1 (01 00…00)", _ed_encode(ED_IDENTITY)),
        ("identity-sign-bit", "the identity with the sign bit set (01 00…80)", _ed_encode(ED_IDENTITY, sign=1)),
        ("identity-non-canonical", "the identity written as y = p + 1 (ee ff…7f)",
         _ed_encode(ED_IDENTITY, y_plus_p=True)),
        ("order-2", "(0, −1), order 2 (ec ff…7f)", _ed_encode((0, ED_P - 1))),
        ("order-4", "(√−1, 0), order 4 (00…00)", _ed_encode(order4)),
        ("order-4-negated", "(−√−1, 0), order 4 (00…80)", _ed_encode(order4, sign=1)),
        ("order-4-non-canonical", "an order-4 point written as y = p (ed ff…7f)", _ed_encode(order4, y_plus_p=True)),
        ("order-8", "a point of order 8 (26 e8…05)", _ed_encode(ED_T8)),
        ("order-8-negated", "its negation (26 e8…85)", _ed_encode((ED_P - ED_T8[0], ED_T8[1]))),
        ("order-8-other", "a point of order 8 with the other y (c7 17…7a)", _ed_encode(t8b)),
    )
    for label, what, key in small_keys:
        point = _ed_decode_lenient(key)
        fields_ = {**join_fields, "author": key}
        signed = SIGNATURE_DOMAIN + cbor2.dumps(fields_, canonical=True)
        for nonce in range(1, 200):  # find R = sB with [k]A = identity (k ≡ 0 mod the order of A)
            big_r = _ed_encode(_ed_mul(nonce, ED_B))
            if _ed_mul(_ed_k(big_r, key, signed), point) == ED_IDENTITY:
                break
        else:
            raise AssertionError(label)
        signature_edge(f"ed25519-key-{label}", f"The author key is {what}; R = sB, S = s with [k]A = 0, so the "
                       "cofactorless equation holds for this message: small-order keys are refused.",
                       big_r + nonce.to_bytes(32, "little"), cofactored=True, cofactorless=True, fields_=fields_)

    # a mixed-order key A = aB + T (T of order 8): not refused as such (libsodium does not
    # check that A lies in the prime-order subgroup); the cofactorless equation decides
    mixed = _ed_encode(_ed_add(_ed_mul(a_scalar, ED_B), ED_T8))
    fields_ = {**join_fields, "author": mixed}
    signed = SIGNATURE_DOMAIN + cbor2.dumps(fields_, canonical=True)
    found: dict[bool, bytes] = {}
    for nonce in range(1, 400):
        big_r = _ed_encode(_ed_mul(nonce, ED_B))
        k = _ed_k(big_r, mixed, signed)
        found.setdefault(k % 8 == 0, big_r + ((nonce + k * a_scalar) % ED_L).to_bytes(32, "little"))
        if len(found) == 2:
            break
    signature_edge("ed25519-key-mixed-order", "The author key is aB + T (T of order 8), S = r + k·a with k not a "
                   "multiple of 8: SB − kA = R − kT ≠ R, so the cofactorless equation fails (a cofactored one holds).",
                   found[False], cofactored=True, cofactorless=False, fields_=fields_)
    b.valid_unusual_entry("ed25519-key-mixed-order-k-multiple-of-8", "The same mixed-order key aB + T, with R "
                          "chosen so that k is a multiple of 8: SB − kA = R, so the entry is VALID (keys are not "
                          "checked for prime order).", cbor2.dumps({**fields_, "sig": found[True]}, canonical=True))

    # --- chains -----------------------------------------------------------------------------
    a3 = sign_entry(alice, commons=g, seq=3, prev=a2.id, kind="contribution", body={"title": "more"},
                    timestamp=T0 + 300_000)
    a3_bad_link = sign_entry(alice, commons=g, seq=3, prev=g, kind="contribution", body={"title": "more"},
                             timestamp=T0 + 300_000)
    a2_fork = sign_entry(alice, commons=g, seq=2, prev=g, kind="contribution", body={"title": "other history"},
                         timestamp=T0 + 60_000)
    other = sign_entry(carol, commons=None, seq=1, prev=None, kind="genesis", body={"name": "Another commons"},
                       timestamp=T0)
    other_2 = sign_entry(carol, commons=other.id, seq=2, prev=other.id, kind="note", body={}, timestamp=T0)
    a3_bad_sig = bytearray(a3.raw)
    a3_bad_sig[a3.raw.index(a3.sig)] ^= 0x80
    b.chain("in-order", "A genesis and entries of three authors, in causal order, into an empty store.",
            setup=[], input=[genesis.raw, a2.raw, b1.raw, b2.raw, c1.raw], accepted=[genesis, a2, b1, b2, c1])
    b.chain("any-order", "The same entries in reverse order: a batch is checked as a set.",
            setup=[], input=[c1.raw, b2.raw, b1.raw, a2.raw, genesis.raw],
            accepted=[genesis, a2, b1, b2, c1])
    b.chain("idempotent", "Entries already stored, and a repeat inside the batch, count as duplicates.",
            setup=[genesis, a2], input=[a2.raw, genesis.raw, a2.raw, a3.raw], accepted=[a3], duplicates=3)
    b.chain("sequence-gap", "Alice's seq 3 arrives while her seq 2 is missing.",
            setup=[genesis], input=[a3.raw], accepted=[], errors_=[errors.SequenceGap])
    b.chain("backlink-mismatch", "Alice's seq 3 links to her seq 1 instead of her seq 2.",
            setup=[genesis, a2], input=[a3_bad_link.raw], accepted=[], errors_=[errors.BacklinkMismatch])
    b.chain("wrong-commons", "An entry of another commons, in a batch scoped to this commons.",
            setup=[genesis], input=[other.raw, a2.raw], commons=g, accepted=[a2],
            errors_=[errors.WrongCommons])
    b.chain("unknown-commons", "An entry of a commons this store does not hold (no scope given).",
            setup=[genesis], input=[other_2.raw], accepted=[], errors_=[errors.WrongCommons])
    b.chain("scoped-genesis-not-held", "A batch scoped to a commons (as in a bundle or a sync session) whose "
            "genesis the store does not hold and the batch does not carry: the entry is refused.",
            setup=[], input=[a2.raw], commons=g, accepted=[], errors_=[errors.WrongCommons])
    b.chain("scoped-genesis-in-batch", "The same, with the genesis in the batch: both are accepted.",
            setup=[], input=[a2.raw, genesis.raw], commons=g, accepted=[genesis, a2])
    b.chain("fork", "A second, different seq 2 by Alice: stored as evidence and reported, not dropped.",
            setup=[genesis, a2], input=[a2_fork.raw], accepted=[a2_fork], forks=[("alice", 2)])
    b.chain("fork-in-one-batch", "Both sides of a fork in one batch: both stored, the fork reported.",
            setup=[genesis], input=[a2.raw, a2_fork.raw], accepted=[a2, a2_fork], forks=[("alice", 2)])
    b.chain("bad-signature-at-head", "A chain whose newest entry has a bad signature: it is rejected, and "
            "the entry below it, no longer vouched for, is verified on its own and kept.",
            setup=[genesis], input=[a2.raw, bytes(a3_bad_sig)], accepted=[a2], errors_=[errors.BadSignature])
    b.chain("decode-error-in-batch", "A malformed entry in a batch is rejected; the others are stored.",
            setup=[genesis], input=[raw + b"\x00", a2.raw], accepted=[a2], errors_=[errors.TrailingBytes])

    # --- bundles ----------------------------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "src.sqlite")
        Ingestor(store, verify="each", atomic=True).add_batch(e.raw for e in (genesis, a2, b1, b2, c1))
        out = io.BytesIO()
        write_bundle(store, g, out, created=T0)
        store.close()
    bundle = out.getvalue()
    assert bundle.startswith(MAGIC)
    b.bundle("bundle-valid.bin", "Genesis and four entries by three authors.", bundle, None, 5)
    b.bundle("bundle-truncated.bin", "The valid bundle cut 40 bytes before its end: inside its last entry (the "
             "end frame and the 32-byte checksum are the last 33 bytes).", bundle[:-40], errors.BundleTruncated, 0)
    b.bundle("bundle-cut-in-digest.bin", "The valid bundle without the last 16 bytes of its checksum.",
             bundle[:-16], errors.BundleTruncated, 0)
    b.bundle("bundle-no-digest.bin", "The valid bundle cut right after its end frame (no checksum at all).",
             bundle[:-32], errors.BundleTruncated, 0)
    b.bundle("bundle-trailing-byte.bin", "The valid bundle followed by one zero byte.", bundle + b"\x00",
             errors.MalformedBundle, 0)
    b.bundle("bundle-cut-in-entry.bin", "The valid bundle cut in the middle of its third entry.",
             bundle[: bundle.index(b1.raw) + 10], errors.BundleTruncated, 0)
    bad_digest = bytearray(bundle)
    bad_digest[-1] ^= 0x01
    b.bundle("bundle-bad-checksum.bin", "The valid bundle with one bit of its SHA-256 trailer flipped.",
             bytes(bad_digest), errors.BundleTampered, 0)
    # change one byte of an entry and recompute the checksum: only the entry's signature and
    # hash links can catch this
    body = bundle[:-32].replace(b"heirloom", b"heirlooM", 1)
    b.bundle("bundle-tampered-entry.bin", "One byte of an entry changed and the checksum recomputed: the "
             "entry's signature catches it.", body + hashlib.sha256(body).digest(), errors.BadSignature, 0)
    frame = encode_uvarint(len(a3.raw)) + a3.raw
    end = bundle.index(b"\x00", len(bundle) - 33)  # the end frame, just before the checksum
    assert end == len(bundle) - 33
    body = bundle[:end] + frame + b"\x00"
    b.bundle("bundle-count-mismatch.bin", "One entry more than the header announces, checksum valid.",
             body + hashlib.sha256(body).digest(), errors.BundleTampered, 0)
    b.bundle("bundle-count-mismatch-trailing.bin", "bundle-count-mismatch.bin followed by one zero byte: bytes "
             "after the checksum are checked before the header's totals.",
             body + hashlib.sha256(body).digest() + b"\x00", errors.MalformedBundle, 0)
    tampered = bundle[:-32].replace(b"heirloom", b"heirlooM", 1) + bundle[-32:]
    b.bundle("bundle-tampered-entry-bad-checksum.bin", "One byte of an entry changed, checksum NOT recomputed: the "
             "last (here the only) batch of entries is validated after the final checks, so the checksum fails first.",
             tampered, errors.BundleTampered, 0)
    return b


def _nest(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"n": value}
    return value


def document(b: Builder) -> dict[str, Any]:
    return {
        "format": "p2pcommons entry test vectors, version 1",
        "generator": "protocols/vectors/generate.py",
        "spec": "protocols/entry.md, protocols/bundle.md",
        "signature_domain_hex": SIGNATURE_DOMAIN.hex(),
        "max_entry_bytes": MAX_ENTRY_BYTES,
        "authors": [
            {"name": name, "seed": seed.hex(), "public_key": SIGNERS[name].public_key.hex(),
             "author_id": author_id_text(SIGNERS[name].public_key),
             "peer_id": peer_id_text(SIGNERS[name].public_key)}
            for name, seed in SEEDS.items()
        ],
        "valid": b.valid,
        "invalid": b.invalid,
        "chains": b.chains,
        "bundles": b.bundles,
        "valid_unusual": b.valid_unusual,
    }


def render(b: Builder) -> dict[str, bytes]:
    files = {"entries.json": (json.dumps(document(b), indent=1, ensure_ascii=False) + "\n").encode()}
    files.update(b.files)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or check) the p2pcommons test vectors.")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    files = render(build())
    stale = []
    for name, data in files.items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
        else:
            path.write_bytes(data)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'wrote'} {len(files)} files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
