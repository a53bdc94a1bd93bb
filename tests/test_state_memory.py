"""Eviction of the archived prefix (p2pcommons/state/fold.py, ``Folder(archive=…)``): the same
state hash and outcomes as a fold that holds everything, and memory that does not grow with
the number of entries beyond the state."""

from __future__ import annotations

import gc
import importlib
import random
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.stateful import rule

from p2pcommons.dagcbor import CID, encode
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import Folder, fold, genesis_body
from p2pcommons.state.archive import StoreArchive
from p2pcommons.state.engine import current_state, forget
from p2pcommons.state.fold import Archive, MemoryArchive
from p2pcommons.store import Store
from tests.test_state_histories import _ACTORS, _CODES, ACTIONS, build, prop_settings

fold_module = importlib.import_module("p2pcommons.state.fold")  # (the package's `fold` is the function)
engine_module = importlib.import_module("p2pcommons.state.engine")
intake_module = importlib.import_module("p2pcommons.state.intake")


@prop_settings(400)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1), in_store=st.booleans(),
       skewed=st.sampled_from([None, None, 1, 2, 3]))
def test_evicting_fold_equals_holding_fold(actions: list[tuple[int, int, int]], seed: int, in_store: bool,
                                           skewed: int | None) -> None:
    """Any arrival order (late entries, forks, removals, retired members included, and a
    writer whose clock runs behind, so its entries are backdated), with eviction after every
    snapshot: same hash, same outcome (status, reason, stability) per entry as a fold from
    scratch that holds everything — with the archive in memory, or in a store's segment
    table (the engine's)."""
    history = build(actions, skewed=skewed)
    event(f"backdated entries: {'some' if skewed is not None and fold(history.entries)._folder.floors else 'none'}")
    _check_evicting_fold(history, seed, in_store)


# Founders and members act first; then strangers (actors 4 and 5: members only if they
# joined and were admitted before), so the members fall silent and nothing bounds eviction.
_STRANGER_ACTIONS = st.lists(
    st.tuples(st.integers(6, 7), st.integers(0, 100), st.integers(0, 1000)), min_size=1, max_size=40)


@prop_settings(300)
@given(prefix=ACTIONS, suffix=_STRANGER_ACTIONS, seed=st.integers(0, 2**32 - 1), in_store=st.booleans())
def test_evicting_fold_equals_holding_fold_when_members_fall_silent(
        prefix: list[tuple[int, int, int]], suffix: list[tuple[int, int, int]], seed: int, in_store: bool) -> None:
    """As above, for histories whose members fall silent while others write on: the
    eviction front is then unbounded (every applied position may be archived), and the
    entries that sort back there (a silent member's, a stranger's) must still come out as a
    fold of everything says."""
    _check_evicting_fold(build(prefix + suffix), seed, in_store, silent_after=(1, 2, 3))


# Forks for certain: an actor's newest entry gets a twin (action 12 with p % 3 == 0), among
# other actions before and after, so that records are archived after the fork too.
_FORK_CODE = next(i for i, code in enumerate(_CODES) if code == 12)
_FORKS = st.lists(st.tuples(st.integers(0, len(_ACTORS) - 1), st.just(_FORK_CODE),
                            st.integers(0, 333).map(lambda p: 3 * p)), min_size=1, max_size=3)


@prop_settings(300)
@given(before=ACTIONS, forks=_FORKS, after=ACTIONS, seed=st.integers(0, 2**32 - 1), in_store=st.booleans())
def test_evicting_fold_equals_holding_fold_after_forks(
        before: list[tuple[int, int, int]], forks: list[tuple[int, int, int]], after: list[tuple[int, int, int]],
        seed: int, in_store: bool) -> None:
    """As above, with forks for certain among the actions (a member's or a stranger's newest
    entry gets a twin): a forked key holds no stability, so eviction goes on past its later
    entries, and its records from the fork point on are archived by id; a twin that arrives
    once its seq is archived is rejected there (its key had forked) or refolds (a new fork
    point).  Before, any fork switched eviction off."""
    _check_evicting_fold(build(before + forks + after), seed, in_store, silent_after=(1, 2, 3, 4096))


# A stranger (actor 4, unless the actions before made them a member) signs one entry, the
# members write on (so that it is archived), some of them naming it or binding the stranger's
# key as a device; then a twin of that entry arrives last: a new fork point over the archive.
_STRANGER = 4
_OBSERVERS = st.sets(st.sampled_from(["review", "refs", "admission", "bind", "sync", "again"]))


