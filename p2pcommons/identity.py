"""A member's Ed25519 identity: the key file, its optional passphrase, and its names.

The same 32-byte seed signs entries (the author id) and keys the libp2p host (the peer id),
so a peer's transport identity and its authorship are one and the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import base58

from .entry import Signer
from .errors import IdentityExists, MalformedEntry, NoIdentity, UsageError, WrongPassphrase
from .home import Home, check_private

KEY_FILE_VERSION = 1
_ED25519_PUB_MULTICODEC = b"\xed\x01"
# libp2p's protobuf PublicKey{Type: Ed25519, Data: <32 bytes>} wrapped in an identity multihash
_LIBP2P_ED25519_PREFIX = b"\x00\x24\x08\x01\x12\x20"


def author_id_text(public_key: bytes) -> str:
    """Multibase base58btc of the multicodec ed25519-pub key (``z6Mk…``, as in did:key)."""
    return "z" + base58.b58encode(_ED25519_PUB_MULTICODEC + public_key).decode()


def parse_author_id(text: str) -> bytes:
    """Inverse of :func:`author_id_text`."""
    try:
        if not text.startswith("z"):
            raise ValueError
        raw = base58.b58decode(text[1:])
    except ValueError:
        raise UsageError(f"'{text}' is not an author id (it should look like z6Mk…).") from None
    if len(raw) != 34 or raw[:2] != _ED25519_PUB_MULTICODEC:
        raise UsageError(f"'{text}' is not an Ed25519 author id.")
    return raw[2:]


def peer_id_text(public_key: bytes) -> str:
    """The libp2p peer id of the same key (``12D3KooW…``), computed without importing libp2p."""
    return base58.b58encode(_LIBP2P_ED25519_PREFIX + public_key).decode()


def public_key_from_peer_id(text: str) -> bytes:
    try:
        raw = base58.b58decode(text)
    except ValueError:
        raise MalformedEntry(f"'{text}' is not a peer id.") from None
    if len(raw) != 38 or raw[:6] != _LIBP2P_ED25519_PREFIX:
        raise MalformedEntry(f"'{text}' is not an Ed25519 libp2p peer id.")
    return raw[6:]


class Identity(NamedTuple):
    """The key's 32-byte seed.  (A NamedTuple, not a dataclass: ``dataclasses`` imports
    ``inspect``, about 10 ms of every command's start-up, issue 18.)"""

    seed: bytes

    @property
    def signer(self) -> Signer:
        return Signer(self.seed)

    @property
    def public_key(self) -> bytes:
        return self.signer.public_key

    @property
    def author_id(self) -> str:
        return author_id_text(self.public_key)

    @property
    def peer_id(self) -> str:
        return peer_id_text(self.public_key)


def create_identity(home: Home, passphrase: str | None = None, seed: bytes | None = None) -> Identity:
    """Write a new key file (0600 in a 0700 directory); never overwrite an existing one."""
    import nacl.utils  # (only here: every command loads the identity, few create one)

    home.create_dirs()
    if home.key_file.exists():
        raise IdentityExists(f"An identity already exists in {home.path}; it will not be overwritten.")
    seed = nacl.utils.random(32) if seed is None else seed
    document: dict[str, object] = {"version": KEY_FILE_VERSION, "type": "ed25519"}
    if passphrase:
        from nacl import pwhash, secret  # (only for a passphrase: its import runs libsodium's argon2 set-up)

        salt = nacl.utils.random(pwhash.argon2id.SALTBYTES)
        opslimit = pwhash.argon2id.OPSLIMIT_MODERATE
        memlimit = pwhash.argon2id.MEMLIMIT_MODERATE
        key = pwhash.argon2id.kdf(
            secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
            opslimit=opslimit, memlimit=memlimit,
        )
        box = secret.SecretBox(key)
        document.update(
            encryption="argon2id-xsalsa20poly1305",
            salt=salt.hex(), opslimit=opslimit, memlimit=memlimit,
            ciphertext=box.encrypt(seed).hex(),
        )
    else:
        document["seed"] = seed.hex()
    data = json.dumps(document, indent=2).encode() + b"\n"
    tmp = home.key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, home.key_file)  # fails if a key file appeared meanwhile: never overwrite
    except FileExistsError:
        raise IdentityExists(f"An identity already exists in {home.path}; it will not be overwritten.") from None
    finally:
        tmp.unlink()
    _fsync_dir(home.key_dir)
    return Identity(seed)


def is_encrypted(home: Home) -> bool:
    return "ciphertext" in _read_document(home)


def load_identity(home: Home, passphrase: str | None = None) -> Identity:
    """Read the key file, refusing one that other users can read."""
    document = _read_document(home)
    check_private(home.key_dir, directory=True)
    check_private(home.key_file, directory=False)
    damaged = NoIdentity(f"The key file {home.key_file} is damaged or not a p2pcommons identity.")
    if "ciphertext" in document:
        if not passphrase:
            raise WrongPassphrase(
                "The key is passphrase-protected; set P2PC_PASSPHRASE or run on a terminal to be asked."
            )
        try:
            salt = bytes.fromhex(document["salt"])
            ciphertext = bytes.fromhex(document["ciphertext"])
            opslimit = int(document["opslimit"])
            memlimit = int(document["memlimit"])
        except (KeyError, TypeError, ValueError):
            raise damaged from None
        import nacl.exceptions
        from nacl import pwhash, secret  # (only for an encrypted key: every command loads the identity)

        # Refuse key-derivation costs beyond libsodium's "sensitive" preset: a damaged or
        # hostile file must not make us allocate gigabytes or spin for minutes.
        if (
            len(salt) != pwhash.argon2id.SALTBYTES
            or not 1 <= opslimit <= pwhash.argon2id.OPSLIMIT_SENSITIVE
            or not 8192 <= memlimit <= pwhash.argon2id.MEMLIMIT_SENSITIVE
        ):
            raise damaged
        try:
            key = pwhash.argon2id.kdf(
                secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit
            )
            seed = secret.SecretBox(key).decrypt(ciphertext)
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase("The passphrase does not unlock this identity.") from None
        except (nacl.exceptions.ValueError, nacl.exceptions.TypeError, ValueError):
            raise damaged from None
    else:
        try:
            seed = bytes.fromhex(document["seed"])
        except (KeyError, TypeError, ValueError):
            raise damaged from None
    if len(seed) != 32:
        raise NoIdentity(f"The key file {home.key_file} is damaged (the seed is not 32 bytes).")
    return Identity(seed)


def _read_document(home: Home) -> dict[str, str]:
    try:
        text = home.key_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NoIdentity(f"No identity in {home.path}; run 'p2pc init' first.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NoIdentity(f"The key file {home.key_file} cannot be read ({exc}).") from None
    try:
        document = json.loads(text)
        if document.get("version") != KEY_FILE_VERSION or document.get("type") != "ed25519":
            raise ValueError
        return dict(document)
    except (ValueError, AttributeError):
        raise NoIdentity(f"The key file {home.key_file} is not a p2pcommons identity.") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
