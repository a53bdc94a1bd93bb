"""Version vectors computed once, at insert (store schema 8, :mod:`p2pcommons.vectors`).

The promises checked here:

- whatever order and batching the entries arrive in (forks included), every placed entry's
  stored vector equals the one computed from scratch over its causal past, and an entry
  waiting for a parent has none — also read back by a new connection with cold caches;
- ``in_past`` agrees with reachability through parents (where the log did not fork);
- deleting a log's entries (an outsider's log expiring) leaves every other entry's vector
  readable and exact, though other logs' first entries were based on them;
- a schema 7 store gets the vectors on first open;
- the rows cost what the entries add: a run of 10,000 joins stores no vector of thousands
  of slots, and neither do late joiners who name heads that have seen everyone.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from p2pcommons import vectors
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.store import SCHEMA_VERSION, Store
from p2pcommons.vectors import decode

from .support.histories import seed
from .support.signed import History, histories, new_store, scaled
from .test_store_causal import deliveries, from_scratch


def parents_of(entry: Entry) -> list[bytes]:
    return [d.raw for d in entry.deps] + ([entry.prev.raw] if entry.prev is not None else [])


def truth(store: Store, held: dict[bytes, Entry]) -> dict[bytes, dict[int, int] | None]:
    """Per held entry: its version vector from scratch (log number -> highest seq in its
    causal past, itself included), None where an ancestor is not held."""
    clocks = from_scratch(list(held.values()))
    out: dict[bytes, dict[int, int] | None] = {}

    def vector(eid: bytes) -> dict[int, int]:
        found = out.get(eid)
        if found is not None:
            return found
        entry = held[eid]
        merged: dict[int, int] = {}
        for parent in parents_of(entry):
            for log, seq in vector(parent).items():
                if seq > merged.get(log, 0):
                    merged[log] = seq
        log = store.log_id(entry.commons_id, entry.author)
        merged[log] = max(merged.get(log, 0), entry.seq)
        out[eid] = merged
        return merged

    for eid in held:
        if clocks[eid] is not None:
            vector(eid)
    return {eid: out.get(eid) for eid in held}


def insert_checking_vectors(store: Store, batches: list[list[Entry]],
                            ) -> tuple[dict[bytes, Entry], dict[bytes, dict[int, int] | None]]:
    """Store the batches in turn, and after each one check every entry held so far: its
    stored vector is the one from scratch.  The entries held and their vectors."""
    held: dict[bytes, Entry] = {}
    expected: dict[bytes, dict[int, int] | None] = {}
    for batch in batches:
        store.insert(batch)
        held.update((e.id.raw, e) for e in batch)
        expected = truth(store, held)
        assert {eid: store.vector(e.id) for eid, e in held.items()} == expected
    return held, expected


def assert_short_walk(store: Store, eid: bytes) -> None:
    """A read of the entry's vector walks at most 2 log2(level + 1) + 2 rows."""
    rows = [row for _, _, _, row in store._vectors.walk(eid)]
    assert len(rows) <= 2 * math.log2(rows[0].level + 1) + 2


def ancestors(held: dict[bytes, Entry], eid: bytes) -> set[bytes]:
    seen: set[bytes] = set()
    stack = [eid]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(parents_of(held[current]))
    return seen


@settings(max_examples=scaled(0.5))
@given(deliveries(), st.data())
def test_stored_vectors_equal_those_computed_from_scratch_in_any_insert_order(
        tmp_path: Path, delivery: tuple[History, list[list[Entry]]], data: st.DataObject) -> None:
    history, batches = delivery
    # Sometimes a batch also brings entries stored already (a peer re-sending some): the
    # store then stores the new ones alone, and what it computed for the others goes.
    sent: list[Entry] = []
    for i, batch in enumerate(batches):
        if sent and data.draw(st.booleans()):
            batches[i] = [*data.draw(st.lists(st.sampled_from(sent), max_size=3)), *batch]
        sent += batch
    store = new_store(tmp_path)
    try:
        held, expected = insert_checking_vectors(store, batches)
        forked = {author for author, _ in history.forks}
        for eid, later in held.items():
            if expected[eid] is None:
                continue
            past = ancestors(held, eid)
            for other in held.values():
                if expected[other.id.raw] is None or other.author in forked:
                    continue
                assert store.in_past(other.id, later.id) == (other.id.raw in past)
        path = store.path
    finally:
        store.close()
    with Store(path) as reopened:  # cold caches: every vector read back through its rows
        assert {eid: reopened.vector(e.id) for eid, e in held.items()} == expected
        for eid, vector in expected.items():
            if vector is not None:
                assert_short_walk(reopened, eid)


