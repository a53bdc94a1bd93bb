"""Give memory the fold freed back to the system (glibc's ``malloc_trim``).

Why: a fold allocates and frees far more than it keeps (decoded entries, per-entry records
of positions already archived, the flat tables' rebuilds), and glibc keeps freed heap pages
mapped, so a daemon that has just folded a large commons shows several tens of MB more
resident memory than it holds (issue 12: measured at 100,000 and 1,000,000 entries in
``bench/memory.py``).  Trimming returns whole free pages anywhere in the heap; it costs a
few milliseconds, so the engine calls it only after a fold that took many entries.
Elsewhere than glibc (musl, macOS) it does nothing.

Before the trim, :func:`release_caches` lets go of what only the fold itself needed while
it ran: SQLite's page cache of the store it streamed the entries from (8 MiB in a daemon,
filled by a large fold; read again from the OS's cache on demand) and the replayer's lookup
caches (archived records with their whole version vectors: about 3 KB each with 100
authors, 9 MiB at a million entries; refilled by the late entries that need them).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fold import Folder

_TRIM: Any = None  # libc's malloc_trim once looked up; False: not available


def release_freed_memory() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL(None).malloc_trim
            _TRIM.argtypes = [ctypes.c_size_t]
            _TRIM.restype = ctypes.c_int
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM is False:
        return False
    _TRIM(0)
    return True


def release_caches(folder: Folder, db: sqlite3.Connection | None) -> None:
    """After a large fold: forget the replayer's lookup caches (:meth:`.fold.Folder.drop_caches`)
    and what SQLite can drop of ``db``'s page cache (``PRAGMA shrink_memory``: the pages no
    statement holds).  Call :func:`release_freed_memory` after."""
    folder.drop_caches()
    if db is not None:
        with contextlib.suppress(sqlite3.Error):  # (a closed or busy connection: nothing to give back now)
            db.execute("PRAGMA shrink_memory")
