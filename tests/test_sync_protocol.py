"""The sync session state machine: convergence, hostile bytes, stop and resume.

Two real stores, the real planner and the real ingest path, wired in memory with random
chunking and random turn order (p2pcommons.node.memory).
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.errors import ProtocolViolation
from p2pcommons.ingest import Ingestor
from p2pcommons.node import memory
from p2pcommons.protocols import sync
from p2pcommons.store import Store


def _signer(i: int) -> Signer:
    return Signer(hashlib.sha256(f"sync-test-{i}".encode()).digest())


def make_history(n_authors: int, n_entries: int, seed: int) -> tuple[Entry, dict[bytes, list[Entry]]]:
    """A genesis and ``n_entries`` entries by random authors; logs keyed by author."""
    rng = random.Random(seed)
    signers = [_signer(i) for i in range(n_authors)]
    genesis = sign_entry(signers[0], commons=None, seq=1, prev=None, kind="genesis",
                         body={"name": "t"}, timestamp=0)
    logs: dict[bytes, list[Entry]] = {s.public_key: [] for s in signers}
    logs[signers[0].public_key].append(genesis)
    for i in range(n_entries):
        signer = rng.choice(signers)
        log = logs[signer.public_key]
        prev = log[-1] if log else None
        entry = sign_entry(signer, commons=genesis.id, seq=len(log) + 1, prev=prev.id if prev else None,
                           kind="note", body={"i": i, "pad": "x" * rng.randint(0, 300)}, timestamp=i)
        log.append(entry)
    return genesis, logs


@contextmanager
def stores(n: int) -> Iterator[list[Store]]:
    with tempfile.TemporaryDirectory() as tmp:
        opened = [Store(Path(tmp) / f"s{i}.sqlite") for i in range(n)]
        for s in opened:  # durability is not under test here; fsyncs would dominate
            s._db.execute("PRAGMA synchronous=OFF")
        try:
            yield opened
        finally:
            for s in opened:
                s.close()


def load(store: Store, genesis: Entry, logs: dict[bytes, list[Entry]], prefix: dict[bytes, int]) -> None:
    raws = [genesis.raw]
    for author, log in logs.items():
        raws.extend(e.raw for e in log[:prefix.get(author, len(log))] if e.id != genesis.id)
    report = Ingestor(store).add_batch(raws)
    assert not report.rejected


def ids(store: Store) -> set[bytes]:
    return {CID.of(raw).raw for raw in store.iter_raw()}


def sides(a: Store, b: Store, want_b: list[CID] | None = None) -> tuple[memory.Side, memory.Side]:
    return (memory.Side(a, sync.SyncSession(initiator=True, window=sync.MIN_WINDOW), want=want_b),
            memory.Side(b, sync.SyncSession(initiator=False, window=sync.MIN_WINDOW)))


prefixes = st.lists(st.integers(min_value=0, max_value=40), min_size=3, max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(0, 60), pa=prefixes, pb=prefixes, rseed=st.integers(0, 2**32))
def test_two_sessions_converge(seed: int, n: int, pa: list[int], pb: list[int], rseed: int) -> None:
    genesis, logs = make_history(3, n, seed)
    authors = list(logs)
    with stores(2) as (a, b):
        load(a, genesis, logs, {au: max(p, 1 if au == authors[0] else 0) for au, p in zip(authors, pa, strict=True)})
        load(b, genesis, logs, {au: max(p, 1 if au == authors[0] else 0) for au, p in zip(authors, pb, strict=True)})
        union = ids(a) | ids(b)
        x, y = sides(a, b)
        assert memory.run(x, y, rng=random.Random(rseed))
        assert ids(a) == union == ids(b)
        assert x.rejected == 0 and y.rejected == 0
        # a second session finds nothing to do
        x, y = sides(a, b)
        assert memory.run(x, y, rng=random.Random(rseed))
        assert x.session.received == (0, 0) and y.session.received == (0, 0)


def test_fresh_node_gets_everything_via_want() -> None:
    genesis, logs = make_history(3, 200, 7)
    with stores(2) as (a, b):
        load(b, genesis, logs, {})
        x, y = sides(a, b, want_b=[genesis.id])
        assert memory.run(x, y, rng=random.Random(1))
        assert ids(a) == ids(b)
        assert x.session.peer_totals == x.session.received


def test_responder_does_not_volunteer_unasked_commons() -> None:
    genesis, logs = make_history(2, 20, 3)
    with stores(2) as (a, b):
        load(b, genesis, logs, {})
        x, y = sides(a, b)  # a asks for nothing
        assert memory.run(x, y)
        assert a.count() == 0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), stop_after=st.integers(1, 6), rseed=st.integers(0, 2**32))
def test_stop_and_resume_loses_nothing(seed: int, stop_after: int, rseed: int) -> None:
    genesis, logs = make_history(3, 120, seed)
    with stores(2) as (a, b):
        load(b, genesis, logs, {})
        load(a, genesis, logs, {au: 1 for au in logs})
        union = ids(a) | ids(b)
        rng = random.Random(rseed)
        finished = False
        for _attempt in range(50):
            x, y = sides(a, b)
            before = a.count()
            finished = memory.run(x, y, rng=rng, stop_after=stop_after)
            # nothing received twice: every entry a received in this session was new
            assert a.count() - before == x.added
            if finished:
                break
        assert finished
        assert ids(a) == union == ids(b)


def test_forks_are_replicated_as_evidence() -> None:
    genesis, logs = make_history(2, 10, 11)
    author = _signer(1)
    log = logs[author.public_key]
    base = log[:3]
    fork_a = sign_entry(author, commons=genesis.id, seq=4, prev=base[-1].id, kind="note", body={"side": "a"})
    fork_b = sign_entry(author, commons=genesis.id, seq=4, prev=base[-1].id, kind="note", body={"side": "b"})
    after_b = sign_entry(author, commons=genesis.id, seq=5, prev=fork_b.id, kind="note", body={"side": "b2"})
    with stores(2) as (a, b):
        load(a, genesis, {author.public_key: base}, {})
        load(b, genesis, {author.public_key: base}, {})
        Ingestor(a).add_batch([fork_a.raw])
        Ingestor(b).add_batch([fork_b.raw, after_b.raw])
        # One session: the side whose log is shorter sends its head, the fork at its tip
        # (see sync.md, "Forks"); the longer side sends its whole diverged log.
        x, y = sides(a, b)
        assert memory.run(x, y, rng=random.Random(2))
        assert ids(a) == ids(b)
        assert [f.seq for f in a.forks(genesis.id)] == [4] == [f.seq for f in b.forks(genesis.id)]
        assert x.rejected == 0 and y.rejected == 0
        # and a second session finds nothing to do
        x, y = sides(a, b)
        assert memory.run(x, y, rng=random.Random(3))
        assert x.session.received == (0, 0) and y.session.received == (0, 0)


# --- hostile bytes ----------------------------------------------------------------------


def _drain(session: sync.SyncSession) -> None:
    for _ in range(10_000):
        if session.next_event() is sync.NEED_DATA:
            return


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=2000), initiator=st.booleans())
def test_random_bytes_raise_only_protocol_violation(data: bytes, initiator: bool) -> None:
    session = sync.SyncSession(initiator=initiator)
    if initiator:
        session.start([])
    try:
        session.receive_data(data)
        _drain(session)
        session.receive_data(b"")
        _drain(session)
    except ProtocolViolation:
        pass


hello = sync.frame(sync.HELLO, bytes.fromhex("a26176016677696e646f771a00400000"))


@settings(max_examples=400, deadline=None)
@given(tail=st.lists(st.tuples(st.sampled_from(range(0, 10)), st.binary(max_size=200)), max_size=8))
def test_well_framed_garbage_raises_only_protocol_violation(tail: list[tuple[int, bytes]]) -> None:
    session = sync.SyncSession(initiator=False)
    data = hello + b"".join(sync.frame(k, body) for k, body in tail)
    try:
        session.receive_data(data)
        _drain(session)
    except ProtocolViolation:
        pass


def test_oversize_frame_is_refused_before_buffering() -> None:
    session = sync.SyncSession(initiator=False)
    session.receive_data(sync.encode_uvarint(sync.MAX_FRAME + 1))
    with pytest.raises(ProtocolViolation, match="exceeds the limit"):
        session.next_event()
    with pytest.raises(ProtocolViolation):  # stays failed
        session.next_event()


def test_credit_overrun_is_a_violation() -> None:
    genesis, logs = make_history(1, 400, 5)
    with stores(1) as (a,):
        load(a, genesis, logs, {})
        init = sync.SyncSession(initiator=True, window=sync.MIN_WINDOW)
        init.start([sync.Summary(genesis.id)])
        resp = sync.SyncSession(initiator=False)
        resp.receive_data(init.data_to_send())
        while resp.next_event() is not sync.NEED_DATA:
            pass
        resp.start([sync.Summary(genesis.id)])
        init.receive_data(resp.data_to_send())
        while init.next_event() is not sync.NEED_DATA:
            pass
        raws = [raw for raw in a.iter_raw(genesis.id, order="log")]
        total = sum(len(r) for r in raws)
        resp.send_totals(len(raws), total)
        # bypass the sender-side credit check, as a hostile peer would
        resp.credit = 10**9
        resp.send_batch(genesis.id, raws[: len(raws) // 2])
        resp.send_batch(genesis.id, raws[len(raws) // 2:])
        init.receive_data(resp.data_to_send())
        with pytest.raises(ProtocolViolation, match="credit"):
            _drain(init)
