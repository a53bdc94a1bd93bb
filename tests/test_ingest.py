"""Properties of the ingest path (hypothesis): real signed histories, real SQLite files.

Example counts scale with P2PC_HYPOTHESIS_PROFILE (tests/conftest.py).
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import sign_entry
from p2pcommons.errors import (
    BacklinkMismatch,
    BadSignature,
    InvalidEntry,
    SequenceGap,
    WrongCommons,
)
from p2pcommons.ingest import Ingestor, IngestReport, ingest
from p2pcommons.store import Store

from .support.signed import SIGNERS, History, histories, new_store, scaled


def fresh_store(tmp_path: Path) -> Store:
    """A new SQLite file per hypothesis example (tmp_path is shared by all examples)."""
    return new_store(tmp_path)


def batches(raws: list[bytes], cuts: list[int]) -> list[list[bytes]]:
    """Split ``raws`` at the (sorted, deduplicated) positions in ``cuts``."""
    points = sorted({c % (len(raws) + 1) for c in cuts} | {0, len(raws)})
    return [raws[a:b] for a, b in itertools.pairwise(points) if b > a]


def stored_ids(store: Store, history: History) -> set[bytes]:
    return {CID.of(raw).raw for raw in store.iter_raw(history.commons)}


def stored_forks(store: Store) -> set[tuple[bytes, int]]:
    return {(f.author, f.seq) for f in store.forks()}


orders = st.randoms(use_true_random=False)
cut_lists = st.lists(st.integers(0, 1000), max_size=4)


@settings(max_examples=scaled(0.5))
@given(histories(), orders, cut_lists, st.sampled_from(["segment", "each"]))
def test_any_arrival_order_converges(tmp_path: Path, history: History, rnd: object, cuts: list[int],
                                     verify: Literal["segment", "each"]) -> None:
    """Entries arriving shuffled, in arbitrary batches, re-offered until nothing changes
    (as sync retries), end with every entry stored and every fork recorded."""
    raws = history.raws
    rnd.shuffle(raws)  # type: ignore[attr-defined]
    with fresh_store(tmp_path) as store:
        pending = raws
        while pending:
            before = store.count()
            for batch in batches(pending, cuts):
                report = Ingestor(store, verify=verify).add_batch(batch)
                # only "not yet" errors: a missing predecessor, or a fork sibling standing
                # where the real predecessor has not arrived yet, or an unknown commons
                assert {type(e) for e in report.rejected} <= {SequenceGap, BacklinkMismatch, WrongCommons}
            pending = [r for r in pending if not store.has(CID.of(r))]
            assert pending == [] or store.count() > before, "no progress"
        assert stored_ids(store, history) == history.ids
        assert stored_forks(store) == history.forks


@settings(max_examples=scaled(0.5))
@given(histories(), cut_lists)
def test_causal_order_accepts_everything_at_once(tmp_path: Path, history: History, cuts: list[int]) -> None:
    with fresh_store(tmp_path) as store:
        total = IngestReport()
        for batch in batches(history.raws, cuts):
            total.merge(Ingestor(store).add_batch(batch))
        assert total.rejected == []
        assert total.added_count == len(history.entries)
        assert stored_ids(store, history) == history.ids
        assert {(a, s) for _c, a, s in total.forks} == history.forks == stored_forks(store)


@st.composite
def damaged(draw: st.DrawFn) -> tuple[History, list[bytes], list[int]]:
    """A history with some entries dropped (gaps), some signatures corrupted, some
    duplicated, some from another commons; plus batch cuts."""
    history = draw(histories(max_steps=12))
    raws = []
    for raw in history.raws[1:]:
        action = draw(st.sampled_from(["keep"] * 6 + ["drop", "corrupt", "twice"]))
        if action == "drop":
            continue
        if action == "corrupt":
            flipped = bytearray(raw)
            position = raw.index(b"\x63sig\x58\x40") + 6 + draw(st.integers(0, 63))
            flipped[position] ^= 1 << draw(st.integers(0, 7))
            raw = bytes(flipped)
        raws.append(raw)
        if action == "twice":
            raws.append(raw)
    if draw(st.booleans()):
        other = draw(histories(max_authors=2, max_steps=3, label="other"))
        raws.extend(other.raws[1:])
    shuffled = draw(st.permutations(raws))
    return history, [history.genesis.raw, *shuffled], draw(cut_lists)


@settings(max_examples=scaled(1))
@given(damaged())
def test_segment_and_each_verification_agree(tmp_path: Path, case: tuple[History, list[bytes], list[int]]) -> None:
    """Verifying one signature per chain segment accepts and rejects exactly what
    verifying every signature does, batch by batch."""
    history, raws, cuts = case
    outcomes = []
    modes: list[Literal["segment", "each"]] = ["segment", "each"]
    for verify in modes:
        with fresh_store(tmp_path) as store:
            reports = [Ingestor(store, verify=verify).add_batch(b) for b in batches(raws, cuts)]
            outcomes.append((
                [sorted(e.id.raw for e in r.added) for r in reports],
                [Counter(type(e).__name__ for e in r.rejected) for r in reports],
                [r.duplicates for r in reports],
                [sorted((a, s) for _c, a, s in r.forks) for r in reports],
                sorted(store.iter_raw()),
            ))
            checked = sum(r.signatures_checked for r in reports)
            if verify == "each":
                assert checked >= sum(len(r.added) for r in reports)
    assert outcomes[0] == outcomes[1]
    # nothing invalid got in: everything stored decodes, verifies and chains
    with fresh_store(tmp_path) as store:
        for batch in batches(raws, cuts):
            Ingestor(store).add_batch(batch)
        for entry in store.iter_entries():
            entry.verify_signature()
            if entry.seq > 1:
                assert entry.prev is not None and store.has(entry.prev)
        assert stored_ids(store, history) <= history.ids


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=12), st.data())
def test_sequence_gaps_are_rejected(tmp_path: Path, history: History, data: st.DataObject) -> None:
    """Drop one non-genesis entry: its author's later entries are SequenceGap (or, where a
    fork sibling stands in for the missing one, BacklinkMismatch); the rest is stored."""
    candidates = [e for e in history.entries[1:] if (e.author, e.seq) not in history.forks]
    if not candidates:
        return
    missing = data.draw(st.sampled_from(candidates))
    raws = [e.raw for e in history.entries if e is not missing]
    with fresh_store(tmp_path) as store:
        report = Ingestor(store).add_batch(raws)
        later = [e for e in history.entries if e.author == missing.author and e.seq > missing.seq]
        # the author's later entries, on the missing entry's branch, are rejected
        assert len(report.rejected) >= 1 if later else report.rejected == []
        assert {type(e) for e in report.rejected} <= {SequenceGap, BacklinkMismatch}
        if not any(e.seq == missing.seq for e in later):
            assert all(isinstance(e, SequenceGap) for e in report.rejected[:1])
        for entry in history.entries:
            if entry.author != missing.author or entry.seq < missing.seq:
                assert store.has(entry.id)
        assert not store.has(missing.id)


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=8, forks=False), st.data())
def test_backlink_mismatch_is_rejected(tmp_path: Path, history: History, data: st.DataObject) -> None:
    """An entry whose backlink names anything but its author's previous entry is rejected."""
    later = [e for e in history.entries if e.seq > 1]
    if not later:
        return
    target = data.draw(st.sampled_from(later))
    wrong = data.draw(st.sampled_from([e.id for e in history.entries if e.id != target.prev] + [CID.of(b"x")]))
    signer = next(s for s in SIGNERS if s.public_key == target.author)
    forged = sign_entry(signer, commons=history.commons, seq=target.seq, prev=wrong, kind=target.kind,
                        body={"forged": True}, timestamp=target.time)
    with fresh_store(tmp_path) as store:
        ingest(store, history.raws)
        report = Ingestor(store, verify=data.draw(st.sampled_from(["segment", "each"]))).add_batch([forged.raw])
        assert [type(e) for e in report.rejected] == [BacklinkMismatch]
        assert not store.has(forged.id)
        assert stored_forks(store) == set()


