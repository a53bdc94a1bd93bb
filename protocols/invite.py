"""Invite codes: one pasteable string that carries what a newcomer needs to join.

Format (specified in ``protocols/invite.md``)::

    code    = "p2pc1" base32-lower-nopad(payload || sha256(payload)[0:4])
    payload = DAG-CBOR {v: 1, commons: CID, addrs: [text], expires: uint, uses: uint,
                        token: null | token}
    token   = {commons, inviter: bytes32, nonce: bytes16, expires, uses, sig: bytes64}
    sig     = Ed25519 over "p2pcommons/invite/v1\\n" || DAG-CBOR(token without sig)

The checksum catches a code damaged by copying before anything is dialled.  ``expires``
is milliseconds since the epoch (0: never).  For invite-only commons the token is what the
inviter's node checks before it admits the join that carries it: the inviter signed it, it
names this commons, it has not expired and has been used fewer than ``uses`` times.  For
open commons there is no token (anyone may join); ``uses`` and ``expires`` are then checked
by the joining side only, as a courtesy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.errors import InvalidEntry, InvalidInvite, InviteExpired

PREFIX = "p2pc1"
DOMAIN = b"p2pcommons/invite/v1\n"
MAX_CODE = 8192
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


@dataclass(frozen=True)
class Invite:
    commons: CID
    addrs: tuple[str, ...]
    expires: int = 0
    uses: int = 0
    token: dict[str, Any] | None = None

    @property
    def nonce(self) -> bytes | None:
        return None if self.token is None else bytes(self.token["nonce"])

    def check_expiry(self, now_ms: int | None = None) -> None:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if self.expires and now_ms > self.expires:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.expires / 1000))
            raise InviteExpired(f"This invite expired at {when}; ask for a new one.")


def make_token(signer: Signer, commons: CID, *, uses: int, expires: int) -> dict[str, Any]:
    unsigned = {"commons": commons, "inviter": signer.public_key, "nonce": os.urandom(16),
                "expires": expires, "uses": uses}
    sig = signer.sign(DOMAIN + dagcbor.encode(unsigned))
    return {**unsigned, "sig": sig}


def check_token(token: Any, commons: CID, inviter: bytes | None = None) -> dict[str, Any]:
    """Validate a token's shape and signature (and, if given, that ``inviter`` signed it)."""
    fields = {"commons", "inviter", "nonce", "expires", "uses", "sig"}
    if type(token) is not dict or set(token) != fields:
        raise InvalidInvite("The invite's token has the wrong fields.")
    try:
        if dagcbor.link(token["commons"]) != commons:
            raise InvalidInvite("The invite's token is for another commons.")
    except InvalidEntry:
        raise InvalidInvite("The invite's token does not name a commons.") from None
    author, nonce, sig = token["inviter"], token["nonce"], token["sig"]
    if type(author) is not bytes or len(author) != 32 or type(nonce) is not bytes or len(nonce) != 16:
        raise InvalidInvite("The invite's token is malformed.")
    if type(sig) is not bytes or len(sig) != 64:
        raise InvalidInvite("The invite's token signature is malformed.")
    for key in ("expires", "uses"):
        if type(token[key]) is not int or token[key] < 0:
            raise InvalidInvite(f"The invite's token {key} is not a count.")
    if inviter is not None and author != inviter:
        raise InvalidInvite("The invite's token was signed by someone else.")
    unsigned = {k: v for k, v in token.items() if k != "sig"}
    try:
        nacl.bindings.crypto_sign_open(sig + DOMAIN + dagcbor.encode(unsigned), author)
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise InvalidInvite("The invite's token signature does not verify.") from None
    return dict(token)


def encode_invite(invite: Invite) -> str:
    payload = dagcbor.encode({
        "v": 1, "commons": invite.commons, "addrs": list(invite.addrs), "expires": invite.expires,
        "uses": invite.uses, "token": invite.token,
    })
    data = payload + hashlib.sha256(payload).digest()[:4]
    return PREFIX + base64.b32encode(data).decode().lower().rstrip("=")


def decode_invite(code: str) -> Invite:
    """Parse and check an invite code; every failure is an :class:`InvalidInvite` with one
    sentence saying what is wrong."""
    code = "".join(code.split())
    if not code.startswith(PREFIX):
        raise InvalidInvite("This is not an invite code (it should start with 'p2pc1').")
    if len(code) > MAX_CODE:
        raise InvalidInvite("The invite code is too long.")
    body = code[len(PREFIX):].upper()
    if not set(body) <= _BASE32:
        raise InvalidInvite("The invite code has characters that do not belong in it; copy it again.")
    try:
        data = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise InvalidInvite("The invite code is damaged or incomplete (cut short?); copy it again.") from None
    payload, check = data[:-4], data[-4:]
    if len(data) < 5 or hashlib.sha256(payload).digest()[:4] != check:
        raise InvalidInvite("The invite code is damaged or incomplete (its checksum does not match); copy it again.")
    try:
        value = dagcbor.decode(payload)
    except InvalidEntry:
        raise InvalidInvite("The invite code's contents are not readable.") from None
    if type(value) is not dict or set(value) != {"v", "commons", "addrs", "expires", "uses", "token"}:
        raise InvalidInvite("The invite code's contents have the wrong fields.")
    if value["v"] != 1:
        raise InvalidInvite(f"Invite version {value['v']!r} is not supported; upgrade p2pcommons.")
    try:
        commons = dagcbor.link(value["commons"])
    except InvalidEntry:
        raise InvalidInvite("The invite code does not name a commons.") from None
    addrs = value["addrs"]
    if type(addrs) is not list or not all(type(a) is str for a in addrs) or len(addrs) > 32:
        raise InvalidInvite("The invite code's addresses are malformed.")
    for key in ("expires", "uses"):
        if type(value[key]) is not int or value[key] < 0:
            raise InvalidInvite(f"The invite code's {key} is not a count.")
    token = value["token"]
    if token is not None:
        token = check_token(token, commons)
    return Invite(commons, tuple(addrs), value["expires"], value["uses"], token)
