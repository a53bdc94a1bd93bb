"""Generate the address-record test vectors (``addresses.json``, see ``protocols/addresses.md``).

    python protocols/vectors/generate_addresses.py           # rewrite addresses.json next to this script
    python protocols/vectors/generate_addresses.py --check   # exit 1 if it is not what this would write

Deterministic: a fixed seed and fixed times (Ed25519 signatures are deterministic).  Every
vector is checked against the implementation while it is generated;
``tests/test_address_records.py`` checks them again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.errors import ProtocolViolation
from p2pcommons.identity import peer_id_text
from p2pcommons.node.addresses import DOMAIN, MAX_TTL_MS, decode_record, make_record

HERE = Path(__file__).resolve().parent
SEED = bytes(range(32))  # "alice" of entries.json
OTHER_SEED = bytes(range(1, 33))
COMMONS = CID.of(b"p2pcommons address vector commons")
SEQ = 1_700_000_000_000          # 2023-11-14T22:13:20Z, when the record was made
TTL = 24 * 3600 * 1000
NOW = SEQ + 60_000               # the receiver's clock in these vectors
ADDRS = ["/ip4/192.0.2.7/tcp/4001", "/ip6/2001:db8::7/tcp/4001"]


def _unsigned(**fields: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"v": 1, "commons": COMMONS, "peer": Signer(SEED).public_key, "addrs": ADDRS,
                             "seq": SEQ, "expires": SEQ + TTL}
    value.update(fields)
    return value


def _signed(unsigned: dict[str, Any], seed: bytes = SEED) -> bytes:
    return dagcbor.encode({**unsigned, "sig": Signer(seed).sign(DOMAIN + dagcbor.encode(unsigned))})


def valid() -> list[dict[str, Any]]:
    signer = Signer(SEED)
    raw = make_record(signer, COMMONS, [a + "/p2p/" + peer_id_text(signer.public_key) for a in ADDRS],
                      seq=SEQ, ttl_ms=TTL)
    record = decode_record(raw, now=NOW)
    unsigned = dagcbor.decode(raw)
    del unsigned["sig"]
    return [{
        "name": "two-addresses",
        "description": "A node's record for one commons: two addresses (the /p2p/ part is dropped), valid 24 h.",
        "record_hex": raw.hex(),
        "signing_input_hex": (DOMAIN + dagcbor.encode(unsigned)).hex(),
        "now": NOW,
        "fields": {"commons": str(record.commons), "peer": record.peer.hex(), "peer_id": record.peer_id(),
                   "addrs": list(record.addrs), "seq": record.seq, "expires": record.expires},
    }]


def invalid() -> list[dict[str, Any]]:
    cases: list[tuple[str, str, bytes, str]] = [
        ("bad-signature", "Signed by another key than `peer`.",
         _signed(_unsigned(), OTHER_SEED), "signature does not verify"),
        ("tampered-address", "An address changed after signing.",
         dagcbor.encode({**_unsigned(addrs=["/ip4/198.51.100.9/tcp/4001"]),
                         "sig": dagcbor.decode(_signed(_unsigned()))["sig"]}), "signature does not verify"),
        ("expired", "Expired before the receiver's clock (`now`).",
         _signed(_unsigned(seq=SEQ - TTL - 120_000, expires=SEQ - 1)), "expired"),
        ("too-long", "Claims to be valid for more than a week.",
         _signed(_unsigned(expires=SEQ + MAX_TTL_MS + 1)), "too long"),
        ("future", "Made more than 10 minutes after the receiver's clock.",
         _signed(_unsigned(seq=NOW + 11 * 60_000, expires=NOW + TTL)), "in the future"),
        ("peer-suffix", "An address carries /p2p/ (the record names its peer once).",
         _signed(_unsigned(addrs=[ADDRS[0] + "/p2p/" + peer_id_text(Signer(SEED).public_key)])), "malformed"),
        ("too-many", "Nine addresses.",
         _signed(_unsigned(addrs=[f"/ip4/192.0.2.{i}/tcp/4001" for i in range(9)])), "short list"),
        ("extra-field", "An unknown field.", _signed({**_unsigned(), "x": 1}), "wrong fields"),
    ]
    out = []
    for name, description, raw, error in cases:
        try:
            decode_record(raw, now=NOW)
        except ProtocolViolation as exc:
            assert error in str(exc), (name, exc)
        else:
            raise AssertionError(f"{name} was accepted")
        out.append({"name": name, "description": description, "record_hex": raw.hex(), "now": NOW,
                    "error": error})
    return out


def render() -> str:
    doc = {
        "description": "Address records (protocols/addresses.md): DAG-CBOR maps signed with the node's Ed25519 "
                       "key over the domain 'p2pcommons/addrs/v1\\n' followed by the map without 'sig'.",
        "domain_hex": DOMAIN.hex(),
        "seed_hex": SEED.hex(),
        "valid": valid(),
        "invalid": invalid(),
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    target = HERE / "addresses.json"
    text = render()
    if "--check" in sys.argv[1:]:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is out of date; run {Path(__file__).name}", file=sys.stderr)
            sys.exit(1)
        return
    target.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
