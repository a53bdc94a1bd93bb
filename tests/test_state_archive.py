"""The evicting fold's store archive (p2pcommons/state/archive.py): the segment encoding, the
store table, and a long realistic history folded with eviction against one folded without."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons import causal
from p2pcommons.dagcbor import CID, encode
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import Folder, fold, genesis_body
from p2pcommons.state.archive import (
    _HEADER,
    SEGMENT_MAX,
    StoreArchive,
    decode_frame,
    decode_record,
    decode_segment,
    encode_frame,
    encode_segment,
    segment_frame,
    segment_ids,
    vector_diffs,
)
from p2pcommons.state.fold import _Meta, bulk
from p2pcommons.store import Store
from tests.test_state_histories import prop_settings

# --- the segment encoding ---------------------------------------------------------------

_RECORD = st.tuples(
    st.integers(0, 2**62),  # clock
    st.lists(st.integers(0, 2**40), min_size=1, max_size=20),  # version vector (own width)
    st.sampled_from(["applied", "rejected", "pending"]),
    st.text(max_size=30),  # reason
)


@prop_settings(200)
@given(records=st.lists(_RECORD, min_size=1, max_size=40), idlen=st.sampled_from([34, 36]),
       aidx=st.integers(0, 1000), first=st.integers(1, 2**40), timed=st.booleans(),
       # (a vector holds seqs, never a zero: the base is a record's own vector)
       base=st.one_of(st.none(), st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 2**40)), max_size=12)))
def test_segment_records_round_trip(records: list[tuple[int, list[int], str, str]], idlen: int, aidx: int,
                                    first: int, timed: bool, base: list[tuple[int, int]] | None) -> None:
    """Every record decodes alone to what was encoded: its own version-vector width (not the
    segment's padded one), 32- or 64-bit vectors, statuses with and without reasons; and the
    whole segment decoded at once (each vector built from the previous one's, as
    StoreArchive reads it) gives the same records, with their entries' times (-1 where none
    was given), also from a version-3 segment (no frame: from the empty vector) and a
    version-2 one, which has no time column.  With a ``base`` (the vector its frame gives
    the segment), the first record is a difference from it and decodes back given it."""
    rows = []
    for i, (clock, vv, status, reason) in enumerate(records):
        raw = os.urandom(idlen)
        reason = reason if status == "rejected" else ""
        rows.append((tuple.__new__(_Meta, (clock, raw, aidx, first + i, *causal.of(enumerate(vv)))), status, reason))
    times = [clock % 2**53 for clock, _, _, _ in records] if timed else None
    start = causal.EMPTY if base is None else causal.of(base)
    frame, index = (7, 3) if base is not None else (0, 0)
    blob = encode_segment(rows, times, frame, index, start)
    assert segment_frame(blob) == ((7, 3) if base is not None else (0, 0))
    count = len(rows)
    v3 = bytes([3]) + blob[1:_HEADER.size] + blob[_HEADER.size + 8:]
    v2 = bytes([2]) + v3[1:_HEADER.size + 8 * count] + v3[_HEADER.size + 16 * count:]
    cases = [(blob, timed)] if base is not None else [(blob, timed), (v3, timed), (v2, False)]
    for segment, known in cases:
        assert list(segment_ids(segment)) == [row[0][1] for row in rows]
        whole = decode_segment(segment, aidx, first, start)
        assert len(whole) == len(rows)
        for i, (meta, status, reason) in enumerate(rows):
            got, got_status, got_reason = decode_record(segment, i, aidx, first + i, start)
            assert got[:4] == meta[:4] and (got_status, got_reason) == (status, reason)
            assert list(causal.items(got.vv)) == list(causal.items(meta.vv))
            at_once = whole[i]
            assert at_once[0][:4] == meta[:4] and at_once[1:3] == (status, reason)
            assert list(causal.items(at_once[0].vv)) == list(causal.items(meta.vv))
            assert at_once[0].vv == got.vv  # (the same trie shape as a record decoded alone)
            assert at_once[3] == (times[i] if known and times is not None else -1)
        with pytest.raises(IndexError):
            decode_record(segment, len(rows), aidx, first + len(rows))


@prop_settings(200)
@given(vectors=st.lists(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 2**40)), max_size=10), max_size=20))
def test_frames_round_trip(vectors: list[list[tuple[int, int]]]) -> None:
    """A frame's vectors (its segments' first ones, each a difference from the one before)
    decode to the vectors encoded, whatever their widths and depths."""
    built = [causal.of(pairs) for pairs in vectors]
    decoded = decode_frame(encode_frame(built))
    assert [list(causal.items(v)) for v in decoded] == [list(causal.items(v)) for v in built]


# One step of a log's version vectors: the same vector again (the same object), slots raised
# (along a log: one leaf up to 32 authors, deeper past them), or any vector (shorter, emptier).
_STEP = st.one_of(
    st.just(("same", [])),
    st.tuples(st.just("raise"), st.lists(st.tuples(st.integers(0, 40), st.integers(1, 2**33)), max_size=4)),
    st.tuples(st.just("raise"), st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 2**33)), max_size=3)),
    st.tuples(st.just("any"), st.lists(st.tuples(st.integers(0, 40), st.integers(0, 2**33)), max_size=8)),
    st.tuples(st.just("any"), st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 2**33)), max_size=4)),
)


@prop_settings(300)
@given(steps=st.lists(_STEP, min_size=1, max_size=30))
def test_segment_vector_differences_match_the_general_difference(steps: list[tuple[str, list[tuple[int, int]]]]) \
        -> None:
    """A segment's version vectors are encoded as each one's difference from the one before
    (archive.vector_diffs, with fast paths for a repeated vector and for one- and two-level vectors):
    exactly causal.diff of each pair of neighbours, the first from the empty vector, for
    vectors that repeat, grow in place, deepen past 32 authors, or shrink; and decoding the
    segment whole (archive.decode_segment) gives every vector back."""
    vectors = []
    vv = causal.EMPTY
    for what, slots in steps:
        if what == "raise":
            for index, value in slots:
                vv = causal.put(vv, index, max(value, causal.get(vv, index)))
        elif what == "any":
            vv = causal.of(slots)
        vectors.append(vv)
    metas = [tuple.__new__(_Meta, (i, bytes(34), 0, i + 1, *v)) for i, v in enumerate(vectors)]
    offsets, flat = vector_diffs(metas)
    expected: list[int] = []
    ends = [0]
    for before, after in zip([causal.EMPTY, *vectors], vectors, strict=False):
        expected += causal.diff(before, after)
        ends.append(len(expected))
    assert flat == expected
    assert list(offsets) == ends
    # Decoded as StoreArchive reads a segment: the whole chain at once (dense slots up to
    # 1,024 authors, causal.apply past them), every vector the one encoded.
    decoded = decode_segment(encode_segment([(m, "applied", "") for m in metas]), 0, 1)
    for meta, (got, _, _, _) in zip(metas, decoded, strict=True):
        assert got[:4] == meta[:4]
        assert list(causal.items(got.vv)) == list(causal.items(meta.vv))
        assert all(causal.get(got.vv, i) == x for i, x in causal.items(meta.vv))  # (a well-formed trie)


# --- a long history through the store archive ------------------------------------------------


def _history(n: int) -> tuple[list[Entry], list[Signer], dict[bytes, Entry]]:
    """Two founding stewards and six admitted members: contributions, reviews of the oldest
    pending one (so reviews name archived entries), resource uses, rule proposals and votes,
    a warning, distributions.  Writers depend on every other author's head."""
    signers = [Signer(bytes([i + 40]) * 32) for i in range(8)]
    stewards = signers[:2]
    water = {"name": "water", "rivalrous": True, "quota": 10**6, "period": 86400, "unit": "l"}
    genesis = sign_entry(stewards[0], commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("archive", founders=[s.public_key for s in stewards], resources=[water]))
    entries = [genesis]
    last: dict[bytes, Entry] = {stewards[0].public_key: genesis}
    clock = [1]

    def write(signer: Signer, kind: str, body: dict[str, Any], extra: tuple[CID, ...] = ()) -> Entry:
        clock[0] += 1
        prev = last.get(signer.public_key)
        deps = [e.id for a, e in last.items() if a != signer.public_key] + list(extra)
        entry = sign_entry(signer, commons=genesis.id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind=kind, body=body,
                           deps=list(dict.fromkeys(deps)), timestamp=clock[0])
        last[signer.public_key] = entry
        entries.append(entry)
        return entry

    for member in signers[2:]:
        join = write(member, "join", {"name": "m"})
        write(stewards[0], "admission", {"join": join.id}, (join.id,))
    pending: list[CID] = []
    proposals: list[CID] = []
    water_id = CID.of(encode(water))
    i = 0
    while len(entries) < n:
        i += 1
        worker = signers[2 + i % 6]
        r = i % 10
        if r < 4:
            pending.append(write(worker, "contribution", {"title": f"w{i}", "kind": "code", "value": 2}).id)
        elif r < 6 and pending:
            target = pending.pop(0)
            write(stewards[i % 2], "review", {"contribution": target, "verdict": "accept" if i % 7 else "reject"},
                  (target,))
        elif r < 8:
            write(worker, "resource_use", {"resource": water_id, "amount": 1})
        elif r == 8 and i % 3 == 0:
            proposals.append(write(stewards[0], "rule_proposal", {"changes": {"values.code": 100 + i % 9}}).id)
        elif r == 8 and proposals:
            target = proposals.pop(0)
            write(stewards[1], "vote", {"proposal": target, "choice": "yes"}, (target,))
        elif i % 50 == 9:
            write(stewards[0], "sanction", {"member": worker.public_key, "action": "warning", "reason": "late"})
        else:
            write(stewards[i % 2], "distribution", {"amount": 100})
    return entries, signers, last


