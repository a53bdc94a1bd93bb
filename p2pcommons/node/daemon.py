"""The node: trio + py-libp2p around the sync protocol, gossip and the local store.

One :class:`Node` per home.  Everything it runs lives in one nursery (structured
concurrency): the libp2p host and pubsub services, the control socket server, one task per
configured peer (connect, reconnect with backoff), the anti-entropy scheduler, the gossip
readers and the announcer.  The store is touched only through :meth:`Node.db`, which runs
the work in one worker thread (``trio.to_thread`` with a capacity limiter of one), so
decoding, signature checks and SQLite never block the network; the commons state is folded
in a second worker with its own store connection, off the sync path.

libp2p choices (see LIBP2P-NOTES.md): Noise is the only security transport (the default
host would also accept plaintext), Yamux the only muxer, ``max_connections_per_peer=1``
(avoids a fixed 250 ms dial delay), gossipsub offered as meshsub 1.1/1.0 with a 1 s
heartbeat and its spam protection off (it counts our own publishes); floods are handled by
our own per-peer rate limit in the topic validator.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.errors import (
    InvalidEntry,
    NetworkError,
    P2PCError,
    ProtocolViolation,
    SequenceGap,
    StoreError,
    UsageError,
)
from p2pcommons.home import Home
from p2pcommons.identity import Identity
from p2pcommons.ingest import Ingestor, IngestReport
from p2pcommons.outsiders import Limits
from p2pcommons.outsiders import expire as expire_outsiders
from p2pcommons.protocols import control, sync
from p2pcommons.protocols.gossip import (
    MAX_GOSSIP_BYTES,
    MAX_GOSSIP_ENTRIES,
    decode_announcement,
    encode_announcement,
    message_id,
    topic_of,
)
from p2pcommons.store import Store
from p2pcommons.web.events import Changes

from . import addressing, preauth, scoring
from . import peers as peerbook
from .budget import MemoryBudget
from .eventlog import peer_line_level
from .exchange import PROTOCOL_ID as ADDRS_PROTOCOL_ID
from .exchange import PeerExchange
from .handoff import Handoff, StoredGroup
from .ingest_process import MIN_ENTRIES_FOR_PROCESS, IngestProcess
from .ingest_worker import ingest_scoped, sync_log
from .lock import NodeLock
from .logsetup import silence_libp2p
from .peerstatus import Names, peer_view
from .peerstatus import sync_status as _sync_status
from .reach import CircuitDialer, Reach, RelaySettings
from .session import PeerClosed, SessionResult, Stalled, run_session

log = logging.getLogger("p2pcommons.node")
# One readable line per sync session and per peer connect/disconnect (any peer, inbound
# too): shown with ``-v`` (``p2pc node start -v``), not by default (cli/network.py
# setup_logging; the default level logs only the maintained peers' connections).
events = logging.getLogger("p2pcommons.events")


def _short(text: str) -> str:
    """The tail of a peer or commons id: enough to tell them apart in a log line."""
    return "…" + text[-8:] if len(text) > 12 else text


def _log_session(peer_id: str, direction: str, result: SessionResult, started: float, outcome: str) -> None:
    commons = sorted(str(c) for c in (result.behind.keys() | result.touched))
    events.info(
        "sync %s peer %s: %s, sent %d, received %d (%d new), %.2f s, %s",
        direction, _short(peer_id),
        ("commons " + ", ".join(_short(c) for c in commons[:3]) + (f" +{len(commons) - 3}" if len(commons) > 3 else ""))
        if commons else "no shared commons",
        result.sent_entries, result.received_entries, result.added, time.monotonic() - started, outcome,
    )
T = TypeVar("T")

GOSSIP_RATE_LIMIT = 50          # messages per second per forwarding peer
BAN_SCORE = scoring.BAN_SCORE
SCORE_INVALID = scoring.INVALID  # invalid entries, bad frames, garbage (a stall or a drop costs nothing)
SCORE_FLOOD = scoring.FLOOD
MAX_INBOUND_SESSIONS = 16
# The STOP reason a node gives when it ends its own session because that session crossed
# the peer's (Node._crossed); it then waits for the peer's session and syncs again.
CROSSED = "crossed: your session with me runs"
CROSSED_TRIES = 3  # a requested sync runs its own session again after crossing at most this often
# Test-only: seconds a node waits between taking a session slot for a peer and opening the
# stream, so that two nodes' sessions with each other cross for certain (sync_with).
SESSION_OPEN_DELAY_ENV = "P2PC_TEST_SESSION_OPEN_DELAY"
STATE_QUIET = 0.2               # fold once no batch arrived for this long…
STATE_MAX_DELAY = 60.0          # …or at least this often during a long sync of small groups,
# and at least this often while a bulk transfer streams in (a peer announced MIN_ENTRIES_FOR_PROCESS
# entries or more): folding beside it cost the ingest child its core and held the growing fold,
# and its first save, in memory during the transfer.  Control queries fold on demand meanwhile
# (they never miss a stored entry); what waits is the node's own derived work (docs/operations.md).
STATE_BULK_MAX_DELAY = 600.0
# Test-only: seconds that replace STATE_MAX_DELAY, so a test sees the periodic fold within its run.
STATE_MAX_DELAY_ENV = "P2PC_TEST_STATE_MAX_DELAY"
LOCAL_WAIT = 30.0               # a control query or append waits this long for the state thread (client: 60 s)
ANNOUNCE_MIN_INTERVAL = 0.05    # at most this often during a sync; the first goes at once
BAN_SECONDS = scoring.BAN_SECONDS
REDIAL_MIN = 0.25               # first redial delay (jittered, doubling up to max_backoff)
SYNC_RETRY_MIN = 1.0            # after a failed or cut session, the next unasked one waits (doubling to max_backoff)
STABLE_CONNECTION = 10.0        # a connection that lasted this long resets the backoff
DISCONNECT_CHECK = 60.0         # safety net: re-check a maintained connection this often
GOSSIP_STORE_WAIT = 2.0         # gossip is a hint: wait this long at most for the store's write lock
STORE_RETRY = 1.0               # a busy or full store: retry the state fold/announcement after this…
STORE_RETRY_MAX = 60.0          # …doubling (state folds) up to this while the store keeps failing
# What a busy (locked past the timeout), full or failing store raises: never fatal in the
# daemon's tasks (logged in one line; the work is retried or left to anti-entropy sync).
STORE_ERRORS = (StoreError, sqlite3.Error)


# A state of at least this many entries whose canonical form the daemon drops is followed by a
# trim, so the pages go back to the system (see p2pcommons.state.release).
TRIM_CANONICAL_AFTER = 20_000


def _release_canonical(state: Any) -> None:
    """The daemon keeps its commons' states for its whole life: not their canonical form
    (about 1 KB per contribution), which only a view that asks for the whole dict builds —
    the state hash is streamed without it — and which that view builds again when asked."""
    release = getattr(state, "release_canonical", None)
    if release is not None and release() and state.entry_count >= TRIM_CANONICAL_AFTER:
        from p2pcommons.state.release import release_freed_memory

        release_freed_memory()


async def _first_of(*events: trio.Event) -> None:
    """Return once any of ``events`` is set."""
    async with trio.open_nursery() as nursery:
        async def wait(event: trio.Event) -> None:
            await event.wait()
            nursery.cancel_scope.cancel()

        for event in events:
            nursery.start_soon(wait, event)


def _store_error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, StoreError) else f"the store failed ({exc})"
EXPIRY_CHECK = 60.0             # how often outsiders' logs on probation are checked for expiry


@dataclass
class NodeConfig:
    home: Home
    listen: Sequence[str] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: Sequence[str] = ()
    mdns: bool = False
    dht: bool = False            # Kademlia DHT, commons ids as provider keys (node/dht.py)
    ingest_process: bool = True  # store large sync transfers in a child process (second core)
    sync_interval: float = 30.0
    stall_timeout: float = 20.0
    connect_timeout: float = 5.0
    max_backoff: float = 30.0
    announce_delay: float = 0.005
    relay: RelaySettings = field(default_factory=RelaySettings)  # relay service, relays, limits
    ui: bool = False             # serve the dashboard (p2pcommons/web; the CLI follows [ui] enabled)
    ui_port: int = 4080          # on 127.0.0.1; 0: any free port


@dataclass
class PeerState:
    """What this node knows about one peer (in memory).  Its score and ban live in the
    node's :class:`~.scoring.Scoreboard`; bans are also kept in ``bans.json``."""

    peer_id: str
    # monotonic, None: never.  Not 0.0: the monotonic clock counts from boot, so on a machine
    # up for less than the sync interval a 0.0 made a new peer look synced just now, and a node
    # started then did not sync with the peers it met (tests/test_node_fresh_boot.py)
    last_sync: float | None = None
    last_result: str = ""
    syncs: int = 0
    # per commons, (entries the peer lacks, entries we lack) as the last session left them:
    # two numbers, not the peer's summaries (a peer must not make us keep what it sends)
    behind: dict[CID, tuple[int, int]] = field(default_factory=dict)
    gossip_window: float = 0.0
    gossip_count: int = 0
    addrs: set[str] = field(default_factory=set)
    last_seen: float = 0.0      # wall clock: connected now, or when the connection ended
    behind_at: float | None = None  # monotonic: when ``behind`` was last measured (None: never)
    # our sessions with the peer that failed or were cut short in a row, and (monotonic) when
    # anti-entropy may start the next one (Node._sync_failed): gossip naming heads we lack
    # asks for a session per message, and a peer that cuts every session short must not get one
    failures: int = 0
    retry_at: float = 0.0


