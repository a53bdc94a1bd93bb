"""The evicting fold's store archive (p2pcommons/state/archive.py): the segment encoding, the
store table, and a long realistic history folded with eviction against one folded without."""

from __future__ import annotations

import functools
import os
import struct
import sys
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
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
    decode_segment,
    encode_segment,
    segment_ids,
)
from p2pcommons.state.fold import _Meta, bulk
from p2pcommons.state.positions import bare
from p2pcommons.store import Store
from tests.test_state_histories import prop_settings

# --- the segment encoding ---------------------------------------------------------------

_RECORD = st.tuples(
    st.integers(0, 2**62),  # clock
    st.lists(st.integers(0, 2**40), min_size=1, max_size=20),  # version vector (not archived)
    st.sampled_from(["applied", "rejected", "pending"]),
    st.text(max_size=30),  # reason
)


def _legacy_segment(rows: list[tuple[_Meta, str, str]], times: list[int] | None, version: int) -> bytes:
    """A segment as versions 2-4 wrote it: the columns of version 5 with, between the statuses
    and the ids, the vectors' offsets, and after the ids their differences (here arbitrary
    slots: a reader skips them), version 4 with its frame after the header, version 2
    without the time column."""
    count = len(rows)
    items = 2 * count
    clocks = array("q", [row[0][0] for row in rows])
    stamps = array("q", times if times is not None else [-1] * count)
    offsets = array("I", range(0, items + 1, 2))
    diffs = array("I", [x for i in range(count) for x in (i, i + 1)])
    if sys.byteorder == "big":
        for column in (clocks, stamps, offsets, diffs):
            column.byteswap()
    reasons = [[i, row[2]] for i, row in enumerate(rows) if row[2]]
    return b"".join([
        _HEADER.pack(version, 4, len(rows[0][0][1]), count, items),
        struct.pack("<II", 7, 3) if version == 4 else b"",
        clocks.tobytes(),
        stamps.tobytes() if version >= 3 else b"",
        bytes(["applied", "rejected", "pending"].index(row[1]) for row in rows),
        offsets.tobytes(),
        b"".join(row[0][1] for row in rows),
        diffs.tobytes(),
        cbor2.dumps(reasons) if reasons else b"",
    ])


@prop_settings(200)
@given(records=st.lists(_RECORD, min_size=1, max_size=40), idlen=st.sampled_from([34, 36]),
       aidx=st.integers(0, 1000), first=st.integers(1, 2**40), timed=st.booleans())
def test_segment_records_round_trip(records: list[tuple[int, list[int], str, str]], idlen: int, aidx: int,
                                    first: int, timed: bool) -> None:
    """A segment decodes to the records encoded, without their version vectors (the store
    holds every entry's): clocks, ids, seqs, statuses with and without reasons, the entries'
    times (-1 where none was given); and segments of versions 2-4 (which carried vectors,
    skipped now; version 2 without times) decode to the same records."""
    rows = []
    for i, (clock, vv, status, reason) in enumerate(records):
        raw = os.urandom(idlen)
        reason = reason if status == "rejected" else ""
        rows.append((tuple.__new__(_Meta, (clock, raw, aidx, first + i, *causal.of(enumerate(vv)))), status, reason))
    times = [clock % 2**53 for clock, _, _, _ in records] if timed else None
    cases = [(encode_segment(rows, times), timed)]
    cases += [(_legacy_segment(rows, times, version), timed and version >= 3) for version in (2, 3, 4)]
    for segment, known in cases:
        assert list(segment_ids(segment)) == [row[0][1] for row in rows]
        whole = decode_segment(segment, aidx, first)
        assert len(whole) == len(rows)
        for i, (meta, status, reason) in enumerate(rows):
            got = whole[i]
            assert got[0] == bare(meta) and got[1:3] == (status, reason)
            assert got[3] == (times[i] if known and times is not None else -1)
    with pytest.raises(ValueError, match="truncated"):
        decode_segment(encode_segment(rows, times)[:_HEADER.size + 8 * len(rows)], aidx, first)


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
    # The forked key holds no stability any more, and eviction goes on: its records from the
    # fork point on are rows of their own (two share that seq).  Before, any fork switched
    # eviction off for good.
    assert folder.evicted > 2000, folder.evicted
    assert store.archive_forked_count(archive.space) > 0 and store.archive_count(archive.space) == folder.evicted
    # Another sibling, further on in the forked log: rejected wherever it sorts, no refold.
    later = next(e for e in entries[1500:] if e.author == signers[3].public_key)
    assert archive.outcome(later.id.raw) is not None
    again = sign_entry(signers[3], commons=commons, seq=later.seq, prev=later.prev, kind="contribution",
                       body={"title": "a third branch", "value": 2}, deps=list(later.deps), timestamp=later.time)
    store.insert([again])
    folder.add(again)
    folder.run()
    assert folder.refolds == 1
    _same(folder, [*entries, late, fork, again])


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
    archive.truncate(upto, evicted)
    assert store.archive_count(archive.space) == evicted
    assert archive.outcome(later.id.raw) is None
    kept = [e for e in entries[:600] if e.seq <= upto.get(e.author, 0)]
    assert len(kept) == evicted and all(archive.outcome(e.id.raw) is not None for e in kept)