@settings(max_examples=scaled(1))
@given(deliveries(), st.sampled_from([2, 4, 8]), st.sampled_from([0, 1, 2, 256]))
def test_vectors_are_exact_when_few_tries_are_kept_and_parents_are_read_from_rows(
        tmp_path: Path, delivery: tuple[History, list[list[Entry]]], tries: int, budget: int) -> None:
    """The two ways :meth:`VectorIndex.place` avoids whole-vector work, taken on every
    entry: a vector built upwards from the nearest trie at hand (hardly any kept: most
    reads walk to a root, keeping each base on the way), and the slots a parent the
    primary has not seen adds, read from its rows down to the primary's past (a budget of
    0-2 slots sends most of them to the whole-vector merge instead, 256 to the rows)."""
    _, batches = delivery
    saved = vectors.TRIES_MAX, vectors.BEYOND_MAX
    vectors.TRIES_MAX, vectors.BEYOND_MAX = tries, budget
    store = new_store(tmp_path)
    try:
        insert_checking_vectors(store, batches)
    finally:
        vectors.TRIES_MAX, vectors.BEYOND_MAX = saved
        store.close()


@settings(max_examples=scaled(0.2))
@given(deliveries(), st.data())
def test_deleting_a_log_leaves_every_other_vector_readable(
        tmp_path: Path, delivery: tuple[History, list[list[Entry]]], data: st.DataObject) -> None:
    """An outsider's log that expires is cut from some seq on; entries of other logs whose
    first entry was based on a deleted one keep an exact vector (of the past they were
    stored with: a vector never shrinks)."""
    history, batches = delivery
    store = new_store(tmp_path)
    try:
        held = {e.id.raw: e for batch in batches for e in batch}
        for batch in batches:
            store.insert(batch)
        expected = truth(store, held)
        authors = sorted({e.author for e in history.entries})
        victim = data.draw(st.sampled_from(authors))
        cut = data.draw(st.integers(1, 4))
        log = store.log_id(history.commons, victim)
        store.put_on_probation(history.commons, {victim: cut}, now=0.0)
        store.expire_outsider_logs(1.0, lambda commons, author, first: first)
        kept = {eid: e for eid, e in held.items() if not (e.author == victim and e.seq >= cut
                                                         and store.log_id(e.commons_id, e.author) == log)}
        assert {eid: store.vector(e.id) for eid, e in kept.items()} == {eid: expected[eid] for eid in kept}
        path = store.path
    finally:
        store.close()
    with Store(path) as reopened:
        assert {eid: reopened.vector(e.id) for eid, e in kept.items()} == {eid: expected[eid] for eid in kept}


def _as_schema_7(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE entries DROP COLUMN vv")
    db.execute("PRAGMA user_version=7")
    db.commit()
    db.close()


@settings(max_examples=scaled(0.1))
@given(deliveries())
def test_a_schema_7_store_gets_its_vectors_on_first_open(
        tmp_path: Path, delivery: tuple[History, list[list[Entry]]]) -> None:
    _, batches = delivery
    store = new_store(tmp_path)
    for batch in batches:
        store.insert(batch)
    held = {e.id.raw: e for batch in batches for e in batch}
    expected = truth(store, held)
    path = store.path
    store.close()
    _as_schema_7(path)
    with Store(path) as upgraded:
        assert upgraded._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 10
        assert {eid: upgraded.vector(e.id) for eid, e in held.items()} == expected


def _row_slots(store: Store, but: int) -> list[int]:
    """The slots each stored vector row holds, but for one log's (-1: all)."""
    return [len(decode(bytes(blob)).flat) // 2 for (blob,) in store._db.execute(
        "SELECT vv FROM entries WHERE vv IS NOT NULL AND log != ?", (but,))]