@settings(max_examples=scaled(0.5))
@given(histories(max_steps=10), st.data())
def test_forks_are_kept_as_evidence_and_reported(tmp_path: Path, history: History, data: st.DataObject) -> None:
    """A second entry at a used (author, seq) is stored, verified and reported as a fork."""
    target = data.draw(st.sampled_from(history.entries[1:] or history.entries))
    if target.is_genesis:
        return
    signer = next(s for s in SIGNERS if s.public_key == target.author)
    sibling = sign_entry(signer, commons=history.commons, seq=target.seq, prev=target.prev, kind="note",
                         body={"sibling": True}, timestamp=target.time)
    with fresh_store(tmp_path) as store:
        ingest(store, history.raws)
        verify: Literal["segment", "each"] = data.draw(st.sampled_from(["segment", "each"]))
        report = Ingestor(store, verify=verify).add_batch([sibling.raw])
        assert report.rejected == []
        assert [e.id for e in report.added] == [sibling.id]
        assert [(a, s) for _c, a, s in report.forks] == [(target.author, target.seq)]
        # both sides verified on their own (in "each" mode the stored side was, on arrival)
        assert report.signatures_checked >= (2 if verify == "segment" else 1)
        assert stored_forks(store) == history.forks | {(target.author, target.seq)}
        fork = next(f for f in store.forks() if (f.author, f.seq) == (target.author, target.seq))
        assert {target.id, sibling.id} <= set(fork.ids)
        assert {target.id, sibling.id} <= set(store.ids_at(history.commons, target.author, target.seq))