def test_truncate_keeps_an_earlier_eviction_of_a_forked_log(store: Store) -> None:
    """As above where one key forked early: its records from the fork point on are rows of
    their own, cut back by how many records the checkpoint had evicted, not by seq (its
    siblings share seqs, and a sibling may be archived after a later seq)."""
    entries, signers, _ = _history(1200)
    commons = entries[0].id
    first = next(e for e in entries[1:] if e.author == signers[3].public_key)
    sibling = sign_entry(signers[3], commons=commons, seq=first.seq, prev=first.prev, kind="contribution",
                         body={"title": "the other branch", "value": 1}, deps=list(first.deps), timestamp=first.time)
    entries = [*entries, sibling]
    store.insert(entries)
    archive = StoreArchive(store, commons)
    store.archive_open(archive.space, os.getpid())
    folder = Folder(commons, snapshot_every=64, archive=archive)
    with bulk():
        for entry in [sibling, *entries[:600]]:
            folder.add(entry)
        folder.run()
    upto, evicted = dict(folder.evicted_upto), folder.evicted
    forked = store.archive_forked_count(archive.space)
    assert evicted > 0 and forked > 0 and store.archive_count(archive.space) == evicted
    with bulk():
        for entry in entries[600:]:
            folder.add(entry)
        folder.run()
    assert store.archive_forked_count(archive.space) > forked
    archive.truncate(upto, evicted)
    assert store.archive_count(archive.space) == evicted
    assert store.archive_forked_count(archive.space) == forked


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
    for meta, status, reason in rows:
        assert archive.outcome(meta[1]) == (bare(meta), status, reason)
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


@pytest.mark.parametrize("forked", [False, True], ids=["segment", "forked key's record"])
def test_a_damaged_archive_is_folded_again(tmp_path: Path, forked: bool) -> None:
    """A fold archive row damaged on disk (local derived data) — a segment, or a forked key's
    record, which are archived one row each — raises a typed error where it is read; the
    engine then drops that fold and its archive and folds again from the entries: the state
    is still the fold of everything."""
    from p2pcommons.state import engine
    from p2pcommons.state.archive import DamagedArchive

    entries, signers, _ = _history(2500)
    commons = entries[0].id
    old = entries[40]
    if forked:
        first = next(e for e in entries[1:] if e.author == signers[3].public_key)
        entries.append(sign_entry(signers[3], commons=commons, seq=first.seq, prev=first.prev, kind="contribution",
                                  body={"title": "the other branch", "value": 1}, deps=list(first.deps),
                                  timestamp=first.time))
        old = next(e for e in entries[100:] if e.author == signers[3].public_key)
    engine.forget()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries)
        engine.current_state(store, commons, persist=False)
        live = engine._live[engine._key(store, commons)]
        assert live.folder.evicted > 1000
        archive = live.folder.archive
        assert isinstance(archive, StoreArchive)
        assert (store.archive_forked_count(archive.space) > 100) is forked
        store._db.execute(f"UPDATE {'fold_forked' if forked else 'fold_segments'} SET records = substr(records, 1, 20)")
        archive.drop_caches()  # (segments decoded before the damage are still right; not these)
        assert live.folder.meta.get(old.id.raw) is None  # archived
        with pytest.raises(DamagedArchive, match="damaged"):
            archive.outcome(old.id.raw)
        # A newcomer's entry naming that old entry: its position needs the archived record.
        newcomer = Signer(bytes([77]) * 32)
        late = sign_entry(newcomer, commons=commons, seq=1, prev=None, kind="join", body={"name": "n"},
                          deps=[old.id], timestamp=3)
        store.insert([late])
        state = engine.current_state(store, commons, persist=False)
        assert engine._live[engine._key(store, commons)] is not live
        assert state.state_hash == fold([*entries, late]).state_hash
        assert archive.space not in {space for space, _ in store.archive_spaces()}
        engine.forget()


