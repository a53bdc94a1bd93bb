"""Copy-on-write tables (:class:`p2pcommons.state.compact._Layers`): a snapshot shares every
row its table does not change afterwards (issue 12: a folded million-entry commons under
200 MB; the fold keeps a snapshot of the state for good, which used to copy every row).

A model check (any mix of writes, deletes and copies, merges forced or never: each copy
reads as the dict it was copied from, changed only by its own writes), the memory a snapshot
costs, and the merge property: a fold whose snapshots merge their layers at every copy
(and one whose never do) equals a fold from scratch, whatever the arrival order."""

from __future__ import annotations

import contextlib
import gc
import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.state import Folder, compact, fold
from p2pcommons.state.checkpoint import _dump_snapshot, _load_snapshot
from p2pcommons.state.compact import Contributions, Votes
from p2pcommons.state.records import Contribution, canonical_state
from tests.test_state_histories import ACTIONS, build, prop_settings


@contextlib.contextmanager
def _merge_min(value: int) -> Iterator[None]:
    before = compact.MERGE_MIN
    compact.MERGE_MIN = value
    try:
        yield
    finally:
        compact.MERGE_MIN = before


def _contribution(i: int) -> Contribution:
    return Contribution(bytes([i % 7]) * 32, f"work {i}", "code", "", 3, "pending", (), (), 0, False)


_CIDS = [CID.of(b"c%d" % i) for i in range(12)]
_VOTERS = [bytes([i]) * 32 for i in range(3)]
OPS = st.lists(st.tuples(st.sampled_from(["set", "del", "copy", "switch"]), st.integers(0, 11), st.integers(0, 99)),
               max_size=80)


@prop_settings(300)
@given(ops=OPS, merge_min=st.sampled_from([0, 1, 2, 1 << 30]))
def test_copies_read_as_the_dicts_they_were_copied_from(ops: list[tuple[str, int, int]], merge_min: int) -> None:
    with _merge_min(merge_min):
        tables: list[tuple[Contributions, Votes, dict[CID, Contribution], dict[tuple[CID, bytes], Any]]] = [
            (Contributions(), Votes(), {}, {})]
        at = 0
        for op, k, v in ops:
            table, votes, model, vmodel = tables[at]
            cid, vote = _CIDS[k], (_CIDS[k], _VOTERS[v % 3])
            if op == "set":
                table[cid] = model[cid] = _contribution(v)
                votes[vote] = vmodel[vote] = (True, False, None)[v % 3]
            elif op == "del":
                if cid in model:
                    del table[cid], model[cid]
                if vote in vmodel:
                    del votes[vote], vmodel[vote]
                with contextlib.suppress(KeyError):
                    del table[cid]
                    raise AssertionError("deleted twice")
            elif op == "copy":
                tables.append((table.copy(), votes.copy(), dict(model), dict(vmodel)))
            else:
                at = v % len(tables)
            for t, vt, m, vm in tables:
                assert len(t) == len(m) and len(vt) == len(vm)
                assert dict(t.items()) == m and dict(vt.items()) == vm
                assert set(t) == set(m) and all(c in t for c in m) and (cid in t) == (cid in m)
                assert t.get(cid) == m.get(cid) and vt.get(vote) == vm.get(vote)
                assert list(t.pairs_by_id()) == sorted(m.items(), key=lambda pair: pair[0].raw)
        for t, _, m, _ in tables:  # iteration order is the dict's as long as nothing is deleted
            if not any(op == "del" for op, _, _ in ops):
                assert list(t) == list(m)


def test_a_snapshot_costs_what_changed_not_the_table() -> None:
    """Before copy-on-write a copy of a 20,000-row table cost about 40 bytes per row (a dict
    of every row); now a copy after a few changes costs about what those changes do."""
    table = Contributions()
    votes = Votes()
    for i in range(20_000):
        table[CID.of(b"%d" % i)] = _contribution(i)
        votes[(CID.of(b"%d" % i), _VOTERS[0])] = True
    table.copy()  # (the first copy may merge what was written into the shared base)
    votes.copy()
    for i in range(10):
        table[CID.of(b"%d" % i)] = _contribution(i + 1)
        votes[(CID.of(b"%d" % i), _VOTERS[1])] = False
    gc.collect()
    tracemalloc.start()
    copies = [(table.copy(), votes.copy()) for _ in range(8)]
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert all(len(t) == 20_000 and len(v) == 20_010 for t, v in copies)
    assert size < 8 * 20_000, f"{size / 8:.0f} bytes per copy of 20,000 rows"