class Node:
    """The daemon's runtime (``p2pc node start``)."""

    def __init__(self, config: NodeConfig, identity: Identity) -> None:
        self.config = config
        self.home = config.home
        self.identity = identity
        self.peer_id = identity.peer_id
        # The daemon's own connection mostly reads (summaries, plans, batches to send) and
        # stores small gossip groups; bulk ingest runs in the ingest process with its own.
        self.store = Store(self.home.store_file, cache_mib=4)
        self.outsiders = Limits.from_config(self.home.config())  # what strangers may make us store
        self.ingest_process = IngestProcess(str(self.home.store_file))
        self.handoff = Handoff(self._ingest_here, process=self.ingest_process, sync_log=self._sync_log,
                               use_process=self._for_ingest_process, on_fallback=self._ingest_process_failed)
        self._state_store: Store | None = None
        self._store_limiter = trio.CapacityLimiter(1)
        self._state_limiter = trio.CapacityLimiter(1)
        self.peers: dict[str, PeerState] = {}
        self._active_sessions: set[str] = set()
        self.sync_budget = MemoryBudget()  # what all sync sessions together may hold for peers
        self._inbound = 0
        self._inbound_peers: set[str] = set()
        self._sync_wanted: set[str] = set()
        self._sync_wakeup = trio.Event()
        self._announce_wakeup = trio.Event()
        self._state_dirty: set[CID] = set()
        self._state_wakeup = trio.Event()
        self._state_retrying: set[CID] = set()
        self._sync_later_pending = False
        self._state_retry_delay: dict[CID, float] = {}
        self._receiving = 0
        self._bulk_receiving = 0  # of those, sessions whose peer announced a bulk transfer
        self._sessions_idle = trio.Event()
        self._folding = False  # the state worker is folding (or waits for the state thread)
        self.folds = 0  # state worker rounds finished
        self._state_max_delay = float(os.environ.get(STATE_MAX_DELAY_ENV) or STATE_MAX_DELAY)
        self._announced: dict[CID, dict[bytes, int]] = {}
        self._topics: set[str] = set()
        self._maintained: dict[str, trio.CancelScope] = {}
        self._disconnects: dict[str, trio.Event] = {}
        # every open connection per peer, as the network notifee reported them (_disconnect)
        self._conns: dict[str, set[Any]] = {}
        self._mdns_wakeup = trio.Event()  # a peer was discovered on the LAN, or a peer left
        self._bans: dict[str, peerbook.Ban] = {}
        self._bans_limiter = trio.CapacityLimiter(1)
        self.scores = scoring.Scoreboard(trio.current_time)
        self._restore_bans()
        self._peer_synced: dict[str, trio.Event] = {}
        self._crossed: dict[str, trio.Event] = {}  # set: our session with that peer crossed its own and stops
        self.started = time.time()
        self.host: Any = None
        self.pubsub: Any = None
        self.reach: Reach | None = None  # relay v2, DCUtR and AutoNAT (reach.py)
        self.circuits: CircuitDialer | None = None  # dials /p2p-circuit addresses
        self._nursery: trio.Nursery | None = None
        self._stop = trio.Event()
        self._interface_ips: list[str] | None = None
        self.exchange = PeerExchange(self)  # address records: members find each other
        self.names = Names()  # member names for node status (filled by the state worker)
        self.dht: Any = None  # node/dht.py's CommonsDHT when enabled
        self.changes = Changes()  # bumped when a commons' state or a peer's sync may have changed (the UI's events)
        self.ui_url: str | None = None  # the dashboard's address (without its token) when it runs

    # --- store workers ------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` in the store worker thread (one at a time)."""
        return await trio.to_thread.run_sync(lambda: fn(self.store, *args), limiter=self._store_limiter)

    async def ingest(self, commons: CID, entries: list[bytes]) -> StoredGroup:
        """Hand over one received group for validation and storage (:mod:`.handoff`): large
        ones to the ingest process (the second core), small ones to the store thread."""
        return await self.handoff.hand_over(commons, entries)

    async def _ingest_here(self, commons: CID, entries: list[bytes]) -> tuple[IngestReport, bool]:
        return await self.db(ingest_scoped, commons, entries, self.outsiders)

    async def _sync_log(self) -> None:
        await trio.to_thread.run_sync(sync_log, str(self.home.store_file))

    @staticmethod
    def _ingest_process_failed(exc: BaseException) -> None:
        log.warning("ingest process unavailable, storing in the daemon: %s", exc)

    def _for_ingest_process(self, entries: int) -> bool:
        return entries >= MIN_ENTRIES_FOR_PROCESS and self.config.ingest_process

    def _expect(self, entries: int, _nbytes: int) -> None:
        """A peer announced a transfer: start the ingest process early if it is large."""
        if self._for_ingest_process(entries):
            self._nursery_start(self.ingest_process.prewarm)

    async def _state_worker(self) -> None:
        """Fold newly stored entries into the commons state, and for open commons write
        the admissions this member owes — coalesced, in its own thread and connection."""
        while True:
            await self._state_wakeup.wait()
            await self._settle(trio.current_time())
            self._folding = True
            try:
                await self._fold_dirty()
            finally:
                self._folding = False
                self.folds += 1

    def _fold_deadline(self, first: float) -> float:
        """When the state worker folds at the latest, entries having been stored since
        ``first``: STATE_MAX_DELAY later, or STATE_BULK_MAX_DELAY while a bulk transfer runs."""
        return first + (STATE_BULK_MAX_DELAY if self._bulk_receiving else self._state_max_delay)

    async def _settle(self, first: float) -> None:
        """Wait until storing has paused: no batch stored for STATE_QUIET and no session
        streaming entries in — or the fold's deadline (:meth:`_fold_deadline`) has come.
        Why: folding competes with ingest for the GIL, the cores and memory; while a sync
        streams batches in, one fold when it ends does the work of many."""
        while True:
            remaining = self._fold_deadline(first) - trio.current_time()
            if remaining <= 0:
                return
            self._state_wakeup = trio.Event()
            with trio.move_on_after(min(STATE_QUIET, remaining)):
                await self._state_wakeup.wait()
            if self._state_wakeup.is_set():
                continue  # another batch was stored: not quiet yet
            if not self._receiving:
                return
            # Quiet, but a session still runs (its peer may send more): wait for it to end,
            # for a new batch, or for the deadline (it moves if a bulk transfer starts).
            with trio.move_on_after(remaining):
                await _first_of(self._sessions_idle, self._state_wakeup)
            if not self._receiving:
                return

    async def _fold_dirty(self) -> None:
        """Fold every commons marked dirty (one at a time, in the state thread)."""
        self._state_wakeup = trio.Event()  # (entries stored from here on wake the next round)
        dirty, self._state_dirty = self._state_dirty, set()
        if os.environ.get("P2PC_NODE_NO_STATE"):  # diagnosis only: measure sync without the fold
            return
        for commons in sorted(dirty, key=lambda c: c.raw):
            try:
                wrote = await trio.to_thread.run_sync(self._update_state, commons,
                                                      limiter=self._state_limiter)
            except Exception as exc:  # derived state must never take the node down
                log.warning("state update for %s failed: %s", commons, exc)
                if isinstance(exc, STORE_ERRORS) and commons not in self._state_retrying:
                    # A busy or full store: try again later, less often while it lasts.
                    delay = self._state_retry_delay.get(commons, STORE_RETRY)
                    self._state_retry_delay[commons] = min(delay * 2, STORE_RETRY_MAX)
                    self._state_retrying.add(commons)
                    self._nursery_start(self._retry_state, commons, delay)
                continue
            self._state_retry_delay.pop(commons, None)
            self.changes.bump()
            if wrote:
                self.announce()

    def _update_state(self, commons: CID) -> bool:
        from .derived import current_state_fn, pending_admissions_fn

        current_state = current_state_fn()
        if current_state is None:
            return False
        if self._state_store is None:
            self._state_store = Store(self.home.store_file, cache_mib=8)  # folds stream entries once
        state = current_state(self._state_store, commons)
        self.names.remember(commons, state)
        pending_admissions = pending_admissions_fn()
        if pending_admissions is None:
            _release_canonical(state)
            return False
        from p2pcommons.author import admit_once, admitted_joins

        wrote = False
        targets = list(pending_admissions(state, self.identity.public_key))
        targets += _invited_joins(self._state_store, state, commons, self.identity.public_key)
        if targets:
            # Idempotent: a join this member already admitted (its admission rejected, e.g.
            # because this member's log is forked) is never admitted again.  One scan of
            # this member's admissions skips those; admit_once checks again, in the write
            # transaction, for the rest.
            done = admitted_joins(self._state_store, commons, self.identity.public_key)
            targets = [t for t in targets if t.raw not in done]
        for join_id in targets:
            if admit_once(self._state_store, self.identity.signer, commons, join_id) is None:
                continue
            log.info("admitted join %s in %s", join_id, commons)
            wrote = True
        if wrote:
            state = current_state(self._state_store, commons)
            self.names.remember(commons, state)
        _release_canonical(state)
        return wrote

    async def _retry_state(self, commons: CID, delay: float) -> None:
        await trio.sleep(delay)
        self._state_retrying.discard(commons)
        self.mark_state_dirty({commons})

    def mark_state_dirty(self, commons: set[CID]) -> None:
        self._state_dirty |= commons
        self._state_wakeup.set()

    # --- peers and scores -----------------------------------------------------------------

    def peer(self, peer_id: str) -> PeerState:
        state = self.peers.get(peer_id)
        if state is None:
            state = self.peers[peer_id] = PeerState(peer_id)
        return state

    def _restore_bans(self) -> None:
        """Bans from earlier runs (expired ones are dropped when loading)."""
        now = time.time()
        for ban in peerbook.load_bans(self.home, now).values():
            state = self.peer(ban.peer_id)
            self.scores.restore_ban(ban.peer_id, ban.score, ban.until - now, ban.reason)
            state.last_result = ban.reason
            self._bans[ban.peer_id] = ban
        if self._bans:
            log.info("%d peer ban(s) restored from %s", len(self._bans), peerbook.BANS_FILE)

    async def _save_bans(self) -> None:
        now = time.time()
        self._bans = {k: b for k, b in self._bans.items() if b.until > now}
        snapshot = dict(self._bans)
        try:
            await trio.to_thread.run_sync(peerbook.save_bans, self.home, snapshot, limiter=self._bans_limiter)
        except OSError as exc:
            log.warning("cannot save the ban list: %s", exc)

    def is_banned(self, peer_id: str) -> bool:
        return self.scores.is_banned(peer_id)

    async def penalize(self, peer_id: str, points: int, reason: str, *, disconnect: bool = True) -> None:
        """Score a peer down for proven misbehaviour (invalid data, floods: never a drop or a
        timeout); disconnect it; ban it for ten minutes below the threshold.  Scores decay
        toward neutral (:mod:`.scoring`)."""
        state = self.peer(peer_id)
        verdict = self.scores.penalize(peer_id, points, reason)
        state.last_result = reason
        log.warning("peer %s scored %+d (now %.0f): %s", peer_id, points, verdict.score, reason)
        if verdict.banned:
            log.warning("peer %s banned for 10 minutes", peer_id)
            self._bans[peer_id] = peerbook.Ban(peer_id, time.time() + BAN_SECONDS, round(verdict.score), reason[:200])
            disconnect = True
            await self._save_bans()
        if disconnect:
            await self._disconnect(peer_id)

    async def _network_fault(self, peer_id: str, exc: BaseException) -> None:
        """A stall or an early end of stream: the session ends and the connection is dropped
        (the maintained dialer reconnects with backoff), but the peer keeps its score."""
        log.info("session with %s ended early (not scored): %s", peer_id, exc)
        self.peer(peer_id).last_result = "stalled" if isinstance(exc, Stalled) else "closed early"
        if isinstance(exc, Stalled):
            await self._disconnect(peer_id)

    async def _disconnect(self, peer_id: str) -> None:
        """Close every connection to the peer, including any the swarm lost track of.

        py-libp2p's ``disconnect`` closes the connections its swarm lists for the peer and
        then drops the peer's whole entry; a connection the peer opened while those closed
        (a hostile peer redials at once) is dropped from the list but stays open, invisible
        to ``disconnect`` and ``get_connected_peers``, and its streams are still served.  A
        banned peer kept such a connection until it closed it itself (seen: 20 s).  The
        network notifee reports every connection, so the ones it says are open are closed
        here too: those open when the disconnect was asked for (a connection the peer opens
        meanwhile is a new start, left to the next disconnect, which finds it here)."""
        from libp2p.peer.id import ID

        conns = list(self._conns.get(peer_id, ()))
        with trio.move_on_after(3), contextlib.suppress(Exception):
            await self.host.disconnect(ID.from_base58(peer_id))
        for conn in conns:
            with trio.move_on_after(3), contextlib.suppress(Exception):
                await conn.close()
            self._forget_conn(peer_id, conn)

    def _forget_conn(self, peer_id: str, conn: Any) -> None:
        """Drop a connection from :attr:`_conns`, with any of the peer's that closed unseen
        (a close cut short may skip its notification): the table holds open ones only."""
        conns = self._conns.get(peer_id)
        if conns is None:
            return
        conns.discard(conn)
        conns.difference_update([c for c in conns if _closed(c)])
        if not conns:
            del self._conns[peer_id]

    def connected_peers(self) -> list[str]:
        if self.host is None:
            return []
        return [p.to_base58() for p in self.host.get_connected_peers()]

    # --- sync -----------------------------------------------------------------------------

    async def held_commons(self) -> list[CID]:
        return await self.db(lambda s: s.commons_ids())

    async def sync_with(self, peer_id: str, want: Sequence[CID] | None = None,
                        on_progress: Callable[[int, int, int, int], None] | None = None) -> SessionResult | None:
        """Run one initiator session with a connected peer (none if one is running)."""
        from libp2p.peer.id import ID

        if self._in_session(peer_id) or self.is_banned(peer_id):
            # A session already runs with this peer, and a session syncs both ways: a second
            # one would stream the same entries again, in parallel.
            return None
        self._active_sessions.add(peer_id)
        crossed = self._crossed[peer_id] = trio.Event()
        state = self.peer(peer_id)
        try:
            delay = float(os.environ.get(SESSION_OPEN_DELAY_ENV) or 0)
            if delay > 0:
                await trio.sleep(min(delay, 10.0))
            commons = list(await self.held_commons())
            for c in want or ():
                if c not in commons:
                    commons.append(c)
            if not commons:
                state.last_sync = time.monotonic()
                return SessionResult(complete=True, caught_up=True)
            if crossed.is_set():
                return SessionResult(stopped=CROSSED)  # the peer's session runs: never opened
            with trio.fail_after(self.config.connect_timeout):
                stream = await self.host.new_stream(ID.from_base58(peer_id), [sync.PROTOCOL_ID])
            started = time.monotonic()
            with self._session_running() as on_totals:
                result = await run_session(
                    stream, self.db, initiator=True, want=commons, stall_timeout=self.config.stall_timeout,
                    on_progress=on_progress, on_batch_stored=self._on_stored, ingest=self.ingest,
                    on_totals=on_totals, budget=self.sync_budget, stop=crossed, stop_reason=CROSSED,
                )
            if result.stopped == CROSSED:
                # the peer's session syncs both ways and records the outcome (_handle_sync_stream)
                _log_session(peer_id, "with", result, started, CROSSED)
                return result
            self._after_session(state, result)
            _log_session(peer_id, "with", result, started, state.last_result)
            self._nursery_start(self.exchange.after_sync, peer_id)
            return result
        except (Stalled, PeerClosed) as exc:
            self._sync_failed(state)
            await self._network_fault(peer_id, exc)
            return None
        except ProtocolViolation as exc:
            self._sync_failed(state)
            await self.penalize(peer_id, SCORE_INVALID, str(exc))
            return None
        except (trio.TooSlowError, OSError) as exc:
            self._sync_failed(state)
            log.info("sync with %s failed: %s", peer_id, exc or "timed out")
            state.last_result = "unreachable"
            return None
        except Exception as exc:  # libp2p raises many unrelated types for a dropped peer
            self._sync_failed(state)
            log.info("sync with %s failed: %s: %s", peer_id, type(exc).__name__, exc)
            state.last_result = f"failed: {type(exc).__name__}"
            return None
        finally:
            self._active_sessions.discard(peer_id)
            if self._crossed.get(peer_id) is crossed:
                del self._crossed[peer_id]
            self._session_ended(peer_id)

    async def sync_now(self, peer_id: str, want: Sequence[CID] | None = None,
                       on_progress: Callable[[int, int, int, int], None] | None = None) -> SessionResult | None:
        """A sync someone asked for (``p2pc sync``, through the daemon or one-shot): run our
        own session with the peer and return its outcome.  A session with the peer that runs
        already (either direction) is waited for first, then ours runs.  If ours crossed the
        peer's and stopped (:data:`CROSSED`; protocols/sync.md §1), the peer's session is
        waited for and ours runs again, up to :data:`CROSSED_TRIES` times.  Without this a
        one-shot ``p2pc sync`` whose peer happened to open a session to it at that moment
        (a daemon syncs with a newly connected peer within a second) reported "not caught
        up" (exit 6) although the peer's session had brought everything."""
        result = None
        for _ in range(CROSSED_TRIES):
            while self._in_session(peer_id):
                event = self._peer_synced.setdefault(peer_id, trio.Event())
                await event.wait()
            result = await self.sync_with(peer_id, want, on_progress)
            if result is None or result.stopped != CROSSED:
                break
        return result

    def _sync_failed(self, state: PeerState) -> None:
        """Our session with the peer failed or was cut short (nothing recorded as a sync):
        anti-entropy starts the next one only after a delay that doubles with every failure in
        a row (up to ``max_backoff``), whatever asks for it (gossip naming heads we lack, the
        interval).  Before, a peer that announced unknown heads and hung up on every session
        got a new session for nearly every gossip message.  A sync someone asks for
        (``p2pc sync``) is not delayed; a completed session in either direction, or a new
        connection, clears the delay."""
        state.failures += 1
        delay = min(SYNC_RETRY_MIN * 2 ** min(state.failures - 1, 16), max(SYNC_RETRY_MIN, self.config.max_backoff))
        state.retry_at = time.monotonic() + delay * random.uniform(0.8, 1.2)

    @staticmethod
    def _clear_sync_backoff(state: PeerState) -> None:
        state.failures = 0
        state.retry_at = 0.0

    def _yields_to(self, peer_id: str) -> bool:
        """Two sessions crossed: each node opened one to the other before it saw the other's
        (both decide within the same moment, e.g. when they connect and each finds the other
        due).  Both would stream the same entries, and each receiver would validate and store
        them twice (seen: a 100,000-entry sync handed 188,000 to the ingest process).  Both
        nodes keep the session opened by the one whose peer id sorts first: the other node,
        on receiving that session, accepts it and stops its own with STOP (:data:`CROSSED`).
        No inbound session is ever refused, so a refusal never looks like a failure."""
        return peer_id < self.peer_id

    def _in_session(self, peer_id: str) -> bool:
        """A session with this peer runs, in either direction (one per pair of peers)."""
        return peer_id in self._active_sessions or peer_id in self._inbound_peers

    def _session_ended(self, peer_id: str) -> None:
        """Wake whoever waits for the session with this peer (either direction) to end."""
        event = self._peer_synced.pop(peer_id, None)
        if event is not None:
            event.set()

    def _after_session(self, state: PeerState, result: SessionResult) -> None:
        state.last_sync = time.monotonic()
        self._clear_sync_backoff(state)
        state.syncs += 1
        behind = dict(state.behind)
        self._note_behind(state, result)
        state.last_result = "complete" if result.complete else (result.stopped or "incomplete")
        if result.added:
            log.info("sync with %s: %d new entries", state.peer_id, result.added)
        self._declined(state.peer_id, result)
        if state.behind != behind:
            self.changes.bump()  # the peer's "in sync" badge changes (stored entries bump after the fold)
        if result.new_commons:
            self._nursery_start(self._subscribe_all)

    def _note_behind(self, state: PeerState, result: SessionResult) -> None:
        state.behind.update(result.behind)
        if result.complete:
            state.behind_at = time.monotonic()
        if result.rejected:
            # we could not place some entries (a fork branch whose base we lacked): the
            # peer's next session sends the rest, so ask for one now rather than later
            self._sync_wanted.add(state.peer_id)
            self._sync_wakeup.set()

    def _declined(self, peer_id: str, result: SessionResult) -> None:
        """Outsiders' entries were declined: if the same session also stored entries (an
        admission may have made one of those authors a member), sync again at once, so the
        rest of a newly admitted member's log arrives now.  Bounded: a session that stores
        nothing new does not ask again."""
        if result.declined:
            log.info("declined %d outsiders' entries from %s", result.declined, peer_id)
            if result.added:
                self.request_sync(peer_id)

    async def _expire_outsiders(self) -> None:
        """Delete outsiders' logs whose probation ended (p2pcommons.outsiders), now and then."""
        while True:
            await trio.sleep(min(EXPIRY_CHECK, max(1.0, self.outsiders.expire_after / 4)))
            try:
                expired = await self.db(expire_outsiders, self.outsiders)
            except STORE_ERRORS as exc:
                log.warning("cannot expire outsiders' entries: %s", _store_error_text(exc))
                continue
            if expired:
                log.info("expired outsiders' entries in %d commons", len(expired))
                self.mark_state_dirty(expired)
                self.announce()

    @contextlib.contextmanager
    def _session_running(self) -> Iterator[Callable[[int, int], None]]:
        """A session that may receive entries runs; yields its ``on_totals`` callback, which
        counts the session as a bulk transfer once its peer announces a large one (the state
        worker then folds when it ends, bounded by STATE_BULK_MAX_DELAY)."""
        bulk = False

        def on_totals(entries: int, nbytes: int) -> None:
            nonlocal bulk
            self._expect(entries, nbytes)
            if entries >= MIN_ENTRIES_FOR_PROCESS and not bulk:
                bulk = True
                self._bulk_receiving += 1

        self._receiving += 1
        try:
            yield on_totals
        finally:
            self._receiving -= 1
            if bulk:
                self._bulk_receiving -= 1
            if not self._receiving:
                self._sessions_idle.set()
                self._sessions_idle = trio.Event()

    async def _on_stored(self, commons: set[CID]) -> None:
        self.mark_state_dirty(commons)
        self.announce()

    async def _handle_sync_stream(self, stream: Any) -> None:
        """Inbound sessions: at most one per peer and a bounded number overall."""
        peer_id = stream.muxed_conn.peer_id.to_base58()
        busy = peer_id in self._inbound_peers or self._inbound >= MAX_INBOUND_SESSIONS
        if self.is_banned(peer_id) or busy:
            with contextlib.suppress(Exception):
                await stream.reset()
            if self.is_banned(peer_id):
                await self._disconnect(peer_id)
            return
        self._inbound += 1
        self._inbound_peers.add(peer_id)
        crossed = self._crossed.get(peer_id)
        if crossed is not None and self._yields_to(peer_id):
            crossed.set()  # our own session with this peer stops: this one is kept
        violation: ProtocolViolation | None = None
        fault: Stalled | PeerClosed | None = None
        started = time.monotonic()
        try:
            with self._session_running() as on_totals:
                result = await run_session(stream, self.db, initiator=False,
                                           stall_timeout=self.config.stall_timeout,
                                           on_batch_stored=self._on_stored, ingest=self.ingest,
                                           on_totals=on_totals, budget=self.sync_budget)
            state = self.peer(peer_id)
            _log_session(peer_id, "from", result, started,
                         "complete" if result.complete else (result.stopped or "incomplete"))
            self._note_behind(state, result)
            if result.complete:
                state.last_sync = time.monotonic()  # both directions are done: not due again yet
                self._clear_sync_backoff(state)
            self._declined(peer_id, result)
            if result.new_commons:
                self._nursery_start(self._subscribe_all)
        except ProtocolViolation as exc:
            violation = exc
        except (Stalled, PeerClosed) as exc:
            fault = exc
        except Exception as exc:
            log.info("inbound sync from %s ended: %s: %s", peer_id, type(exc).__name__, exc)
            with contextlib.suppress(Exception):
                await stream.reset()
        finally:
            self._inbound -= 1
            self._inbound_peers.discard(peer_id)
            self._session_ended(peer_id)
            if peer_id in self._sync_wanted:
                self._sync_wakeup.set()  # asked for while this session ran: start one now
        if violation is not None or fault is not None:
            with contextlib.suppress(Exception):
                await stream.reset()
        if fault is not None:
            await self._network_fault(peer_id, fault)
        if violation is not None:
            await self.penalize(peer_id, SCORE_INVALID, str(violation))

    def request_sync(self, peer_id: str | None = None) -> None:
        if peer_id is None:
            self._sync_wanted.update(self.connected_peers())
        else:
            self._sync_wanted.add(peer_id)
        self._sync_wakeup.set()

    async def _anti_entropy(self) -> None:
        """Sync with every connected peer on request and at least every interval:
        gossip is a hint, this closes every gap."""
        assert self._nursery is not None
        while True:
            with trio.move_on_after(min(1.0, self.config.sync_interval)):
                await self._sync_wakeup.wait()
            self._sync_wakeup = trio.Event()
            now = time.monotonic()
            for peer_id in self.connected_peers():
                state = self.peer(peer_id)
                due = state.last_sync is None or now - state.last_sync >= self.config.sync_interval
                busy = self._in_session(peer_id) or now < state.retry_at  # (a wanted sync waits)
                if (due or peer_id in self._sync_wanted) and not busy:
                    self._sync_wanted.discard(peer_id)
                    self._nursery.start_soon(self.sync_with, peer_id)

    # --- connections -------------------------------------------------------------------

    async def connect(self, addr: str, *, fresh: bool = True) -> str:
        """Dial a multiaddr ending in /p2p/<peer id>; returns the peer id.

        ``fresh``: dial even if the swarm failed to reach the peer lately.  py-libp2p
        refuses to dial a peer for 60 s after every address failed (its negative peer
        cache), which would hold a restarted peer off for a minute; the callers that pass
        ``fresh`` pace their dials themselves (maintain's backoff, a user's command)."""
        from libp2p.peer.peerinfo import info_from_p2p_addr
        from multiaddr import Multiaddr

        try:
            info = info_from_p2p_addr(Multiaddr(addr))
        except Exception:
            raise UsageError(f"'{addr}' is not a peer address (it needs /ip4/…/tcp/…/p2p/<peer id>).") from None
        peer_id = info.peer_id.to_base58()
        if peer_id == self.peer_id:
            return peer_id
        if self.is_banned(peer_id):
            raise ProtocolViolation(f"Peer {peer_id} is banned for misbehaving.")
        if fresh:
            unblock = getattr(self.host.get_network(), "unblock_peer", None)
            if unblock is not None:
                unblock(info.peer_id)
        with trio.fail_after(self.config.connect_timeout):
            if "/p2p-circuit" in addr and self.circuits is not None:
                if peer_id not in self.connected_peers():
                    await self.circuits.dial_circuit(addr)  # the swarm never dials relay addresses
            else:
                await self.host.connect(info)
        self.peer(peer_id).addrs.add(addr)
        return peer_id

    async def maintain(self, addr: str) -> None:
        """Keep one configured peer connected: wait for its disconnection (a network
        notifee wakes us, no polling), then redial with exponential backoff and jitter, and
        sync on every (re)connection.  :meth:`forget` cancels it."""
        if addr in self._maintained:
            return
        with trio.CancelScope() as scope:
            self._maintained[addr] = scope
            try:
                await self._maintain(addr)
            finally:
                if self._maintained.get(addr) is scope:
                    del self._maintained[addr]

    async def _maintain(self, addr: str) -> None:
        backoff = REDIAL_MIN
        peer_id: str | None = None
        while True:
            if peer_id is not None and peer_id in self.connected_peers():
                up = time.monotonic()
                await self._wait_disconnected(peer_id)
                if peer_id in self.connected_peers():
                    continue  # the safety-net timeout, or another connection remains
                if time.monotonic() - up >= STABLE_CONNECTION:
                    backoff = REDIAL_MIN
                log.log(peer_line_level(), "disconnected from %s; redialling in about %.2f s", peer_id, backoff)
            elif peer_id is not None and self.is_banned(peer_id):
                await trio.sleep(self.config.max_backoff)
                continue
            if peer_id is not None:
                # Never redial at once: a peer that drops us on connect must not make a loop.
                await trio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.config.max_backoff)
            try:
                peer_id = await self.connect(addr)
            except UsageError as exc:
                log.error("%s", exc)
                return
            except Exception as exc:
                log.debug("cannot reach %s (%s)", addr, type(exc).__name__)
                if peer_id is None:
                    # not reached yet: back off here (afterwards the wait above does)
                    await trio.sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, self.config.max_backoff)
                continue
            if peer_id == self.peer_id:
                return  # our own address: nothing to maintain
            log.log(peer_line_level(), "connected to %s", peer_id)  # once per event, with -v too
            self.request_sync(peer_id)

    async def _wait_disconnected(self, peer_id: str) -> None:
        """Return once ``peer_id`` may have disconnected (woken by the network notifee;
        re-checked every DISCONNECT_CHECK seconds in case a notification is ever missed)."""
        event = self._disconnects.get(peer_id)
        if event is None:
            event = self._disconnects[peer_id] = trio.Event()
        if peer_id not in self.connected_peers():
            return
        with trio.move_on_after(DISCONNECT_CHECK):
            await event.wait()

    def _on_disconnected(self, peer_id: str, conn: Any = None) -> None:
        self._forget_conn(peer_id, conn)
        events.info("peer %s disconnected", _short(peer_id))
        self.peer(peer_id).last_seen = time.time()
        self.changes.bump()
        self._mdns_wakeup.set()
        event = self._disconnects.pop(peer_id, None)
        if event is not None:
            event.set()

    def _on_connected(self, peer_id: str, conn: Any = None) -> None:
        if conn is not None:
            self._forget_conn(peer_id, None)  # (prunes any that closed unseen)
            self._conns.setdefault(peer_id, set()).add(conn)
        events.info("peer %s connected", _short(peer_id))
        if self.reach is not None:
            self.reach.peer_connected()
        self.peer(peer_id).last_seen = time.time()
        self._clear_sync_backoff(self.peer(peer_id))  # a new connection: sync at once, not after a delay
        self.changes.bump()
        self.exchange.wake()
        if self.is_banned(peer_id):
            log.info("refusing a connection from banned peer %s", peer_id)
            self._nursery_start(self._disconnect, peer_id)

    async def _relay_members(self) -> set[str]:
        """Peers that may reserve a slot on our relay: the authors of the commons we hold."""
        return await self.db(_author_peer_ids)

    def maintained(self) -> list[str]:
        return sorted(self._maintained)

    async def forget(self, target: str) -> dict[str, Any]:
        """``p2pc peer remove``: stop maintaining every address ``target`` names (an
        address, or a peer id: all its addresses) and drop the connection to that peer,
        unless another maintained address still reaches it (then it stays connected)."""
        stopped = [a for a in self._maintained if peerbook.matches(a, target)]
        for addr in stopped:
            self._maintained.pop(addr).cancel()
        peer_id = peerbook.peer_id_of(target) if target.startswith("/") else target
        kept_by = [a for a in self._maintained if peerbook.peer_id_of(a) == peer_id]
        if peer_id and not target.startswith("/"):
            self.exchange.forgotten.add(peer_id)  # cut off entirely: not dialled from its records either
        dropped = False
        if peer_id and not kept_by and peer_id in self.connected_peers():
            await self._disconnect(peer_id)
            dropped = peer_id not in self.connected_peers()
        return {"peer_id": peer_id, "stopped": stopped, "kept_by": kept_by, "dropped": dropped}

    async def unban(self, peer_id: str) -> bool:
        """``p2pc peer unban``: lift a ban and forget the peer's score (a fresh start, rather
        than a low score that would re-ban it at the next fault).  Whether it was banned."""
        banned = self.scores.forgive(peer_id) or peer_id in self._bans
        if self._bans.pop(peer_id, None) is not None:
            await self._save_bans()
        return banned

    def _nursery_start(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    async def _mdns_dialer(self) -> None:
        """mDNS only fills the peerstore: dial what it found (bounded).  Woken when
        discovery reports a peer (on zeroconf's thread, handed to trio) or a peer
        disconnects; re-checked every DISCONNECT_CHECK seconds for dials that failed."""
        from libp2p.discovery.events.peerDiscovery import peerDiscovery

        token = trio.lowlevel.current_trio_token()

        def discovered(_info: Any) -> None:  # runs on zeroconf's thread
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._wake_mdns_dialer, trio_token=token)

        peerDiscovery.register_peer_discovered_handler(discovered)
        try:
            while True:
                self._mdns_wakeup = trio.Event()
                await self._dial_discovered()  # first pass: peers found before we listened
                with trio.move_on_after(DISCONNECT_CHECK):
                    await self._mdns_wakeup.wait()
        finally:
            peerDiscovery.unregister_peer_discovered_handler(discovered)

    def _wake_mdns_dialer(self) -> None:
        self._mdns_wakeup.set()

    async def _dial_discovered(self) -> None:
        connected = set(self.connected_peers())
        for peer in list(self.host.get_peerstore().peers_with_addrs())[:64]:
            text = peer.to_base58()
            if text == self.peer_id or text in connected or self.is_banned(text):
                continue
            addrs = self.host.get_peerstore().addrs(peer)
            for addr in addrs[:4]:
                full = f"{addr}/p2p/{text}" if "/p2p/" not in str(addr) else str(addr)
                with contextlib.suppress(Exception):
                    await self.connect(full, fresh=False)
                    self.request_sync(text)
                    break

    # --- gossip ---------------------------------------------------------------------------

    async def _subscribe_all(self) -> None:
        """Subscribe to every held commons' topic (a busy or full store: skipped this time;
        the announcer and every session call this again)."""
        try:
            held = await self.held_commons()
        except STORE_ERRORS as exc:
            log.warning("topic subscription skipped: %s", _store_error_text(exc))
            return
        for commons in held:
            topic = topic_of(commons)
            if topic in self._topics:
                continue
            if commons not in self._announced:
                try:
                    self._announced[commons] = await self.db(_seqs, commons)
                except STORE_ERRORS as exc:
                    log.warning("topic subscription for %s skipped: %s", commons, _store_error_text(exc))
                    continue
            self._topics.add(topic)
            self.pubsub.set_topic_validator(topic, self._validator(commons), False)
            subscription = await self.pubsub.subscribe(topic)
            self._nursery_start(self._gossip_reader, commons, subscription)
            await self.exchange.subscribe(commons)

    def _validator(self, commons: CID) -> Callable[[Any, Any], bool]:
        def validate(forwarder: Any, msg: Any) -> bool:
            peer_id = forwarder.to_base58()
            if peer_id == self.peer_id:
                return True
            if self.is_banned(peer_id):
                return False
            state = self.peer(peer_id)
            now = time.monotonic()
            if now - state.gossip_window >= 1.0:
                state.gossip_window = now
                state.gossip_count = 0
            state.gossip_count += 1
            if state.gossip_count > GOSSIP_RATE_LIMIT:
                self._nursery_start(functools.partial(self.penalize, disconnect=False),
                                    peer_id, SCORE_FLOOD, "gossip flood")
                return False
            try:
                decode_announcement(bytes(msg.data), commons, verify=True)
            except (InvalidEntry, ProtocolViolation) as exc:
                self._nursery_start(self.penalize, peer_id, SCORE_INVALID, f"invalid gossip: {exc}")
                return False
            return True

        return validate

    async def _gossip_reader(self, commons: CID, subscription: Any) -> None:
        """Drain one topic in a dedicated task (a slow consumer loses messages)."""
        while True:
            msg = await subscription.get()
            try:
                source = _peer_text(msg.from_id)
            except Exception:
                source = None
            if source == self.peer_id:
                continue
            try:
                heads, entries = decode_announcement(bytes(msg.data), commons, verify=False)
            except (InvalidEntry, ProtocolViolation):
                continue
            try:
                behind = await self.db(_apply_gossip, commons, heads, entries)
            except STORE_ERRORS as exc:
                # A busy (locked past the timeout) or full store: drop the announcement;
                # anti-entropy sync fetches what it carried once the store works again.
                log.warning("gossip for %s not stored: %s", commons, _store_error_text(exc))
                if not self._sync_later_pending:  # one pending retry, however many messages fail
                    self._sync_later_pending = True
                    self._nursery_start(self._sync_later)
                continue
            if entries:
                self.mark_state_dirty({commons})
            if behind:
                target = source if source in self.connected_peers() else None
                self.request_sync(target)

    def announce(self) -> None:
        """Schedule an announcement of new heads (coalesced)."""
        self._announce_wakeup.set()

    async def _sync_later(self) -> None:
        await trio.sleep(STORE_RETRY)
        self._sync_later_pending = False
        self.request_sync(None)

    async def _announce_later(self) -> None:
        await trio.sleep(STORE_RETRY)
        self.announce()

    async def _announcer(self) -> None:
        while True:
            await self._announce_wakeup.wait()
            started = time.monotonic()
            await trio.sleep(self.config.announce_delay)  # coalesce a burst of writes
            self._announce_wakeup = trio.Event()
            await self._subscribe_all()
            try:
                held = await self.held_commons()
            except STORE_ERRORS as exc:
                log.warning("announcement skipped: %s", _store_error_text(exc))
                self._nursery_start(self._announce_later)
                continue
            for commons in held:
                last = self._announced.get(commons, {})
                try:
                    data, seqs = await self.db(_announcement, commons, last)
                except STORE_ERRORS as exc:
                    log.warning("announcement for %s skipped: %s", commons, _store_error_text(exc))
                    self._nursery_start(self._announce_later)
                    continue
                if data is None:
                    continue
                self._announced[commons] = seqs
                try:
                    await self.pubsub.publish(topic_of(commons), data)
                except Exception as exc:
                    log.info("gossip publish failed: %s", exc)
            await trio.sleep(max(0.0, ANNOUNCE_MIN_INTERVAL - (time.monotonic() - started)))

    # --- control socket ---------------------------------------------------------------

    async def _control_server(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        path = self.home.control_socket
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: we hold the lock, so no other daemon owns it
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            await sock.bind(str(path))
        except OSError as exc:
            sock.close()
            raise NetworkError(f"Cannot create the control socket {path} ({exc.strerror or exc}).") from None
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(16)
        listener = trio.SocketListener(sock)
        task_status.started()
        try:
            await trio.serve_listeners(self._control_client, [listener])
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def _control_client(self, stream: trio.SocketStream) -> None:
        async with stream:
            buffer = bytearray()
            with trio.move_on_after(control.REQUEST_SECONDS):
                while not control.request_complete(buffer):
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    buffer += chunk
            request = control.decode_request(buffer)
            if request is None:
                reply = control.failure(control.NOT_AN_OBJECT, 2)
            else:
                try:
                    reply = control.success(await self._control(request))
                except P2PCError as exc:
                    typed = request.get("cmd") in control.TYPED_ERRORS
                    reply = control.failure(str(exc), exc.exit_code, type(exc).__name__ if typed else None)
                except Exception as exc:
                    log.exception("control request failed")
                    reply = control.failure(f"The node failed: {exc}", 1)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(control.encode_reply(reply))

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "ping":
            return {"pid": os.getpid()}
        if cmd == "notify":
            self.announce()
            self.mark_state_dirty(set(await self.held_commons()))
            return {}
        if cmd == "status":
            return await self.status()
        if cmd == "stop":
            self._stop.set()
            return {}
        if cmd == "connect":
            addr = str(request.get("addr", ""))
            peer_id = await self.connect(addr)
            self._nursery_start(self.maintain, addr)
            self.request_sync(peer_id)
            return {"peer_id": peer_id}
        if cmd == "sync":
            return await self._control_sync(request)
        if cmd in ("query", "append"):
            return await self._control_local(request)
        if cmd == "sync_status":
            return await _sync_status(self, float(request.get("max_age", 5.0)), float(request.get("timeout", 10.0)))
        if cmd == "forget":
            target = str(request.get("target", "")).strip()
            if not target:
                raise UsageError("Name the peer to forget (an address or a peer id).")
            return await self.forget(target)
        if cmd == "unban":
            target = str(request.get("peer_id", "")).strip()
            if not target:
                raise UsageError("Name the peer to unban (its peer id).")
            return {"peer_id": target, "lifted": await self.unban(target)}
        raise UsageError(f"Unknown control command {cmd!r}.")

    async def _control_local(self, request: dict[str, Any]) -> dict[str, Any]:
        """``query`` and ``append`` (protocols/control.md §4): the CLI's hot commands answered
        from this node's live fold, in the state thread (its store, one at a time with the
        state worker), instead of each command loading the commons' checkpoint again."""
        from . import queries

        def work() -> dict[str, Any]:
            if self._state_store is None:
                self._state_store = Store(self.home.store_file, cache_mib=8)
            if request.get("cmd") == "query":
                return queries.answer_query(self._state_store, request)
            return queries.answer_append(self._state_store, self.identity.signer, request)

        # Wait for the state thread (a fold of a large sync can hold it for long) at most
        # LOCAL_WAIT, then refuse without doing anything: the client's own timeout is longer,
        # so a write it gives up on has never been started here.
        acquired = False
        with trio.move_on_after(LOCAL_WAIT):
            await self._state_limiter.acquire()
            acquired = True
        if not acquired:
            raise NetworkError("The node is busy folding a large transfer; try again in a moment.")
        try:
            reply = await trio.to_thread.run_sync(work)
        finally:
            self._state_limiter.release()
        if request.get("cmd") == "append":
            self.announce()
            self.mark_state_dirty(set(await self.held_commons()))
        return reply

    async def _control_sync(self, request: dict[str, Any]) -> dict[str, Any]:
        """Sync now with one peer (``addr``) or every connected peer; report whether this
        node caught up with each (``want``: extra commons to ask for, as text ids)."""
        timeout = float(request.get("timeout", 60))
        want = [CID.parse(c) for c in request.get("want", [])]
        results: dict[str, Any] = {}
        with trio.move_on_after(timeout):
            addr = request.get("addr")
            targets = [await self.connect(str(addr))] if addr else self.connected_peers()
            if addr:
                self._nursery_start(self.maintain, str(addr))  # keep it connected from now on
            for peer_id in targets:
                result = await self.sync_now(peer_id, want)
                results[peer_id] = None if result is None else {
                    "caught_up": result.caught_up, "complete": result.complete,
                    "received": result.received_entries, "added": result.added,
                    "sent": result.sent_entries, "announced": list(result.announced),
                }
        if want:
            await self._subscribe_all()
        return {"peers": results}

    async def status(self) -> dict[str, Any]:
        connected = set(self.connected_peers())
        unnamed = {c for c in await self.held_commons() if not self.names.asked(c)}
        if unnamed:
            self.mark_state_dirty(unnamed)  # fold once so peers show by their member names
        commons = await self.db(_commons_info)
        peers = []
        kinds = self.reach.connection_kinds() if self.reach is not None else {}
        for peer_id in sorted(set(self.peers) | connected):
            state = self.peer(peer_id)
            behind = {str(cid): {"they_lack": they_lack, "we_lack": we_lack}
                      for cid, (they_lack, we_lack) in state.behind.items()}
            peers.append({
                "peer_id": peer_id, "connected": peer_id in connected,
                "score": round(self.scores.score(peer_id)),
                "banned": self.is_banned(peer_id), "syncs": state.syncs,
                "last_sync_ago": None if state.last_sync is None else round(time.monotonic() - state.last_sync, 3),
                "last_result": state.last_result, "behind": behind,
                **peer_view(self, state, peer_id in connected),
            })
            # how we are connected, read from the connection's own layers (reach.py) where the
            # swarm knows it; peer_view's guess from the remote address otherwise
            peers[-1]["via"] = kinds.get(peer_id) or peers[-1].get("via")
            peers[-1]["connection"] = peers[-1]["via"] if peer_id in connected else None
        return {
            "pid": os.getpid(),
            "peer_id": self.peer_id,
            "addrs": self.announced_addrs(),
            "listen": [str(a) for a in self.host.get_transport_addrs()],
            "reach": self.reach.status() if self.reach is not None else None,
            "connected": sorted(connected),
            "maintained": self.maintained(),
            "known": self.exchange.status(),
            "dht": self.dht.status() if self.dht is not None else {"enabled": False},
            "ingest_process": {"enabled": self.config.ingest_process, **self.ingest_process.status()},
            "state_worker": {"folding": self._folding, "dirty_count": len(self._state_dirty),
                             "fold_count": self.folds, "bulk_transfer_count": self._bulk_receiving},
            "peers": peers,
            "commons": commons,
            "uptime": round(time.time() - self.started, 3),
            "ui": {"url": self.ui_url} if self.ui_url else None,
        }

    # --- lifecycle --------------------------------------------------------------------

    def _build_host(self) -> Any:
        from .host import build_host

        _tame_libp2p_logging()
        preauth.install()  # GHSA-hmjq-g7pp-rw3x: bound the pre-handshake multistream read
        return build_host(**self._host_options())

    def _host_options(self) -> dict[str, Any]:
        """Every option the libp2p host is built with, in one place (keys of
        ``libp2p.new_host``, which node/host.py's ``build_host`` mirrors without importing
        all of libp2p), so services added later extend this dictionary rather than the call."""
        from libp2p.crypto.ed25519 import Ed25519PrivateKey
        from libp2p.crypto.keys import KeyPair
        from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
        from libp2p.custom_types import TProtocol
        from libp2p.network.config import ConnectionConfig
        from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
        from libp2p.security.noise.transport import Transport as Noise
        from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
        from libp2p.stream_muxer.yamux.yamux import Yamux

        private = Ed25519PrivateKey.from_bytes(self.identity.seed)
        key_pair = KeyPair(private, private.get_public_key())
        return {
            "key_pair": key_pair,
            "sec_opt": {NOISE_ID: Noise(key_pair, new_x25519().private_key)},
            "muxer_opt": {TProtocol(YAMUX_ID): Yamux},
            "connection_config": ConnectionConfig(
                max_connections_per_peer=1, inbound_upgrade_timeout=5.0, outbound_upgrade_timeout=5.0,
                dial_timeout=self.config.connect_timeout,
            ),
            "enable_mDNS": self.config.mdns,
            # what identify (and mDNS) tell peers: wildcards become interface addresses
            "addrs_factory": self._announce_factory,
        }

    def _announce_factory(self, candidates: list[Any]) -> list[Any]:
        """libp2p's AddrsFactory: the live listen addresses plus confirmed observed ones,
        with every wildcard replaced by this machine's interface addresses."""
        from multiaddr import Multiaddr

        texts = [str(a) for a in candidates]
        if any(addressing.is_wildcard(a) for a in texts):
            if self._interface_ips is None:
                try:
                    self._interface_ips = addressing.interface_ips()
                except Exception as exc:  # an odd interface table must not stop the node
                    log.warning("cannot list this machine's interfaces: %s", exc)
                    self._interface_ips = []
            texts = addressing.expand_wildcards(texts, self._interface_ips)
        out = []
        for text in texts:
            with contextlib.suppress(Exception):
                out.append(Multiaddr(text))
        return out

    def announced_addrs(self) -> list[str]:
        """Where other machines can reach this node, best first (``/p2p/<id>`` included):
        what invites and address records carry."""
        if self.host is None:
            return []
        addrs = addressing.dialable(str(a) for a in self.host.get_addrs())
        # behind NAT, the relay slot is how members reach us: records and invites carry it
        if self.reach is not None:
            addrs += [a for a in self.reach.circuit_addrs() if a not in addrs]
        return addrs

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from libp2p.pubsub.gossipsub import PROTOCOL_ID as MESHSUB_10
        from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11 as MESHSUB_11
        from libp2p.pubsub.gossipsub import GossipSub
        from libp2p.pubsub.pubsub import Pubsub
        from libp2p.tools.anyio_service import background_trio_service
        from multiaddr import Multiaddr

        self.host = self._build_host()
        router = GossipSub(
            [MESHSUB_11, MESHSUB_10], 6, 4, 12, heartbeat_interval=1, heartbeat_initial_delay=0.1,
            spam_protection_enabled=False, eclipse_protection_enabled=False,
        )
        self.pubsub = Pubsub(self.host, router, msg_id_constructor=_message_id,
                             max_inbound_rpc_size=MAX_GOSSIP_BYTES * 2)
        self.host.set_stream_handler(sync.PROTOCOL_ID, self._handle_sync_stream)
        self.host.set_stream_handler(ADDRS_PROTOCOL_ID, self.exchange.handle_stream)
        self.host.get_network().register_notifee(_notifee(self))
        # a new or lost relay slot changes our addresses: republish our records at once
        self.reach = Reach(self.host, self.config.relay, self._relay_members, on_change=self.exchange.wake)
        self.circuits = self.reach.circuits
        addressing.probe_listen(self.config.listen)  # a busy port fails here, in one sentence
        listen = [Multiaddr(a) for a in self.config.listen]
        try:
            async with self.host.run(listen_addrs=listen), trio.open_nursery() as nursery:
                self._nursery = nursery
                if not self.announced_addrs():
                    raise NetworkError("The node could not listen on any address ("
                                       + ", ".join(self.config.listen) + "); check --listen and [network] listen.")
                async with background_trio_service(self.pubsub), background_trio_service(router):
                    await self.pubsub.wait_until_ready()
                    await self._subscribe_all()
                    await nursery.start(self.reach.run)
                    await nursery.start(self._control_server)
                    if self.config.ui:
                        await self._start_ui(nursery)
                    nursery.start_soon(self._anti_entropy)
                    nursery.start_soon(self._announcer)
                    nursery.start_soon(self._state_worker)
                    nursery.start_soon(self._expire_outsiders)
                    nursery.start_soon(self.ingest_process.run_idle_reaper)
                    nursery.start_soon(self._signals)
                    nursery.start_soon(self.exchange.run)
                    if self.config.dht:
                        from .dht import CommonsDHT

                        self.dht = CommonsDHT(self)
                        nursery.start_soon(self.dht.run)
                    if self.config.mdns:
                        nursery.start_soon(self._mdns_dialer)
                    for addr in self.config.bootstrap:
                        nursery.start_soon(self.maintain, addr)
                    log.info("node %s listening on %s", self.peer_id, ", ".join(map(str, self.host.get_addrs())))
                    task_status.started(self)
                    await self._stop.wait()
                    log.info("stopping")
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5), contextlib.suppress(Exception):
                await self.host.close()
            await self.ingest_process.aclose()
            with trio.CancelScope(shield=True):
                # wait for the worker threads to finish before closing their stores
                async with self._store_limiter, self._state_limiter:
                    self.store.close()
                    if self._state_store is not None:
                        self._state_store.close()

    async def _start_ui(self, nursery: trio.Nursery) -> None:
        """The dashboard (p2pcommons/web), imported only here: a node without it never
        loads the web stack, and one with it loads the stack at the first connection
        (:mod:`p2pcommons.web.lazy`)."""
        from p2pcommons.errors import HomeNotWritable
        from p2pcommons.web.auth import load_or_create_token, token_path
        from p2pcommons.web.lazy import run as run_ui

        try:
            token = load_or_create_token(self.home)
        except OSError as exc:
            raise HomeNotWritable(f"Cannot write the dashboard's token {token_path(self.home)} "
                                  f"({exc.strerror or exc}); or set [ui] enabled = false.") from None
        try:
            self.ui_url = await nursery.start(run_ui, self, self.config.ui_port, token)
        except OSError as exc:
            raise NetworkError(f"The dashboard could not listen on 127.0.0.1 ({exc.strerror or exc}); "
                               "set [ui] port, or [ui] enabled = false.") from None

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s", signal.Signals(signum).name)
                self._stop.set()
                return

    def stop(self) -> None:
        self._stop.set()


