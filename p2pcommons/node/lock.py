"""One daemon per home: an exclusive ``flock`` on ``home.lock_file`` holding the PID.

``flock`` (not a PID file alone) so a daemon killed with ``kill -9`` never leaves a stale
lock behind: the kernel releases it with the process.
"""

from __future__ import annotations

import fcntl
import os
from types import TracebackType

from p2pcommons.errors import DaemonRunning
from p2pcommons.home import Home


def running_pid(home: Home) -> int | None:
    """The PID of the daemon holding this home's lock, or None if no daemon runs."""
    try:
        fd = os.open(home.lock_file, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class NodeLock:
    def __init__(self, home: Home) -> None:
        self.home = home
        self._fd: int | None = None

    def acquire(self) -> None:
        self.home.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DaemonRunning(
                f"A node is already running for {self.home.path} (PID {text or 'unknown'})."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NodeLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