@prop_settings(200)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1), merge_min=st.sampled_from([0, 1 << 30]))
def test_restores_from_shared_snapshots_equal_a_fold_from_scratch(actions: list[tuple[int, int, int]], seed: int,
                                                                 merge_min: int) -> None:
    """Entries one at a time in a random order (late ones restore a snapshot and replay),
    snapshots at every entry, their layers merged at every copy or never: the state hash and
    every outcome are those of a fold from scratch, and so is the state at every snapshot
    kept (checked by restoring it: rolled back to nothing and replayed)."""
    history = build(actions)
    reference = fold(history.entries)
    rng = random.Random(seed)
    arrival = list(history.entries)
    rng.shuffle(arrival)
    with _merge_min(merge_min):
        folder = Folder(history.commons, snapshot_every=rng.choice([1, 2, 5]))
        for entry in arrival:
            folder.add(entry)
            folder.run()
        assert folder.result().state_hash == reference.state_hash
        for entry in history.entries:
            assert folder.outcomes.get(entry.id.raw) == reference._folder.outcomes.get(entry.id.raw)
        folder._restore(folder.snap_keys[-1] if len(folder.snap_keys) > 1 else folder.order[0])
        folder.run()
        assert folder.result().state_hash == reference.state_hash


@prop_settings(100)
@given(actions=ACTIONS, cut=st.integers(0, 100), merge_min=st.sampled_from([0, 1 << 30]))
def test_a_checkpoint_delta_gives_back_the_snapshot(actions: list[tuple[int, int, int]], cut: int,
                                                    merge_min: int) -> None:
    """A snapshot written as its difference from the state (a checkpoint) reads back as
    the snapshot, whether the two share their tables' base (the fast path) or not."""
    history = build(actions)
    with _merge_min(merge_min):
        folder = Folder(history.commons)
        entries = history.entries
        at = min(cut, len(entries))
        for entry in entries[:at]:
            folder.add(entry)
        folder.run()
        if folder.state is None:
            return
        snap = folder.state.copy()
        expected = canonical_state(snap), dict(snap.votes.items()), dict(snap.bookings.items())
        for entry in entries[at:]:
            folder.add(entry)
        folder.run()
        state = folder.state
        assert state is not None
        for _ in range(3):  # (copies may merge the state's layers into a base of its own)
            state.copy()
        loaded = _load_snapshot(cbor2.loads(cbor2.dumps(_dump_snapshot(snap, state))), state)
        assert (canonical_state(loaded), dict(loaded.votes.items()), dict(loaded.bookings.items())) == expected


def test_a_large_fold_gives_freed_memory_back(tmp_path: Any, monkeypatch: Any) -> None:
    """The engine returns the heap pages a large fold freed (glibc's malloc_trim; what it
    gives back is measured by bench/memory.py) — here, that it asks once a fold took
    ``TRIM_AFTER`` entries, and not after a fold that took nothing new."""
    import platform

    from p2pcommons.state import engine, release
    from p2pcommons.store import Store

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert release.release_freed_memory() is True
    calls: list[bool] = []
    monkeypatch.setattr(engine, "release_freed_memory", lambda: calls.append(True) or True)
    history = build([(0, 1, 0)] * 30)
    store = Store(tmp_path / "s.sqlite")
    store.insert(history.entries)
    monkeypatch.setattr(engine, "TRIM_AFTER", len(history.entries))
    engine.current_state(store, history.commons, persist=False)
    assert calls == [True]
    engine.current_state(store, history.commons, persist=False)  # nothing new folded
    assert calls == [True]
    engine.forget()
    store.close()


@prop_settings(200)
@given(keys=st.sets(st.binary(min_size=0, max_size=6), max_size=60), width=st.sampled_from([0, 1, 2, 3, 36]),
       lost=st.lists(st.binary(min_size=0, max_size=40), max_size=10))
