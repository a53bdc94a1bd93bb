"""Devices (protocols/commons.md §1.2, §3.8) as hypothesis properties over random histories of
members writing from several device keys, with bindings, revocations, forks, backdated
entries and syncs, delivered in random orders: convergence (also through an evicting fold),
standing that belongs to the member whatever key writes, strong removal of a revoked device
however it backdates, and forks that cost a device but never the member's standing.
Example counts: see each ``prop_settings`` (default profile)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import APPLIED, REJECTED, Folder, fold, genesis_body
from p2pcommons.state.archiving import MemoryArchive
from tests.test_state_histories import prop_settings

# Members: alice (steward), bob, carol.  Devices: keys 3-6, bound (or not) by the history.
MEMBERS = [Signer(bytes([0x41 + i]) * 32) for i in range(3)]
DEVICES = [Signer(bytes([0x61 + i]) * 32) for i in range(4)]
KEYS = MEMBERS + DEVICES
OWNER = {3: 1, 4: 1, 5: 2, 6: 2}  # which member each device key is meant for

ACTIONS = st.lists(st.tuples(st.integers(0, len(KEYS) - 1), st.integers(0, 9), st.integers(0, 1000)),
                   min_size=1, max_size=40)


class DeviceHistory:
    """Entries from an action list; each key has its own view (what its node holds)."""

    def __init__(self) -> None:
        body = genesis_body("devices", "", "CC0-1.0", founders=[MEMBERS[0].public_key])
        self.genesis = sign_entry(MEMBERS[0], commons=None, seq=1, prev=None, kind="genesis", body=body,
                                  timestamp=1_000_000)
        self.entries: list[Entry] = [self.genesis]
        self.by_id: dict[CID, Entry] = {self.genesis.id: self.genesis}
        self.view: list[set[CID]] = [{self.genesis.id} for _ in KEYS]
        self.last: list[Entry | None] = [None] * len(KEYS)
        self.last[0] = self.genesis
        self.time = 1_000_000
        self.twins: list[Entry] = []

    def heads(self, i: int) -> list[CID]:
        best: dict[bytes, Entry] = {}
        for cid in self.view[i]:
            e = self.by_id[cid]
            if e.author != KEYS[i].public_key and (e.author not in best or e.seq > best[e.author].seq):
                best[e.author] = e
        return sorted((e.id for e in best.values()), key=lambda c: c.raw)[:15]

    def write(self, i: int, kind: str, body: dict[str, Any], *, stale: bool = False, twin: bool = False) -> Entry:
        last = self.last[i]
        if twin:  # a restored backup signs the last seq again: a fork
            assert last is not None
            seq, prev, deps = last.seq, last.prev, list(last.deps)
        else:
            seq = 1 if last is None else last.seq + 1
            prev = None if last is None else last.id
            deps = [self.genesis.id] if stale else (self.heads(i) or [self.genesis.id])
        self.time += 1000
        entry = sign_entry(KEYS[i], commons=self.genesis.id, seq=seq, prev=prev, kind=kind, body=body, deps=deps,
                           timestamp=self.time)
        self.entries.append(entry)
        self.by_id[entry.id] = entry
        self.view[i].add(entry.id)
        if twin:
            self.twins.append(entry)
        else:
            self.last[i] = entry
        return entry

    def sync(self, i: int, j: int) -> None:
        self.view[i] |= self.view[j]
        self.view[j] |= self.view[i]

    def act(self, i: int, action: int, p: int) -> None:
        if action <= 1:
            self.sync(i, p % len(KEYS))
        elif action == 2 and i in (1, 2):  # a member joins, alice admits
            join = self.write(i, "join", {"name": f"m{i}"})
            self.sync(0, i)
            self.write(0, "admission", {"join": join.id})
            self.sync(0, i)
        elif action == 3:  # its member binds a device (sometimes someone else: adversarial)
            device = 3 + p % 4
            writer = OWNER[device] if p % 5 else i
            self.write(writer, "device", {"device": KEYS[device].public_key, "action": "add"})
            if p % 3:
                self.sync(device, writer)
        elif action == 4 and p % 2:
            self.write(i, "device", {"device": KEYS[3 + p % 4].public_key, "action": "revoke"})
        elif action == 5:
            self.write(i, "contribution", {"title": f"w{p}", "value": 1 + p % 5}, stale=p % 4 == 0)
        elif action == 6:
            mine = sorted((e for e in (self.by_id[c] for c in self.view[i]) if e.kind == "contribution"),
                          key=lambda e: e.id.raw)
            if mine:
                self.write(i, "review", {"contribution": mine[p % len(mine)].id, "verdict": "accept"})
        elif action == 7:
            proposals = sorted((e for e in (self.by_id[c] for c in self.view[i]) if e.kind == "rule_proposal"),
                               key=lambda e: e.id.raw)
            if proposals and p % 2:
                self.write(i, "vote", {"proposal": proposals[p % len(proposals)].id,
                                       "choice": "yes" if p % 3 else "no"})
            else:
                self.write(i, "rule_proposal", {"changes": {"review.accepts": 1 + p % 2}, "title": "t"})
        elif action == 8 and self.last[i] is not None and not self.last[i].is_genesis:  # type: ignore[union-attr]
            self.write(i, "contribution", {"title": "twin", "value": 2}, twin=True)
        elif action == 9 and p % 2:  # alice grants a role
            self.write(0, "role", {"member": MEMBERS[1 + p % 2].public_key, "role": "steward"})


def build(actions: list[tuple[int, int, int]]) -> DeviceHistory:
    h = DeviceHistory()
    for i in (1, 2):  # bob and carol are members with a laptop each; their phones come later, or not
        h.act(i, 2, 0)
        laptop = 3 if i == 1 else 5
        h.write(i, "device", {"device": KEYS[laptop].public_key, "action": "add"})
        h.sync(laptop, i)
    for i, action, p in actions:
        h.act(i, action, p)
    return h


def _past(h: DeviceHistory, cid: CID) -> set[CID]:
    seen: set[CID] = set()
    stack = [cid]
    while stack:
        x = stack.pop()
        if x in seen or x not in h.by_id:
            continue
        seen.add(x)
        e = h.by_id[x]
        stack.extend(e.deps)
        if e.prev is not None:
            stack.append(e.prev)
    return seen


@prop_settings(300)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1))
def test_convergence_with_devices(actions: list[tuple[int, int, int]], seed: int) -> None:
    """Same entry set ⇒ same state, whatever the order, batching, restarts or eviction."""
    h = build(actions)
    reference = fold(h.entries)
    rng = random.Random(seed)
    delivered = h.entries + rng.sample(h.entries, k=min(4, len(h.entries)))
    rng.shuffle(delivered)
    assert fold(delivered).state_hash == reference.state_hash
    for archive in (None, MemoryArchive()):
        folder = Folder(reference.commons, snapshot_every=rng.choice([1, 2, 4]), archive=archive)
        for entry in delivered:
            folder.add(entry)
            if rng.random() < 0.4:
                folder.run()
        result = folder.result()
        assert result.state_hash == reference.state_hash
        for entry in h.entries:
            assert result.outcome(entry.id) == reference.outcome(entry.id)


@prop_settings(300)
@given(actions=ACTIONS)
def test_standing_belongs_to_the_member(actions: list[tuple[int, int, int]]) -> None:
    """A bound device's applied entries count as its member's: no device key ever holds
    standing, a vote or a ledger line of its own, and each member votes at most once per
    proposal whatever the number of its devices."""
    h = build(actions)
    state = fold(h.entries)
    folder = state._folder
    s = folder.state
    assert s is not None
    bound = {key: d.member for key, d in s.devices.items() if d.binding is not None}
    for key in bound:
        assert key not in s.members
        assert key not in s.ledger
        assert all(voter != key for _, voter in s.votes)
    for proposal in s.proposals.values():
        voters = [*proposal.yes, *proposal.no]
        assert len(voters) == len(set(voters))
        assert all(v in s.members for v in voters)
    for entry in h.entries:
        if entry.author in bound and folder.outcomes.get(entry.id.raw, (None,))[0] == APPLIED \
                and entry.kind == "contribution":
            assert s.contributions[entry.id].author == bound[entry.author]


@prop_settings(300)
@given(actions=ACTIONS, tail=st.lists(st.integers(0, 2), max_size=4))
def test_a_revoked_device_cannot_backdate_around_its_revocation(actions: list[tuple[int, int, int]],
                                                                tail: list[int]) -> None:
    """After an applied revocation, the device's entries outside its causal past have no
    effect, wherever they sort (written from a stale view, or after it)."""
    h = build(actions)
    # Bob is a member with a laptop (key 3) whatever the random prefix did.
    h.sync(1, 0)
    join = h.write(1, "join", {"name": "bob"})
    h.sync(0, 1)
    h.write(0, "admission", {"join": join.id})
    h.sync(1, 0)
    h.write(1, "device", {"device": KEYS[3].public_key})
    h.sync(3, 1)
    h.write(3, "contribution", {"title": "before", "value": 1})
    h.sync(1, 3)
    for step in tail:
        if step == 0:
            h.write(3, "contribution", {"title": "backdated", "value": 9}, stale=True)
        elif step == 1:
            h.write(3, "device", {"device": KEYS[1].public_key, "action": "revoke"})
        else:
            h.write(3, "contribution", {"title": "concurrent", "value": 9})
    h.write(1, "device", {"device": KEYS[3].public_key, "action": "revoke"})
    h.write(3, "contribution", {"title": "after", "value": 9})
    state = fold(h.entries)
    raw = state._folder.outcomes
    for entry in h.entries:
        if entry.kind != "device" or entry.body.get("action") != "revoke" or raw.get(entry.id.raw)[0] != APPLIED:
            continue
        past = _past(h, entry.id)
        for other in h.entries:
            if other.author == entry.body["device"] and other.id not in past:
                assert raw.get(other.id.raw, (REJECTED,))[0] == REJECTED, other


@prop_settings(300)
@given(actions=ACTIONS, forker=st.integers(3, 6))
def test_no_device_fork_removes_a_members_standing(actions: list[tuple[int, int, int]], forker: int) -> None:
    """A device's fork voids that device's entries from the fork point, never its member's
    standing: the member's status, roles and admission are those of the history without the
    fork, and the member's own key still writes with effect."""
    h = build(actions)
    if h.last[forker] is None:
        h.write(forker, "contribution", {"title": "first", "value": 1})
    h.write(forker, "contribution", {"title": "twin", "value": 1}, twin=True)
    without = fold([e for e in h.entries if e not in h.twins]).state_hash  # noqa: F841 (for debugging)
    plain = fold([e for e in h.entries if e not in h.twins])._folder.state
    state = fold(h.entries)
    forked = state._folder.state
    assert plain is not None and forked is not None
    owner = OWNER[forker]
    member = MEMBERS[owner].public_key
    device = forked.devices.get(KEYS[forker].public_key)
    if device is None or device.member != member:
        return  # not a device of that member here: nothing to compare
    before, after = plain.members.get(member), forked.members.get(member)
    assert before is not None and after is not None
    # The device's own entries before the fork point may have changed roles only through
    # other members' entries; the member's status and admission never depend on the device.
    assert (after.status, after.since) == (before.status, before.since)
    if after.status == "active" and member not in state._folder.fork_seq:
        for view in h.view:
            h.view[owner] |= view
        entry = h.write(owner, "contribution", {"title": "carry on", "value": 1})
        assert fold(h.entries).outcome(entry.id).status != REJECTED  # type: ignore[union-attr]