@prop_settings(300)
@given(before=ACTIONS, kind=st.sampled_from(["join", "contribution", "resource_use"]),
       between=st.lists(st.tuples(st.integers(0, 3), st.integers(0, len(_CODES) - 1), st.integers(0, 1000)),
                        min_size=4, max_size=30),
       observers=_OBSERVERS, seed=st.integers(0, 2**32 - 1), in_store=st.booleans())
def test_a_strangers_fork_over_archived_entries_equals_a_holding_fold(
        before: list[tuple[int, int, int]], kind: str, between: list[tuple[int, int, int]], observers: set[str],
        seed: int, in_store: bool) -> None:
    """A key that forks at a seq the archive holds loses its entries' effect from there.  For
    a stranger's key, whose archived entries were rejected or recorded pending and which no
    other key's entry has in its past, the fold takes that effect out of the state at the
    archive's base instead of refolding (``Folder._void_archived``); otherwise (a member's
    key, an admission, review or contribution naming the entry, a device entry naming the
    key while its join is its only pending one) it refolds.  Either way: as a fold holding everything."""
    history = build(before)
    body: dict[str, Any] = {"join": {"name": "stranger"}, "contribution": {"title": "drive-by", "value": 2},
                            "resource_use": {"resource": CID.of(b"no such resource"), "amount": 1}}[kind]
    first = history.write(_STRANGER, kind, body)
    if "again" in observers:
        history.write(_STRANGER, "contribution", {"title": "more", "value": 1})
    if "sync" in observers:  # the members see the stranger's entries (their next ones have them in their past)
        for member in range(4):
            history.view[member] |= history.view[_STRANGER]
    steward = 0
    for actor, code, p in between:
        history.act(actor, _CODES[code % len(_CODES)], p)
        if p % 7 == 0 and "review" in observers and kind == "contribution" and first.id in history.view[steward]:
            history.write(steward, "review", {"contribution": first.id, "verdict": "accept"}, (first.id,))
        if p % 7 == 3 and "refs" in observers and kind == "contribution" and first.id in history.view[steward]:
            history.write(steward, "contribution", {"title": "builds on it", "value": 1, "refs": [first.id]},
                          (first.id,))
        if p % 7 == 1 and "admission" in observers and kind == "join" and first.id in history.view[steward]:
            history.write(steward, "admission", {"join": first.id}, (first.id,))
        if p % 7 == 2 and "bind" in observers:
            history.write(steward, "device", {"device": first.author, "action": "add"})
    history.time += 7
    twin = sign_entry(Signer(bytes([_STRANGER + 1]) * 32), commons=history.commons, seq=first.seq, prev=first.prev,
                      kind="contribution", body={"title": "fork twin", "value": 3}, deps=list(first.deps),
                      timestamp=history.time)
    history.entries.append(twin)
    _check_evicting_fold(history, seed, in_store, silent_after=(1, 2, 3, 4096), last=twin)


def _check_evicting_fold(history: Any, seed: int, in_store: bool, silent_after: tuple[int, ...] = (1, 3, 4096),
                         last: Entry | None = None) -> None:
    """A fold of ``history`` archiving into memory or (``in_store``) into a store's segment
    table, in an arrival order drawn from ``seed`` (``last`` after all the others), compared
    with a fold holding everything."""
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        archive: Archive = MemoryArchive()
        if in_store:
            store.insert(history.entries)
            archive = StoreArchive(store, history.commons)
            store.archive_open(archive.space, 1)
        _compare_evicting_fold(history, seed, archive, silent_after, last)