def _tame_libp2p_logging() -> None:
    """``import libp2p`` leaves its logger at WARNING with no handler, so its warnings go
    to stderr through logging's last resort.  Our own logs say what matters once; libp2p's
    are shown (through our handler) only with ``-vv`` (``P2PC_LIBP2P_LOGS=1``)."""
    lib = logging.getLogger("libp2p")
    if os.environ.get("P2PC_LIBP2P_LOGS"):
        lib.propagate = True
        lib.setLevel(logging.DEBUG)
    else:
        silence_libp2p()


def _closed(conn: Any) -> bool:
    """Whether a py-libp2p connection (SwarmConn) has closed."""
    event = getattr(conn, "event_closed", None)
    return event is not None and event.is_set()


def _notifee(node: Node) -> Any:
    """A py-libp2p network notifee: wakes :meth:`Node.maintain` on a disconnection and
    turns banned peers away as soon as they connect (libp2p is imported lazily)."""
    from libp2p.abc import INotifee

    class _Notifee(INotifee):
        async def connected(self, network: Any, conn: Any) -> None:
            node._on_connected(conn.muxed_conn.peer_id.to_base58(), conn)

        async def disconnected(self, network: Any, conn: Any) -> None:
            node._on_disconnected(conn.muxed_conn.peer_id.to_base58(), conn)

        async def opened_stream(self, network: Any, stream: Any) -> None:
            pass

        async def closed_stream(self, network: Any, stream: Any) -> None:
            pass

        async def listen(self, network: Any, multiaddr: Any) -> None:
            pass

        async def listen_close(self, network: Any, multiaddr: Any) -> None:
            pass

    return _Notifee()


