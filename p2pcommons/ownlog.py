"""Backups cannot fork: a home knows, outside its store, how far it has signed its own logs.

Signing an entry at a seq this key already signed forks the key's log, and a fork voids the
key's entries from that point (protocols/commons.md §3.3).  A home whose store is older than
what its key signed — a store restored from a backup, a home rebuilt from a key file and a
bundle — would do exactly that on its next write.  So each home keeps ``signed.json`` beside
its store (not in it: restoring the store must not restore this too):

    {"version": 1, "logs": {"<commons id>": {"<author hex>": <last seq signed>}},
     "restored": false}

:func:`check` runs before every local write (:func:`p2pcommons.author.append`): if the store
holds less of the key's log than the marker says was signed, or the home is marked
``restored`` (``p2pc restore``: the key came back from a backup, and nothing says what it
signed since), the write is refused with :class:`~p2pcommons.errors.BehindOwnLog`, one
sentence naming what to run.  A successful ``p2pc sync`` clears ``restored``; ``p2pc device
add --new-key`` makes the home a fresh device, whose new key has no log to fork.  A home
without the file (created before this existed) starts one at its next write: it keeps working
unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .dagcbor import CID
from .errors import BehindOwnLog, StoreError
from .store import Store

MARKER = "signed.json"
VERSION = 1


def marker_path(store: Store) -> Path | None:
    """The marker beside a store file (None for an in-memory store)."""
    path = Path(store.path)
    if str(path) == ":memory:" or not path.parent.is_dir():
        return None
    return path.parent / MARKER


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": VERSION, "logs": {}, "restored": False}
    except (OSError, ValueError):
        # A damaged marker says nothing reliable about what was signed: treat the home as
        # restored (the safe side), which `p2pc sync` clears.
        return {"version": VERSION, "logs": {}, "restored": True}
    if not isinstance(doc, dict) or not isinstance(doc.get("logs"), dict):
        return {"version": VERSION, "logs": {}, "restored": True}
    return doc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialize read-modify-write of the marker between processes writing on one home
    (parallel commands, the daemon): an exclusive lock on a sibling lock file."""
    try:
        fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"Could not lock {path}: {exc.strerror or exc}.") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"Could not record the last entry signed in {path}: {exc.strerror or exc}.") from None


def signed_seq(store: Store, commons: CID, author: bytes) -> int:
    """The last seq this home signed in ``author``'s log of ``commons`` (0 if none recorded)."""
    path = marker_path(store)
    if path is None:
        return 0
    seq = _read(path)["logs"].get(str(commons), {}).get(author.hex(), 0)
    return seq if type(seq) is int else 0


def check(store: Store, commons: CID, author: bytes, held: int) -> None:
    """Refuse to sign if this home may be behind on its own log (``held``: the highest seq of
    the author's log in the store)."""
    path = marker_path(store)
    if path is None:
        return
    doc = _read(path)
    if doc.get("restored"):
        raise BehindOwnLog("This home was restored from a backup and may be behind on its own log: run "
                           "`p2pc sync` with a peer that holds your latest entries, or make it a fresh "
                           "device (`p2pc device add --new-key`) and accept it from another of your devices.")
    seq = doc["logs"].get(str(commons), {}).get(author.hex(), 0)
    if type(seq) is int and held < seq:
        raise BehindOwnLog(f"This home signed entry {seq} of its log in this commons but its store holds only "
                           f"up to {held} (an older store put back?): run `p2pc sync` with a peer that holds "
                           "your latest entries, or continue as a fresh device (`p2pc device add --new-key`).")


def record(store: Store, commons: CID, author: bytes, seq: int) -> None:
    """Remember that this home signed ``seq`` in the author's log (after the commit)."""
    path = marker_path(store)
    if path is None:
        return
    with _locked(path):
        doc = _read(path)
        logs = doc["logs"].setdefault(str(commons), {})
        if type(logs.get(author.hex())) is int and logs[author.hex()] >= seq:
            return
        logs[author.hex()] = seq
        doc["version"] = VERSION
        _write(path, doc)


def set_restored(home_dir: Path, restored: bool) -> None:
    """Mark a home restored from a backup (it signs nothing until synced), or clear the mark."""
    path = home_dir / MARKER
    if not restored and not path.exists():
        return
    with _locked(path):
        doc = _read(path) if path.exists() else {"version": VERSION, "logs": {}}
        if bool(doc.get("restored")) == restored:
            return
        doc["restored"] = restored
        _write(path, doc)


def is_restored(home_dir: Path) -> bool:
    path = home_dir / MARKER
    return path.exists() and bool(_read(path).get("restored"))