def test_work_a_key_signed_before_it_was_bound_is_credited_to_its_member() -> None:
    """Regression: a contribution a key wrote as a stranger (pending, outside) and accepted
    after the key was bound as a member's device went to the key's own ledger line, so the
    member's standing was split across keys."""
    h = DeviceHistory()
    h.act(1, 2, 0)  # bob is a member
    early = h.write(3, "contribution", {"title": "before the binding", "value": 5})  # a stranger's, pending
    h.sync(1, 3)
    h.write(1, "device", {"device": KEYS[3].public_key})
    h.sync(0, 1)
    h.write(0, "review", {"contribution": early.id, "verdict": "accept"})
    s = fold(h.entries)._folder.state
    assert s is not None
    assert s.ledger == {MEMBERS[1].public_key: (1, 5)}


THRESHOLDS = [{"num": 1, "den": 2}, {"num": 2, "den": 3}, {"num": 0, "den": 1}, {"num": 3, "den": 4}]
STEWARD_KEYS = [Signer(bytes([0x71 + i]) * 32) for i in range(5)]


@prop_settings(200)
@given(stewards=st.integers(1, 5), threshold=st.sampled_from([None, *THRESHOLDS]),
       approvers=st.lists(st.integers(0, 6), max_size=8), seed=st.integers(0, 2**32 - 1))