# --- helpers run in the store worker ---------------------------------------------------


def _message_id(msg: Any) -> bytes:
    """Content-addressed gossip ids: one announcement relayed by many peers is one message."""
    return message_id(bytes(msg.data))


def _peer_text(raw: bytes) -> str:
    from libp2p.peer.id import ID

    return str(ID(raw).to_base58())


def _author_peer_ids(store: Store) -> set[str]:
    from p2pcommons.identity import peer_id_text

    return {peer_id_text(h.author) for commons in store.commons_ids() for h in store.heads(commons)}


def _seqs(store: Store, commons: CID) -> dict[bytes, int]:
    return {h.author: h.seq for h in store.heads(commons)}


def _commons_info(store: Store) -> list[dict[str, Any]]:
    from p2pcommons.identity import author_id_text

    result = []
    for info in store.commons_list():
        heads = [{"author": author_id_text(h.author), "seq": h.seq, "id": str(h.id)} for h in store.heads(info.id)]
        result.append({"id": str(info.id), "name": info.name, "entries": info.entries, "heads": heads})
    return result


def _announcement(store: Store, commons: CID, last: dict[bytes, int]) -> tuple[bytes | None, dict[bytes, int]]:
    """Heads that moved since ``last``, with the new entries themselves if they are few
    and small (receivers apply them at once; otherwise they pull with sync)."""
    heads = store.heads(commons)
    seqs = {h.author: h.seq for h in heads}
    moved = [h for h in heads if h.seq > last.get(h.author, 0)]
    if not moved:
        return None, seqs
    entries: list[bytes] = []
    new_count = sum(h.seq - last.get(h.author, 0) for h in {h.author: h for h in moved}.values())
    if new_count <= MAX_GOSSIP_ENTRIES:
        # Few new entries (the usual case: a local write): fetch them by (author, seq), an
        # indexed lookup each, and carry them in the message so receivers need no round trip.
        size = 0
        for head in {h.author: h for h in moved}.values():
            for seq in range(last.get(head.author, 0) + 1, head.seq + 1):
                for cid in store.ids_at(commons, head.author, seq):
                    raw = store.get_raw(cid)
                    if raw is not None:
                        entries.append(raw)
                        size += len(raw)
        if len(entries) > MAX_GOSSIP_ENTRIES or size > MAX_GOSSIP_BYTES // 2:
            entries = []  # too much for one message: announce heads, peers pull by sync
    return encode_announcement(commons, [(h.author, h.seq, h.id) for h in moved], entries), seqs