class _CountingArchive(StoreArchive):
    """The store archive, counting the records it had to read back (point lookups)."""

    lookups = 0

    def outcome(self, raw: bytes) -> Any:
        self.lookups += 1
        return super().outcome(raw)


def _evicting(entries: list[Entry], commons: CID, archive: StoreArchive) -> Folder:
    folder = Folder(commons, snapshot_every=64, archive=archive)
    with bulk():
        for i, entry in enumerate(entries, 1):
            folder.add(entry)
            if i % 200 == 0:
                folder.run()
        folder.run()
    return folder


def _same(folder: Folder, entries: list[Entry]) -> None:
    result = folder.result()
    reference = fold(entries)
    assert result.state_hash == reference.state_hash
    for entry in entries:
        assert result.outcome(entry.id) == reference.outcome(entry.id), entry
    assert result.stable_summary() == reference.stable_summary()
    assert sorted(o.id.raw for o in result.outcomes()) == sorted(o.id.raw for o in reference.outcomes())


@pytest.fixture
def store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "a.sqlite") as s:
        s._db.execute("PRAGMA synchronous=OFF")
        yield s


def test_long_history_through_the_store_archive(store: Store) -> None:
    """3,000 entries folded with eviction to the store equal a fold that holds everything
    (hash, every outcome, stability); reviews of archived contributions and members'
    standing checks are answered without reading records back; then a newcomer's entry
    written from the genesis view (sorting into the archived positions) and a fork of an
    archived entry still give the holding fold's result."""
    entries, signers, _ = _history(3000)
    commons = entries[0].id
    store.insert(entries)
    archive = _CountingArchive(store, commons)
    store.archive_open(archive.space, os.getpid())
    folder = _evicting(entries, commons, archive)
    assert folder.evicted > 2000 and folder.refolds == 0
    assert store.archive_count(archive.space) == folder.evicted
    assert archive.lookups < 50, archive.lookups  # (reviews alone name ~600 archived entries)
    _same(folder, entries)

    stranger = Signer(bytes([99]) * 32)
    late = sign_entry(stranger, commons=commons, seq=1, prev=None, kind="contribution",
                      body={"title": "from an old view", "value": 1}, deps=[commons], timestamp=5)
    store.insert([late])
    folder.add(late)
    folder.run()
    assert folder.refolds == 0  # a non-member's entry goes into the archived base state
    _same(folder, [*entries, late])

    archived = next(e for e in entries[1:400] if e.author == signers[3].public_key)
    fork = sign_entry(signers[3], commons=commons, seq=archived.seq, prev=archived.prev, kind="contribution",
                      body={"title": "the other branch", "value": 1}, deps=list(archived.deps),
                      timestamp=archived.time)
    assert archive.outcome(fork.id.raw) is None  # same log and seq as an archived record, another id
    store.insert([fork])
    folder.add(fork)
    folder.run()
    assert folder.refolds == 1
    _same(folder, [*entries, late, fork])


