"""Random multi-author commons histories, as real nodes would write them, for the state
property tests (tests/test_state_properties.py, tests/test_state_engine.py).

Each simulated author has a *view* (the causally closed set of entries it holds).  Writing
uses the view the way :func:`p2pcommons.author.append` uses the store: ``prev`` is the
author's last entry, ``deps`` the heads of other authors it has seen (≤16) plus what the
body refers to.  Authors sync by merging views.  Adversarial actions are part of the action
alphabet: unauthorized rule changes and sanctions, backdated entries (written from a stale
view), concurrent mutual removals, forks, double votes, votes on unknown proposals,
over-quota resource use, reviews by non-reviewers.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import genesis_body


def examples(n: int) -> int:
    """Examples for one property: ``n`` under the default profile, scaled with the profile
    tests/conftest.py loads from P2PC_HYPOTHESIS_PROFILE (quick 0.1x, thorough 10x, soak 100x)."""
    scale = settings.default.max_examples / 100
    return max(5, int(n * scale))


def prop_settings(n: int) -> Any:
    return settings(max_examples=examples(n), deadline=None)


SIGNERS = [Signer(bytes([i + 1]) * 32) for i in range(6)]
STEWARDS = (0, 1)  # two founding stewards, so mutual removal can happen
FAKE = CID.of(b"no such proposal")

CHANGES: list[dict[str, Any]] = [
    {"review.accepts": 2},
    {"review.accepts": 1},
    {"rule_change.threshold": {"num": 2, "den": 3}},
    {"membership.policy": "approval", "membership.approvals": 2},
    {"membership.policy": "open"},
    {"contribution.policy": "members"},
    {"values.code": 150},
    {"review.roles": ["member"]},
    {"no.such.rule": 1},  # invalid: rejected with a reason
]

# Weighted alphabet: (action code, weight).  Syncs, admissions, reviews and votes are common
# so histories get rich; forks and backdating are rare so they don't swamp everything.
_WEIGHTS = [(0, 9), (1, 3), (2, 4), (3, 5), (4, 4), (5, 2), (6, 4), (7, 1), (8, 2), (9, 2), (10, 1), (11, 1),
            (12, 1), (13, 1), (14, 1)]
_CODES = [code for code, weight in _WEIGHTS for _ in range(weight)]
_ACTORS = [0, 0, 1, 1, 2, 3, 4, 5]

ACTIONS = st.lists(
    st.tuples(st.integers(0, len(_ACTORS) - 1), st.integers(0, len(_CODES) - 1), st.integers(0, 1000)),
    min_size=1,
    max_size=45,
)


class History:
    """Builds entries from an action list; deterministic for a given list."""

    def __init__(self, *, forks: bool = True, t0: int = 1_000_000, skewed: int | None = None,
                 rules: dict[str, Any] | None = None) -> None:
        founders = [SIGNERS[i].public_key for i in STEWARDS]
        body = genesis_body("sim", "a simulated commons", "CC0-1.0", founders=founders, rules=rules,
                            resources=[{"name": "water", "rivalrous": True, "quota": 6, "period": 0,
                                        "unit": "m3"}])
        self.genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body=body,
                                  timestamp=t0)
        self.commons = self.genesis.id
        self.entries: list[Entry] = [self.genesis]
        self.by_id: dict[CID, Entry] = {self.genesis.id: self.genesis}
        n = len(SIGNERS)
        self.view: list[set[CID]] = [{self.genesis.id} for _ in range(n)]
        self.last: list[Entry | None] = [None] * n
        self.last[0] = self.genesis
        self.time = t0
        self.forks = forks
        # A writer whose clock runs behind (its entries dated before the entries they name:
        # backdated, so the fold gives them floors and rejects them).
        self.skewed = skewed
        self.prefixes: list[set[CID]] = []

    def _of_kind(self, i: int, kind: str) -> list[Entry]:
        return sorted((self.by_id[c] for c in self.view[i] if self.by_id[c].kind == kind), key=lambda e: e.id.raw)

    def _heads(self, i: int) -> list[CID]:
        best: dict[bytes, Entry] = {}
        me = SIGNERS[i].public_key
        for cid in self.view[i]:
            e = self.by_id[cid]
            if e.author == me:
                continue
            cur = best.get(e.author)
            if cur is None or (e.seq, e.id.raw) > (cur.seq, cur.id.raw):
                best[e.author] = e
        return sorted((e.id for e in best.values()), key=lambda c: c.raw)[:14]

    def write(self, i: int, kind: str, body: dict[str, Any], refs: tuple[CID, ...] = (), *,
              stale: bool = False) -> Entry:
        last = self.last[i]
        seq = 1 if last is None else last.seq + 1
        deps = [] if stale else self._heads(i)
        for ref in refs:
            if ref in self.view[i] and ref not in deps and len(deps) < 16:
                deps.append(ref)
        if stale and last is None:
            deps = [self.genesis.id]
        self.time += 1000
        entry = sign_entry(SIGNERS[i], commons=self.commons, seq=seq, prev=None if last is None else last.id,
                           kind=kind, body=body, deps=deps, timestamp=self.time - (3500 if i == self.skewed else 0))
        self._record(i, entry)
        self.last[i] = entry
        return entry

    def _record(self, i: int, entry: Entry) -> None:
        self.entries.append(entry)
        self.by_id[entry.id] = entry
        self.view[i].add(entry.id)

    def fork(self, i: int) -> None:
        last = self.last[i]
        if last is None or last.is_genesis:
            return
        self.time += 7
        sibling = sign_entry(SIGNERS[i], commons=self.commons, seq=last.seq, prev=last.prev, kind="contribution",
                             body={"title": "fork twin", "value": 3}, deps=list(last.deps), timestamp=self.time)
        self._record(i, sibling)

    def act(self, i: int, action: int, p: int) -> None:
        pick = lambda items: items[p % len(items)] if items else None  # noqa: E731
        target = SIGNERS[p % len(SIGNERS)].public_key
        if action in (2, 4, 5, 6, 9, 10, 11) and p % 3:
            i = STEWARDS[p % 2]  # mostly by someone allowed to, sometimes by anyone (adversarial)
        if action == 2 and p % 2:
            self.view[i] |= self.view[2 + p % 4]  # the join reached a member node by gossip
        if action in (0, 15):
            j = p % len(SIGNERS)
            self.view[i] |= self.view[j]
            if p % 2:
                self.view[j] |= self.view[i]
            if p % 3 == 0:
                self.prefixes.append(set(self.view[i]))
        elif action == 1:
            mine = [e for e in self._of_kind(i, "join") if e.author == SIGNERS[i].public_key]
            if i in STEWARDS or (mine and p % 5):
                self.act(i, 3, p)
            else:
                self.write(i, "join", {"name": f"author{i}"})
        elif action == 2:
            admitted = {self.by_id[c].body["join"] for c in self.view[i] if self.by_id[c].kind == "admission"}
            me = SIGNERS[i].public_key
            join = pick([j for j in self._of_kind(i, "join")
                         if (p % 4 == 0 or j.id not in {_link(x) for x in admitted}) and j.author != me])
            if join is not None:
                self.write(i, "admission", {"join": join.id}, (join.id,))
        elif action == 3:
            self.write(i, "contribution", {"title": f"work {p}", "kind": ("code", "docs")[p % 2], "value": p % 9})
        elif action == 4:
            me = SIGNERS[i].public_key
            contribution = pick([c for c in self._of_kind(i, "contribution") if c.author != me or p % 5 == 0])
            if contribution is not None:
                body: dict[str, Any] = {"contribution": contribution.id, "verdict": ("accept", "reject")[p % 3 == 0]}
                if p % 4 == 1:
                    body["value"] = p % 20
                self.write(i, "review", body, (contribution.id,))
        elif action == 5:
            self.write(i, "rule_proposal", {"changes": CHANGES[p % len(CHANGES)]})
        elif action == 6:
            proposal = pick(self._of_kind(i, "rule_proposal"))
            if proposal is None and p % 5:
                self.act(i, 5, p)
                return
            pid = proposal.id if proposal is not None and p % 7 else FAKE
            self.write(i, "vote", {"proposal": pid, "choice": ("yes", "no")[p % 4 == 0]},
                       (pid,) if pid != FAKE else ())
        elif action == 7:
            self.write(i, "resource_add", {"name": f"r{p % 3}", "rivalrous": bool(p % 2), "quota": 4, "period": 0})
        elif action == 8:
            resources = self._of_kind(i, "resource_add")
            if resources and p % 2:
                rid = pick(resources).id  # type: ignore[union-attr]
                self.write(i, "resource_use", {"resource": rid, "amount": 1 + p % 5}, (rid,))
            else:
                from p2pcommons.dagcbor import encode
                water = CID.of(encode({"name": "water", "period": 0, "quota": 6, "rivalrous": True, "unit": "m3"}))
                self.write(i, "resource_use", {"resource": water, "amount": 1 + p % 5})
        elif action == 9:
            act = ("warning", "suspend", "remove", "reinstate")[p % 4]
            self.write(i, "sanction", {"member": target, "action": act, "reason": "test"})
        elif action == 10:
            self.write(i, "role", {"member": target, "role": ("reviewer", "steward")[p % 2], "action": "grant"})
        elif action == 11:
            self.write(i, "distribution", {"amount": 1 + p, "currency": "EUR"})
        elif action == 12:
            if self.forks and p % 3 == 0:
                self.fork(i)
        elif action == 13:
            if p % 5 == 0:
                self.write(i, "leave", {})
        elif action == 14:
            # Backdated: written from a stale view (only the author's own chain).
            kind = ("sanction", "contribution")[p % 2]
            body = ({"member": target, "action": "remove", "reason": "backdated"} if kind == "sanction"
                    else {"title": "backdated", "value": 5})
            self.write(i, kind, body, stale=True)


def _link(value: Any) -> CID:
    from p2pcommons.dagcbor import link

    return link(value)


def build(actions: list[tuple[int, int, int]], *, forks: bool = True, skewed: int | None = None,
          rules: dict[str, Any] | None = None) -> History:
    """The history of ``actions``; ``rules``: the genesis's rules (a parsed TOML document)."""
    history = History(forks=forks, skewed=skewed, rules=rules)
    for actor, code, p in actions:
        history.act(_ACTORS[actor % len(_ACTORS)], _CODES[code % len(_CODES)], p)
    return history


def test_histories_are_deterministic() -> None:
    history = History()
    for i, action, p in [(2, 1, 0), (0, 0, 2), (0, 2, 0), (2, 0, 0), (2, 3, 5), (0, 0, 2), (0, 4, 1)]:
        history.act(i, action, p)
    assert len(history.entries) >= 3
    actions = [(0, 3, 1), (4, 5, 2), (1, 20, 3)]
    a, b = build(actions), build(actions)
    assert [e.id for e in a.entries] == [e.id for e in b.entries]
