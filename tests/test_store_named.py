"""Which stored entries name which entries in their body (store schema 10, ``named``).

Why: before the state fold takes a stranger's entry's effect out (its key forked), it asks
whether any other entry names that entry (a review, a vote, a reference); that was a scan
of every stored entry's bytes, 1.8 s at a million entries.  The promise checked here: in
any insert order and batching, with entries stored twice and logs expired, the table lists
exactly the stored entries' body links (not their parents), and a store from before
schema 10 gets it on first open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from p2pcommons import store as store_module
from p2pcommons.dagcbor import CID, links_in
from p2pcommons.entry import Entry, sign_entry
from p2pcommons.store import SCHEMA_VERSION, Store

from .support.signed import SIGNERS, T0, links, new_store, scaled, values


@st.composite
def linking_histories(draw: st.DrawFn) -> tuple[list[Entry], list[list[Entry]]]:
    """A commons whose entries' bodies link to earlier entries (or to ids of nothing held,
    or hold the link's byte pattern inside a byte string), and depend on earlier ones; then
    its entries in any order, cut into batches, some sent twice."""
    founder = SIGNERS[0]
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis",
                         body={"name": "named"}, timestamp=T0)
    entries = [genesis]
    heads: dict[bytes, Entry] = {}
    for step in range(draw(st.integers(1, 14))):
        signer = draw(st.sampled_from(SIGNERS[:4]))
        prev = heads.get(signer.public_key)
        earlier = st.sampled_from(entries).map(lambda e: e.id)
        body: dict[str, Any] = {"step": step}
        for name, strategy in (("names", st.lists(earlier, max_size=3)), ("other", st.lists(links, max_size=2)),
                               ("blob", st.just(b"\xd8\x2a\x58\x25\x00" + bytes(36))), ("more", values)):
            if draw(st.booleans()):
                body[name] = draw(strategy)
        deps = draw(st.lists(earlier, max_size=2, unique_by=lambda c: c.raw))
        kind = draw(st.sampled_from(("review", "vote", "note")))
        entry = sign_entry(signer, commons=genesis.id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind=kind, body=body,
                           deps=deps or [genesis.id], timestamp=T0 + 1000 * (step + 1))
        heads[signer.public_key] = entry
        entries.append(entry)
    shuffled = draw(st.permutations(entries))
    cuts = sorted(draw(st.lists(st.integers(0, len(shuffled)), max_size=3)))
    batches, start = [], 0
    for cut in [*cuts, len(shuffled)]:
        batches.append(shuffled[start:cut])
        start = cut
    if draw(st.booleans()):
        batches.append(shuffled[: draw(st.integers(1, len(shuffled)))])
    return entries, batches


def body_links(entry: Entry) -> set[bytes]:
    return {link for link in links_in(entry.body) if len(link) == 36}


def listed(store: Store) -> set[tuple[bytes, bytes]]:
    """``(key, naming entry's id)`` of every row of ``named``."""
    return {(bytes(key), bytes(entry_id)) for key, entry_id in store.db.execute(
        "SELECT named.target, entries.id FROM named JOIN entries ON entries.n = named.n")}


def truth(held: list[Entry]) -> set[tuple[bytes, bytes]]:
    return {(link[4:12], entry.id.raw) for entry in held for link in body_links(entry)}


def check(store: Store, held: list[Entry]) -> None:
    assert listed(store) == truth(held)
    assert store.named_faults() is None  # (what ``p2pc verify`` asks)
    count = store.db.execute("SELECT count(*) FROM named").fetchone()[0]
    assert count == len(truth(held))  # (no row left naming a deleted entry)
    commons = held[0].id if held[0].commons is None else held[0].commons
    for target in held:
        found = {entry_id for _, entry_id in store.entries_naming(commons, target.id.raw, target.author)}
        assert found == {e.id.raw for e in held if e.author != target.author and target.id.raw in body_links(e)}


@settings(max_examples=scaled(0.5))
@given(linking_histories(), st.integers(0, 5), st.integers(1, 3))
def test_named_lists_exactly_the_stored_entries_body_links(
        tmp_path: Path, history: tuple[list[Entry], list[list[Entry]]], expired: int, cut: int) -> None:
    entries, batches = history
    store = new_store(tmp_path)
    try:
        held: dict[bytes, Entry] = {}
        for batch in batches:
            store.insert(batch)
            held.update((e.id.raw, e) for e in batch)
            if entries[0].id.raw in held:
                check(store, list(held.values()))
        # An outsider's log expires from seq ``cut`` on: its entries leave ``named`` too.
        author = SIGNERS[1 + expired % 3].public_key
        commons = entries[0].id
        store.put_on_probation(commons, {author: cut}, 0.0)
        store.expire_outsider_logs(1.0, lambda _c, _a, first: first)
        kept = [e for e in held.values() if e.author != author or e.seq < cut]
        check(store, kept)
        path = store.path
    finally:
        store.close()
    with Store(path) as reopened:
        check(reopened, kept)


@settings(max_examples=scaled(0.2))
@given(linking_histories())
def test_rows_numbered_by_sqlite_are_named_as_rows_numbered_in_order(
        tmp_path: Path, history: tuple[list[Entry], list[list[Entry]]]) -> None:
    """Where row numbers near their end make SQLite choose them (the savepoint path), the
    named rows are found by id, and come out as on the usual path."""
    entries, batches = history
    stores = [new_store(tmp_path), new_store(tmp_path)]
    try:
        for batch in batches:
            stores[0].insert(batch)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(store_module, "_LAST_ROW_NUMBER", 0)
                stores[1].insert(batch)
            assert listed(stores[0]) == listed(stores[1])
        assert listed(stores[1]) == truth(entries)
    finally:
        for store in stores:
            store.close()


def test_a_schema_9_store_gets_its_named_table_on_first_open(tmp_path: Path) -> None:
    """Opening a store written before schema 10 fills ``named`` from the stored entries, and
    a lookup then reads the table's primary key, not the entries."""
    founder, reviewer = SIGNERS[0], SIGNERS[1]
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", body={"name": "old"}, timestamp=T0)
    offered = sign_entry(founder, commons=genesis.id, seq=1, prev=None, kind="contribution",
                         body={"title": "t", "value": 1}, deps=[genesis.id], timestamp=T0 + 1)
    review = sign_entry(reviewer, commons=genesis.id, seq=1, prev=None, kind="review",
                        body={"contribution": offered.id, "verdict": "accept"}, deps=[offered.id], timestamp=T0 + 2)
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        store.insert([genesis, offered, review])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE named")  # (as schema 9 left it)
    db.execute("PRAGMA user_version=9")
    db.close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 10
        assert listed(store) == {(offered.id.raw[4:12], review.id.raw)}
        assert [found for _, found in store.entries_naming(genesis.id, offered.id.raw, founder.public_key)] \
            == [review.id.raw]
        assert not store.entries_naming(genesis.id, genesis.id.raw, founder.public_key)  # (a parent, not named)
        another = CID(bytes([1, 0x71, 0x12, 32]) + bytes(32))
        assert not store.entries_naming(another, offered.id.raw, founder.public_key)
        plan = " ".join(str(row[-1]) for row in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT entries.raw FROM named "
            "CROSS JOIN entries ON entries.n = named.n CROSS JOIN logs ON logs.log = entries.log "
            "WHERE named.target = ? AND logs.commons = ? AND logs.author != ?", (b"", b"", b"")))
        assert "SEARCH named USING PRIMARY KEY" in plan and "SCAN" not in plan


