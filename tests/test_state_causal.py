"""Version vectors as persistent tries (p2pcommons/causal.py): exact, and linear.

The fold answers every causal-past question from per-entry version vectors.  Stored densely
they cost O(authors) per entry — quadratic for concurrent joins (each a new author).  These
tests pin (1) the trie's operations against a dense model, (2) every fold record's vector
against the causal past computed from the entries themselves, and (3) the total size of a
fold's vectors, counted in trie slots (never in time), linear in the entries for 10,000
concurrent joins.
"""

from __future__ import annotations

import gc
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons import causal
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import Folder, checkpoint, genesis_body
from p2pcommons.state.fold import bulk
from p2pcommons.state.positions import parents
from tests.test_state_histories import ACTIONS, build, prop_settings

_INDEX = st.integers(0, 40_000)
_SLOTS = st.lists(st.tuples(_INDEX, st.integers(0, 2**40)), max_size=30)


def _model(pairs: list[tuple[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for i, x in pairs:
        out[i] = x
    return {i: x for i, x in out.items() if x}


@prop_settings(300)
@given(a=_SLOTS, b=_SLOTS, probes=st.lists(_INDEX, max_size=20))
def test_trie_operations_match_a_dense_model(a: list[tuple[int, int]], b: list[tuple[int, int]],
                                              probes: list[int]) -> None:
    """get, put, merge (slot-wise max), minimum, covers, diff/apply and items agree with a
    plain dict, for slots at every depth, values set, overwritten and cleared."""
    va, vb = causal.of(a), causal.of(b)
    ma, mb = _model(a), _model(b)
    assert dict(causal.items(va)) == ma and list(causal.items(va)) == sorted(ma.items())
    for i in [*probes, *ma, *mb]:
        assert causal.get(va, i) == ma.get(i, 0)
    merged = causal.merge(va, vb)
    expect = {i: max(ma.get(i, 0), mb.get(i, 0)) for i in {*ma, *mb}}
    assert dict(causal.items(merged)) == expect
    assert dict(causal.items(causal.merge(vb, va))) == expect
    assert causal.merge(va, va) is va
    # A difference applied to its base gives the other vector, either way round.
    assert dict(causal.items(causal.apply(va, causal.diff(va, vb)))) == mb
    assert dict(causal.items(causal.apply(vb, causal.diff(vb, va)))) == ma
    assert causal.diff(va, va) == []
    assert causal.dense(va, 50) == [ma.get(i, 0) for i in range(50)]
    # Stability: the slot-wise minimum, and whether one vector covers another.
    lowest = causal.minimum([va, vb, merged])
    assert dict(causal.items(lowest)) == {i: min(ma[i], mb[i]) for i in ma.keys() & mb.keys()}
    assert causal.minimum([va]) == va
    assert causal.covers(va, vb) == all(ma.get(i, 0) >= x for i, x in mb.items())
    assert causal.covers(merged, va) and causal.covers(merged, vb) and causal.covers(va, causal.EMPTY)


_DENSE = st.lists(st.tuples(st.integers(0, 100), st.integers(1, 2**40)), max_size=60)


@prop_settings(300)
@given(steps=st.lists(_DENSE, min_size=1, max_size=6))
def test_a_chain_of_differences_decodes_to_the_same_trie(steps: list[list[tuple[int, int]]]) -> None:
    """An archive segment's records (one author's, each covering the one before) decode by
    applying their differences to the empty vector, in one dense pass where the slots are
    dense (``causal._from_dense``): the result is the very trie that puts and merges build,
    tuple for tuple (not just the same slots), at one and two levels; and merging and
    differencing dense leaves agree with the model."""
    vector = causal.EMPTY
    model: dict[int, int] = {}
    flat: list[int] = []
    for pairs in steps:
        step = causal.of(pairs)
        new = causal.merge(vector, step)
        for i, x in _model(pairs).items():
            model[i] = max(model.get(i, 0), x)
        assert dict(causal.items(new)) == model
        assert causal.merge(step, vector) == new
        difference = causal.diff(vector, new)
        assert causal.apply(vector, difference) == new
        flat += difference
        vector = new
        assert causal.apply(causal.EMPTY, flat) == vector


def _brute_force(entries: list[Entry]) -> dict[bytes, dict[bytes, int]]:
    """Per entry, per author, the highest seq in its causal past (itself included), from the
    parent links alone."""
    by_id = {e.id.raw: e for e in entries}
    memo: dict[bytes, dict[bytes, int]] = {}
    for start in entries:
        stack = [start.id.raw]
        while stack:
            raw = stack[-1]
            if raw in memo:
                stack.pop()
                continue
            todo = [p for p in parents(by_id[raw]) if p in by_id and p not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            entry = by_id[raw]
            vv: dict[bytes, int] = {}
            for p in parents(entry):
                for author, seq in memo.get(p, {}).items():
                    vv[author] = max(vv.get(author, 0), seq)
            vv[entry.author] = max(vv.get(entry.author, 0), entry.seq)
            memo[raw] = vv
    return memo


@prop_settings(60)
@given(actions=ACTIONS)
def test_every_record_holds_its_exact_causal_past(actions: list[tuple[int, int, int]]) -> None:
    """Over random histories without forks, fed in a shuffled-by-construction order (the
    history's, then reversed), every ready entry's vector is exactly its causal past: the
    questions the handlers ask (in_past, seen_seq, an exclusion's seq) have their answers."""
    history = build(actions, forks=False)
    commons = history.entries[0].id
    expected = _brute_force(history.entries)
    for order in (history.entries, history.entries[::-1]):
        folder = Folder(commons)
        for entry in order:
            folder.add(entry)
        folder.run()
        for raw, meta in folder.meta.items():
            got = {folder.authors[i]: seq for i, seq in causal.items(meta.vv)}
            want = {a: s for a, s in expected[raw].items() if s}
            assert got == want
            for author, seq in want.items():
                assert folder.seen_seq(author, meta) == seq


def _joins(n: int) -> list[Entry]:
    founder = Signer(b"\x01" * 32)
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("joins", founders=[founder.public_key], membership="open"))
    entries = [genesis]
    for i in range(n):
        signer = Signer((i + 2).to_bytes(32, "big"))
        entries.append(sign_entry(signer, commons=genesis.id, seq=1, prev=None, kind="join",
                                  body={"name": "j"}, deps=[genesis.id], timestamp=2 + i))
    return entries


def _fold(entries: list[Entry]) -> tuple[Folder, int, int]:
    """The fold, the slots in its version vectors, and the bytes it holds (tracemalloc:
    every allocation made while folding and still alive, the entries themselves excluded)."""
    gc.collect()
    tracemalloc.start()
    folder = Folder(entries[0].id)
    with bulk():
        for entry in entries:
            folder.add(entry)
        folder.run()
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(folder.authors) == len(entries)
    _, slots = causal.count_nodes(m.vv for m in folder.meta.values())
    return folder, slots, held


def _resumed(folder: Folder, entries: list[Entry]) -> tuple[int, Folder]:
    """A checkpoint's size, and the fold it loads back into."""
    by_id = {e.id.raw: e for e in entries}
    blob = checkpoint.dump(folder)
    loaded = checkpoint.load(blob, folder.commons, by_id.get)
    assert loaded is not None
    return len(blob), loaded


def test_concurrent_joins_cost_linear_causal_structure() -> None:
    """10,000 joins that depend only on the genesis (10,000 new authors): the fold's version
    vectors hold a bounded number of slots per entry (at most three trie levels of 32 at this
    width), and per entry the fold — and its checkpoint — hold no more at 10,000 joins than at
    2,500.  Dense vectors held (index + 1) slots each: 3.1 M at 2,500 (26 MiB), 50 M at
    10,000 (390 MiB).  A resumed fold has the same vectors."""
    small_entries, large_entries = _joins(2_500), _joins(10_000)
    small, small_slots, small_held = _fold(small_entries)
    large, large_slots, large_held = _fold(large_entries)
    assert large_slots <= 3 * 32 * 10_001
    assert large_slots / 10_001 <= 1.25 * small_slots / 2_501
    assert large_held / 10_001 <= 1.3 * small_held / 2_501, (small_held, large_held)
    small_blob, _ = _resumed(small, small_entries)
    large_blob, resumed = _resumed(large, large_entries)
    assert large_blob / 10_001 <= 1.3 * small_blob / 2_501, (small_blob, large_blob)
    for raw, meta in large.meta.items():
        assert list(causal.items(resumed.meta[raw].vv)) == list(causal.items(meta.vv))
    assert resumed.result().state_hash == large.result().state_hash


_LEAF = st.lists(st.tuples(st.integers(0, 31), st.integers(0, 2**40)), max_size=40)


@prop_settings(300)
@given(a=_LEAF, b=_LEAF)
def test_the_difference_of_two_leaves_is_the_general_walks(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    """``diff`` of two one-leaf vectors (its fast path, ``_diff_leaves``) is what the general
    walk gives: the same flat list, either way round, of leaves of any lengths."""
    va, vb = causal.of(a), causal.of(b)
    assert va[0] == vb[0] == 0
    for x, y in ((va, vb), (vb, va), (va, va), (causal.EMPTY, va), (va, causal.EMPTY)):
        general: list[int] = []
        causal._diff(x[1], y[1], 0, 0, general)
        assert causal.diff(x, y) == general


# (Slot values from 1: a vector's slots are seqs, and 0 is an absent slot.  ``put`` of a 0
# makes a leaf of zeros, which ``merge`` and ``merge_roots`` may represent differently.)
_TWO_LEVELS = st.lists(st.tuples(st.integers(0, 1023), st.integers(1, 2**40)), max_size=40)


@prop_settings(300)
@given(a=_TWO_LEVELS, b=_TWO_LEVELS, derived=st.booleans())
def test_the_merge_of_two_level_roots_is_the_general_merge(a: list[tuple[int, int]], b: list[tuple[int, int]],
                                                           derived: bool) -> None:
    """``merge_roots`` (the in-order intake's merge of two-level vectors, up to 1,024
    authors) gives what ``merge`` gives, either way round, for vectors that share leaves
    (one raised from the other, as a parent's from its ancestor's) or not, of any widths;
    and returns a vector itself where it covers the other, as ``merge`` does."""
    va = causal.put(causal.of(a), 1023, 1)  # (two levels, whatever the slots)
    vb = causal.put(causal.of(b), 512, 1)
    if derived:  # raised from ``va``: every leaf it does not touch is ``va``'s own
        vb = va
        for index, value in b:
            vb = causal.put(vb, index, max(value, causal.get(vb, index)))
    assert va[0] == vb[0] == causal.BITS
    for x, y in ((va, vb), (vb, va), (va, va)):
        merged = causal.merge(x, y)
        got = causal.merge_roots(x[1], y[1])
        assert got == merged[1]
        assert dict(causal.items((causal.BITS, got))) == dict(causal.items(merged))
        if causal.covers(x, y):
            assert got is x[1]


@prop_settings(300)
@given(st.lists(st.lists(st.tuples(_INDEX, st.integers(1, 2**40)), max_size=30), max_size=6), st.data())
def test_merging_many_at_once_is_merging_them_in_turn(slots: list[list[tuple[int, int]]],
                                                      data: st.DataObject) -> None:
    """``merge_all`` (an entry's parents merged in one walk) gives the slots of ``merge``
    in turn, of vectors of any depths, some the same object or raised from another (as a
    parent's from its ancestor's)."""
    vectors = [causal.of(pairs) for pairs in slots]
    for at in range(len(vectors)):
        if at and data.draw(st.booleans()):  # raised from an earlier one, or that one again
            vectors[at] = causal.merge(vectors[data.draw(st.integers(0, at - 1))], vectors[at])
    merged = causal.EMPTY
    for vector in vectors:
        merged = causal.merge(merged, vector)
    assert dict(causal.items(causal.merge_all(vectors))) == dict(causal.items(merged))


def test_merging_many_returns_the_one_that_covers_the_rest() -> None:
    """Where one vector covers the others (an entry's prev has seen what its other parents
    saw) ``merge_all`` returns it, whatever the order: differences against it then skip
    every subtree it shares."""
    base = causal.of((index * 37, index + 1) for index in range(2_000))
    raised = causal.put(base, 5_000, 9)
    other = causal.put(causal.put(base, 37, 1), 74, 2)  # (lowered: below ``raised`` in every slot)
    for order in ([base, raised], [raised, base], [base, other, raised], [other, raised, base]):
        assert causal.merge_all(order) is raised
    both = causal.merge_all([causal.put(base, 5_000, 10), causal.put(base, 6_000, 1)])
    assert causal.diff(base, both) == [5_000, 10, 6_000, 1]