def test_truncate_keeps_an_earlier_eviction(store: Store) -> None:
    """A resumed process copies the checkpoint's archive and cuts it back to what the
    checkpoint had evicted (later evictions are held in memory again)."""
    entries, _, _ = _history(1200)
    commons = entries[0].id
    store.insert(entries)
    archive = StoreArchive(store, commons)
    store.archive_open(archive.space, os.getpid())
    folder = Folder(commons, snapshot_every=64, archive=archive)
    with bulk():
        for entry in entries[:600]:
            folder.add(entry)
        folder.run()
    upto, evicted = dict(folder.evicted_upto), folder.evicted
    assert evicted > 0
    with bulk():
        for entry in entries[600:]:
            folder.add(entry)
        folder.run()
    assert folder.evicted > evicted
    later = next(e for e in entries[600:] if archive.outcome(e.id.raw) is not None)
    archive.truncate(upto)
    assert store.archive_count(archive.space) == evicted
    assert archive.outcome(later.id.raw) is None
    kept = [e for e in entries[:600] if e.seq <= upto.get(e.author, 0)]
    assert len(kept) == evicted and all(archive.outcome(e.id.raw) is not None for e in kept)


def test_long_runs_split_into_bounded_segments(store: Store) -> None:
    """One author's run longer than a segment is stored as several rows, each found."""
    signer = Signer(bytes([7]) * 32)
    genesis = sign_entry(signer, commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("solo", founders=[signer.public_key]))
    entries = [genesis]
    for i in range(2 * SEGMENT_MAX + 10):
        entries.append(sign_entry(signer, commons=genesis.id, seq=i + 2, prev=entries[-1].id, kind="distribution",
                                  body={"amount": 1}, timestamp=i + 2))
    store.insert(entries)
    archive = StoreArchive(store, genesis.id)
    store.archive_open(archive.space, os.getpid())
    rows = [(tuple.__new__(_Meta, (e.seq - 1, e.id.raw, 0, e.seq, *causal.of([(0, e.seq)]))),
             "rejected" if e.seq % 5 else "applied", "no shares" if e.seq % 5 else "") for e in entries]
    archive.put(rows, [None] * len(rows), [signer.public_key])
    assert len(list(store.archive_segments(archive.space))) == 3
    for row in rows:
        assert archive.outcome(row[0][1]) == row
    assert archive.count_stable([len(entries) // 2]) == len(entries) // 2


def test_a_resumed_evicting_fold_ends_where_a_full_fold_does(store: Store) -> None:
    """An evicting fold checkpointed part way and resumed in another process's manner (a new
    archive object on the same space) takes the rest of the entries — reviews of archived
    contributions among them, answered from the archive — and ends where a full fold does."""
    from p2pcommons.state import checkpoint

    entries, _, _ = _history(2400)
    commons = entries[0].id
    store.insert(entries)
    archive = _CountingArchive(store, commons)
    store.archive_open(archive.space, os.getpid())
    folder = _evicting(entries[:1600], commons, archive)
    assert folder.evicted
    blob = checkpoint.dump(folder)
    resumed_archive = _CountingArchive(store, commons, space=archive.space)
    resumed = checkpoint.load(blob, commons, lambda raw: store.get(CID(raw)), resumed_archive)
    assert resumed is not None
    assert resumed.evicted == folder.evicted
    with bulk():
        for entry in entries[1600:]:
            resumed.add(entry)
        resumed.run()
    _same(resumed, entries)


def _after(entries: list[Entry], signer: Signer, kind: str, body: dict[str, Any], *, deps: list[CID],
           timestamp: int) -> Entry:
    """``signer``'s next entry (after their latest in ``entries``), naming only ``deps``."""
    prev = max((e for e in entries if e.author == signer.public_key), key=lambda e: e.seq)
    return sign_entry(signer, commons=entries[0].id, seq=prev.seq + 1, prev=prev.id, kind=kind, body=body,
                      deps=deps, timestamp=timestamp)


def test_former_members_writing_from_an_old_view_cost_no_refold(store: Store) -> None:
    """A member who left early and one removed early write again, depending only on their
    own old entries: their new entries sort into the archived positions.  They are rejected
    (strong removal; no longer a member) or recorded pending (the departed member's join and
    contribution from outside) without a refold — and the result is the holding fold's."""
    entries, signers, _ = _history(400)
    commons = entries[0].id
    leaver, removed = signers[6], signers[7]
    steward = signers[0]
    leave = _after(entries, leaver, "leave", {}, deps=[entries[-1].id], timestamp=10_001)
    removal = _after([*entries, leave], steward, "sanction", {"member": removed.public_key, "action": "remove",
                                                              "reason": "spam"}, deps=[leave.id], timestamp=10_002)
    entries += [leave, removal]
    entries += _history_tail(entries, signers[:6], 2000)
    store.insert(entries)
    archive = _CountingArchive(store, commons)
    store.archive_open(archive.space, os.getpid())
    folder = _evicting(entries, commons, archive)
    assert folder.meta.get(removal.id.raw) is None  # archived
    late: list[Entry] = []
    for kind, body in [("join", {"name": "back"}), ("contribution", {"title": "still here", "value": 5}),
                       ("review", {"contribution": entries[20].id, "verdict": "accept"})]:
        late.append(_after(entries + late, leaver, kind, body, deps=[], timestamp=10_003 + len(late)))
    for kind, body in [("contribution", {"title": "backdated", "value": 5}), ("leave", {})]:
        late.append(_after(entries + late, removed, kind, body, deps=[], timestamp=10_010 + len(late)))
    store.insert(late)
    for entry in late:
        folder.add(entry)
        assert folder.meta[entry.id.raw] <= folder.base  # it sorts into the archived positions
    folder.run()
    assert folder.refolds == 0
    _same(folder, entries + late)
    outcomes = {e.kind + str(e.author == removed.public_key): folder.result().outcome(e.id) for e in late}
    assert outcomes["joinFalse"].status == "pending"  # type: ignore[union-attr]
    assert outcomes["contributionTrue"].reason.startswith("Strong removal")  # type: ignore[union-attr]


def _history_tail(entries: list[Entry], signers: list[Signer], n: int) -> list[Entry]:
    """``n`` more entries by ``signers`` (resource uses and distributions), each depending on
    every other writer's head, so the earlier positions get archived."""
    water = {"name": "water", "rivalrous": True, "quota": 10**6, "period": 86400, "unit": "l"}
    last = {s.public_key: max((e for e in entries if e.author == s.public_key), key=lambda e: e.seq,
                              default=None) for s in signers}
    tail: list[Entry] = []
    for i in range(n):
        signer = signers[i % len(signers)]
        prev = last[signer.public_key]
        deps = [e.id for a, e in last.items() if a != signer.public_key and e is not None]
        deps.append(entries[-1].id)
        entry = sign_entry(signer, commons=entries[0].id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind="resource_use",
                           body={"resource": CID.of(encode(water)), "amount": 1}, deps=list(dict.fromkeys(deps)),
                           timestamp=20_000 + i)
        last[signer.public_key] = entry
        tail.append(entry)
    return tail


def test_a_damaged_archive_is_folded_again(tmp_path: Path) -> None:
    """A fold archive segment damaged on disk (local derived data) raises a typed error where
    it is read; the engine then drops that fold and its archive and folds again from the
    entries: the state is still the fold of everything."""
    from p2pcommons.state import engine
    from p2pcommons.state.archive import DamagedArchive

    entries, _, _ = _history(2500)
    commons = entries[0].id
    engine.forget()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries)
        engine.current_state(store, commons, persist=False)
        live = engine._live[engine._key(store, commons)]
        assert live.folder.evicted > 1000
        store._db.execute("UPDATE fold_segments SET records = substr(records, 1, 40)")
        archive = live.folder.archive
        assert isinstance(archive, StoreArchive)
        archive.drop_caches()  # (segments decoded before the damage are still right; not these)
        old = entries[40]
        assert live.folder.meta.get(old.id.raw) is None  # archived
        with pytest.raises(DamagedArchive, match="damaged"):
            archive.outcome(old.id.raw)
        # A newcomer's entry naming that old entry: its version vector needs the archived record.
        newcomer = Signer(bytes([77]) * 32)
        late = sign_entry(newcomer, commons=commons, seq=1, prev=None, kind="join", body={"name": "n"},
                          deps=[old.id], timestamp=3)
        store.insert([late])
        state = engine.current_state(store, commons, persist=False)
        assert engine._live[engine._key(store, commons)] is not live
        assert state.state_hash == fold([*entries, late]).state_hash
        assert archive.space not in {space for space, _ in store.archive_spaces()}
        engine.forget()


def test_a_record_decodes_with_one_copy_per_leaf_not_per_slot() -> None:
    """Decoding a segment's last record applies every difference before it (hundreds of
    slots for a full segment of a 100-author commons).  Setting them one slot at a time
    copied a trie path per slot, a cost that grew with the segments an in-order fold writes
    (longer as the state grows): counted here in calls into ``causal`` (never in time), a
    few per trie leaf, whatever the number of slots."""
    import sys
    from types import FrameType

    authors = 100
    seqs = [0] * authors
    rows = []
    for i in range(SEGMENT_MAX):
        for j in range(0, authors, 7 + i % 5):  # (each record advances a spread of slots)
            seqs[(j + i) % authors] += 1
        seqs[3] = i + 1
        meta = tuple.__new__(_Meta, (i, bytes([i % 256]) * 34, 3, i + 1, *causal.of(enumerate(seqs))))
        rows.append((meta, "applied", ""))
    blob = encode_segment(rows)
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename == causal.__file__:
            calls += 1

    sys.setprofile(count)
    try:
        got, _, _ = decode_record(blob, SEGMENT_MAX - 1, 3, SEGMENT_MAX)
    finally:
        sys.setprofile(None)
    assert list(causal.items(got.vv)) == list(causal.items(rows[-1][0].vv))
    leaves = -(-authors // causal.WIDTH)
    assert calls <= 8 * leaves + 8, calls


def _lagging_reviews(n: int) -> list[Entry]:
    """Four members contribute (each depending on the stewards' heads); two stewards review
    the oldest pending contribution, depending only on it and their own previous entry, at
    half the rate contributions come: each review names an ever older contribution its writer
    had not seen (as in a commons of many authors, where writers depend on a few heads)."""
    signers = [Signer(bytes([i + 60]) * 32) for i in range(6)]
    stewards, members = signers[:2], signers[2:]
    genesis = sign_entry(stewards[0], commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("lag", founders=[s.public_key for s in stewards]))
    entries = [genesis]
    last: dict[bytes, Entry] = {stewards[0].public_key: genesis}

    def write(signer: Signer, kind: str, body: dict[str, Any], deps: list[CID], backdated: bool = False) -> Entry:
        prev = last.get(signer.public_key)
        entry = sign_entry(signer, commons=genesis.id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind=kind, body=body,
                           deps=[d for d in dict.fromkeys(deps) if prev is None or d != prev.id],
                           timestamp=2 if backdated else len(entries) + 1)
        last[signer.public_key] = entry
        entries.append(entry)
        return entry

    heads = [genesis.id]
    for member in members:
        join = write(member, "join", {"name": "m"}, [genesis.id])
        heads = [write(stewards[0], "admission", {"join": join.id}, [join.id]).id]
    pending: list[CID] = []
    i = 0
    while len(entries) < n:
        i += 1
        steward_heads = [last[s.public_key].id for s in stewards if s.public_key in last] or heads
        for member in members:
            pending.append(write(member, "contribution", {"title": f"w{i}", "kind": "code", "value": 1},
                                 steward_heads, backdated=i % 97 == 5).id)  # (now and then: a time floor)
        for steward in stewards:
            target = pending.pop(0)
            write(steward, "review", {"contribution": target, "verdict": "accept"}, [target])
    return entries


def test_reviews_of_unseen_archived_contributions_read_segments_not_entries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A review naming an archived contribution its writer had not seen needs that record's
    version vector and that entry's time.  Both come from the archive's segment (the time is
    archived beside the record), read once for the several reviews it answers: no entry is
    read back from the store to date a review (it was one read and decode per such review),
    and the segments read are a fraction of the records looked up (it was one store lookup
    each).  The state is the fold of everything."""
    from p2pcommons.state import engine

    entries = _lagging_reviews(7000)
    commons = entries[0].id
    reads = {"entries": 0, "segments": 0, "records": 0}
    for name, method in (("entries", "get_raw"), ("segments", "archive_find")):
        original = getattr(Store, method)

        def counted(self: Store, *args: Any, _name: str = name, _original: Any = original) -> Any:
            reads[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(Store, method, counted)
    record = StoreArchive._record

    def looked_up(self: StoreArchive, raw: bytes) -> Any:
        reads["records"] += 1
        return record(self, raw)

    monkeypatch.setattr(StoreArchive, "_record", looked_up)
    engine.forget()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries)
        state = engine.current_state(store, commons, persist=False)
        during = dict(reads)
        folder = engine._live[engine._key(store, commons)].folder
        assert folder.evicted > 4000
        assert state.state_hash == fold(entries).state_hash
        # Each archived record keeps its entry's own time, a backdated one's too (not its floor).
        archive = folder.archive
        assert isinstance(archive, StoreArchive)
        floored = [e for e in entries if e.id.raw in folder.floors and folder.meta.get(e.id.raw) is None]
        assert floored
        for entry in entries[1:]:
            if folder.meta.get(entry.id.raw) is None:
                assert archive._record(entry.id.raw)[3] == entry.time  # type: ignore[index]
        engine.forget()
    assert during["records"] > 300, during
    assert during["entries"] == 0, during
    assert during["segments"] * 3 < during["records"], during


def test_archive_commits_skip_the_fsync_and_leave_the_store_durable(store: Store) -> None:
    """The archive is derived data a crash may lose (the fold rebuilds it), so its commits
    are not fsynced (synchronous=NORMAL around them), while every other write of the store
    stays synchronous=FULL — also after a failed derived write."""
    store.db.execute("PRAGMA synchronous=FULL")  # (the store's own setting; the fixture's is OFF)
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    store.archive_put(b"space", [(1, 1, 1, 0, b"records")])
    store.db.set_trace_callback(None)
    commit = statements.index("COMMIT")
    assert statements.index("PRAGMA synchronous=1") < statements.index("BEGIN IMMEDIATE") < commit
    assert statements.index("PRAGMA synchronous=2") > commit
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(RuntimeError), store.transaction(durable=False):
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        raise RuntimeError("a failed derived write")
    with store.transaction():
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2


@functools.cache
def _many_logs() -> tuple[Entry, list[list[Entry]]]:
    """A genesis and 40 authors' logs of 4 entries (for archived records of many authors)."""
    founder = Signer(bytes([201]) * 32)
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("many", founders=[founder.public_key]))
    logs = []
    for a in range(40):
        signer = Signer((1000 + a).to_bytes(32, "big"))
        log: list[Entry] = []
        for seq in range(1, 5):
            log.append(sign_entry(signer, commons=genesis.id, seq=seq, prev=log[-1].id if log else None,
                                  kind="contribution", body={"title": "t", "value": 1}, deps=[genesis.id],
                                  timestamp=seq))
        logs.append(log)
    return genesis, logs


@prop_settings(30)
@given(data=st.data())
def test_records_of_many_authors_come_back_through_their_frames(data: st.DataObject) -> None:
    """Evictions of many authors' records (about one per author and eviction, the case frames
    are for), with vectors of any width and depth: every record reads back from the store
    as it was put, its segment's first vector taken from its frame."""
    genesis, logs = _many_logs()
    authors = [log[0].author for log in logs]
    pairs = st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 2**40)), max_size=8)
    cuts = data.draw(st.lists(st.integers(0, 4), min_size=len(logs), max_size=len(logs)))  # first put: seqs 1..cut
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "a.sqlite") as store:
        store.insert([genesis, *(e for log in logs for e in log)])
        archive = StoreArchive(store, genesis.id)
        store.archive_open(archive.space, os.getpid())
        clock = 0
        written = []
        for part in range(2):
            rows = []
            for aidx, log in enumerate(logs):
                for entry in log[:cuts[aidx]] if part == 0 else log[cuts[aidx]:]:
                    clock += data.draw(st.integers(1, 3))
                    vv = causal.of(data.draw(pairs))
                    status = data.draw(st.sampled_from(["applied", "rejected", "pending"]))
                    meta = tuple.__new__(_Meta, (clock, entry.id.raw, aidx, entry.seq, *vv))
                    rows.append((meta, status, "why" if status == "rejected" else ""))
            rows.sort(key=lambda row: row[0][0])
            if rows:
                archive.put(rows, [None] * len(rows), authors)
            written += rows
        archive.drop_caches()
        fresh = StoreArchive(store, genesis.id, space=archive.space)  # (a reader with no frame cached)
        for meta, status, reason in written:
            got = fresh.outcome(meta[1])
            assert got is not None
            assert got[0][:4] == meta[:4] and got[1:] == (status, reason)
            assert list(causal.items(got[0].vv)) == list(causal.items(meta.vv))


