"""Outsider floods (issue 11, item 8): what a non-member can make a node store is bounded
per author and in total, and expires; members are never limited; two nodes fed the same
entries in any order and batching end up holding the same entries and the same state.

Real signatures, real SQLite stores, the network ingest path (``ingest_scoped``, what a
sync session and the ingest process use), and an injected clock for expiry (no sleeping).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons import outsiders
from p2pcommons.dagcbor import CID
from p2pcommons.entry import MAX_DEPS, Entry, Signer, sign_entry
from p2pcommons.ingest import ingest
from p2pcommons.node.ingest_worker import ingest_scoped
from p2pcommons.outsiders import Limits
from p2pcommons.state import current_state, genesis_body, verify_state
from p2pcommons.state.engine import forget
from p2pcommons.state.rules import InvalidRules, outsider_policy, parse_assignment, rules_from_toml
from p2pcommons.store import Store

FOUNDER = Signer(hashlib.sha256(b"outsiders-founder").digest())
MEMBER = Signer(hashlib.sha256(b"outsiders-member").digest())


def signer(i: int) -> Signer:
    return Signer(hashlib.sha256(b"outsider-%d" % i).digest())


def bogus(i: int, n: int) -> list[CID]:
    """``n`` ids of entries that exist nowhere (parents that never arrive)."""
    return [CID(bytes([1, 0x71, 0x12, 32]) + hashlib.sha256(b"missing-%d-%d" % (i, k)).digest()) for k in range(n)]


_SIGNED = itertools.count(1)  # every entry is dated after every entry made before it


class Log:
    """One author's chain of signed entries, dated in the order they are made (an entry's
    time is never earlier than its parents', commons.md §2.4)."""

    def __init__(self, who: Signer, commons: CID) -> None:
        self.who, self.commons, self.entries = who, commons, []  # type: ignore[var-annotated]

    def add(self, kind: str, body: dict[str, object], deps: list[CID] | None = None) -> Entry:
        prev = self.entries[-1].id if self.entries else None
        entry = sign_entry(self.who, commons=self.commons, seq=len(self.entries) + 1, prev=prev, kind=kind,
                           body=body, deps=deps or [], timestamp=1_700_000_000_000 + next(_SIGNED))
        self.entries.append(entry)
        return entry


def genesis(membership: str, **rules: object) -> Entry:
    doc: dict[str, object] = {}
    for path, value in rules.items():
        section, _, key = path.partition("__")
        doc.setdefault(section, {})[key] = value  # type: ignore[index]
    body = genesis_body("Guarded", rules=doc, membership=membership)
    return sign_entry(FOUNDER, commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1_700_000_000_000)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.sqlite") as s:
        yield s
    forget()


def held(store: Store, commons: CID, who: Signer) -> int:
    return store.max_seq(commons, who.public_key)


def flood(commons: CID, authors: int, per_author: int) -> list[bytes]:
    """Each stranger: a join, then contributions, every one naming missing parents."""
    raws = []
    for i in range(authors):
        log = Log(signer(i), commons)
        log.add("join", {"name": f"stranger {i}"}, deps=bogus(i, MAX_DEPS))
        for k in range(per_author - 1):
            log.add("contribution", {"title": f"spam {i}.{k} " + "x" * 200, "kind": "work", "value": 1},
                    deps=bogus(i * 1000 + k, MAX_DEPS))
        raws += [e.raw for e in log.entries]
    return raws


def test_a_flood_by_a_non_member_of_an_invite_commons_stays_within_the_bound(store: Store) -> None:
    root = genesis("invite")
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    before = store.count(commons)
    raws = flood(commons, authors=40, per_author=25)
    report, _ = ingest_scoped(store, commons, raws)
    assert not report.rejected
    # default for an invite commons: a stranger's join and nothing else
    assert all(held(store, commons, signer(i)) == 1 for i in range(40))
    assert store.count(commons) - before == 40
    assert report.declined == 40 * 24
    state = current_state(store, commons)
    assert state.summary()["contributions"].get("pending", 0) == 0  # no review queue of spam
    assert state.waiting_count == 40  # their joins wait for parents that never arrive: bounded, and expire
    # and a second, bounded-in-total node: never more than max_total outsider entries
    tight = Limits(max_total=10)
    with Store(store.path.with_name("tight.sqlite")) as other:
        ingest_scoped(other, commons, [root.raw], tight)
        for start in range(0, len(raws), 97):  # in many batches, like a session
            ingest_scoped(other, commons, raws[start:start + 97], tight)
        assert other.count(commons) - 1 == 10
        assert other.outsider_entries(commons) == 10


