"""The batch intake (:mod:`p2pcommons.state.intake`) computes, record for record, what the
general intake (:meth:`Folder._ready`) computes: clocks, version vectors, time floors, the
order, each author's latest entry — and so the same state and outcomes."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import Folder, genesis_body, intake
from p2pcommons.state.fold import MemoryArchive
from tests.test_state_histories import ACTIONS, build, prop_settings

KEYS = [Signer(bytes([200 - i]) * 32) for i in range(70)]


def _dag(seed: int, size: int, authors: int) -> list[Entry]:
    """A random entry DAG: each entry by a random author, after that author's previous one
    (now and then a fork: a second entry at the same seq), naming up to 16 random earlier
    entries, dated up to three steps before or after the previous one (so some are dated
    before an entry in their past: time floors).  Up to 70 authors: past 32, the vectors
    grow a level in the middle of a fold (two-level vectors of up to three leaves)."""
    rng = random.Random(seed)
    forks = rng.choice([0, 0, 0.01, 0.05])  # (a fork sends the rest of the fold the general way)
    founders = [KEYS[0].public_key, KEYS[1].public_key]
    t = 1_000_000
    genesis = sign_entry(KEYS[0], commons=None, seq=1, prev=None, kind="genesis",
                         body=genesis_body("dag", founders=founders), timestamp=t)
    entries = [genesis]
    last: dict[int, Entry] = {0: genesis}
    for _ in range(size):
        a = rng.randrange(authors)
        before = last.get(a)
        prev: CID | None = None if before is None else before.id
        seq = 1 if before is None else before.seq + 1
        if before is not None and before.seq > 1 and rng.random() < forks:
            prev, seq = before.prev, before.seq  # a fork
        ids = [e.id for e in entries if e.id != prev]
        deps = rng.sample(ids, min(len(ids), rng.randrange(17)))
        t += 1000
        entry = sign_entry(KEYS[a], commons=genesis.id, seq=seq, prev=prev, kind="contribution",
                           body={"title": "t", "kind": "code", "value": 1}, deps=deps,
                           timestamp=t + rng.randrange(-3000, 3001))
        entries.append(entry)
        last[a] = entry
    return entries


def _fold(entries: list[Entry], commons_fold: Folder, plan: list[tuple[int, bool]], *, general: bool) -> Folder:
    """Take ``entries`` in batches (``plan``: each batch's size and whether ``run`` follows),
    through the batch intake, or with its one-leaf path switched off (every entry through
    ``Folder._ready``)."""
    folder = commons_fold
    with pytest.MonkeyPatch.context() as patch:
        if general:
            patch.setattr(intake, "FAST_AUTHORS", 0)
        it: Iterator[Entry] = iter(entries)
        for size, run in plan:
            folder.take_in_order([entry for _, entry in zip(range(size), it, strict=False)])
            if run:
                folder.run()
        folder.take_in_order(list(it))
    return folder


def _facts(folder: Folder, entries: list[Entry]) -> dict[str, object]:
    """Everything the intake decides, by entry: records (archived ones from the archive)."""
    records = {}
    for entry in entries:
        raw = entry.id.raw
        try:
            records[raw] = tuple(folder.record(raw))
        except KeyError:
            records[raw] = None  # (waiting, or not of this commons)
    return {"records": records, "floors": dict(folder.floors), "order": list(folder.order),
            "latest": dict(folder.latest), "max_clock": folder.max_clock, "authors": list(folder.authors),
            "waiting": sorted(folder.waiting)}


def _compare(commons: CID, entries: list[Entry], seed: int, shuffled: float, evicting: bool) -> None:
    """Deliver ``entries`` in the fold's order (the store's) with a random fraction moved
    elsewhere (late, early: their parents missing), in random batches with random runs
    between (an evicting fold archives as it goes, so parents come back as archived
    records): the batch intake and the general one give the same records, floors, order
    and state, and the fold of everything's outcomes."""
    reference = Folder(commons)
    for entry in entries:
        reference.add(entry)
    expected = reference.result()
    last = (2**62, b"")  # (waiting entries last)
    arrival = sorted(entries, key=lambda e: reference.meta.get(e.id.raw, last))
    rng = random.Random(seed)
    for _ in range(int(shuffled * len(arrival) / 2)):
        arrival.insert(rng.randrange(len(arrival) + 1), arrival.pop(rng.randrange(len(arrival))))
    plan = [(rng.randrange(1, 8), rng.random() < 0.5) for _ in range(len(arrival))]
    every = rng.choice([1, 3, 256])

    def folder() -> Folder:
        made = Folder(commons, snapshot_every=every, archive=MemoryArchive() if evicting else None)
        made.silent_after = rng.choice([2, 4096])
        return made

    seed_state = rng.getstate()
    fast = _fold(arrival, folder(), plan, general=False)
    rng.setstate(seed_state)
    general = _fold(arrival, folder(), plan, general=True)
    assert _facts(fast, entries) == _facts(general, entries)
    fast_result, general_result = fast.result(), general.result()
    assert fast_result.state_hash == general_result.state_hash == expected.state_hash
    for entry in entries:
        assert fast_result.outcome(entry.id) == general_result.outcome(entry.id) == expected.outcome(entry.id)


@prop_settings(200)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1), shuffled=st.floats(0, 1), evicting=st.booleans())
def test_batch_intake_equals_the_general_intake(actions: list[tuple[int, int, int]], seed: int,
                                                shuffled: float, evicting: bool) -> None:
    """Random commons histories (forks, sanctions, members leaving: ``test_state_histories``)."""
    history = build(actions)
    _compare(history.commons, history.entries, seed, shuffled, evicting)