def test_a_fold_whose_vectors_the_store_cannot_give_holds_everything(tmp_path: Path) -> None:
    """An entry that must merge an archived parent's vector reads its own from the store's
    rows; where those are missing (a store whose entries lost part of their past before it
    computed vectors), the engine folds again, and then holds everything in memory rather
    than fail: the state is still the fold of everything."""
    from p2pcommons.state import engine

    entries = _lagging_reviews(3000)
    commons = entries[0].id
    engine.forget()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries)
        store._db.execute("UPDATE entries SET vv = NULL")
        store._vectors.clear()
        state = engine.current_state(store, commons, persist=False)
        assert state.state_hash == fold(entries).state_hash
        assert engine._live[engine._key(store, commons)].folder.archive is None
        engine.forget()


def test_a_checkpoint_whose_archive_an_older_version_wrote_resumes(store: Store) -> None:
    """A checkpoint written before segment version 5 names an archive of version-4 segments
    (vectors as differences, a frame row per eviction, each entry's own time, the floors of
    backdated entries kept in the checkpoint): a process resuming it reads the records,
    skips their vectors, takes the rest of the entries — reviews naming archived
    contributions, backdated entries among them — and ends where a full fold does."""
    from p2pcommons.state import checkpoint

    entries = _lagging_reviews(4000)
    commons = entries[0].id
    store.insert(entries)
    archive = StoreArchive(store, commons)
    store.archive_open(archive.space, os.getpid())
    folder = _evicting(entries[:2800], commons, archive)
    assert folder.evicted > 1000
    own = {e.id.raw: e.time for e in entries}
    rewritten = 0
    for log, first, aidx, blob in store._db.execute(
            "SELECT log, first, aidx, records FROM fold_segments WHERE space = ? AND log > 0",
            (archive.space,)).fetchall():
        records = decode_segment(bytes(blob), aidx, first)
        for meta, _, _, effective in records:
            if effective != own[meta[1]]:  # (a floor: an older fold kept it in memory)
                folder.floors[meta[1]] = effective
                rewritten += 1
        old = _legacy_segment([r[:3] for r in records], [own[r[0][1]] for r in records], 4)
        store._db.execute("UPDATE fold_segments SET records = ? WHERE space = ? AND log = ? AND first = ?",
                          (old, archive.space, log, first))
    assert rewritten  # (some archived entries were backdated)
    store._db.execute("INSERT INTO fold_segments (space, log, first, count, aidx, records) VALUES (?, -1, 0, 0, -1, ?)",
                      (archive.space, b"a frame"))
    blob = checkpoint.dump(folder)
    resumed = checkpoint.load(blob, commons, lambda raw: store.get(CID(raw)),
                              StoreArchive(store, commons, space=archive.space))
    assert resumed is not None and resumed.evicted == folder.evicted
    with bulk():
        for entry in entries[2800:]:
            resumed.add(entry)
        resumed.run()
    _same(resumed, entries)


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