def test_rules_can_let_outsiders_store_more(store: Store) -> None:
    root = genesis("invite", outsiders__allowed="any", outsiders__max_entries=3)
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    ingest_scoped(store, commons, flood(commons, authors=5, per_author=10))
    assert all(held(store, commons, signer(i)) == 3 for i in range(5))


def test_where_anyone_may_contribute_strangers_work_is_kept_and_only_waiting_entries_are_bounded(
        store: Store) -> None:
    """Open membership, contributions from anyone (the defaults): a stranger's work takes
    effect, so all of it is kept; entries naming parents that never arrive are bounded per
    stranger (max_waiting) and in total (max_total)."""
    root = genesis("open")
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    honest = Log(signer(500), commons)
    for k in range(100):
        honest.add("contribution", {"title": f"real work {k}", "kind": "work", "value": 1}, deps=[root.id])
    report, _ = ingest_scoped(store, commons, [e.raw for e in honest.entries])
    assert report.added_count == 100 and store.outsider_entries(commons) == 0
    limits = Limits(max_total=40, max_waiting=16)
    ingest_scoped(store, commons, flood(commons, authors=5, per_author=30), limits)
    assert all(held(store, commons, signer(i)) == 16 for i in range(2))
    assert store.outsider_entries(commons) == 40  # the total caps the rest
    assert current_state(store, commons).summary()["contributions"]["pending"] == 100


def test_where_anyone_may_contribute_an_entry_whose_parent_arrived_is_not_expired(store: Store) -> None:
    now = [5_000.0]
    limits = Limits(expire_after=60, clock=lambda: now[0])
    root = genesis("open")
    commons = root.id
    ingest_scoped(store, commons, [root.raw], limits)
    other = Log(signer(600), commons)
    parent = other.add("contribution", {"title": "arrives late", "kind": "work", "value": 1})
    early = Log(signer(601), commons)
    early.add("contribution", {"title": "sent before its parent", "kind": "work", "value": 1}, deps=[parent.id])
    early.add("contribution", {"title": "and its successor", "kind": "work", "value": 1})
    lost = Log(signer(602), commons)
    lost.add("contribution", {"title": "fine", "kind": "work", "value": 1})
    lost.add("contribution", {"title": "parent never comes", "kind": "work", "value": 1}, deps=bogus(9, 2))
    lost.add("contribution", {"title": "waits behind it", "kind": "work", "value": 1})
    ingest_scoped(store, commons, [e.raw for e in early.entries + lost.entries], limits)
    assert store.outsider_entries(commons) == 4
    ingest_scoped(store, commons, [parent.raw], limits)
    now[0] += 61
    assert outsiders.expire(store, limits) == {commons}
    assert held(store, commons, signer(601)) == 2  # its parent arrived: off probation, kept
    assert held(store, commons, signer(602)) == 1  # cut from the entry that still waits
    assert store.outsider_entries(commons) == 0
    verify_state(store, commons)


def test_outsider_rules_are_validated_and_default_by_policy() -> None:
    assert outsider_policy(rules_from_toml(None, membership="invite")) == ("join", 1)
    assert outsider_policy(rules_from_toml(None, membership="approval")) == ("join", 1)
    assert outsider_policy(rules_from_toml({"contribution": {"policy": "members"}})) == ("join", 1)
    assert outsider_policy(rules_from_toml(None)) == ("any", 2**53)
    assert parse_assignment("outsiders.max_entries=5") == ("outsiders.max_entries", 5)
    with pytest.raises(InvalidRules):
        parse_assignment("outsiders.allowed=everything")
    with pytest.raises(InvalidRules):
        parse_assignment("outsiders.max_entries=-1")
    # absent from the defaults: a commons that never sets them keeps its state hash
    assert "outsiders" not in rules_from_toml(None)


