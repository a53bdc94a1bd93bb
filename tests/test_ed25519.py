"""p2pcommons.ed25519 (libsodium called without loading ``nacl.bindings``, for start-up) gives
exactly PyNaCl's keys, signatures and verdicts."""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons import ed25519


def _nacl_verifies(signature: bytes, message: bytes, public_key: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_keys_and_signatures_are_pynacls(seed: bytes, message: bytes) -> None:
    public, secret = ed25519.seed_keypair(seed)
    assert (public, secret) == nacl.bindings.crypto_sign_seed_keypair(seed)
    signature = ed25519.sign(message, secret)
    assert signature == nacl.bindings.crypto_sign(message, secret)[:64]
    assert ed25519.verify(signature, message, public)


@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=100), flip=st.integers(0, 1000),
       other=st.binary(max_size=70))
def test_verdicts_are_pynacls(seed: bytes, message: bytes, flip: int, other: bytes) -> None:
    public, secret = ed25519.seed_keypair(seed)
    signature = bytearray(ed25519.sign(message, secret))
    signature[flip % 64] ^= 1 << (flip % 8)
    for sig, key in ((bytes(signature), public), (other, public), (ed25519.sign(message, secret), other)):
        assert ed25519.verify(sig, message, key) is (len(key) == 32 and _nacl_verifies(sig, message, key))