@settings(max_examples=scaled(0.5))
@given(histories(), cut_lists, st.sampled_from(["segment", "each"]))
def test_reingest_is_idempotent(tmp_path: Path, history: History, cuts: list[int],
                                verify: Literal["segment", "each"]) -> None:
    with fresh_store(tmp_path) as store:
        ingest(store, history.raws, verify=verify)
        snapshot = (sorted(store.iter_raw()), store.heads(history.commons), store.forks())
        for batch in batches(history.raws, cuts):
            report = Ingestor(store, verify=verify).add_batch(batch + batch)
            assert report.added_count == 0 and report.rejected == [] and report.forks == []
            assert report.duplicates == 2 * len(batch)
            assert report.signatures_checked == 0
        assert (sorted(store.iter_raw()), store.heads(history.commons), store.forks()) == snapshot


@settings(max_examples=scaled(0.3))
@given(histories(max_steps=4), histories(max_steps=4, label="other"))
def test_wrong_commons_is_rejected(tmp_path: Path, mine: History, other: History) -> None:
    with fresh_store(tmp_path) as store:
        ingest(store, mine.raws)
        # scoped to my commons: the other commons' entries (even its genesis) are WrongCommons
        report = Ingestor(store, commons=mine.commons).add_batch(other.raws)
        assert len(report.rejected) == len(other.entries)
        assert all(type(e) is WrongCommons for e in report.rejected)
        # unscoped: entries of a commons the store does not hold are WrongCommons too
        report = Ingestor(store).add_batch(other.raws[1:])
        assert all(type(e) is WrongCommons for e in report.rejected)
        assert len(report.rejected) == len(other.entries) - 1
        assert store.count() == len(mine.entries)


@settings(max_examples=scaled(0.3))
@given(histories(max_steps=8), st.data())
def test_atomic_ingest_is_all_or_nothing(tmp_path: Path, history: History, data: st.DataObject) -> None:
    """With atomic=True (bundle import) one bad entry anywhere aborts the whole stream and
    the store is left exactly as it was."""
    raws = history.raws
    position = data.draw(st.integers(1, len(raws)))
    bad = bytearray(raws[position - 1] if position > 1 else raws[0])
    bad[-1] ^= 0x01
    raws.insert(position, bytes(bad))
    with fresh_store(tmp_path) as store:
        before = sorted(store.iter_raw())
        with pytest.raises(InvalidEntry):
            ingest(store, raws, atomic=True, batch_size=data.draw(st.integers(1, 8)))
        assert sorted(store.iter_raw()) == before
        assert store.forks() == []


