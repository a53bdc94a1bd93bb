"""``/p2pcommons/sync/1``: the sans-I/O sync session (see ``protocols/sync.md``).

A :class:`SyncSession` is a pure state machine in the style of h11/wsproto: the caller
feeds it the bytes it read (:meth:`SyncSession.receive_data`), pulls events out
(:meth:`SyncSession.next_event`), calls methods to say what to send, and writes whatever
:meth:`SyncSession.data_to_send` returns.  It does no I/O, no store access and no
cryptography, so it can be tested exhaustively in memory and driven by any transport.

Why this split: the session decides *what may happen when* (frame order, limits, credit),
while the node decides *what to send* (it owns the store).  Every rule a peer can break is
checked here and raises :class:`~p2pcommons.errors.ProtocolViolation` — and nothing else —
whatever bytes arrive.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.errors import InvalidEntry, ProtocolViolation
from p2pcommons.protocols.framing import decode_uvarint, encode_uvarint

PROTOCOL_ID = "/p2pcommons/sync/1"
VERSION = 1

# Frame types
HELLO = 0x01
SUMMARY = 0x02
SUMMARIES_END = 0x03
TOTALS = 0x04
BATCH = 0x05
ACK = 0x06
DONE = 0x07
STOP = 0x08

MAX_FRAME = 1024 * 1024 + 1024           # type byte + body, bytes
MAX_ENTRY = 64 * 1024                    # one entry inside a batch
MAX_BATCH_ENTRY_BYTES = 1024 * 1024      # entry bytes in one batch frame
MAX_BATCH_ENTRIES = 4096
DEFAULT_BATCH_BYTES = 256 * 1024         # what this implementation packs per batch
MIN_WINDOW = 64 * 1024
MAX_WINDOW = 64 * 1024 * 1024
DEFAULT_WINDOW = 2 * 1024 * 1024
MAX_SUMMARIES = 1024                     # distinct commons summarized per session
MAX_HEADS = 8192                         # heads in one SUMMARY frame (one page)
MAX_FORKS = 8192                         # fork positions in one SUMMARY frame (one page)
MAX_SUMMARY_PAGES = 65536                # SUMMARY frames per session, all commons together
PAGE_ITEMS = 4096                        # what this implementation packs per page (heads, and forks)
# Summary bytes the peer may have sent and this side not yet released (planned): a receiver
# that plans each page before reading on holds one page; more means the peer outruns it.
DEFAULT_MAX_PENDING_SUMMARY = 4 * MAX_FRAME
MAX_REASON = 200
MAX_TOTAL = 2**53
_CID_LEN = 36


# --- values -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What one side holds of one commons: per-author heads (several at one seq when the
    log forked at its tip) and the positions where it holds fork evidence."""

    commons: CID
    heads: tuple[tuple[bytes, int, CID], ...] = ()
    forks: tuple[tuple[bytes, int], ...] = ()

    def encode(self) -> bytes:
        heads = sorted(self.heads, key=lambda h: (h[0], h[1], h[2].raw))
        forks = sorted(set(self.forks))
        return dagcbor.encode({
            "commons": self.commons,
            "heads": [[a, s, i] for a, s, i in heads],
            "forks": [[a, s] for a, s in forks],
        })

    def pages(self, items: int = PAGE_ITEMS) -> list[Summary]:
        """This summary as consecutive SUMMARY pages of at most ``items`` heads and ``items``
        fork positions each (one page, possibly empty, if it is small): a summary of any
        number of authors crosses the wire in bounded frames."""
        heads = sorted(self.heads, key=lambda h: (h[0], h[1], h[2].raw))
        forks = sorted(set(self.forks))
        count = max(1, -(-len(heads) // items), -(-len(forks) // items))
        return [Summary(self.commons, tuple(heads[k * items:(k + 1) * items]),
                        tuple(forks[k * items:(k + 1) * items])) for k in range(count)]


# --- events -----------------------------------------------------------------------------


class Event:
    """Base class of what :meth:`SyncSession.next_event` returns."""

    __slots__ = ()


@dataclass
class Hello(Event):
    window: int


@dataclass
class PeerSummary(Event):
    """One SUMMARY page.  A commons' summary may span several consecutive pages (heads and
    forks continue in sorted order); plan from each page as it comes and call
    :meth:`SyncSession.release_summary` with ``nbytes`` when done with it."""

    summary: Summary
    nbytes: int = 0
    continued: bool = False


@dataclass
class SummariesEnd(Event):
    """The peer sent all its summaries; :attr:`SyncSession.shared` is now known."""


@dataclass
class Totals(Event):
    entries: int
    bytes: int


@dataclass
class Batch(Event):
    commons: CID
    entries: list[bytes] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(len(e) for e in self.entries)


@dataclass
class CreditGranted(Event):
    bytes: int


@dataclass
class PeerDone(Event):
    """The peer sent every entry it announced."""


@dataclass
class Stopped(Event):
    reason: str


@dataclass
class Complete(Event):
    """Both sides sent everything and every batch was acknowledged: close the stream."""


@dataclass
class ConnectionClosed(Event):
    """The peer closed its side (EOF).  ``early``: before the session completed or was
    stopped, or inside a frame.  Never a violation: a dropped link looks the same (§3)."""

    early: bool = False


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


# --- framing ------------------------------------------------------------------------------


def frame(kind: int, body: bytes = b"") -> bytes:
    """One frame: ``uvarint(1 + len(body)) || kind || body``."""
    return encode_uvarint(1 + len(body)) + bytes([kind]) + body


def encode_batch_body(commons: CID, entries: Sequence[bytes]) -> bytes:
    parts = [commons.raw]
    for raw in entries:
        parts.append(encode_uvarint(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def _decode_cbor(body: bytes, what: str) -> Any:
    try:
        return dagcbor.decode(body)
    except InvalidEntry as exc:
        raise ProtocolViolation(f"The {what} frame is not canonical DAG-CBOR ({exc})") from None
    except Exception:  # cbor2 internals must never leak out of a protocol parser
        raise ProtocolViolation(f"The {what} frame is not valid CBOR.") from None


def _count(value: Any, what: str, maximum: int = MAX_TOTAL) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise ProtocolViolation(f"The {what} is not a count between 0 and {maximum}.")
    return value


def _cid(value: Any, what: str) -> CID:
    try:
        return dagcbor.link(value)
    except InvalidEntry:
        raise ProtocolViolation(f"The {what} is not an entry id.") from None


def _author(value: Any) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise ProtocolViolation("An author in a summary is not a 32-byte key.")
    return value


def decode_summary(body: bytes) -> Summary:
    value = _decode_cbor(body, "summary")
    if type(value) is not dict or set(value) != {"commons", "heads", "forks"}:
        raise ProtocolViolation("A summary must be a map of commons, heads and forks.")
    heads_in, forks_in = value["heads"], value["forks"]
    if type(heads_in) is not list or len(heads_in) > MAX_HEADS:
        raise ProtocolViolation(f"A summary's heads must be a list of at most {MAX_HEADS}.")
    if type(forks_in) is not list or len(forks_in) > MAX_FORKS:
        raise ProtocolViolation(f"A summary's forks must be a list of at most {MAX_FORKS}.")
    heads: list[tuple[bytes, int, CID]] = []
    for item in heads_in:
        if type(item) is not list or len(item) != 3:
            raise ProtocolViolation("A head must be [author, seq, id].")
        head = (_author(item[0]), _count(item[1], "head's seq"), _cid(item[2], "head's id"))
        if head[1] < 1:
            raise ProtocolViolation("A head's seq must be at least 1.")
        heads.append(head)
    keys = [(a, s, i.raw) for a, s, i in heads]
    if any(keys[k] >= keys[k + 1] for k in range(len(keys) - 1)):
        raise ProtocolViolation("A summary's heads must be sorted with no repeats.")
    forks: list[tuple[bytes, int]] = []
    for item in forks_in:
        if type(item) is not list or len(item) != 2:
            raise ProtocolViolation("A fork must be [author, seq].")
        forks.append((_author(item[0]), _count(item[1], "fork's seq")))
    if any(forks[k] >= forks[k + 1] for k in range(len(forks) - 1)):
        raise ProtocolViolation("A summary's forks must be sorted with no repeats.")
    return Summary(_cid(value["commons"], "summary's commons"), tuple(heads), tuple(forks))


def decode_batch_body(body: bytes) -> Batch:
    if len(body) < _CID_LEN:
        raise ProtocolViolation("A batch frame is too short to name its commons.")
    try:
        commons = CID(bytes(body[:_CID_LEN]))
    except InvalidEntry:
        raise ProtocolViolation("A batch frame does not start with a commons id.") from None
    entries: list[bytes] = []
    pos = _CID_LEN
    total = 0
    end = len(body)
    while pos < end:
        first = body[pos]
        if first < 0x80:  # entries under 128 bytes: a one-byte length
            length = first
            pos += 1
        elif pos + 1 < end and 0 < body[pos + 1] < 0x80:  # the common case: a two-byte length
            length = (first & 0x7F) | (body[pos + 1] << 7)
            pos += 2
        else:
            decoded = decode_uvarint(body, pos, limit=3)
            if decoded is None:
                raise ProtocolViolation("A batch frame ends inside an entry length.")
            length, pos = decoded
        if not 1 <= length <= MAX_ENTRY:
            raise ProtocolViolation(f"An entry in a batch is {length} bytes; the limit is {MAX_ENTRY}.")
        if pos + length > end:
            raise ProtocolViolation("A batch frame ends inside an entry.")
        entries.append(bytes(body[pos:pos + length]))
        pos += length
        total += length
        if len(entries) > MAX_BATCH_ENTRIES:
            raise ProtocolViolation(f"A batch holds more than {MAX_BATCH_ENTRIES} entries.")
    if not entries:
        raise ProtocolViolation("A batch frame holds no entries.")
    if total > MAX_BATCH_ENTRY_BYTES:
        raise ProtocolViolation("A batch holds more entry bytes than allowed.")
    return Batch(commons, entries)


# --- the session ----------------------------------------------------------------------------


class SyncSession:
    """One side of one sync session.

    Lifecycle of each direction (what this side sends)::

        HELLO  SUMMARY*  SUMMARIES_END  TOTALS  (BATCH | ACK)*  DONE  ACK*

    The initiator sends its HELLO and summaries first (:meth:`start`); the responder
    answers after the initiator's ``SUMMARIES_END`` with summaries of the asked commons it
    holds.  ``TOTALS`` may be sent only after the peer's summaries are known (the node
    needs them to plan).  ``STOP`` may be sent by either side at any moment.
    """

    def __init__(self, *, initiator: bool, window: int = DEFAULT_WINDOW,
                 max_pending_summary: int = DEFAULT_MAX_PENDING_SUMMARY) -> None:
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise ValueError("window out of range")
        if max_pending_summary < MAX_FRAME:
            raise ValueError("max_pending_summary must hold at least one frame")
        self.initiator = initiator
        self.window = window
        self.max_pending_summary = max_pending_summary
        self._in = bytearray()
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._failed: ProtocolViolation | None = None
        self._eof = False
        # what we said
        self._started = False
        self._my_commons: dict[CID, None] = {}
        self._sent_summaries_end = False
        self._totals_sent: tuple[int, int] | None = None
        self._sent_entries = 0
        self._sent_bytes = 0
        self._done_sent = False
        self.credit = 0             # entry bytes we may still send
        self._unacked_out = 0       # entry bytes sent and not yet acknowledged
        # what they said
        self._hello: int | None = None
        # The peer's summaries are not kept: each page is an event, planned and released
        # by the caller; the session keeps only what it needs to check the page order.
        self._peer_commons: dict[CID, None] = {}
        self._last_commons: CID | None = None
        self._last_head: tuple[bytes, int, bytes] | None = None
        self._last_fork: tuple[bytes, int] | None = None
        self._pages = 0
        self._pending_summary = 0   # summary bytes delivered and not yet released
        self._peer_summaries_end = False
        self._peer_totals: tuple[int, int] | None = None
        self._recv_entries = 0
        self._recv_bytes = 0
        self._unacked_in = 0        # entry bytes received and not yet acknowledged by us
        self._peer_done = False
        self.stopped: str | None = None
        self._complete_emitted = False
        self._closed_emitted = False

    # --- properties ----------------------------------------------------------------------

    @property
    def peer_commons(self) -> list[CID]:
        """The commons the peer summarized so far, in its order (what the responder was
        asked about)."""
        return list(self._peer_commons)

    @property
    def shared(self) -> list[CID]:
        """Commons both sides summarized (the ones this session replicates), in the order
        this side announced them."""
        return [c for c in self._my_commons if c in self._peer_commons]

    @property
    def pending_summary(self) -> int:
        """Summary bytes the peer sent that the caller has not released yet."""
        return self._pending_summary

    def release_summary(self, nbytes: int) -> None:
        """The caller is done with a :class:`PeerSummary` page of ``nbytes`` (planned from
        it and dropped it): the peer may send that much more summary data."""
        if not 0 <= nbytes <= self._pending_summary:
            raise RuntimeError("releasing more summary bytes than were delivered")
        self._pending_summary -= nbytes

    @property
    def peer_window(self) -> int | None:
        """The window the peer offered in its HELLO (None before it arrived)."""
        return self._hello

    @property
    def peer_totals(self) -> tuple[int, int] | None:
        return self._peer_totals

    @property
    def received(self) -> tuple[int, int]:
        """Entries and entry bytes received so far (for progress)."""
        return self._recv_entries, self._recv_bytes

    @property
    def sent(self) -> tuple[int, int]:
        return self._sent_entries, self._sent_bytes

    @property
    def to_send(self) -> tuple[int, int] | None:
        return self._totals_sent

    @property
    def buffered(self) -> int:
        """Bytes received but not yet a whole frame (a frame still arriving)."""
        return len(self._in)

    @property
    def complete(self) -> bool:
        return (
            self._done_sent and self._peer_done and self._unacked_out == 0 and self._unacked_in == 0
            and self.stopped is None
        )

    @property
    def caught_up(self) -> bool:
        """We received and acknowledged everything the peer announced."""
        return self._peer_done and self._unacked_in == 0

    # --- sending ------------------------------------------------------------------------

    def start(self, summaries: Sequence[Summary]) -> None:
        """Send HELLO, our summaries and SUMMARIES_END.

        The initiator calls this first; the responder calls it after the
        :class:`SummariesEnd` event, with summaries for the commons it was asked about.
        """
        if self._started:
            raise RuntimeError("start() called twice")
        if not self.initiator and not self._peer_summaries_end:
            raise RuntimeError("the responder starts after the initiator's summaries")
        frames = [frame(HELLO, dagcbor.encode({"v": VERSION, "window": self.window}))]
        last: CID | None = None
        mine: dict[CID, None] = {}
        for summary in summaries:
            # consecutive summaries of one commons are pages of it; anything larger than a
            # page is split into pages here
            if summary.commons in mine and summary.commons != last:
                raise ValueError("the pages of one commons' summary must be consecutive")
            mine[summary.commons] = None
            last = summary.commons
            for page in summary.pages():
                frames.append(frame(SUMMARY, page.encode()))
        if len(mine) > MAX_SUMMARIES or len(frames) - 1 > MAX_SUMMARY_PAGES:
            raise ValueError("too many summaries")
        self._started = True
        self._my_commons = mine
        self._out.extend(frames)
        self._out.append(frame(SUMMARIES_END))
        self._sent_summaries_end = True
        self._maybe_complete()

    def send_totals(self, entries: int, nbytes: int) -> None:
        """Announce what we will send (call once the peer's summaries are in)."""
        if not self._sent_summaries_end or not self._peer_summaries_end:
            raise RuntimeError("totals come after both sides' summaries")
        if self._totals_sent is not None:
            raise RuntimeError("totals sent twice")
        self._totals_sent = (entries, nbytes)
        self._out.append(frame(TOTALS, dagcbor.encode({"entries": entries, "bytes": nbytes})))

    def can_send(self, nbytes: int) -> bool:
        return nbytes <= self.credit

    def send_batch(self, commons: CID, entries: Sequence[bytes]) -> None:
        """Send one batch; it must fit in the credit and the announced totals."""
        if self._totals_sent is None or self._done_sent:
            raise RuntimeError("batches go between TOTALS and DONE")
        if commons not in self.shared:
            raise RuntimeError("batch for a commons the session does not share")
        if not entries or len(entries) > MAX_BATCH_ENTRIES:
            raise ValueError("a batch holds 1 to MAX_BATCH_ENTRIES entries")
        nbytes = sum(len(e) for e in entries)
        if nbytes > MAX_BATCH_ENTRY_BYTES or any(not 1 <= len(e) <= MAX_ENTRY for e in entries):
            raise ValueError("batch or entry too large")
        if nbytes > self.credit:
            raise RuntimeError("batch exceeds the peer's credit")
        if (self._sent_entries + len(entries) > self._totals_sent[0]
                or self._sent_bytes + nbytes > self._totals_sent[1]):
            raise RuntimeError("batch exceeds the announced totals")
        self.credit -= nbytes
        self._unacked_out += nbytes
        self._sent_entries += len(entries)
        self._sent_bytes += nbytes
        self._out.append(frame(BATCH, encode_batch_body(commons, entries)))

    def send_done(self) -> None:
        if self._totals_sent is None or self._done_sent:
            raise RuntimeError("DONE comes once, after TOTALS")
        if (self._sent_entries, self._sent_bytes) != self._totals_sent:
            raise RuntimeError("DONE before everything announced was sent")
        self._done_sent = True
        self._out.append(frame(DONE))
        self._maybe_complete()

    def ack(self, nbytes: int) -> None:
        """Acknowledge ``nbytes`` of received entries (stored, or rejected): the peer may
        send that much more.  Acknowledge only after the batch was handled, so credit is
        the backpressure that keeps a slow store from buffering without bound."""
        if not 0 < nbytes <= self._unacked_in:
            raise RuntimeError("acknowledging more than was received")
        self._unacked_in -= nbytes
        self._out.append(frame(ACK, encode_uvarint(nbytes)))
        self._maybe_complete()

    def stop(self, reason: str = "") -> None:
        """Stop the session now (either side, at any time)."""
        if self.stopped is None:
            self.stopped = reason or "stopped"
            self._out.append(frame(STOP, dagcbor.encode({"reason": reason[:MAX_REASON]})))

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    # --- receiving ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side."""
        if self._failed is not None:
            raise self._failed
        if not data:
            self._eof = True
        else:
            if self._eof:
                raise RuntimeError("data after EOF")
            self._in += data

    def next_event(self) -> Event | _NeedData:
        """The next event, or :data:`NEED_DATA`.  Raises only ProtocolViolation."""
        if self._failed is not None:
            raise self._failed
        try:
            while not self._events:
                if not self._parse_one():
                    return NEED_DATA
            return self._events.popleft()
        except ProtocolViolation as exc:
            self._failed = exc
            raise

    def _parse_one(self) -> bool:
        decoded = decode_uvarint(self._in, 0, limit=3)
        if decoded is None:
            if len(self._in) >= 3:
                raise ProtocolViolation("A frame length is too long.")
            return self._at_eof(partial=bool(self._in))
        length, start = decoded
        if length == 0:
            raise ProtocolViolation("A frame is empty.")
        if length > MAX_FRAME:
            raise ProtocolViolation(f"A frame of {length} bytes exceeds the limit of {MAX_FRAME} bytes.")
        if len(self._in) < start + length:
            return self._at_eof(partial=True)
        kind = self._in[start]
        body = bytes(self._in[start + 1:start + length])
        del self._in[:start + length]
        self._handle(kind, body)
        return True

    def _at_eof(self, *, partial: bool) -> bool:
        if not self._eof:
            return False
        if not self._closed_emitted:
            # An end of stream (even inside a frame) is how a dropped link looks too: the
            # peer's honesty is not in question, and nothing is lost (§3, §6).
            self._closed_emitted = True
            self._events.append(ConnectionClosed(early=partial or (self.stopped is None and not self.complete)))
            return True
        return False

    def _handle(self, kind: int, body: bytes) -> None:
        if self.stopped is not None and kind != STOP:
            return  # after STOP, frames still in flight are dropped unread
        if self._hello is None and kind != HELLO and kind != STOP:
            raise ProtocolViolation("The first frame must be HELLO.")
        if kind == HELLO:
            self._on_hello(body)
        elif kind == SUMMARY:
            self._on_summary(body)
        elif kind == SUMMARIES_END:
            self._on_summaries_end(body)
        elif kind == TOTALS:
            self._on_totals(body)
        elif kind == BATCH:
            self._on_batch(body)
        elif kind == ACK:
            self._on_ack(body)
        elif kind == DONE:
            self._on_done(body)
        elif kind == STOP:
            self._on_stop(body)
        else:
            raise ProtocolViolation(f"Unknown frame type {kind}.")

    def _on_hello(self, body: bytes) -> None:
        if self._hello is not None:
            raise ProtocolViolation("HELLO was sent twice.")
        if self.initiator and not self._started:
            raise ProtocolViolation("The responder spoke before the initiator.")
        value = _decode_cbor(body, "HELLO")
        if type(value) is not dict or set(value) != {"v", "window"}:
            raise ProtocolViolation("HELLO must be a map of v and window.")
        if value["v"] != VERSION or type(value["v"]) is not int:
            raise ProtocolViolation(f"The peer speaks sync version {value['v']!r}, not {VERSION}.")
        window = _count(value["window"], "HELLO window", MAX_WINDOW)
        if window < MIN_WINDOW:
            raise ProtocolViolation(f"The peer's window {window} is below the minimum {MIN_WINDOW}.")
        self._hello = window
        self.credit = window
        self._events.append(Hello(window))

    def _on_summary(self, body: bytes) -> None:
        if self._peer_summaries_end:
            raise ProtocolViolation("A summary arrived after SUMMARIES_END.")
        if self._pages >= MAX_SUMMARY_PAGES:
            raise ProtocolViolation(f"The peer sent more than {MAX_SUMMARY_PAGES} summary pages.")
        if self._pending_summary + len(body) > self.max_pending_summary:
            raise ProtocolViolation(
                f"The peer sent more than {self.max_pending_summary} bytes of summaries ahead of planning.")
        summary = decode_summary(body)
        commons = summary.commons
        first_head = (summary.heads[0][0], summary.heads[0][1], summary.heads[0][2].raw) if summary.heads else None
        continued = commons in self._peer_commons
        if continued:
            # a further page of the previous summary: non-empty, and in order after the last
            if (commons != self._last_commons or not (summary.heads or summary.forks)
                    or (first_head is not None and self._last_head is not None and first_head <= self._last_head)
                    or (summary.forks and self._last_fork is not None and summary.forks[0] <= self._last_fork)):
                raise ProtocolViolation("The peer summarized one commons twice (a further page must "
                                        "follow its previous page, in order).")
        else:
            if len(self._peer_commons) >= MAX_SUMMARIES:
                raise ProtocolViolation(f"The peer sent more than {MAX_SUMMARIES} summaries.")
            if self.initiator and commons not in self._my_commons:
                raise ProtocolViolation("The responder summarized a commons it was not asked about.")
            self._peer_commons[commons] = None
            self._last_commons = commons
            self._last_head = self._last_fork = None
        if summary.heads:
            last = summary.heads[-1]
            self._last_head = (last[0], last[1], last[2].raw)
        if summary.forks:
            self._last_fork = summary.forks[-1]
        self._pages += 1
        self._pending_summary += len(body)
        self._events.append(PeerSummary(summary, len(body), continued))

    def _on_summaries_end(self, body: bytes) -> None:
        if body:
            raise ProtocolViolation("SUMMARIES_END carries no body.")
        if self._peer_summaries_end:
            raise ProtocolViolation("SUMMARIES_END was sent twice.")
        self._peer_summaries_end = True
        self._events.append(SummariesEnd())

    def _on_totals(self, body: bytes) -> None:
        if not self._peer_summaries_end or not self._sent_summaries_end:
            raise ProtocolViolation("TOTALS arrived before both sides' summaries.")
        if self._peer_totals is not None:
            raise ProtocolViolation("TOTALS was sent twice.")
        value = _decode_cbor(body, "TOTALS")
        if type(value) is not dict or set(value) != {"entries", "bytes"}:
            raise ProtocolViolation("TOTALS must be a map of entries and bytes.")
        self._peer_totals = (_count(value["entries"], "announced entry count"),
                             _count(value["bytes"], "announced byte count"))
        self._events.append(Totals(*self._peer_totals))

    def _on_batch(self, body: bytes) -> None:
        if self._peer_totals is None or self._peer_done:
            raise ProtocolViolation("A batch arrived outside TOTALS … DONE.")
        batch = decode_batch_body(body)
        if batch.commons not in self._my_commons or batch.commons not in self._peer_commons:
            raise ProtocolViolation("A batch names a commons this session does not share.")
        nbytes = batch.nbytes
        if self._unacked_in + nbytes > self.window:
            raise ProtocolViolation("The peer sent more than the credit it was given.")
        self._recv_entries += len(batch.entries)
        self._recv_bytes += nbytes
        if self._recv_entries > self._peer_totals[0] or self._recv_bytes > self._peer_totals[1]:
            raise ProtocolViolation("The peer sent more than it announced.")
        self._unacked_in += nbytes
        self._events.append(batch)

    def _on_ack(self, body: bytes) -> None:
        decoded = decode_uvarint(body, 0)
        if decoded is None or decoded[1] != len(body):
            raise ProtocolViolation("An ACK must hold exactly one varint.")
        nbytes = decoded[0]
        if not 0 < nbytes <= self._unacked_out:
            raise ProtocolViolation("The peer acknowledged bytes that were never sent.")
        self._unacked_out -= nbytes
        self.credit += nbytes
        self._events.append(CreditGranted(nbytes))
        self._maybe_complete()

    def _on_done(self, body: bytes) -> None:
        if body:
            raise ProtocolViolation("DONE carries no body.")
        if self._peer_totals is None or self._peer_done:
            raise ProtocolViolation("DONE arrived before TOTALS or twice.")
        if (self._recv_entries, self._recv_bytes) != self._peer_totals:
            raise ProtocolViolation("The peer said DONE before sending what it announced.")
        self._peer_done = True
        self._events.append(PeerDone())
        self._maybe_complete()

    def _on_stop(self, body: bytes) -> None:
        value = _decode_cbor(body, "STOP")
        if type(value) is not dict or set(value) != {"reason"} or type(value["reason"]) is not str:
            raise ProtocolViolation("STOP must be a map with a reason.")
        if self.stopped is None:
            self.stopped = "peer: " + value["reason"][:MAX_REASON]
        self._events.append(Stopped(value["reason"][:MAX_REASON]))

    def _maybe_complete(self) -> None:
        if self.complete and not self._complete_emitted:
            self._complete_emitted = True
            self._events.append(Complete())


__all__ = [
    "ACK",
    "BATCH",
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_MAX_PENDING_SUMMARY",
    "DEFAULT_WINDOW",
    "DONE",
    "HELLO",
    "MAX_BATCH_ENTRIES",
    "MAX_BATCH_ENTRY_BYTES",
    "MAX_ENTRY",
    "MAX_FORKS",
    "MAX_FRAME",
    "MAX_HEADS",
    "MAX_SUMMARIES",
    "MAX_SUMMARY_PAGES",
    "NEED_DATA",
    "PAGE_ITEMS",
    "PROTOCOL_ID",
    "STOP",
    "SUMMARIES_END",
    "SUMMARY",
    "TOTALS",
    "Batch",
    "Complete",
    "ConnectionClosed",
    "CreditGranted",
    "Event",
    "Hello",
    "PeerDone",
    "PeerSummary",
    "Stopped",
    "SummariesEnd",
    "Summary",
    "SyncSession",
    "Totals",
    "decode_batch_body",
    "decode_summary",
    "decode_uvarint",
    "encode_uvarint",
    "frame",
]