@settings(max_examples=scaled(0.2))
@given(linking_histories(), st.data())
def test_the_audit_finds_a_damaged_named_table(
        tmp_path: Path, history: tuple[list[Entry], list[list[Entry]]], data: st.DataObject) -> None:
    """``p2pc verify`` (``Store.named_faults``) finds a row of ``named`` missing, added, or
    moved to another entry (the state fold trusts the table to say that nothing names a
    stranger's entry)."""
    from p2pcommons.verify import verify_store

    entries, _ = history
    store = new_store(tmp_path)
    try:
        store.insert(entries)
        assert not [p for p in verify_store(store).problems if "name which" in p]
        rows = [(bytes(t), int(n)) for t, n in store.db.execute("SELECT target, n FROM named")]
        last = int(store.db.execute("SELECT max(n) FROM entries").fetchone()[0])
        damage = data.draw(st.sampled_from(["missing", "added", "moved"] if rows else ["added"]))
        if damage == "added":
            store.db.execute("INSERT INTO named (target, n) VALUES (?, ?)", (bytes(8), last))
        else:
            target, n = data.draw(st.sampled_from(rows))
            store.db.execute("DELETE FROM named WHERE target = ? AND n = ?", (target, n))
            if damage == "moved":
                store.db.execute("INSERT OR IGNORE INTO named (target, n) VALUES (?, ?)", (target, n % last + 1))
                assume((target, n % last + 1) not in rows)
        assert store.named_faults() is not None
        assert [p for p in verify_store(store).problems if "name which" in p]
    finally:
        store.close()