def test_recovery_needs_exactly_the_quorum_the_rules_name(stewards: int, threshold: dict[str, int] | None,
                                                          approvers: list[int], seed: int) -> None:
    """A new key is bound to a member who lost every device exactly when the distinct
    approvals by holders of ``recovery.roles`` (stewards) reach ``recovery.threshold``
    (default a majority) of those eligible, the member excepted; approvals by anyone else
    count for nothing; the delivery order does not matter."""
    founders = STEWARD_KEYS[:stewards]
    rules = {} if threshold is None else {"recovery": {"threshold": threshold}}
    body = genesis_body("recovery", "", "CC0-1.0", founders=[f.public_key for f in founders], rules=rules)
    genesis = sign_entry(founders[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1)
    lost, new = MEMBERS[1], DEVICES[0]
    join = sign_entry(lost, commons=genesis.id, seq=1, prev=None, kind="join", body={}, deps=[genesis.id],
                      timestamp=2)
    admit = sign_entry(founders[0], commons=genesis.id, seq=2, prev=genesis.id, kind="admission",
                       body={"join": join.id}, deps=[join.id], timestamp=3)
    entries = [genesis, join, admit]
    last: dict[bytes, Entry] = {founders[0].public_key: admit, lost.public_key: join}
    signers = [*founders, MEMBERS[2], lost]  # a stranger and the member itself approve too (no effect)
    approving: set[bytes] = set()
    for n, index in enumerate(approvers):
        who = signers[index % len(signers)]
        prev = last.get(who.public_key)
        entry = sign_entry(who, commons=genesis.id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind="device",
                           body={"device": new.public_key, "action": "recover", "member": lost.public_key},
                           deps=[admit.id], timestamp=10 + n)
        last[who.public_key] = entry
        entries.append(entry)
        if who in founders:
            approving.add(who.public_key)
    random.Random(seed).shuffle(entries)
    state = fold(entries, genesis.id)._folder.state
    assert state is not None
    quorum = threshold or {"num": 1, "den": 2}
    expected = len(approving) * quorum["den"] > stewards * quorum["num"]
    device = state.devices.get(new.public_key)
    assert (device is not None) == expected
    if device is not None:
        assert device.member == lost.public_key