def test_rows_cost_what_entries_add_with_many_authors(tmp_path: Path) -> None:
    """1,000 joins that depend only on the genesis, a member who sees them all, then 200
    late joiners, each naming the latest head (which has seen everyone) and writing a few
    entries: the rows' slots add up to a few per entry, not the 1,000+ of a whole vector."""
    founder = Signer(seed("vv-founder"))
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis",
                         body={"name": "many"}, timestamp=1)
    store = new_store(tmp_path)
    try:
        store.insert([genesis])
        joins = [sign_entry(Signer(seed(f"vv-join-{i}")), commons=genesis.id, seq=1, prev=None, kind="join",
                            deps=[genesis.id], body={}, timestamp=2) for i in range(1000)]
        store.insert(joins)
        # One member has seen every join (16 named per entry, as many as an entry may name).
        seer = Signer(seed("vv-seer"))
        head = None
        for seq in range(1, 64):
            head = sign_entry(seer, commons=genesis.id, seq=seq, prev=None if head is None else head.id,
                              kind="note", deps=[j.id for j in joins[16 * (seq - 1):16 * seq]], body={},
                              timestamp=3)
            store.insert([head])
        assert head is not None
        seer_log = store.log_id(genesis.id, seer.public_key)
        entries = 0
        for i in range(200):
            late = Signer(seed(f"vv-late-{i}"))
            prev = None
            for seq in range(1, 4):
                entry = sign_entry(late, commons=genesis.id, seq=seq, prev=None if prev is None else prev.id,
                                   kind="note", deps=[head.id] if prev is None else [], body={"i": i}, timestamp=4)
                store.insert([entry])
                prev = entry
                entries += 1
            head = prev
        vector = store.vector(head.id)
        assert vector is not None and len(vector) == 1 + 1000 + 1 + 200  # (the genesis' log too)
        # Stored whole, the vectors would hold about 1.3 million slots (the late joiners' 600
        # entries each cover 1,000-1,200 logs); as skip differences, a few slots per entry: the
        # 1,000 joins' slots are copied by the O(log level) rows that span the seer's entries.
        stored = 1 + 1000 + 63 + entries
        assert sum(_row_slots(store, but=-1)) < 10 * stored
        assert sum(_row_slots(store, but=seer_log)) < 5 * (1000 + 1 + entries)
        assert store.in_past(joins[0].id, head.id) is True
        assert store.in_past(head.id, joins[0].id) is False
    finally:
        store.close()