def test_the_flat_base_finds_every_key_and_nothing_else(keys: set[bytes], width: int, lost: list[bytes]) -> None:
    """Keys of one width, clustered or not (whatever the bucket they share): each found with
    its value, in the order given; keys it does not hold (any width) not found."""
    from p2pcommons.state.compact import _Frozen

    rows = sorted({(b"\x01\x71" + k + bytes(40))[:width] for k in keys},
                  key=lambda k: k[::-1])
    base = _Frozen(list(rows), [b"v%d" % i for i in range(len(rows))])
    assert len(base) == len(rows) and list(base) == rows
    assert list(base.items()) == [(k, b"v%d" % i) for i, k in enumerate(rows)]
    for i, k in enumerate(rows):
        assert base.get(k) == b"v%d" % i and k in base
    for k in lost:
        assert (k in base) == (k in rows) and base.get(k, "no") == ("no" if k not in rows else base.get(k))


@prop_settings(200)
@given(keys=st.sets(st.binary(min_size=4, max_size=4), max_size=60), width=st.integers(1, 9),
       ordered=st.booleans())
def test_a_flat_base_of_values_of_one_width(keys: set[bytes], width: int, ordered: bool) -> None:
    """Values all of one width are found by their place (no offsets kept); a base that need
    not keep the order rows came in iterates in key order, each key with its value."""
    from p2pcommons.state.compact import _Frozen

    rows = list(keys)
    values = [i.to_bytes(width, "little") for i in range(len(rows))]
    base = _Frozen(list(rows), list(values), ordered=ordered)
    assert dict(base.items()) == dict(zip(rows, values, strict=True))
    assert list(base) == (rows if ordered else sorted(rows)) == [k for k, _ in base.items()]
    for k, v in zip(rows, values, strict=True):
        assert base.get(k) == v
    assert base.get(b"\xff" * 5) is None


_SHARE_KEYS = [bytes([i]) * 32 for i in range(5)]
DISTRIBUTIONS = st.lists(st.fixed_dictionaries(
    {"id": st.sampled_from(_CIDS), "amount": st.integers(0, 2**64), "currency": st.sampled_from(["EUR", "h"]),
     "shares": st.dictionaries(st.sampled_from(_SHARE_KEYS), st.integers(0, 2**40), max_size=5)},
    optional={"pool": st.text(max_size=3), "equation": st.text(max_size=3),
              "acknowledged": st.lists(st.sampled_from(_SHARE_KEYS), max_size=2).map(tuple)}), max_size=12)


@prop_settings(300)
@given(items=DISTRIBUTIONS, replace=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=4),
       cut=st.integers(0, 12))
def test_packed_distributions_read_as_the_list_they_replace(items: list[dict[str, Any]],
                                                            replace: list[tuple[int, int]], cut: int) -> None:
    """The state's distributions held packed (:class:`~p2pcommons.state.compact.Distributions`)
    read back as the dicts appended (shares as a mapping of the same amounts), item by item
    and sliced; a copy is not changed by replacing an item of the original (a receipt), and
    the length of their common prefix (a checkpoint's delta) is what the dicts say."""
    from p2pcommons.state.compact import Distributions

    packed = Distributions(items)
    model = [dict(d) for d in items]
    assert len(packed) == len(model) and list(packed) == model and packed == model
    assert [packed[i] for i in range(len(model))] == model and list(packed[:cut]) == model[:cut]
    snap, before = packed.copy(), list(model)
    for i, j in replace:
        if i < len(model) and j < len(model):
            packed[i] = model[i] = {**model[j], "acknowledged": (b"\x09" * 32,)}
    assert list(packed) == model and list(snap) == before
    common = next((i for i, (x, y) in enumerate(zip(before, model, strict=True)) if x != y), len(model))
    assert snap.same_prefix(packed) == common == snap.same_prefix(model)


@prop_settings(100)
@given(suffixes=st.sets(st.binary(min_size=3, max_size=3), min_size=65, max_size=300),
       lost=st.lists(st.binary(min_size=3, max_size=3), max_size=20))