def test_a_bad_signature_in_a_segment_only_loses_that_entry(tmp_path: Path) -> None:
    """Segment mode: a corrupted entry in the middle of a run is verified on its own and
    rejected; the entries before it are stored; those after it have a gap."""
    genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body={}, timestamp=0)
    chain = [genesis]
    for seq in range(2, 8):
        chain.append(sign_entry(SIGNERS[0], commons=genesis.id, seq=seq, prev=chain[-1].id, kind="note",
                                body={"n": seq}, timestamp=seq))
    raws = [e.raw for e in chain]
    bad = bytearray(raws[3])
    bad[raws[3].index(chain[3].sig)] ^= 0x04
    raws[3] = bytes(bad)
    with Store(tmp_path / "s.sqlite") as store:
        report = Ingestor(store, verify="segment").add_batch(raws)
        assert [type(e) for e in report.rejected] == [BadSignature, SequenceGap, SequenceGap, SequenceGap]
        assert [e.seq for e in report.added] == [1, 2, 3]
        assert report.signatures_checked < len(raws)



@st.composite
def delivered_runs(draw: st.DrawFn) -> tuple[History, list[bytes], list[int]]:
    """A history delivered as a sync or a bundle does (by log, each in seq order), with
    damage where it hurts a one-pass check most: dropped entries (gaps), flipped signature
    bits, entries validly re-signed with a wrong backlink, entries sent twice; batch cuts."""
    history = draw(histories(max_steps=16))
    signer_of = {s.public_key: s for s in SIGNERS}
    ids = [e.id for e in history.entries]
    raws = [history.genesis.raw]
    for entry in sorted(history.entries[1:], key=lambda e: (e.author, e.seq)):
        raw = entry.raw
        action = draw(st.sampled_from(["keep"] * 8 + ["drop", "corrupt", "relink", "twice"]))
        if action == "drop":
            continue
        if action == "corrupt":
            flipped = bytearray(raw)
            flipped[raw.index(entry.sig) + draw(st.integers(0, 63))] ^= 1 << draw(st.integers(0, 7))
            raw = bytes(flipped)
        if action == "relink" and entry.seq > 1:
            raw = sign_entry(signer_of[entry.author], commons=entry.commons, seq=entry.seq,
                             prev=draw(st.sampled_from(ids)), kind=entry.kind, body=entry.body,
                             deps=entry.deps, timestamp=entry.time).raw
        raws.append(raw)
        if action == "twice":
            raws.append(raw)
    return history, raws, draw(cut_lists)


def _outcome(store: Store, raws: list[bytes], cuts: list[int]) -> tuple[object, ...]:
    """Everything a run of batches reports and stores, in order (messages included)."""
    reports = [Ingestor(store).add_batch(b) for b in batches(raws, cuts)]
    return (
        [[e.id.raw for e in r.added] for r in reports],
        [[(type(e).__name__, str(e)) for e in r.rejected] for r in reports],
        [(r.duplicates, r.signatures_checked, r.forks) for r in reports],
        sorted(store.iter_raw()),
        stored_forks(store),
    )


@settings(max_examples=scaled(1))
@given(delivered_runs() | damaged(), st.data())
def test_the_one_pass_run_decides_as_the_general_path(tmp_path: Path, case: tuple[History, list[bytes], list[int]],
                                                      data: st.DataObject) -> None:
    """The usual run (consecutive seqs beyond the stored ones, each linking the one before)
    is accepted in one pass (``Ingestor._take_run``); any batch, damaged or not, in causal
    order or shuffled (:func:`damaged`), some of it stored before, ends exactly as when every run goes through
    ``_authenticate`` and ``_check_chain``: the same entries added in the same order, the
    same rejections with the same messages, duplicates, forks and signatures checked."""
    _, raws, cuts = case
    before = data.draw(st.integers(0, len(raws)))  # a prefix stored first
    outcomes = []
    for one_pass in (True, False):
        with fresh_store(tmp_path) as store:
            Ingestor(store).add_batch(raws[:before])
            if one_pass:
                outcomes.append(_outcome(store, raws, cuts))
            else:
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(Ingestor, "_take_run", lambda *_: False)
                    outcomes.append(_outcome(store, raws, cuts))
    assert outcomes[0] == outcomes[1]