class _Holding:
    """A fold's held vectors (:class:`~p2pcommons.state.archiving.HeldVectors`) but for one
    entry's own (the one asked about), or none at all (``holding`` False)."""

    def __init__(self, folder: Folder, own: bytes, holding: bool) -> None:
        self.author_index = folder.author_index
        self._folder, self._own, self._holding = folder, own, holding

    def held_vector(self, raw: bytes) -> causal.Vector | None:
        return self._folder.held_vector(raw) if self._holding and raw != self._own else None

    def held_vector_at(self, author: bytes, seq: int) -> causal.Vector | None:
        return self._folder.held_vector_at(author, seq) if self._holding else None


def test_reviews_of_unseen_archived_contributions_read_segments_not_entries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A review naming an archived contribution its writer had not seen needs that record
    (its author index and seq) and that entry's time.  Both come from the archive's segment
    (the time is archived beside the record), read once for the several reviews it answers:
    no entry is read back from the store to date a review (it was one read and decode per
    such review), and the segments read are a fraction of the records looked up (it was one
    store lookup each).  The review's own vector comes from the store's rows, from a base
    the fold holds (:meth:`StoreArchive.vector`): every held entry's vector is the store's,
    read from any base or from none.  The state is the fold of everything."""
    from p2pcommons.state import engine

    entries = _lagging_reviews(7000)
    commons = entries[0].id
    reads = {"entries": 0, "segments": 0, "records": 0, "vectors": 0}
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
    vector_at_hand = StoreArchive.vector_at_hand

    def read_vector(self: StoreArchive, *args: Any) -> Any:
        found = vector_at_hand(self, *args)
        reads["vectors"] += found is not None
        return found

    monkeypatch.setattr(StoreArchive, "vector_at_hand", read_vector)
    engine.forget()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries)
        state = engine.current_state(store, commons, persist=False)
        during = dict(reads)
        folder = engine._live[engine._key(store, commons)].folder
        assert folder.evicted > 4000
        assert state.state_hash == fold(entries).state_hash
        # Each archived record keeps its entry's effective time: its own, or a backdated
        # one's floor, which then leaves the fold's memory (it grew with every backdated
        # entry ever taken).
        archive = folder.archive
        assert isinstance(archive, StoreArchive)
        holding = Folder(commons)
        with bulk():
            for entry in entries:
                holding.add(entry)
        floored = [e for e in entries if e.id.raw in holding.floors and folder.meta.get(e.id.raw) is None]
        assert floored
        assert not any(e.id.raw in folder.floors for e in floored)
        for entry in entries[1:]:
            if folder.meta.get(entry.id.raw) is None:
                effective = holding.floors.get(entry.id.raw, entry.time)
                assert archive._record(entry.id.raw)[3] == effective  # type: ignore[index]
                assert archive.time(entry.id.raw) == effective
        authors = folder.authors
        for raw, meta in folder.meta.items():
            expected = {authors[i]: seq for i, seq in causal.items(meta.vv)}
            stored = store._vector_row_by_id(raw)
            assert stored is not None
            for at_hand, holding in ((True, True), (False, True), (False, False)):
                archive.rows_at_hand([(raw, stored[2])] if at_hand else [])
                got = archive.vector(raw, authors[meta[2]], [], _Holding(folder, raw, holding))
                assert {authors[i]: seq for i, seq in causal.items(got)} == expected
        engine.forget()
    assert during["records"] > 300, during
    assert during["vectors"] > 300, during  # (reviews whose own vector the store's row gave, no read)
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
def test_records_of_many_authors_come_back_as_they_were_put(data: st.DataObject) -> None:
    """Evictions of many authors' records in two parts, any statuses: every record reads back
    from the store as it was put (without its vector), also through a new reader."""
    genesis, logs = _many_logs()
    authors = [log[0].author for log in logs]
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
                    status = data.draw(st.sampled_from(["applied", "rejected", "pending"]))
                    meta = tuple.__new__(_Meta, (clock, entry.id.raw, aidx, entry.seq, *causal.of([(aidx, entry.seq)])))
                    rows.append((meta, status, "why" if status == "rejected" else ""))
            rows.sort(key=lambda row: row[0][0])
            if rows:
                archive.put(rows, [None] * len(rows), authors)
            written += rows
        fresh = StoreArchive(store, genesis.id, space=archive.space)
        for meta, status, reason in written:
            assert fresh.outcome(meta[1]) == (bare(meta), status, reason)


def test_an_eviction_of_many_authors_costs_what_their_records_hold(store: Store) -> None:
    """300 authors, one record each in one eviction, each having seen every entry before it:
    the archive holds their clocks, ids, times and statuses, not their vectors (383,100 bytes
    as whole vectors; 27,913 as the differences segment version 4 kept)."""
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
    assert stored == 300 * (_HEADER.size + 8 + 8 + 1 + 36), stored
    assert archive.meta(entries[-1].id.raw) == bare(rows[-1][0])


def test_a_fresh_fold_of_a_forked_commons_does_not_refold(store: Store) -> None:
    """A member's device restored from an old backup signs its seq again from today's view:
    the sibling sorts long after the original, which a fresh fold has archived by then.  The
    engine knows the forks among what it offers (the store's ``forks`` table), so the key's
    entries from the fork point are rejected as they come: no refold, the holding fold's
    result, and eviction going on past the forked key.  Before, taking the sibling refolded
    from scratch (once per forked key), and eviction stopped."""
    from p2pcommons.state.engine import current_state, forget

    entries, signers, last = _history(3000)
    commons = entries[0].id
    original = next(e for e in entries[1:200] if e.author == signers[4].public_key)
    heads = sorted(last.values(), key=lambda e: e.time)[-6:]
    sibling = sign_entry(signers[4], commons=commons, seq=original.seq, prev=original.prev, kind="contribution",
                         body={"title": "restored from a backup", "value": 1},
                         deps=[e.id for e in heads if e.author != signers[4].public_key],
                         timestamp=max(e.time for e in heads) + 1)
    everything = [*entries, sibling]
    store.insert(everything)
    forget()
    state = current_state(store, commons, persist=False)
    folder = state._folder
    assert folder.fork_seq == {signers[4].public_key: original.seq}
    assert folder.refolds == 0 and folder.evicted > 2000
    assert all(raw in folder.meta for siblings in folder.forks.values() for raw in siblings)  # (archived: gone)
    _same(folder, everything)
    forget()


def test_a_fork_arriving_later_folds_afresh_and_eviction_goes_on(store: Store) -> None:
    """A sibling of an archived entry arriving after the fold (gossip from a restored
    device): the key's archived entries lose their effect, so the fold starts again — from
    the store's order, in batches, as a first fold (the engine drops the live fold; its own
    refold read every entry back at once).  Then eviction goes on past the forked key, and a
    further sibling of that key, rejected wherever it sorts, costs no refold.  Before: a
    refold from the archive, no eviction after it (every record held), and a replay from
    far back for each further sibling."""
    from p2pcommons.state import engine
    from p2pcommons.state.engine import current_state, forget

    entries, signers, _ = _history(3000)
    commons = entries[0].id
    store.insert(entries)
    forget()
    current_state(store, commons, persist=False)
    key = engine._key(store, commons)
    first = engine._live[key]
    assert first.folder.evicted > 2000
    mine = [e for e in entries if e.author == signers[4].public_key]

    def sibling(original: Entry, title: str) -> Entry:
        return sign_entry(signers[4], commons=commons, seq=original.seq, prev=original.prev, kind="contribution",
                          body={"title": title, "value": 1}, deps=list(original.deps), timestamp=original.time)

    fork = sibling(mine[len(mine) // 10], "the other branch")
    assert first.folder.archive is not None and first.folder.archive.outcome(mine[len(mine) // 10].id.raw)
    store.insert([fork])
    current_state(store, commons, persist=False)
    again = engine._live[key]
    assert again is not first and again.folder.refolds == 0 and again.folder.evicted > 2000
    assert not again.folder.forks  # (both siblings archived: the fold keeps no list of them)
    _same(again.folder, [*entries, fork])
    later = sibling(mine[len(mine) // 2], "a third branch")
    store.insert([later])
    current_state(store, commons, persist=False)
    assert engine._live[key] is again and again.folder.refolds == 0 and again.folder.replays == 0
    _same(again.folder, [*entries, fork, later])
    forget()


def test_a_recent_fork_replays_only_what_it_changes(store: Store) -> None:
    """A member's device restored from a backup minutes old signs a recent seq again: the
    key's entries from there lose their effect, and all of them are still held (after the
    archive's base), so the fold replays from the first of them, not from scratch.  Before,
    any new fork point refolded the whole history (here, a fresh fold from the store)."""
    from p2pcommons.state import engine
    from p2pcommons.state.engine import current_state, forget

    entries, signers, _ = _history(3000)
    commons = entries[0].id
    store.insert(entries)
    forget()
    current_state(store, commons, persist=False)
    live = engine._live[engine._key(store, commons)]
    folder = live.folder
    assert folder.evicted > 2000
    recent = folder.entries[folder.order[0][1]]  # held (after the archive's base), applied
    signer = next(s for s in signers if s.public_key == recent.author)
    sibling = sign_entry(signer, commons=commons, seq=recent.seq, prev=recent.prev, kind="contribution",
                         body={"title": "restored from a backup", "value": 1}, deps=list(recent.deps),
                         timestamp=recent.time)
    store.insert([sibling])
    current_state(store, commons, persist=False)
    assert engine._live[engine._key(store, commons)] is live
    assert folder.refolds == 0 and folder.replays == 1
    _same(folder, [*entries, sibling])
    forget()


def test_a_strangers_fork_over_archived_entries_costs_no_refold(store: Store) -> None:
    """A stranger signs a contribution and a join, both archived long ago, then a second
    entry at each of those seqs (a fork: two signatures, and every new key can do it
    again): both lose their effect without a refold — they come out of the state at the
    archive's base and the window replays (``Folder._void_archived``).  A checkpoint written
    after it resumes to the same state.  Before, each such fork folded the whole commons
    afresh."""
    from p2pcommons.state import engine
    from p2pcommons.state.engine import current_state, forget

    entries, _, _ = _history(3000)
    commons = entries[0].id
    stranger = Signer(bytes([99]) * 32)
    joiner = Signer(bytes([98]) * 32)
    early = [sign_entry(stranger, commons=commons, seq=1, prev=None, kind="contribution",
                        body={"title": "drive-by", "value": 5}, deps=[commons], timestamp=2),
             sign_entry(joiner, commons=commons, seq=1, prev=None, kind="join", body={"name": "j"},
                        deps=[commons], timestamp=2)]
    store.insert([*entries, *early])
    forget()
    current_state(store, commons, persist=True)
    key = engine._key(store, commons)
    live = engine._live[key]
    folder = live.folder
    assert folder.evicted > 2000 and folder.archive is not None
    assert all(folder.archive.outcome(e.id.raw) for e in early)  # (archived)
    assert store.db.execute("SELECT 1 FROM query_contributions WHERE id = ?", (early[0].id.raw,)).fetchone()
    twins = [sign_entry(signer, commons=commons, seq=1, prev=None, kind="contribution",
                        body={"title": "the other one", "value": 1}, deps=[commons], timestamp=3)
             for signer in (stranger, joiner)]
    for twin in twins:
        store.insert([twin])
        current_state(store, commons, persist=True)
        assert engine._live[key] is live and folder.refolds == 0
    assert folder.voided == 2
    everything = [*entries, *early, *twins]
    _same(folder, everything)
    assert all(folder.result().outcome(e.id).status == "rejected" for e in early)
    # (What `p2pc contributions` and `p2pc state` read without folding: the query tables.)
    listed = {bytes(row[0]) for row in store.db.execute("SELECT id FROM query_contributions")}
    assert early[0].id.raw not in listed and listed
    forget()
    resumed = current_state(store, commons, persist=False)
    assert resumed.state_hash == fold(everything).state_hash
    assert engine._live[key].folder.refolds == 0
    _same(engine._live[key].folder, everything)
    forget()


def test_a_strangers_fork_that_a_member_had_answered_refolds(store: Store) -> None:
    """The same fork where a steward had tried to bind the stranger's key as a device while
    its join was pending (refused: a key with a pending join cannot be bound): without the
    join the binding would be taken, which the state at the base does not show, so the fold
    folds afresh.  The result is a fold of everything's either way."""
    from p2pcommons.state import engine
    from p2pcommons.state.engine import current_state, forget

    entries, signers, _ = _history(600)
    commons = entries[0].id
    joiner = Signer(bytes([98]) * 32)
    join = sign_entry(joiner, commons=commons, seq=1, prev=None, kind="join", body={"name": "j"},
                      deps=[commons], timestamp=2)
    steward = signers[0]
    last = max((e for e in entries if e.author == steward.public_key), key=lambda e: e.seq)
    bind = sign_entry(steward, commons=commons, seq=last.seq + 1, prev=last.id, kind="device",
                      body={"device": joiner.public_key, "action": "add"}, deps=[], timestamp=last.time + 1)
    # (Not naming the join: no entry has it in its past, so only the device rule tells.)
    tail = _history_tail([*entries, bind], signers, 2400)
    store.insert([*entries, join, bind, *tail])
    forget()
    current_state(store, commons, persist=False)
    key = engine._key(store, commons)
    live = engine._live[key]
    assert live.folder.evicted > 2000
    assert "pending join" in live.folder.result().outcome(bind.id).reason
    twin = sign_entry(joiner, commons=commons, seq=1, prev=None, kind="contribution",
                      body={"title": "the other one", "value": 1}, deps=[commons], timestamp=3)
    store.insert([twin])
    current_state(store, commons, persist=False)
    assert engine._live[key] is not live  # (folded afresh)
    everything = [*entries, join, bind, *tail, twin]
    _same(engine._live[key].folder, everything)
    assert engine._live[key].folder.result().outcome(bind.id).status == "applied"
    forget()