def test_a_long_run_of_first_entries_keeps_reads_short(tmp_path: Path) -> None:
    """Each newcomer's first entry names only the newcomer before it: every log's first
    entry, so the primary parents chain them all.  Reads stay short (skew-binary jumps), and
    the rows' slots add up to O(n log n), each row's to the levels it spans."""
    founder = Signer(seed("vv-run-founder"))
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", body={"name": "run"},
                         timestamp=1)
    store = new_store(tmp_path)
    count = 500
    try:
        store.insert([genesis])
        before = genesis
        chain = []
        for i in range(count):
            entry = sign_entry(Signer(seed(f"vv-run-{i}")), commons=genesis.id, seq=1, prev=None, kind="join",
                               deps=[before.id], body={}, timestamp=2)
            store.insert([entry])
            chain.append(entry)
            before = entry
        rows = [decode(bytes(blob)) for (blob,) in store._db.execute("SELECT vv FROM entries ORDER BY n")]
        slots = [len(row.flat) // 2 for row in rows]
        assert sum(slots) <= (count + 1) * math.log2(count + 1)
        assert all(len(row.flat) // 2 <= row.level + 1 for row in rows)  # (each step here adds one slot)
        path = store.path
    finally:
        store.close()
    with Store(path) as reopened:
        vector = reopened.vector(chain[-1].id)
        assert vector is not None and len(vector) == count + 1
        assert reopened.in_past(genesis.id, chain[-1].id) is True
        assert reopened.in_past(chain[count // 2].id, chain[count // 3].id) is False
        for entry in chain:
            assert_short_walk(reopened, entry.id.raw)


def test_a_missing_entry_has_no_vector(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    try:
        assert store.vector(CID.of(b"one")) is None
        assert store.in_past(CID.of(b"one"), CID.of(b"two")) is None
    finally:
        store.close()


@settings(max_examples=scaled(0.2))
@given(histories(max_authors=3, max_steps=12, forks=False), st.integers(1, 3))
def test_in_past_of_a_history_delivered_in_causal_order(tmp_path: Path, history: History, group: int) -> None:
    """In-order delivery in small groups (as an own log grows): every pair answered."""
    store = new_store(tmp_path)
    try:
        for at in range(0, len(history.entries), group):
            store.insert(history.entries[at:at + group])
        held = {e.id.raw: e for e in history.entries}
        for later in history.entries:
            past = ancestors(held, later.id.raw)
            for earlier in history.entries:
                assert store.in_past(earlier.id, later.id) == (earlier.id.raw in past)
    finally:
        store.close()


def test_rows_stay_small_when_each_prev_is_long_past(tmp_path: Path) -> None:
    """200 authors take turns, each entry naming the 15 newest entries of others: an entry's
    prev is 200 entries older, and its vector differs from the prev's in about 200 slots,
    from its newest parent's in a few.  The rows hold a few slots each (a row based on the
    prev held 161 on average), and every vector reads back exact."""
    founder = Signer(seed("vv-turns-founder"))
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", body={"name": "turns"},
                         timestamp=1)
    signers = [Signer(seed(f"vv-turns-{i}")) for i in range(200)]
    last: dict[int, Entry] = {}
    recent: list[Entry] = [genesis]
    store = new_store(tmp_path)
    try:
        store.insert([genesis])
        held = {genesis.id.raw: genesis}
        for round_ in range(5):
            for i, signer in enumerate(signers):
                prev = last.get(i)
                deps = [e.id for e in recent[-15:] if e.author != signer.public_key]
                entry = sign_entry(signer, commons=genesis.id, seq=round_ + 1, prev=None if prev is None else prev.id,
                                   kind="note", deps=deps, body={}, timestamp=2 + round_)
                store.insert([entry])
                held[entry.id.raw] = entry
                last[i] = entry
                recent.append(entry)
        slots = _row_slots(store, but=-1)
        assert sum(slots) / len(slots) < 10
        assert {eid: store.vector(e.id) for eid, e in held.items()} == truth(store, held)
    finally:
        store.close()


def _fork_seen_by_a_newer_parent() -> tuple[list[Entry], Entry, Entry]:
    """A forks at seq 1: A1 names X1, A1' names only the genesis.  B saw A1' (B1, then B2);
    C1 names A1 and B2.  B2 has the higher clock, and its vector reaches A's seq 1, but
    through A1': A1 (and X1 behind it) is not in B2's past, so C1 must merge A1's vector."""
    genesis = sign_entry(Signer(seed("vv-fork-founder")), commons=None, seq=1, prev=None, kind="genesis",
                         body={"name": "fork"}, timestamp=1)
    a, b, c, x = (Signer(seed(f"vv-fork-{name}")) for name in "abcx")
    x1 = sign_entry(x, commons=genesis.id, seq=1, prev=None, kind="note", deps=[genesis.id], body={}, timestamp=2)
    a1 = sign_entry(a, commons=genesis.id, seq=1, prev=None, kind="note", deps=[x1.id], body={"v": 1}, timestamp=3)
    a1_sibling = sign_entry(a, commons=genesis.id, seq=1, prev=None, kind="note", deps=[genesis.id],
                            body={"v": 2}, timestamp=3)
    b1 = sign_entry(b, commons=genesis.id, seq=1, prev=None, kind="note", deps=[a1_sibling.id], body={}, timestamp=4)
    b2 = sign_entry(b, commons=genesis.id, seq=2, prev=b1.id, kind="note", deps=[], body={}, timestamp=5)
    c1 = sign_entry(c, commons=genesis.id, seq=1, prev=None, kind="note", deps=[a1.id, b2.id], body={}, timestamp=6)
    return [genesis, x1, a1_sibling, b1, b2, a1, c1], x1, c1


@pytest.mark.parametrize("split", [(7,), (5, 7), (6, 7), (3, 6, 7), (1, 2, 3, 4, 5, 6, 7)])
def test_a_parent_on_a_forked_log_is_merged_though_the_primary_reaches_its_seq(
        tmp_path: Path, split: tuple[int, ...]) -> None:
    """Whatever batches bring the fork (the sibling stored earlier, in the same batch, or the
    whole fork before C1), C1's vector holds X1: the primary's reach of A's seq 1 is through
    the sibling, so A1's parent is merged."""
    entries, x1, c1 = _fork_seen_by_a_newer_parent()
    store = new_store(tmp_path)
    try:
        at = 0
        for end in split:
            store.insert(entries[at:end])
            at = end
        assert store.in_past(x1.id, c1.id) is True
        held = {e.id.raw: e for e in entries}
        assert {eid: store.vector(e.id) for eid, e in held.items()} == truth(store, held)
    finally:
        store.close()


@settings(max_examples=scaled(0.1))
@given(deliveries(), st.data())
def test_the_audit_finds_a_damaged_vector(tmp_path: Path, delivery: tuple[History, list[list[Entry]]],
                                          data: st.DataObject) -> None:
    """``p2pc verify`` (``Store.vector_faults``) passes every store built by inserts, in any
    order, and finds a row rewritten with a wrong vector (an entry's seq one lower)."""
    from p2pcommons.vectors import encode
    from p2pcommons.verify import verify_store

    _, batches = delivery
    store = new_store(tmp_path)
    try:
        for batch in batches:
            store.insert(batch)
        assert store.vector_faults() == 0
        assert not [p for p in verify_store(store).problems if "version vector" in p]
        placed = [(bytes(eid), int(log), int(seq)) for eid, log, seq in store.db.execute(
            "SELECT id, log, seq FROM entries WHERE vv IS NOT NULL ORDER BY n")]
        assume(placed)
        eid, log, seq = data.draw(st.sampled_from(placed))
        vector = store.vector(CID(eid))
        assert vector is not None
        vector[log] = seq - 1  # (its own slot one lower: 0 drops it)
        wrong = encode(0, 0, [x for pair in sorted(vector.items()) if pair[1] for x in pair])
        store.db.execute("UPDATE entries SET vv = ? WHERE id = ?", (wrong, eid))
        assert store.vector_faults() >= 1
        assert [p for p in verify_store(store).problems if "version vector" in p]
    finally:
        store.close()