def test_an_eviction_of_many_authors_costs_what_their_entries_add(store: Store) -> None:
    """300 authors, one record each in one eviction, each having seen every entry before it:
    the archive holds their differences (a frame), not 300 whole vectors (383,100 bytes
    before frames: with many authors a segment holds about one record)."""
    founder = Signer(bytes([202]) * 32)
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("wide", founders=[founder.public_key]))
    entries = [sign_entry(Signer((5000 + a).to_bytes(32, "big")), commons=genesis.id, seq=1, prev=None,
                          kind="contribution", body={"title": "t", "value": 1}, deps=[genesis.id], timestamp=2)
               for a in range(300)]
    store.insert([genesis, *entries])
    archive = StoreArchive(store, genesis.id)
    store.archive_open(archive.space, os.getpid())
    rows = []
    for aidx, entry in enumerate(entries):
        vv = causal.of((a, 1) for a in range(aidx + 1))  # (every author before it, and itself)
        rows.append((tuple.__new__(_Meta, (aidx + 1, entry.id.raw, aidx, 1, *vv)), "applied", ""))
    archive.put(rows, [None] * len(rows), [e.author for e in entries])
    stored = sum(len(blob) for *_, blob in store._db.execute(
        "SELECT records FROM fold_segments WHERE space = ?", (archive.space,)))
    assert stored < 100_000, stored  # (27,913 bytes with frames: mostly the ids and clocks)
    archive.drop_caches()
    assert archive.meta(entries[-1].id.raw) == rows[-1][0]
