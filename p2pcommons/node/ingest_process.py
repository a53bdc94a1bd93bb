"""The daemon's side of :mod:`.ingest_worker`: start the child, hand it groups, read replies.

Requests are pipelined: a group is written to the child's pipe as soon as the session
hands it over (:meth:`IngestProcess.submit`), while the child still stores the one before,
and replies are read in the same order (:meth:`IngestProcess.result`).  The child stores
one group at a time (one writer: no SQLite lock waits between its groups), but with the
next one in hand it never waits for it while the log is synced for the last one
(``ingest_worker.serve``).  The child is started on first use and stopped after
``idle_timeout`` seconds without work, so an idle node pays no memory for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import pickle
import subprocess
import sys
from collections import deque

import trio

from p2pcommons.dagcbor import CID
from p2pcommons.ingest import IngestReport

from .ingest_worker import _LENGTH, MAX_MESSAGE, IngestWorkerFailed, encode_message, report_from_reply

log = logging.getLogger("p2pcommons.node.ingest")

# Groups smaller than this are stored in the daemon's own store thread: the child is for
# bulk transfers, where moving the work to the second core pays for the pickling.
MIN_ENTRIES_FOR_PROCESS = 256

# The pipe to the child holds a whole group (1 MiB) instead of Linux's 64 KiB: the daemon
# writes a group in one go while the child stores the one before, instead of in 16 pieces,
# each waiting for the child's reader thread to make room.
PIPE_BYTES = 1024 * 1024


class Submitted:
    """One group handed to the child, waiting for its reply (replies come in request order)."""

    __slots__ = ("entries", "failed", "proc", "turn")

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.turn = trio.Event()  # set when this request's reply is next on the pipe (or the child went)
        self.failed = False
        self.proc: trio.Process | None = None


class IngestProcess:
    """One ingest child for one store file."""

    def __init__(self, store_path: str, *, idle_timeout: float = 30.0) -> None:
        self.store_path = store_path
        self.idle_timeout = idle_timeout
        self._proc: trio.Process | None = None
        self._lock = trio.Lock()  # (fair) one request written at a time, in the order they came
        self._waiting: deque[Submitted] = deque()  # sent, reply not yet read: the head's comes next
        self._buffer = bytearray()
        self._idle_deadline = 0.0
        self._started = trio.Event()
        self._busy_since = 0.0
        self.starts = 0
        self.groups = 0
        self.entries = 0
        # seconds the child had at least one request (hand-over to reply): beside a sync's
        # wall time, how much of it the child had work (the rest it waited for the next group)
        self.busy_s = 0.0

    def status(self) -> dict[str, object]:
        return {"running": self.running, "pid": self._proc.pid if self.running and self._proc else None,
                "starts": self.starts, "groups": self.groups, "entries": self.entries,
                "busy_s": round(self.busy_s, 3)}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def in_flight(self) -> int:
        """Requests handed to the child whose replies have not been read."""
        return len(self._waiting)

    async def _start(self) -> trio.Process:
        # Its own session: with the kernel's autogroups (on by default in most distributions)
        # the scheduler shares the cores between sessions first, so in the daemon's the child
        # and the daemon feeding it split one session's share, and on a loaded machine the
        # child sat runnable but waiting for a core for 60 % of a sync (issue 18).  Apart, the
        # receiver gets the two shares its two processes would get without autogroups.  (A
        # terminal's Ctrl-C then reaches the daemon only, which ends the child cleanly.)
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "p2pcommons.node.ingest_worker", self.store_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        with contextlib.suppress(OSError, AttributeError, TypeError):  # (Linux; at most fs.pipe-max-size)
            fcntl.fcntl(getattr(proc.stdin, "fileno")(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # noqa: B009
        log.debug("ingest process %d started", proc.pid)
        self._buffer.clear()
        self.starts += 1
        self._idle_deadline = trio.current_time() + self.idle_timeout
        self._started.set()
        return proc

    async def prewarm(self) -> None:
        """Start the child now (a session announced a large transfer), so its start-up
        overlaps with the first batches on the wire instead of delaying the first group."""
        async with self._lock:
            if not self.running:
                await self._kill()  # (a child found dead: its requests fail, a new one starts)
                self._proc = await self._start()

    async def ingest(self, commons: CID, entries: list[bytes]) -> tuple[IngestReport, bool]:
        """Validate and store one group in the child; raises :class:`IngestWorkerFailed`
        if the child is gone (the group's transaction either committed or did not)."""
        return await self.result(await self.submit(commons, entries))

    async def submit(self, commons: CID, entries: list[bytes]) -> Submitted:
        """Hand one group to the child (returns once it is written to the pipe); its report
        comes from :meth:`result`.  Raises :class:`IngestWorkerFailed` if the child is gone.

        Why apart: a sync session hands over the next group while the child stores this one,
        so the child has it in hand when it commits (it syncs the log for a group while it
        stores the next: ``ingest_worker.serve``).  Groups are stored, and replies come, in
        the order they were submitted."""
        message = encode_message((commons.raw, entries))
        request = Submitted(len(entries))
        async with self._lock:
            if not self.running:
                await self._kill()  # (a child found dead: its requests fail, a new one starts)
                self._proc = await self._start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            if not self._waiting:
                self._busy_since = trio.current_time()
                request.turn.set()
            request.proc = proc
            self._waiting.append(request)
            try:
                await proc.stdin.send_all(message)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                await self._kill()
                raise IngestWorkerFailed(f"The ingest process went away ({exc or 'pipe closed'}).") from None
            except BaseException:
                # cancelled mid-request: the pipe would be out of step with the next request
                await self._kill()
                raise
        return request

    async def result(self, request: Submitted) -> tuple[IngestReport, bool]:
        """The report of a group :meth:`submit` handed over, once the child has stored it and
        made it durable; :class:`IngestWorkerFailed` if the child went away before."""
        try:
            await request.turn.wait()
            if request.failed or request.proc is None or request.proc.stdout is None:
                raise IngestWorkerFailed("The ingest process went away (with a group in hand).")
            reply = await self._read_reply(request.proc.stdout)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await self._kill()
            raise IngestWorkerFailed(f"The ingest process went away ({exc or 'pipe closed'}).") from None
        except IngestWorkerFailed:
            raise
        except BaseException:
            # cancelled while waiting: the next reply on the pipe would be taken for another's
            await self._kill()
            raise
        assert self._waiting[0] is request
        self._waiting.popleft()
        now = trio.current_time()
        if self._waiting:
            self._waiting[0].turn.set()
        else:
            self.busy_s += now - self._busy_since
        self._idle_deadline = now + self.idle_timeout
        try:
            outcome = report_from_reply(reply)
        except IngestWorkerFailed:
            request.failed = True  # (stored again by the caller: groups after it wait for that)
            raise
        self.groups += 1
        self.entries += request.entries
        return outcome

    async def abandon(self, request: Submitted) -> None:
        """No one will read this request's reply: stop the child if it still owes it (the
        replies after it would be read as the ones before)."""
        if request in self._waiting:
            await self._kill()

    async def _read_reply(self, stdout: trio.abc.ReceiveStream) -> tuple[object, ...]:
        while True:
            if len(self._buffer) >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(self._buffer)
                if length > MAX_MESSAGE:
                    raise OSError("reply too large")
                if len(self._buffer) >= _LENGTH.size + length:
                    body = bytes(self._buffer[_LENGTH.size:_LENGTH.size + length])
                    del self._buffer[:_LENGTH.size + length]
                    reply = pickle.loads(body)
                    if not isinstance(reply, tuple):
                        raise OSError("malformed reply")
                    return reply
            data = await stdout.receive_some(1 << 16)
            if not data:
                raise OSError("the ingest process exited")
            self._buffer += data

    async def run_idle_reaper(self) -> None:
        """Stop the child once it has been idle for ``idle_timeout`` (runs for the node's life)."""
        while True:
            await self._started.wait()
            self._started = trio.Event()
            while self.running:
                await trio.sleep_until(self._idle_deadline)
                async with self._lock:  # no request starts meanwhile; one in flight moves the deadline
                    if self.running and not self._waiting and trio.current_time() >= self._idle_deadline:
                        await self.aclose()

    def _fail_waiting(self) -> None:
        """The child is gone: every request still waiting for its reply fails."""
        if self._waiting:
            self.busy_s += trio.current_time() - self._busy_since
        for request in self._waiting:
            request.failed = True
            request.turn.set()
        self._waiting.clear()

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        self._fail_waiting()
        if proc is None:
            return
        with contextlib.suppress(Exception):
            proc.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await proc.wait()

    async def aclose(self) -> None:
        """Close the child's stdin (it finishes its current group and exits), then reap it."""
        proc, self._proc = self._proc, None
        self._fail_waiting()
        if proc is None:
            return
        with trio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                await proc.stdin.aclose()
            with trio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                with contextlib.suppress(Exception):
                    proc.kill()
                await proc.wait()
            log.debug("ingest process %d stopped", proc.pid)
