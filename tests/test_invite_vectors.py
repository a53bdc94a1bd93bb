"""Invite codes against the byte-exact vectors in protocols/vectors/invites.json (protocols/invite.md)."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.errors import InvalidInvite, InviteExpired
from p2pcommons.protocols.invite import DOMAIN, Invite, decode_invite, encode_invite

VECTORS = Path(__file__).resolve().parent.parent / "protocols" / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "invites.json").read_text(encoding="utf-8"))


def test_vectors_are_current() -> None:
    spec = importlib.util.spec_from_file_location("p2pc_generate_invite", VECTORS / "generate_invite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert (VECTORS / "invites.json").read_text(encoding="utf-8") == module.render()
    finally:
        del sys.modules[spec.name]


@pytest.mark.parametrize("vector", DOC["valid"], ids=lambda v: v["name"])
def test_valid_invite(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    payload = bytes.fromhex(vector["payload_hex"])
    # the code is the prefix and the lower-case, unpadded base32 of payload || sha256(payload)[:4]
    assert bytes.fromhex(vector["checksum_hex"]) == hashlib.sha256(payload).digest()[:4]
    canonical = "p2pc1" + base64.b32encode(payload + hashlib.sha256(payload).digest()[:4]).decode().lower().rstrip("=")
    assert "".join(vector["code"].split()).lower() == canonical
    assert dagcbor.encode(dagcbor.decode(payload)) == payload
    invite = decode_invite(vector["code"])
    assert str(invite.commons) == fields["commons"]
    assert list(invite.addrs) == fields["addrs"]
    assert (invite.expires, invite.uses) == (fields["expires"], fields["uses"])
    token = fields["token"]
    if token is None:
        assert invite.token is None
    else:
        assert invite.token is not None
        assert str(dagcbor.link(invite.token["commons"])) == token["commons"]
        assert invite.token["inviter"].hex() == token["inviter"] == DOC["inviter"]["public_key"]
        assert invite.token["nonce"].hex() == token["nonce"]
        assert invite.token["sig"].hex() == token["sig"]
        unsigned = {k: v for k, v in invite.token.items() if k != "sig"}
        assert (DOMAIN + dagcbor.encode(unsigned)).hex() == token["signing_input_hex"]
    # re-encoding gives the canonical code back
    rebuilt = Invite(CID.parse(fields["commons"]), tuple(fields["addrs"]), fields["expires"], fields["uses"],
                     invite.token)
    assert encode_invite(rebuilt) == canonical


def test_expiry_is_inclusive() -> None:
    """An invite with expires = T is usable at T ms and expired from T + 1 (invite.md §3)."""
    vector = next(v for v in DOC["valid"] if v["fields"]["expires"])
    invite = decode_invite(vector["code"])
    invite.check_expiry(now_ms=invite.expires)
    with pytest.raises(InviteExpired):
        invite.check_expiry(now_ms=invite.expires + 1)
    never = decode_invite(next(v for v in DOC["valid"] if not v["fields"]["expires"])["code"])
    never.check_expiry(now_ms=2**62)


@pytest.mark.parametrize("vector", DOC["invalid"], ids=lambda v: v["name"])
def test_invalid_invite(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidInvite) as caught:
        decode_invite(vector["code"])
    assert type(caught.value).__name__ == vector["error"]
    assert vector["message"] in str(caught.value)
