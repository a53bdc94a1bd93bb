"""Give memory the fold freed back to the system (glibc's ``malloc_trim``).

Why: a fold allocates and frees far more than it keeps (decoded entries, per-entry records
of positions already archived, the flat tables' rebuilds), and glibc keeps freed heap pages
mapped, so a daemon that has just folded a large commons shows several tens of MB more
resident memory than it holds (issue 12: measured at 100,000 and 1,000,000 entries in
``bench/memory.py``).  Trimming returns whole free pages anywhere in the heap; it costs a
few milliseconds, so the engine calls it only after a fold that took many entries.
Elsewhere than glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

from typing import Any

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
