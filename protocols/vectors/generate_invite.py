"""Generate the invite-code test vectors (``invites.json``, see ``protocols/invite.md``).

    python protocols/vectors/generate_invite.py           # rewrite invites.json next to this script
    python protocols/vectors/generate_invite.py --check   # exit 1 if it is not what this would write

Deterministic: a fixed seed, a fixed token nonce (the implementation draws it at random),
and Ed25519 signatures are deterministic.  Every vector is checked against the
implementation while it is generated; ``tests/test_invite_vectors.py`` checks them again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.errors import InvalidInvite
from p2pcommons.identity import peer_id_text
from p2pcommons.protocols.invite import DOMAIN, PREFIX, Invite, decode_invite, encode_invite

HERE = Path(__file__).resolve().parent
SEED = bytes(range(32))  # "alice" of entries.json
COMMONS = CID.of(b"p2pcommons invite vector commons")
OTHER = CID.of(b"another commons")
NONCE = bytes(range(0xA0, 0xB0))
ADDR = "/ip4/192.0.2.7/tcp/4001/p2p/" + peer_id_text(Signer(SEED).public_key)
EXPIRES = 1_700_604_800_000  # 2023-11-21T22:13:20Z


def token(signer: Signer, commons: CID = COMMONS, *, uses: int = 3, expires: int = EXPIRES) -> dict[str, Any]:
    unsigned = {"commons": commons, "inviter": signer.public_key, "nonce": NONCE, "expires": expires, "uses": uses}
    return {**unsigned, "sig": signer.sign(DOMAIN + dagcbor.encode(unsigned))}


def code_of(payload: bytes, check: bytes | None = None) -> str:
    """The code for these payload bytes, with the right checksum unless one is given."""
    data = payload + (hashlib.sha256(payload).digest()[:4] if check is None else check)
    return PREFIX + base64.b32encode(data).decode().lower().rstrip("=")


def payload_of(**fields: Any) -> bytes:
    value: dict[str, Any] = {"v": 1, "commons": COMMONS, "addrs": [ADDR], "expires": 0, "uses": 0, "token": None}
    value.update(fields)
    return dagcbor.encode(value)


def _fields(invite: Invite) -> dict[str, Any]:
    tok = invite.token
    return {
        "commons": str(invite.commons), "addrs": list(invite.addrs), "expires": invite.expires, "uses": invite.uses,
        "token": None if tok is None else {
            "commons": str(dagcbor.link(tok["commons"])), "inviter": tok["inviter"].hex(), "nonce": tok["nonce"].hex(),
            "expires": tok["expires"], "uses": tok["uses"], "sig": tok["sig"].hex(),
            "signing_input_hex": (DOMAIN + dagcbor.encode({k: v for k, v in tok.items() if k != "sig"})).hex(),
        },
    }


def valid() -> list[dict[str, Any]]:
    signer = Signer(SEED)
    cases = [
        ("open", "An open commons: no token, never expires, unlimited uses.", Invite(COMMONS, (ADDR,))),
        ("invite-only", "An invite-only commons: a token signed by the inviter, 3 uses, an expiry.",
         Invite(COMMONS, (ADDR, "/ip4/127.0.0.1/tcp/4001"), EXPIRES, 3, token(signer))),
        ("no-address", "No address at all (decodes; 'p2pc join' then refuses it: nothing to dial).",
         Invite(COMMONS, ())),
    ]
    out: list[dict[str, Any]] = []
    for name, description, invite in cases:
        code = encode_invite(invite)
        assert _fields(decode_invite(code)) == _fields(invite)
        again = decode_invite(code)
        assert encode_invite(again) == code
        data = base64.b32decode((code[len(PREFIX):].upper()) + "=" * (-len(code[len(PREFIX):]) % 8))
        out.append({"name": name, "description": description, "code": code, "payload_hex": data[:-4].hex(),
                    "checksum_hex": data[-4:].hex(), "fields": _fields(invite)})
    # the same code, spread over lines and in upper case: whitespace is dropped, case ignored
    first: str = out[0]["code"]
    spaced = PREFIX + "\n".join(first[len(PREFIX):][i:i + 20] for i in range(0, len(first) - len(PREFIX), 20)).upper()
    assert decode_invite(spaced) == decode_invite(first)
    out.append({**out[0], "name": "open-reformatted",
                "description": "The open invite's code with its body upper-cased and split over lines (the prefix "
                               "stays lower case): it decodes to the same invite.", "code": spaced})
    return out


def invalid() -> list[dict[str, Any]]:
    signer = Signer(SEED)
    good = encode_invite(Invite(COMMONS, (ADDR,)))
    good_token = token(signer)
    flipped = good[:-3] + ("a" if good[-3] != "a" else "b") + good[-2:]
    forged = {**good_token, "uses": 1000}
    cases = [
        ("wrong-prefix", "p2pc2" + good[5:], "should start with 'p2pc1'"),
        ("prefix-upper-case", good.upper(), "should start with 'p2pc1'"),
        ("bad-character", good[:12] + "1" + good[13:], "characters that do not belong"),
        ("character-changed", flipped, "checksum does not match"),
        ("cut-short", good[:-7], "damaged or incomplete"),
        ("impossible-length", good + "a", "damaged or incomplete"),
        ("too-long", code_of(payload_of(addrs=["/dns4/" + "x" * 250 + "/tcp/1"] * 21)), "too long"),
        ("too-many-addresses", code_of(payload_of(addrs=["/ip4/192.0.2.1/tcp/1"] * 33)), "addresses are malformed"),
        ("address-not-text", code_of(payload_of(addrs=[b"\x04"])), "addresses are malformed"),
        ("not-canonical", code_of(payload_of().replace(b"\x61\x76\x01", b"\x61\x76\x18\x01")),
         "contents are not readable"),
        ("wrong-fields", code_of(dagcbor.encode({"v": 1, "commons": COMMONS, "addrs": [ADDR]})), "wrong fields"),
        ("version-2", code_of(payload_of(v=2)), "version 2 is not supported"),
        ("commons-not-link", code_of(payload_of(commons=str(COMMONS))), "does not name a commons"),
        ("negative-expires", code_of(payload_of(expires=-1)), "expires is not a count"),
        ("token-bad-signature", code_of(payload_of(token=forged, uses=1000)), "token signature does not verify"),
        ("token-other-commons", code_of(payload_of(token=token(signer, OTHER))), "token is for another commons"),
        ("token-short-nonce", code_of(payload_of(token={**good_token, "nonce": NONCE[:15]})), "token is malformed"),
        ("token-wrong-fields", code_of(payload_of(token={k: v for k, v in good_token.items() if k != "uses"})),
         "token has the wrong fields"),
    ]
    out = []
    for name, code, error in cases:
        try:
            decode_invite(code)
        except InvalidInvite as exc:
            assert error in str(exc), (name, str(exc))
        else:
            raise AssertionError(f"invite vector {name} decodes")
        out.append({"name": name, "code": code, "error": "InvalidInvite", "message": error})
    return out


def document() -> dict[str, Any]:
    signer = Signer(SEED)
    return {
        "format": "p2pcommons invite-code test vectors, version 1",
        "spec": "protocols/invite.md",
        "generator": "protocols/vectors/generate_invite.py",
        "inviter": {"seed": SEED.hex(), "public_key": signer.public_key.hex()},
        "token_domain_hex": DOMAIN.hex(),
        "valid": valid(),
        "invalid": invalid(),
    }


def render() -> str:
    return json.dumps(document(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    path = HERE / "invites.json"
    text = render()
    if "--check" in argv:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print("out of date: invites.json", file=sys.stderr)
            return 1
        print("checked invites.json")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