@functools.lru_cache(maxsize=16)
def _limits_of(store_path: str) -> Limits:
    """The outsiders bounds of the home holding this store (its config.toml, read once)."""
    try:
        return Limits.from_config(Home(Path(store_path).parent).config())
    except P2PCError:
        return Limits()


def _apply_gossip(store: Store, commons: CID, heads: list[tuple[bytes, int, CID]], entries: list[bytes]) -> bool:
    """Store what fits; True if the announcement shows we are behind (pull by sync)."""
    if entries and store.has_commons(commons):
        with store.waiting_at_most(GOSSIP_STORE_WAIT):
            limits = _limits_of(str(store.path))
            report = Ingestor(store, commons=commons, verify="each", outsiders=limits).add_batch(entries)
        if any(isinstance(e, SequenceGap) for e in report.rejected):
            return True
    return any(seq > store.max_seq(commons, author) for author, seq, _ in heads)


def _invited_joins(store: Store, state: Any, commons: CID, me: bytes) -> list[CID]:
    """Pending joins carrying an invite token this member signed, still valid (not
    expired when the join was written, uses left): invite-only commons admit these."""
    from p2pcommons.protocols.invite import check_token

    policy = state.rules.get("membership", {}).get("policy")
    member = state.member_info(me)
    if policy not in ("invite", "approval") or member is None or member.status != "active":
        return []
    used: dict[bytes, int] = {}
    for admission in store.iter_entries(commons, author=me, kind="admission"):
        try:
            join = store.get(dagcbor.link(admission.body.get("join")))
        except InvalidEntry:
            continue
        token = join.body.get("invite") if join is not None else None
        if isinstance(token, dict) and isinstance(token.get("nonce"), bytes):
            used[token["nonce"]] = used.get(token["nonce"], 0) + 1
    result = []
    for join_id, join in sorted(state.pending_joins().items(), key=lambda kv: kv[0].raw):
        if me in join.approvals or join.author == me:
            continue
        entry = store.get(join_id)
        if entry is None:
            continue
        try:
            token = check_token(entry.body.get("invite"), commons, inviter=me)
        except P2PCError:
            continue
        if token["expires"] and entry.time > token["expires"]:
            continue
        if token["uses"] and used.get(token["nonce"], 0) >= token["uses"]:
            continue
        used[token["nonce"]] = used.get(token["nonce"], 0) + 1
        result.append(join_id)
    return result


