"""The project's exception family.

Every rejection the project makes is one of these types, so scripts and the CLI can tell
"your input was bad" from "our bug" and map each to an exit code.  Messages are one sentence,
written for the person who will read them on stderr.
"""

from __future__ import annotations


class P2PCError(Exception):
    """Base of every error p2pcommons raises on purpose."""

    exit_code = 1


# --- data received from others (entries, bundles, frames) -------------------------------


class ReceivedDataError(P2PCError):
    """Something that came from outside (a peer, a bundle, a file) is invalid.

    Grouping these lets a node cut off a peer or reject a bundle for any of them without
    listing every case, and guarantees the store is never touched by such data.
    """

    exit_code = 3


class InvalidEntry(ReceivedDataError):
    """An entry failed validation."""


class MalformedEntry(InvalidEntry):
    """The bytes are not a well-formed entry (wrong CBOR, wrong fields or types)."""


class NonCanonicalEncoding(InvalidEntry):
    """The bytes decode, but are not the one canonical DAG-CBOR encoding of their value."""


class TrailingBytes(InvalidEntry):
    """Bytes follow the end of the encoded entry."""


class UnknownVersion(InvalidEntry):
    """The entry's format version is not one this node understands."""


class EntryTooLarge(InvalidEntry):
    """The entry exceeds the maximum encoded size."""


class TooManyDependencies(InvalidEntry):
    """The entry names more causal dependencies than allowed."""


class BadSignature(InvalidEntry):
    """The signature does not verify against the author's key."""


class WrongCommons(InvalidEntry):
    """The entry belongs to a different commons than the one being imported or synced."""


class SequenceGap(InvalidEntry):
    """The entry's predecessor in its author's log is missing."""


class BacklinkMismatch(InvalidEntry):
    """The entry's backlink does not name its author's previous entry."""


class InvalidBundle(ReceivedDataError):
    """A bundle file is not a complete, untampered bundle."""


class BundleTruncated(InvalidBundle):
    """The bundle ends before its trailer: it was cut short."""


class BundleTampered(InvalidBundle):
    """The bundle's checksum does not match its contents."""


class MalformedBundle(InvalidBundle):
    """The bundle's framing or header is not valid."""


class ProtocolViolation(ReceivedDataError):
    """A peer broke the sync protocol (bad frame, oversize frame, wrong order)."""


# --- local problems -----------------------------------------------------------------------


class IdentityError(P2PCError):
    """A problem with the local identity (key file)."""

    exit_code = 4


class IdentityExists(IdentityError):
    """An identity already exists in this home and will not be overwritten."""


class NoIdentity(IdentityError):
    """This home has no identity yet."""


class WrongPassphrase(IdentityError):
    """The passphrase does not decrypt the key file."""


class InsecureKeyFile(IdentityError):
    """The key file or its directory is readable by other users."""


class BehindOwnLog(IdentityError):
    """This home may be behind on its own log (restored from a backup, or its store is older
    than what it signed): signing now could fork its log, so it signs nothing until it
    knows its latest entries (``p2pcommons.ownlog``)."""


class UsageError(P2PCError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class ConfigError(UsageError):
    """The home's ``config.toml`` is not valid TOML, or a setting has the wrong type."""


class NotFound(UsageError):
    """A named commons, entry or member is not known to this node."""


class Ambiguous(UsageError):
    """A short id matches more than one thing."""


class StoreError(P2PCError):
    """The local store cannot be used (locked, corrupt, disk full)."""

    exit_code = 5


class StoreCorrupt(StoreError):
    """The local store holds data that fails verification."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than the busy timeout
    (nothing was written; the command can be run again)."""


class HomeNotWritable(StoreError):
    """The home (its store, lock, log or peer files) cannot be written: a read-only file
    system, missing permissions, or a full disk."""


# --- the node and the network (appended by the node issue) ----------------------------------


class NetworkError(P2PCError):
    """A peer or the local daemon could not be reached, or did not answer in time."""

    exit_code = 6


class DaemonNotRunning(NetworkError):
    """No node daemon runs for this home."""


class DaemonRunning(NetworkError):
    """A node daemon already runs for this home (the lock names its PID)."""


class SyncIncomplete(NetworkError):
    """A sync ended before this node caught up with its peers."""


class RuleRefusal(P2PCError):
    """A local write the rules in force would reject: refused before it is stored, because a
    signed entry stays in the log for ever (``--force`` records it anyway)."""

    exit_code = 7


class InvalidInvite(UsageError):
    """An invite code is malformed, damaged or not for this use."""


class InviteExpired(InvalidInvite):
    """The invite's expiry time has passed."""


class InviteUsedUp(InvalidInvite):
    """The invite was already used as many times as it allows."""


# --- failures of the machine, in the project's terms ----------------------------------------

_NOT_WRITABLE = {"EROFS", "EACCES", "EPERM", "ENOSPC", "EDQUOT"}


def system_error(exc: BaseException, store: object = "The local store") -> P2PCError | None:
    """The project error for a failure of the disk or of SQLite, or None if ``exc`` is not one.

    Why here: a damaged database page or a read-only home can surface in any command, in
    the middle of any query, so the CLI's top-level handler (and the store itself) map them
    once, by kind, instead of each call site guessing.  ``store`` names the store in the
    sentence (its path, when the caller knows it).
    """
    import errno
    import sqlite3

    if isinstance(exc, P2PCError):
        return exc
    if isinstance(exc, sqlite3.Error):
        text = str(exc) or type(exc).__name__
        lowered = text.lower()
        if "malformed" in lowered or "not a database" in lowered or isinstance(exc, sqlite3.IntegrityError):
            return StoreCorrupt(
                f"{store} is damaged ({text}); run 'p2pc verify', and restore the home from a "
                "backup or sync its commons into a new home."
            )
        if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
            return HomeNotWritable(f"{store} cannot be written ({text}): is the home on a read-only file system?")
        if "full" in lowered:
            return HomeNotWritable(f"{store} cannot grow: the disk is full ({text}).")
        if "locked" in lowered or "busy" in lowered:
            return StoreError(f"{store} is locked by another process ({text}); try again.")
        return StoreError(f"{store} failed ({text}).")
    if isinstance(exc, OSError) and exc.errno is not None and errno.errorcode.get(exc.errno) in _NOT_WRITABLE:
        where = exc.filename if exc.filename is not None else "the home"
        reason = exc.strerror or errno.errorcode[exc.errno]
        return HomeNotWritable(f"Cannot use {where}: {reason}.")
    return None
