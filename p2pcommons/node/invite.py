"""Invite codes as the node and the CLI use them.

The format itself — :class:`Invite`, the code's codec and the token's signing and checks —
is ``protocols/invite.py`` (``protocols/invite.md``), beside the other wire formats; it is
re-exported here for the callers that import it from the node. What is left is the CLI's
reading of durations (``--expires 7d``).
"""

from __future__ import annotations

from p2pcommons.errors import InvalidInvite
from p2pcommons.protocols.invite import (
    DOMAIN,
    MAX_CODE,
    PREFIX,
    Invite,
    check_token,
    decode_invite,
    encode_invite,
    make_token,
)

__all__ = [
    "DOMAIN",
    "MAX_CODE",
    "PREFIX",
    "Invite",
    "check_token",
    "decode_invite",
    "encode_invite",
    "make_token",
    "parse_duration",
]


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``7d``, ``2w`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    try:
        value = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise InvalidInvite(f"'{text}' is not a duration (try 30m, 12h, 7d).") from None
    if value <= 0:
        raise InvalidInvite("The duration must be positive.")
    return int(value)