def test_a_crowded_bucket_is_searched_too(suffixes: set[bytes], lost: list[bytes]) -> None:
    """Ids ground to share the bytes that choose their bucket (a crowd of over 64 in one
    bucket, found by binary search instead of a scan of its bytes): each found, nothing else."""
    from p2pcommons.state.compact import _Frozen

    rows = [b"\x00\x00" + x for x in suffixes] + [b"\xff" * 5]
    base = _Frozen(list(rows), [b"v%d" % i for i in range(len(rows))])
    for i, k in enumerate(rows):
        assert base.get(k) == b"v%d" % i
    for x in lost:
        assert (b"\x00\x00" + x in base) == (x in suffixes)


INSERT_OPS = st.lists(st.tuples(st.sampled_from(["insert", "overwrite", "set", "del", "copy", "switch"]),
                                st.integers(0, 11), st.integers(0, 99)), max_size=80)


@prop_settings(300)
@given(ops=INSERT_OPS, merge_min=st.sampled_from([0, 1, 2, 1 << 30]))
def test_inserting_or_overwriting_reads_as_setting(ops: list[tuple[str, int, int]], merge_min: int) -> None:
    """``insert`` (a key the table does not hold) and ``overwrite`` (one it holds), which do
    not search its base, leave every table, and every copy, reading as the dict it models —
    its length too — whatever mix of sets, deletes (a deleted base row inserted again),
    copies and merges came before."""
    with _merge_min(merge_min):
        tables: list[tuple[Contributions, Votes, dict[CID, Contribution], dict[tuple[CID, bytes], Any]]] = [
            (Contributions(), Votes(), {}, {})]
        at = 0
        for op, k, v in ops:
            table, votes, model, vmodel = tables[at]
            cid, vote = _CIDS[k], (_CIDS[k], _VOTERS[v % 3])
            if op == "overwrite":
                if cid in model:
                    table.overwrite(cid, _contribution(v))
                    model[cid] = _contribution(v)
            elif op == "insert":
                if cid not in model:
                    table.insert(cid, _contribution(v))
                    model[cid] = _contribution(v)
                if vote not in vmodel:
                    votes.insert(vote, (True, False, None)[v % 3])
                    vmodel[vote] = (True, False, None)[v % 3]
            elif op == "set":
                table[cid] = model[cid] = _contribution(v)
                votes[vote] = vmodel[vote] = (True, False, None)[v % 3]
            elif op == "del":
                if cid in model:
                    del table[cid], model[cid]
                if vote in vmodel:
                    del votes[vote], vmodel[vote]
            elif op == "copy":
                tables.append((table.copy(), votes.copy(), dict(model), dict(vmodel)))
            else:
                at = v % len(tables)
            for t, vt, m, vm in tables:
                assert len(t) == len(m) and len(vt) == len(vm)
                assert dict(t.items()) == m and dict(vt.items()) == vm
        # Iteration order is the dict's as long as nothing is deleted (the tables' contract,
        # as in the test above: a row deleted from a flat base and written again keeps its
        # place there, where a dict would move it to the end).
        if not any(op == "del" for op, _, _ in ops):
            for t, _, m, _ in tables:
                assert list(t.items()) == list(m.items())


@contextlib.contextmanager
def _checked_inserts() -> Iterator[list[int]]:
    """Every ``insert`` the handlers make checked against the table first (the key must be
    absent: the promise that lets it skip the search), and every ``overwrite`` (the key must
    be held), then made as a plain ``set``; every reference the handlers say is ``known`` of
    its kind (found in the table of that kind) checked by looking its kind up."""
    from p2pcommons.state.compact import Packed

    made = [0]
    saved = Packed.insert, Votes.insert, Packed.overwrite

    def checked(table: Any, key: Any, value: Any) -> None:
        assert key not in table, f"insert of a key held already: {key!r}"
        made[0] += 1
        table[key] = value

    def held(table: Any, key: Any, value: Any) -> None:
        assert key in table, f"overwrite of a key not held: {key!r}"
        table[key] = value

    from p2pcommons.state.handlers import common, contributions, rules_votes

    def ref(view: Any, entry: Any, meta: Any, field: str, kind: Any, *, known: bool = False,
            linked: CID | None = None) -> CID:
        target = common.ref(view, entry, meta, field, kind)  # (the kind looked up, the link read, always)
        assert linked is None or linked == target, "a link handed to ref() that is not the field's"
        if known:
            made[0] += 1
        return target

    Packed.insert = Votes.insert = checked  # type: ignore[assignment, method-assign]
    Packed.overwrite = held  # type: ignore[method-assign]
    contributions.ref = rules_votes.ref = ref  # type: ignore[assignment]
    try:
        yield made
    finally:
        Packed.insert, Votes.insert, Packed.overwrite = saved  # type: ignore[method-assign]
        contributions.ref = rules_votes.ref = common.ref


