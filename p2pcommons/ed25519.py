"""Ed25519 signing and verification: libsodium's functions, called through PyNaCl's compiled
module directly.

Why not ``nacl.bindings``: importing it loads and sets up all fifteen of its binding modules
(boxes, secret streams, password hashing, …) — more start-up than anything else a
``p2pc contribute`` does but the interpreter's own (issue 18: < 0.15 s) — for the three
functions used here.  The calls are the ones ``nacl.bindings`` makes (``crypto_sign_seed_keypair``,
``crypto_sign``, ``crypto_sign_open``), so keys and signatures are the same, byte for byte
(the entry vectors check it).
"""

from __future__ import annotations

from typing import Any

from nacl import _sodium  # (a compiled module: no type information, hence the Any below)

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SECRET_KEY_BYTES = 64
SIGNATURE_BYTES = 64

_ffi: Any = _sodium.ffi
_lib: Any = _sodium.lib

if _lib.sodium_init() < 0:  # (idempotent: 1 when PyNaCl or another caller ran it already)
    raise ImportError("libsodium could not be initialised")


def seed_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """``(public key, secret key)`` of a 32-byte seed."""
    if len(seed) != SEED_BYTES:
        raise ValueError("an Ed25519 seed is 32 bytes")
    public = _ffi.new("unsigned char[]", PUBLIC_KEY_BYTES)
    secret = _ffi.new("unsigned char[]", SECRET_KEY_BYTES)
    if _lib.crypto_sign_seed_keypair(public, secret, seed) != 0:
        raise RuntimeError("libsodium could not derive an Ed25519 key pair")
    return bytes(_ffi.buffer(public, PUBLIC_KEY_BYTES)), bytes(_ffi.buffer(secret, SECRET_KEY_BYTES))


def sign(message: bytes, secret: bytes) -> bytes:
    """The 64-byte signature of ``message`` by the 64-byte secret key ``secret``."""
    if len(secret) != SECRET_KEY_BYTES:
        raise ValueError("an Ed25519 secret key is 64 bytes")
    signed = _ffi.new("unsigned char[]", len(message) + SIGNATURE_BYTES)
    signed_length = _ffi.new("unsigned long long *")
    if _lib.crypto_sign(signed, signed_length, message, len(message), secret) != 0:
        raise RuntimeError("libsodium could not sign")
    return bytes(_ffi.buffer(signed, SIGNATURE_BYTES))  # (the signed message: the signature, then the message)


def verify(signature: bytes, message: bytes, public_key: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``message`` (any length of
    signature or key other than Ed25519's is simply not one)."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    signed = signature + message
    opened = _ffi.new("unsigned char[]", len(signed))
    opened_length = _ffi.new("unsigned long long *")
    return bool(_lib.crypto_sign_open(opened, opened_length, signed, len(signed), public_key) == 0)