def test_a_strangers_fork_over_a_contribution_a_steward_reviewed_refolds(store: Store) -> None:
    """A stranger's contribution that a steward reviewed (archived long ago, the review with
    it), then a second entry at its seq: without the contribution the review would be
    judged again (it names what is no longer there), which the state at the base does not
    show, so the fold folds afresh.  The store finds the review through its ``named`` table
    (schema 10), not by scanning every entry.  The result is a fold of everything's."""
    from p2pcommons.state import engine
    from p2pcommons.state.engine import current_state, forget

    entries, signers, _ = _history(600)
    commons = entries[0].id
    stranger = Signer(bytes([96]) * 32)
    offered = sign_entry(stranger, commons=commons, seq=1, prev=None, kind="contribution",
                         body={"title": "drive-by", "value": 5}, deps=[commons], timestamp=2)
    steward = signers[0]
    last = max((e for e in entries if e.author == steward.public_key), key=lambda e: e.seq)
    review = sign_entry(steward, commons=commons, seq=last.seq + 1, prev=last.id, kind="review",
                        body={"contribution": offered.id, "verdict": "accept"}, deps=[offered.id],
                        timestamp=last.time + 1)
    tail = _history_tail([*entries, review], signers, 2400)
    store.insert([*entries, offered, review, *tail])
    forget()
    current_state(store, commons, persist=False)
    key = engine._key(store, commons)
    live = engine._live[key]
    assert live.folder.evicted > 2000 and live.folder.archive is not None
    assert live.folder.archive.outcome(review.id.raw)  # (archived)
    assert [found for _, found in store.entries_naming(commons, offered.id.raw, stranger.public_key)] == [review.id.raw]
    assert not store.entries_naming(commons, offered.id.raw, steward.public_key)  # (the author's own are left out)
    twin = sign_entry(stranger, commons=commons, seq=1, prev=None, kind="contribution",
                      body={"title": "the other one", "value": 1}, deps=[commons], timestamp=3)
    store.insert([twin])
    current_state(store, commons, persist=False)
    assert engine._live[key] is not live  # (folded afresh)
    _same(engine._live[key].folder, [*entries, offered, review, *tail, twin])
    forget()