def _compare_evicting_fold(history: Any, seed: int, archive: Archive, silent_after: tuple[int, ...],
                           last: Entry | None = None) -> None:
    reference = fold(history.entries)
    rng = random.Random(seed)
    arrival = [entry for entry in history.entries if entry is not last]
    mode = rng.random()
    if mode < 0.25:  # (fully shuffled arrivals seldom let anything be archived)
        rng.shuffle(arrival)
    elif mode < 0.5:  # log by log, as sync and bundles deliver them: other logs' entries come late
        arrival.sort(key=lambda e: (e.commons is not None, e.author, e.seq))
    else:  # mostly in order, a few late
        for _ in range(3):
            if len(arrival) > 2:
                arrival.append(arrival.pop(rng.randrange(1, len(arrival))))
    folder = Folder(history.commons, snapshot_every=rng.choice([1, 2, 3, 8]), archive=archive)
    folder.silent_after = rng.choice(silent_after)  # (silent members: eviction goes past them)
    if last is not None:
        arrival.append(last)
    for entry in arrival:
        folder.add(entry)
        if rng.random() < 0.7 or entry is last:
            folder.run()
    result = folder.result()
    event(f"{type(archive).__name__}: {'evicted' if folder.evicted else 'nothing evicted'}"
          f"{', refolded' if folder.refolds else ''}{', voided without a refold' if folder.voided else ''}")
    if folder.fork_seq:
        event(f"forked; forked keys' records archived: {'some' if _forked_archived(folder, archive) else 'none'}")
    assert result.state_hash == reference.state_hash
    assert result.entry_count == reference.entry_count
    for entry in history.entries:
        assert result.outcome(entry.id) == reference.outcome(entry.id), entry
    assert result.stable_summary() == reference.stable_summary()
    assert sorted(o.id.raw for o in result.outcomes()) == sorted(o.id.raw for o in reference.outcomes())


def _forked_archived(folder: Folder, archive: Archive) -> bool:
    """Whether a forked key's record from its fork point on was archived."""
    if isinstance(archive, StoreArchive):
        return archive._store.archive_forked_count(archive.space) > 0
    assert isinstance(archive, MemoryArchive)
    return any(m[3] >= folder.fork_seq.get(folder.authors[m[2]], 2**63) for m, _, _ in archive.rows.values())


# The store-backed engine with eviction after every snapshot (snapshots as often as possible),
# across deliveries in random order, duplicates and restarts: the engine machine again.

from tests.test_state_engine import EngineMachine  # noqa: E402
from tests.test_state_histories import examples  # noqa: E402


class EvictingEngineMachine(EngineMachine):
    def __init__(self) -> None:
        super().__init__()
        self._restores: list[Callable[[], None]] = []
        self.patch(Folder.__init__.__kwdefaults__, "snapshot_every", 1)

    def patch(self, where: dict[str, Any] | ModuleType, name: str, value: Any) -> None:
        """Set ``name`` in ``where`` (a module, or a function's keyword defaults) for this
        machine's run; ``teardown`` puts every value back."""
        if isinstance(where, dict):
            saved = where[name]
            where[name] = value
            self._restores.append(lambda: where.__setitem__(name, saved))
        else:
            saved = getattr(where, name)
            setattr(where, name, value)
            self._restores.append(lambda: setattr(where, name, saved))

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            for restore in reversed(self._restores):
                restore()


EvictingEngineMachine.TestCase.settings = EngineMachine.TestCase.settings.__class__(
    max_examples=examples(60), stateful_step_count=25, deadline=None)
TestEvictingEngine = EvictingEngineMachine.TestCase


class RefoldingEngineMachine(EvictingEngineMachine):
    """The evicting engine machine with feed batches of two entries: a first fold applies
    and evicts every other entry, and a call that finds at least two new entries and no
    fewer than the fold holds folds afresh in the store's order (``engine._refold_fresh``),
    so afresh folds, resumed checkpoints and incremental feeds alternate."""

    def __init__(self) -> None:
        super().__init__()
        self.patch(engine_module, "FEED_BATCH", 2)

    @rule()
    def bundle(self) -> None:
        """Everything not delivered yet at once, each author's log in turn (a bundle)."""
        batch, self.pending = sorted(self.pending, key=lambda e: (e.author, e.seq)), []
        self.store.insert(batch)
        self.held.extend(batch)


RefoldingEngineMachine.TestCase.settings = EngineMachine.TestCase.settings.__class__(
    max_examples=examples(60), stateful_step_count=25, deadline=None)
TestRefoldingEngine = RefoldingEngineMachine.TestCase


class GeneralIntakeEngineMachine(RefoldingEngineMachine):
    """The refolding engine machine with every entry taken by the general intake
    (``intake.FAST_AUTHORS`` 0, as past 1,024 authors): each entry's version vector then
    comes from its store row, read with its bytes, set over its base's vector the fold
    holds (``Archive.vector_at_hand``), not from its parents' vectors merged."""

    def __init__(self) -> None:
        super().__init__()
        self.patch(intake_module, "FAST_AUTHORS", 0)


GeneralIntakeEngineMachine.TestCase.settings = EngineMachine.TestCase.settings.__class__(
    max_examples=examples(60), stateful_step_count=25, deadline=None)
TestGeneralIntakeEngine = GeneralIntakeEngineMachine.TestCase