def test_members_are_never_limited_and_admission_lets_the_rest_in(store: Store) -> None:
    root = genesis("invite")
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    founder = Log(FOUNDER, commons)
    founder.entries.append(root)
    newcomer = Log(MEMBER, commons)
    join = newcomer.add("join", {"name": "newcomer"})
    admission = founder.add("admission", {"join": join.id}, deps=[join.id])
    work = [newcomer.add("contribution", {"title": f"work {k}", "kind": "work", "value": 1}, deps=[admission.id])
            for k in range(30)]
    # the newcomer's log arrives before the admission (another author's log, a later batch)
    report, _ = ingest_scoped(store, commons, [e.raw for e in newcomer.entries])
    assert held(store, commons, MEMBER) == 1 and report.declined == 30
    ingest_scoped(store, commons, [admission.raw])
    # the next session offers the rest again: now a member's, all of it is stored
    report, _ = ingest_scoped(store, commons, [e.raw for e in work])
    assert report.added_count == 30 and report.declined == 0
    # the founder's own long log is never limited either
    for k in range(100):
        founder.add("contribution", {"title": f"founder {k}", "kind": "work", "value": 1})
    report, _ = ingest_scoped(store, commons, [e.raw for e in founder.entries[2:]])
    assert report.added_count == 100 and not report.declined
    state = current_state(store, commons)
    assert state.member_info(MEMBER.public_key) is not None
    assert state.summary()["contributions"]["pending"] == 130


def test_an_admission_that_arrives_first_vouches_for_its_join(store: Store) -> None:
    """Even with the outsider quota full, a join a member admitted is stored."""
    root = genesis("invite")
    commons = root.id
    tight = Limits(max_total=2)
    ingest_scoped(store, commons, [root.raw], tight)
    ingest_scoped(store, commons, flood(commons, authors=3, per_author=1), tight)
    assert store.outsider_entries(commons) == 2
    newcomer = Log(MEMBER, commons)
    join = newcomer.add("join", {"name": "invited"})
    founder = Log(FOUNDER, commons)
    founder.entries.append(root)
    admission = founder.add("admission", {"join": join.id}, deps=[join.id])
    ingest_scoped(store, commons, [admission.raw], tight)
    report, _ = ingest_scoped(store, commons, [join.raw], tight)
    assert report.added_count == 1
    assert current_state(store, commons).member_info(MEMBER.public_key) is not None


def test_waiting_outsider_entries_expire_members_do_not(store: Store, tmp_path: Path) -> None:
    now = [1_000_000.0]
    limits = Limits(expire_after=3600, clock=lambda: now[0])
    root = genesis("invite")
    commons = root.id
    ingest_scoped(store, commons, [root.raw], limits)
    founder = Log(FOUNDER, commons)
    founder.entries.append(root)
    founder.add("contribution", {"title": "waits for ever", "kind": "work", "value": 1}, deps=bogus(7, 3))
    ingest_scoped(store, commons, [founder.entries[-1].raw], limits)
    raws = flood(commons, authors=20, per_author=3)  # joins waiting on parents that never arrive
    ingest_scoped(store, commons, raws, limits)
    state = current_state(store, commons)
    assert state.waiting_count == 21 and store.outsider_entries(commons) == 20
    now[0] += 1800
    assert outsiders.expire(store, limits) == set()
    assert store.count(commons) == 22
    now[0] += 1801
    assert outsiders.expire(store, limits) == {commons}
    assert store.count(commons) == 2 and store.outsider_entries(commons) == 0  # the member's waiting entry stays
    state = current_state(store, commons)
    assert state.waiting_count == 1 and not state.pending_joins()
    verify_state(store, commons)  # the cached and live state agree with a fold from scratch
    # an expired stranger may come back (and is on probation again)
    ingest_scoped(store, commons, raws[:3], limits)
    assert held(store, commons, signer(0)) == 1


def test_bundle_import_and_local_writes_are_not_screened(store: Store) -> None:
    root = genesis("invite")
    raws = [root.raw, *flood(root.id, authors=3, per_author=5)]
    report = ingest(store, raws, commons=root.id, atomic=True)
    assert report.added_count == len(raws) and report.declined == 0