def test_device_entries_naming_a_key_are_found_through_their_index(tmp_path: Path) -> None:
    """``Store.names_key`` (asked when a stranger's pending join loses its effect): a device
    entry of the commons holding the key's bytes is found, through the partial index of
    device entries (schema 9, made when a schema 8 store is opened); another key, or a
    device entry of another commons, is not."""
    import sqlite3

    from p2pcommons.store import SCHEMA_VERSION

    stewards = [Signer(bytes([i + 60]) * 32) for i in range(2)]
    key, other = Signer(bytes([70]) * 32).public_key, Signer(bytes([71]) * 32).public_key
    commons = []
    for name in ("first", "second"):
        genesis = sign_entry(stewards[0], commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                             body=genesis_body(name, founders=[s.public_key for s in stewards]))
        commons.append(genesis)
    bind = sign_entry(stewards[0], commons=commons[1].id, seq=1, prev=None, kind="device",
                      body={"device": key, "action": "add"}, deps=[commons[1].id], timestamp=2)
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.insert([*commons, bind])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP INDEX entries_devices")  # (as schema 8 left it)
    db.execute("PRAGMA user_version=8")
    db.close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 10
        plan = " ".join(str(row[-1]) for row in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM entries CROSS JOIN logs ON logs.log = entries.log "
            "WHERE entries.kind = 'device' AND logs.commons = ? AND instr(entries.raw, ?) > 0", (b"", b"")))
        assert "entries_devices" in plan
        assert store.names_key(commons[1].id, "device", key)
        assert not store.names_key(commons[1].id, "device", other)
        assert not store.names_key(commons[0].id, "device", key)
        assert store.names_key(commons[1].id, "genesis", stewards[0].public_key)  # (a kind without an index: a scan)