# Memory: folding twice as many entries of a history whose state stays the same size must
# not take (much) more memory.


def _quiet_history(n: int, silent: int = 0) -> tuple[list[Entry], CID]:
    """Genesis with a non-rivalrous resource, 6 members, then ``n`` resource uses in turns
    (each writer depends on the others' heads): the state does not grow with ``n``.
    ``silent``: that many more founders who never write."""
    signers = [Signer(bytes([i + 1]) * 32) for i in range(6)]
    quiet = [Signer(bytes([i + 101]) * 32).public_key for i in range(silent)]
    pipe = {"name": "pipe", "rivalrous": False, "quota": 0, "period": 0, "unit": "l"}
    body = genesis_body("quiet", founders=[s.public_key for s in signers] + quiet, resources=[pipe])
    genesis = sign_entry(signers[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1)
    commons = genesis.id
    resource = CID.of(encode(pipe))
    last: dict[bytes, Entry] = {signers[0].public_key: genesis}
    entries = [genesis]
    for i in range(n):
        signer = signers[i % len(signers)]
        prev = last.get(signer.public_key)
        deps = [e.id for a, e in last.items() if a != signer.public_key]
        entry = sign_entry(signer, commons=commons, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind="resource_use",
                           body={"resource": resource, "amount": 1 + i % 5}, deps=deps, timestamp=2 + i)
        last[signer.public_key] = entry
        entries.append(entry)
    return entries, commons


def _strangers_history(n: int) -> tuple[list[Entry], CID]:
    """An open commons whose two founders never write after the genesis, then ``n`` entries
    by three strangers in turns (each depending on the others' heads): uses of a resource
    only members may use, so each is refused and the state does not grow with ``n``."""
    founders = [Signer(bytes([i + 1]) * 32) for i in range(2)]
    strangers = [Signer(bytes([i + 201]) * 32) for i in range(3)]
    pipe = {"name": "pipe", "rivalrous": False, "quota": 0, "period": 0, "unit": "l"}
    body = genesis_body("strangers", founders=[s.public_key for s in founders], resources=[pipe])
    genesis = sign_entry(founders[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1)
    resource = CID.of(encode(pipe))
    last: dict[bytes, Entry] = {}
    entries = [genesis]
    for i in range(n):
        signer = strangers[i % len(strangers)]
        prev = last.get(signer.public_key)
        deps = [genesis.id] + [e.id for a, e in last.items() if a != signer.public_key]
        entry = sign_entry(signer, commons=genesis.id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind="resource_use",
                           body={"resource": resource, "amount": 1}, deps=deps, timestamp=2 + i)
        last[signer.public_key] = entry
        entries.append(entry)
    return entries, genesis.id


def _engine_memory(tmp: Path, entries: list[Entry], commons: CID, *, joined: bool = False) -> tuple[int, int, str]:
    """(peak, held afterwards) tracemalloc bytes of the engine folding ``entries`` from the
    store, and the state hash.  ``joined``: the store held the genesis alone first, folded
    (a node that joined), then the rest came log by log (each author's log in turn, as a
    bundle holds them)."""
    forget()
    with Store(tmp / f"{'joined' if joined else 'm'}{len(entries)}.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        if joined:
            store.insert(entries[:1])
            current_state(store, commons, persist=False)
            store.insert(sorted(entries[1:], key=lambda e: (e.author, e.seq)))
        else:
            store.insert(entries)
        gc.collect()
        tracemalloc.start()
        state = current_state(store, commons, persist=False)
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        digest = state.state_hash
        forget()
    return peak, held, digest


def _assert_flat(tmp: Path, history: Callable[[int], tuple[list[Entry], CID]]) -> None:
    """The engine folding ``history(10000)`` holds and peaks at about what it does folding
    ``history(5000)`` (both past its first feed batches), with the state hash of a fold of
    everything.  Without eviction the fold holds ~300 bytes per entry (one record, a log
    slot, the entry table); with it, what remains per entry must be far below that."""
    small, commons = history(5000)
    large, _ = history(10000)
    peak_small, held_small, hash_small = _engine_memory(tmp, small, commons)
    peak_large, held_large, hash_large = _engine_memory(tmp, large, commons)
    assert hash_small == fold(small).state_hash
    assert hash_large == fold(large).state_hash
    assert held_large - held_small < 5000 * 20, (held_small, held_large)
    assert peak_large - peak_small < 5000 * 20, (peak_small, peak_large)


def test_memory_does_not_grow_with_entries_beyond_the_state(tmp_path: Path) -> None:
    _assert_flat(tmp_path, _quiet_history)


def test_archive_spaces_are_per_fold_and_dead_ones_are_dropped(tmp_path: Path) -> None:
    """Two processes folding one commons (a daemon and a CLI command) archive into their own
    spaces; a resumed fold copies the checkpoint's; spaces of dead processes are dropped."""
    from p2pcommons.state import engine

    entries, commons = _quiet_history(1500)
    forget()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries)
        first = current_state(store, commons, persist=True)
        space = engine._archive_space(engine._live[engine._key(store, commons)])
        assert space is not None and first._folder.evicted > 0
        assert store.archive_count(space) == first._folder.evicted
        # Another process's space, and a dead process's one.
        store.archive_open(b"other-live" + bytes(8), 1)
        store.archive_open(commons.raw + b"deadbeef", 2**22 + 12345)
        forget()
        resumed = current_state(store, commons)  # a new "process": resumes, copies, cleans up
        new_space = engine._archive_space(engine._live[engine._key(store, commons)])
        assert new_space not in (None, space)
        assert resumed.state_hash == fold(entries).state_hash
        spaces = {s for s, _ in store.archive_spaces()}
        assert new_space in spaces and space in spaces  # the checkpoint still names the old one
        assert commons.raw + b"deadbeef" not in spaces
        assert all(o is not None for o in (resumed.outcome(e.id) for e in entries[:50]))
        forget()


def test_memory_stays_bounded_when_a_member_falls_silent(tmp_path: Path, monkeypatch: Any) -> None:
    """A member who stops writing (a drive-by join in an open commons, here a founder who
    never writes) no longer holds the fold's eviction back for ever: once silent for
    ``Folder.silent_after`` clock ticks, positions past their latest entry are archived
    (an entry of theirs written from that old view refolds, as a retired member's does).
    Before, eviction stopped: about 350 bytes more per entry."""
    monkeypatch.setattr(fold_module, "SILENT_AFTER", 1024, raising=False)  # (the plateau comes sooner)
    _assert_flat(tmp_path, lambda n: _quiet_history(n, silent=1))


def test_memory_stays_bounded_when_every_member_is_silent(tmp_path: Path, monkeypatch: Any) -> None:
    """Strangers writing into a commons whose members have all fallen silent (founders who
    set it up and went quiet, outsiders contributing): no member's next entry bounds the
    eviction, so everything up to the newest snapshot is archived.  Before, a stability set
    with nobody left in it stopped eviction altogether: every record stayed in memory (a
    node that synced 1,000,000 outsiders' entries held 830 MB after its fold)."""
    monkeypatch.setattr(fold_module, "SILENT_AFTER", 1024, raising=False)
    _assert_flat(tmp_path, _strangers_history)


def test_strangers_logs_arriving_one_after_another_are_taken_once(tmp_path: Path) -> None:
    """Strangers' contributions received log by log (as a bundle holds them) into a commons
    whose members are silent: each later log sorts before what was archived, so its entries
    go into the archive's base state as late strangers' entries, a group at a time.  Each
    must go in once: before, the entries of earlier groups, still held at or before the
    base, went in again with every later group (the contributions' count grew past the
    table's rows, and the state hash could not be computed), and the work grew with the
    square of the groups."""
    founders = [Signer(bytes([i + 1]) * 32) for i in range(2)]
    strangers = [Signer(bytes([i + 201]) * 32) for i in range(3)]
    body = genesis_body("open", founders=[s.public_key for s in founders])
    genesis = sign_entry(founders[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1)
    entries = [genesis]
    for k, signer in enumerate(strangers):
        prev = None
        for seq in range(1, 701):
            prev = sign_entry(signer, commons=genesis.id, seq=seq, prev=None if prev is None else prev.id,
                              kind="contribution", body={"title": f"work {k}.{seq}", "value": 1},
                              deps=[genesis.id] if prev is None else [], timestamp=10 * seq + k)
            entries.append(prev)
    reference = fold(entries)
    for archive in (MemoryArchive(), None):
        with Store(tmp_path / f"s{archive is None}.sqlite") as store:
            if archive is None:
                store.insert(entries)
                archive = StoreArchive(store, genesis.id)
                store.archive_open(archive.space, 1)
            folder = Folder(genesis.id, snapshot_every=8, archive=archive)
            folder.silent_after = 4
            for at in range(0, len(entries), 50):  # log by log (the order built), groups of 50
                for entry in entries[at:at + 50]:
                    folder.add(entry)
                folder.run()
            assert folder.evicted > 0
            result = folder.result()
            assert len(folder.state.contributions) == len(list(folder.state.contributions)) == 2100
            assert result.state_hash == reference.state_hash
            for entry in entries:
                assert result.outcome(entry.id) == reference.outcome(entry.id)


def test_many_new_entries_in_log_order_fold_in_the_stores_order(tmp_path: Path) -> None:
    """A node holding little of a commons (the genesis, after joining) imports a bundle:
    each author's log in turn, so most entries name other logs' entries that come later.
    Taken in that order, the fold held every such entry waiting for its parents (its
    missing parents' ids and the entry), then applied them in one cascade: memory grew with
    the bundle.  When the new entries are at least as many as the fold holds, it folds
    afresh in the store's order instead (parents first), as a fresh node does."""
    small, commons = _quiet_history(5000)
    large, _ = _quiet_history(10000)
    peak_small, _, hash_small = _engine_memory(tmp_path, small, commons, joined=True)
    peak_large, _, hash_large = _engine_memory(tmp_path, large, commons, joined=True)
    assert hash_small == fold(small).state_hash
    assert hash_large == fold(large).state_hash
    assert peak_large - peak_small < 5000 * 20, (peak_small, peak_large)


def _forked_history(n: int) -> tuple[list[Entry], CID]:
    """:func:`_quiet_history` with forks early on: two different entries at seq 1 by a
    stranger, and a sibling of one writing member's first entry, so that both keys' logs are
    forked from there for good."""
    entries, commons = _quiet_history(n)
    stranger = Signer(bytes([77]) * 32)
    siblings = [sign_entry(stranger, commons=commons, seq=1, prev=None, kind="resource_use",
                           body={"resource": entries[1].body["resource"], "amount": amount},
                           deps=[commons], timestamp=2) for amount in (1, 2)]
    first = entries[2]  # (the second member's first entry)
    member = Signer(bytes([2]) * 32)
    assert first.author == member.public_key and first.seq == 1
    siblings.append(sign_entry(member, commons=commons, seq=1, prev=None, kind="resource_use",
                               body={"resource": first.body["resource"], "amount": 4}, deps=list(first.deps),
                               timestamp=first.time))
    return entries[:3] + siblings + entries[3:], commons


def test_memory_stays_bounded_after_forks(tmp_path: Path) -> None:
    """A stranger who signs two different entries at one seq (a fork), and a member whose
    first entry gets a sibling, lose those entries and every later one and hold no
    stability, so nothing they write bounds eviction, and the others' entries are archived
    as before.  Before, any fork anywhere switched eviction off for good: every record stayed
    in memory (about 500 bytes more per entry)."""
    _assert_flat(tmp_path, _forked_history)


def test_a_refold_from_scratch_peaks_as_a_fresh_fold_does(tmp_path: Path, monkeypatch: Any) -> None:
    """A founder silent since the genesis writes from that view: a member's entry sorting
    before the archived positions, which takes effect there, so the fold starts again from
    scratch.  The engine drops its live fold and folds afresh from the store's order, in
    batches: its memory peaks as the first fold's did.  Before, the fold read every entry
    back into memory at once (46.9 MB against 6.7 at 20,000 entries; about 2 GB at a million)."""
    monkeypatch.setattr(fold_module, "SILENT_AFTER", 1024, raising=False)
    from p2pcommons.state import engine

    entries, commons = _quiet_history(8000, silent=1)
    quiet = Signer(bytes([101]) * 32)
    late = sign_entry(quiet, commons=commons, seq=1, prev=None, kind="resource_use",
                      body={"resource": entries[1].body["resource"], "amount": 1}, deps=[commons], timestamp=2)
    forget()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute("PRAGMA synchronous=OFF")
        store.insert(entries)
        gc.collect()
        tracemalloc.start()
        current_state(store, commons, persist=False)
        _, first_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        live = engine._live[engine._key(store, commons)]
        assert live.folder.evicted > 7000
        store.insert([late])
        gc.collect()
        tracemalloc.start()
        state = current_state(store, commons, persist=False)
        _, late_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert late_peak < 2 * first_peak, (first_peak, late_peak)
        again = engine._live[engine._key(store, commons)]
        assert again is not live and again.folder.refolds == 0 and again.folder.evicted > 7000
        assert state.state_hash == fold([*entries, late]).state_hash
        forget()