def _deliver(store: Store, commons: CID, raws: list[bytes], rng: random.Random, limits: Limits) -> None:
    """Offer everything, in random batches, until nothing new is stored (a peer that holds
    everything re-sends what we lack at each session); bounded."""
    for _ in range(len(raws) + 2):
        before = store.count(commons)
        order = raws[:]
        rng.shuffle(order)
        order.sort(key=lambda raw: rng.random() < 0.5)  # some logs out of causal order too
        while order:
            size = rng.randint(1, 12)
            ingest_scoped(store, commons, order[:size], limits)
            order = order[size:]
        if store.count(commons) == before:
            return
    raise AssertionError("delivery did not settle")


@settings(max_examples=max(10, settings().max_examples // 2))
@given(seed=st.integers(0, 2**32 - 1), strangers=st.integers(0, 6), members=st.integers(0, 3),
       membership=st.sampled_from(["open", "invite", "approval"]))
def test_any_delivery_order_converges_and_keeps_every_member_entry(
        tmp_path_factory: pytest.TempPathFactory, seed: int, strangers: int, members: int, membership: str) -> None:
    """Two nodes receive the same members' history and strangers' flood in different random
    orders and batches (chains arriving before their admissions, entries before their
    dependencies): both end up holding every member's entry, the same entries, and the same
    state hash; and no stranger holds more than the rules allow."""
    rng = random.Random(seed)
    root = genesis(membership)
    commons = root.id
    founder = Log(FOUNDER, commons)
    founder.entries.append(root)
    member_logs = []
    for m in range(members):
        log = Log(Signer(hashlib.sha256(b"member-%d-%d" % (seed, m)).digest()), commons)
        join = log.add("join", {"name": f"m{m}"})
        admission = founder.add("admission", {"join": join.id}, deps=[join.id])
        for k in range(rng.randint(0, 5)):
            log.add("contribution", {"title": f"m{m}.{k}", "kind": "work", "value": 1}, deps=[admission.id])
        member_logs.append(log)
    raws = [e.raw for log in [founder, *member_logs] for e in log.entries]
    raws += flood(commons, authors=strangers, per_author=rng.randint(1, 4))
    limits = Limits(max_total=10_000)
    _, max_entries = outsider_policy(rules_from_toml(None, membership=membership))
    results = []
    for side in range(2):
        path = tmp_path_factory.mktemp("side") / f"s{side}.sqlite"
        with Store(path) as node:
            ingest_scoped(node, commons, [root.raw], limits)
            _deliver(node, commons, raws, random.Random(seed * 2 + side), limits)
            ids = {bytes(r) for r in node.iter_raw(commons)}
            state_hash = current_state(node, commons).state_hash
            for log in [founder, *member_logs]:
                assert node.max_seq(commons, log.who.public_key) == len(log.entries)
            for i in range(strangers):
                assert node.max_seq(commons, signer(i).public_key) <= max_entries
            results.append((ids, state_hash))
        forget()
    assert results[0] == results[1]


def test_fork_siblings_do_not_multiply_a_strangers_allowance(store: Store) -> None:
    """Ten different, validly signed joins at seq 1 by one stranger: one is kept."""
    root = genesis("invite")
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    stranger = signer(99)
    joins = [sign_entry(stranger, commons=commons, seq=1, prev=None, kind="join", body={"name": f"me {k}"},
                        timestamp=k).raw for k in range(10)]
    ingest_scoped(store, commons, joins[:4])
    ingest_scoped(store, commons, joins[4:])
    assert store.log_after_size(commons, stranger.public_key, 0)[0] == 1


def test_a_strangers_log_sent_before_its_parents_is_not_stuck(store: Store) -> None:
    """Where anyone may contribute, honest work often arrives before the parents it names
    (another author's log later in the same session).  It is held on probation up to
    max_waiting; once the parents arrive, the next offer stores the rest."""
    root = genesis("open")
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    other = Log(signer(700), commons)
    parent = other.add("contribution", {"title": "parent", "kind": "work", "value": 1})
    eager = Log(signer(701), commons)
    eager.add("contribution", {"title": "first", "kind": "work", "value": 1}, deps=[parent.id])
    for k in range(30):
        eager.add("contribution", {"title": f"more {k}", "kind": "work", "value": 1})
    report, _ = ingest_scoped(store, commons, [e.raw for e in eager.entries])
    assert held(store, commons, signer(701)) == 16 and report.declined == 15
    ingest_scoped(store, commons, [parent.raw])
    report, _ = ingest_scoped(store, commons, [e.raw for e in eager.entries])
    assert held(store, commons, signer(701)) == 31 and report.declined == 0
    assert store.outsider_entries(commons) == 0


def test_strangers_cannot_launder_waiting_entries_through_each_other(store: Store) -> None:
    """A stranger whose entries name another stranger's declined entries waits too: it is
    on probation and bounded, not stored for ever as if its parents were held."""
    root = genesis("open")
    commons = root.id
    limits = Limits(max_total=1000, max_waiting=4)
    ingest_scoped(store, commons, [root.raw], limits)
    decoy = Log(signer(800), commons)
    for k in range(10):
        decoy.add("contribution", {"title": f"decoy {k}", "kind": "work", "value": 1}, deps=bogus(800 + k, 1))
    rider = Log(signer(801), commons)
    for k in range(10):
        rider.add("contribution", {"title": f"rider {k}", "kind": "work", "value": 1}, deps=[decoy.entries[-1].id])
    ingest_scoped(store, commons, [e.raw for e in decoy.entries + rider.entries], limits)
    assert held(store, commons, signer(800)) == 4
    assert held(store, commons, signer(801)) == 4
    assert store.outsider_entries(commons) == 8


def test_a_members_device_is_an_insider_once_an_insider_binds_it(store: Store) -> None:
    """Issue 14: a device key bound by a member's ``device`` entry is never limited, as the
    member is not (in an invite commons a stranger's log is held to one join)."""
    root = genesis("invite")
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    founder = Log(FOUNDER, commons)
    founder.entries.append(root)
    laptop = Log(MEMBER, commons)
    bind = founder.add("device", {"device": MEMBER.public_key, "action": "add"})
    work = [laptop.add("contribution", {"title": f"laptop {k}", "kind": "work", "value": 1}, deps=[bind.id])
            for k in range(5)]
    report, _ = ingest_scoped(store, commons, [bind.raw])
    report, _ = ingest_scoped(store, commons, [e.raw for e in work])
    assert report.added_count == 5 and report.declined == 0
    state = current_state(store, commons)
    assert all(state.outcome(e.id).status == "applied" for e in work)  # type: ignore[union-attr]


def test_screening_a_batch_does_not_read_the_stored_log_it_counts(store: Store) -> None:
    """The bound on a stranger's log counts what it holds once per batch: from the log's
    index row (a log without forks holds exactly seqs 1..max_seq), not by reading its
    entries, which made each batch of a long sync cost more than the one before."""
    root = genesis("open")  # (the defaults: anyone may contribute)
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    log = Log(signer(1), commons)
    for k in range(60):
        log.add("contribution", {"title": f"c{k}", "kind": "work", "value": 1}, deps=[commons])
    ingest_scoped(store, commons, [e.raw for e in log.entries[:50]])
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    ingest_scoped(store, commons, [e.raw for e in log.entries[50:]])
    store._db.set_trace_callback(None)
    assert store.max_seq(commons, signer(1).public_key) == 60
    assert store.log_count(commons, signer(1).public_key) == 60
    assert not [s for s in statements if "length(raw)" in s or "count(*) FROM entries" in s]
    assert not [s for s in statements if "FROM vouched WHERE id IN" in s]  # nothing is vouched for


def test_the_genesis_policy_is_read_once_not_per_stored_batch(store: Store) -> None:
    """Until a fold records the rules in force, the screen falls back to the genesis's
    rules: a genesis never changes, so it is decoded once, not again for every batch."""
    root = genesis("open")
    commons = root.id
    ingest_scoped(store, commons, [root.raw])
    log = Log(signer(2), commons)
    for k in range(6):
        log.add("contribution", {"title": f"c{k}", "kind": "work", "value": 1}, deps=[commons])
    ingest_scoped(store, commons, [log.entries[0].raw])
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    for entry in log.entries[1:]:
        ingest_scoped(store, commons, [entry.raw])
    store._db.set_trace_callback(None)
    assert store.max_seq(commons, signer(2).public_key) == 6
    assert not [s for s in statements if s.startswith("SELECT raw FROM entries WHERE")]  # (get_raw: by id)