@prop_settings(100)
@given(dag=st.integers(0, 2**32 - 1), size=st.integers(1, 250), authors=st.integers(1, 70),
       seed=st.integers(0, 2**32 - 1), shuffled=st.floats(0, 1), evicting=st.booleans())
def test_batch_intake_equals_the_general_intake_on_random_dags(dag: int, size: int, authors: int, seed: int,
                                                               shuffled: float, evicting: bool) -> None:
    """Random DAGs (:func:`_dag`): entries dated before their past, parents the latest
    parent has not seen, forks, vectors of one and two levels."""
    entries = _dag(dag, size, authors)
    _compare(entries[0].id, entries, seed, shuffled, evicting)


def test_the_one_leaf_path_is_taken() -> None:
    """The comparison above compares something: in the fold's order (no forks), the batch
    intake computes all but the genesis and each author's first entry itself."""
    history = build([(a % 8, c, p) for a, c, p in zip(range(80), range(5, 85), range(80), strict=True)],
                    forks=False)
    reference = Folder(history.commons)
    for entry in history.entries:
        reference.add(entry)
    arrival = sorted(history.entries, key=lambda e: reference.meta.get(e.id.raw, (2**62, b"")))
    calls = []
    folder = Folder(history.commons)
    general = folder._ready

    def counted(*args: object) -> None:
        calls.append(args[0])
        general(*args)  # type: ignore[arg-type]

    folder._ready = counted  # type: ignore[method-assign]
    assert folder.take_in_order(arrival) == len(arrival)
    assert len(arrival) > 40
    assert len(calls) <= 1 + len({e.author for e in arrival})


@prop_settings(100)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1))
def test_an_evicting_folds_positions_are_the_archives(actions: list[tuple[int, int, int]], seed: int) -> None:
    """``Folder._position`` answers from its cache first (``_cache``: positions unpacked from
    ``refs`` and archive lookups), then ``refs``, then the archive: asked at random moments about every entry (taken
    or not yet, held or archived) and ids of no entry, it gives the position the fold holds
    or the archive has (None where neither has one), whatever it was asked before."""
    history = build(actions)
    reference = Folder(history.commons)
    for entry in history.entries:
        reference.add(entry)
    last = (2**62, b"")
    arrival = sorted(history.entries, key=lambda e: reference.meta.get(e.id.raw, last))
    rng = random.Random(seed)
    archive = MemoryArchive()
    # (Snapshots at every position, members silent after a tick: about half the histories
    # archive something.)
    folder = Folder(history.commons, snapshot_every=rng.choice([1, 1, 2]), archive=archive)
    folder.silent_after = rng.choice([1, 1, 2])
    ids = [e.id.raw for e in history.entries] + [bytes(36), b"\x01q\x12 " + bytes(range(32))]
    for entry in arrival:
        folder.take_in_order([entry])
        if rng.random() < 0.4:
            folder.run()
        for raw in rng.sample(ids, min(len(ids), 8)):
            truth = folder.meta.get(raw) or archive.meta(raw)
            got = folder._position(raw)
            assert (None if got is None else tuple(got[:4])) == (None if truth is None else tuple(truth[:4]))
    folder.run()
    for raw in ids:
        truth = folder.meta.get(raw) or archive.meta(raw)
        got = folder._position(raw)
        assert (None if got is None else tuple(got[:4])) == (None if truth is None else tuple(truth[:4]))


def test_a_parent_on_the_other_branch_of_a_fork_is_merged() -> None:
    """A's log forks at seq 2: P saw C's first entry, its sibling P' did not.  B saw only P';
    D names B's entry (the latest parent) and P.  B's vector already has A at seq 2, yet P's
    past (C's entry) is not in it: P must be merged, by both intakes (they merge every
    parent once a key has forked; a narrower rule must still merge this one)."""
    from p2pcommons.state import fold

    a, b, c, d = (Signer(bytes([i]) * 32) for i in (61, 62, 63, 64))
    body = genesis_body("forks", founders=[s.public_key for s in (a, b, c, d)])
    genesis = sign_entry(a, commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1)
    commons = genesis.id

    def write(signer: Signer, seq: int, prev: Entry | None, deps: list[Entry], title: str) -> Entry:
        return sign_entry(signer, commons=commons, seq=seq, prev=None if prev is None else prev.id,
                          kind="contribution", body={"title": title, "value": 1},
                          deps=[e.id for e in deps] or [commons], timestamp=10)

    a2 = write(a, 2, genesis, [], "a2")
    c1 = write(c, 1, None, [], "c1")
    p = write(a, 3, a2, [c1], "p")
    p_twin = write(a, 3, a2, [], "p twin")
    b1 = write(b, 1, None, [p_twin], "b1")
    d1 = write(d, 1, None, [b1, p], "d1")
    entries = [genesis, a2, c1, p, p_twin, b1, d1]
    general = fold(entries)._folder
    in_order = Folder(commons)
    in_order.take_in_order(sorted(entries, key=lambda e: general.meta[e.id.raw]))
    for folder in (general, in_order):
        assert folder.fork_seq == {a.public_key: 3}
        assert folder.in_past(c1.id, folder.meta[d1.id.raw])
        assert not folder.in_past(c1.id, folder.meta[b1.id.raw])