def configured_peers(home: Home, extra: Sequence[str] = ()) -> list[str]:
    """Bootstrap addresses: flags, then ``[network] bootstrap``/``peers`` in config.toml,
    then the peer book (``p2pc peer add``); duplicates removed, order kept."""
    addrs: list[str] = list(extra)
    network = home.config().get("network", {})
    if isinstance(network, dict):
        for key in ("bootstrap", "peers"):
            value = network.get(key, [])
            if isinstance(value, list):
                addrs.extend(str(v) for v in value)
    addrs.extend(peerbook.load(home))
    seen: set[str] = set()
    return [a for a in addrs if not (a in seen or seen.add(a))]  # type: ignore[func-returns-value]


async def serve(config: NodeConfig, identity: Identity) -> None:
    """Run the daemon until SIGINT/SIGTERM or ``p2pc node stop`` (holds the home's lock)."""
    from .lean_imports import install

    install(mdns=config.mdns, dht=config.dht)  # before the first libp2p import: only the stacks the node uses
    with NodeLock(config.home):
        node = Node(config, identity)
        try:
            await node.run()
        except BaseExceptionGroup as group:
            # a start-up failure raised inside the host's and the node's task groups (no
            # address, the control socket): the user gets its one sentence, not a traceback
            matched, _rest = group.split(P2PCError)
            leaves = _leaves(matched) if matched is not None else []
            if len(leaves) == 1:
                raise leaves[0] from None
            raise


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


__all__ = ["Node", "NodeConfig", "configured_peers", "decode_announcement", "serve", "topic_of"]
_ = Path