@pytest.mark.parametrize("length", [3, 34], ids=["a few entries asked about", "too many: refolds"])
def test_a_strangers_fork_asks_about_at_most_a_few_entries_others_have_seen(store: Store, length: int) -> None:
    """A stranger's log of ``length`` contributions, the last of which a member's entry
    depends on (so each of them may be named by an entry the fold has archived), then a
    second entry at seq 1.  The fold asks the store, for each, whether an entry names it (a
    lookup in its ``named`` table); for more than ``VOID_ASKS`` (32) of them it folds afresh
    instead, as before: a stranger with a long log forking at its start would otherwise cost
    an ask per entry.  Either way the result is a fold of everything's."""
    from p2pcommons.state import engine
    from p2pcommons.state.engine import current_state, forget
    from p2pcommons.state.fold import VOID_ASKS

    entries, signers, _ = _history(600)
    commons = entries[0].id
    stranger = Signer(bytes([97]) * 32)
    log: list[Entry] = []
    for i in range(length):
        log.append(sign_entry(stranger, commons=commons, seq=i + 1, prev=log[-1].id if log else None,
                              kind="contribution", body={"title": f"s{i}", "value": 1}, deps=[commons],
                              timestamp=3 + i))
    member = signers[2]
    last = max((e for e in entries if e.author == member.public_key), key=lambda e: e.seq)
    seen = sign_entry(member, commons=commons, seq=last.seq + 1, prev=last.id, kind="contribution",
                      body={"title": "after the stranger's", "value": 1}, deps=[log[-1].id], timestamp=last.time + 1)
    tail = _history_tail([*entries, seen], signers, 2400)
    store.insert([*entries, *log, seen, *tail])
    forget()
    current_state(store, commons, persist=False)
    key = engine._key(store, commons)
    live = engine._live[key]
    assert live.folder.evicted > 2000 and all(live.folder.archive.outcome(e.id.raw) for e in log)  # type: ignore[union-attr]
    twin = sign_entry(stranger, commons=commons, seq=1, prev=None, kind="contribution",
                      body={"title": "the other one", "value": 1}, deps=[commons], timestamp=3)
    store.insert([twin])
    current_state(store, commons, persist=False)
    refolded = engine._live[key] is not live
    assert refolded == (length > VOID_ASKS)
    _same(engine._live[key].folder, [*entries, *log, seen, *tail, twin])
    forget()