# Longer histories than ACTIONS tends to draw: reviews, votes and resource uses that apply.
LONG_ACTIONS = st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 1000)), min_size=25,
                        max_size=60)


@prop_settings(200)
@given(actions=LONG_ACTIONS, seed=st.integers(0, 2**32 - 1), merge_min=st.sampled_from([0, 1 << 30]),
       evicting=st.booleans())
def test_the_handlers_insert_only_keys_the_state_lacks(actions: list[tuple[int, int, int]], seed: int,
                                                       merge_min: int, evicting: bool) -> None:
    """Random histories, entries one at a time in a random order (late ones restore a
    snapshot and replay, so the same entries are applied again on older states), or log by
    log; with ``evicting``, a fold that archives as it goes, its members soon counted silent
    (late strangers' entries then go into the archive's base state): every
    ``insert`` a handler makes is of a key its state lacks, every ``overwrite`` of one it
    holds, and the fold that writes without searching (and takes a reference found in the
    table of its kind for one of that kind) gives the state hash, outcomes and table sizes
    of the one that sets (and looks every kind up)."""
    from p2pcommons.state.fold import MemoryArchive

    history = build(actions)
    rng = random.Random(seed)
    arrival = list(history.entries)
    if rng.random() < 0.5:
        rng.shuffle(arrival)
    else:  # log by log
        arrival.sort(key=lambda e: (e.commons is not None, e.author, e.seq))
    snapshot_every = rng.choice([1, 2, 5])
    silent_after = rng.choice([1, 2, 4096])
    results = []
    for check in (True, False):
        with _merge_min(merge_min), (_checked_inserts() if check else contextlib.nullcontext([0])):
            folder = Folder(history.commons, snapshot_every=snapshot_every,
                            archive=MemoryArchive() if evicting else None)
            folder.silent_after = silent_after
            for entry in arrival:
                folder.add(entry)
                folder.run()
            state = folder.state
            sizes = None if state is None else (len(state.contributions), len(state.proposals), len(state.votes),
                                                len(state.bookings))
            results.append((folder.result().state_hash, dict(folder.outcomes.items()), sizes))
    assert results[0] == results[1]


class _Unordered(compact._Layers):
    __slots__ = ()
    _ordered = False


_HEADS = [b"", b"\x01\x71\xa0\xe4"]


@st.composite
def _layer_and_top(draw: Any) -> tuple[compact._Layers, dict[bytes, Any]]:
    """A table with a flat base of keys of one width (a CID-like shared head or none) and
    values all of one width or not, and a top layer of at most a quarter of its size: replaced
    rows, new rows, rows the base cannot hold (ints), a deleted row or a key of another
    width now and then (the whole merge's cases)."""
    width = draw(st.sampled_from([2, 3, 5, 36]))
    head = draw(st.sampled_from(_HEADS))
    key = st.binary(min_size=width, max_size=width).map(lambda b: (head + b)[:width])
    fixed = draw(st.integers(0, 3))  # (0: values of any width)
    value = st.binary(min_size=fixed, max_size=fixed) if fixed else st.binary(max_size=6)
    rows = draw(st.dictionaries(key, value, min_size=1, max_size=120))
    layer = (compact._Layers if draw(st.booleans()) else _Unordered)()
    for raw, v in rows.items():
        layer._set(raw, v)
    layer._merge_all()
    changes = draw(st.lists(st.tuples(st.one_of(st.sampled_from(sorted(rows)), key,
                                                st.binary(min_size=1, max_size=6)),
                                      st.one_of(value, value, value, st.integers(0, 9), st.just(compact._GONE))),
                            max_size=max(1, len(rows) // 4)))
    top: dict[bytes, Any] = {}
    for raw, v in changes:
        if v is compact._GONE and raw not in rows:
            continue
        top[raw] = v
    return layer, top


