"""Generate the commons-state test vectors (protocols/vectors/commons-*.json).

Run ``python protocols/vectors/generate_commons.py`` from the repository root.  Each vector is
a small entry set built from fixed seeds and fixed timestamps (Ed25519 signatures are
deterministic, so the bytes are reproducible), with the state hash and per-entry outcomes
the fold must produce.  tests/test_state_vectors.py checks the implementation against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import fold, genesis_body

HERE = Path(__file__).resolve().parent
NAMES = ("alice", "bob", "carol", "dave")
SEEDS = {name: bytes([0xC0 + i]) * 32 for i, name in enumerate(NAMES)}
# Device keys (protocols/commons.md §1.2): listed in a vector's authors only where it uses them.
DEVICES = ("bob-laptop", "bob-phone")
DEVICE_SEEDS = {name: bytes([0xD0 + i]) * 32 for i, name in enumerate(DEVICES)}


class Scenario:
    def __init__(self, stewards: tuple[str, ...] = ("alice",), **genesis: Any) -> None:
        self.signers = {n: Signer(s) for n, s in {**SEEDS, **DEVICE_SEEDS}.items()}
        self.time = 1_700_000_000_000
        body = genesis_body("vector commons", "test vector", "CC0-1.0",
                            founders=[self.signers[s].public_key for s in stewards], **genesis)
        self.genesis = sign_entry(self.signers[stewards[0]], commons=None, seq=1, prev=None, kind="genesis",
                                  body=body, timestamp=self.time)
        self.entries: list[tuple[str, Entry]] = [("genesis", self.genesis)]
        self.last: dict[str, Entry] = {stewards[0]: self.genesis}

    def key(self, name: str) -> bytes:
        return self.signers[name].public_key

    def write(self, label: str, name: str, kind: str, body: dict[str, Any], deps: list[Entry] | None = None,
              *, include: bool = True, time: int | None = None) -> Entry:
        last = self.last.get(name)
        self.time += 1000
        entry = sign_entry(self.signers[name], commons=self.genesis.id, seq=1 if last is None else last.seq + 1,
                           prev=None if last is None else last.id, kind=kind, body=body,
                           deps=[d.id for d in (deps if deps is not None else [self.genesis])],
                           timestamp=self.time if time is None else time)
        self.last[name] = entry
        if include:
            self.entries.append((label, entry))
        return entry


def basic() -> Scenario:
    s = Scenario()
    join = s.write("bob joins", "bob", "join", {"name": "bob"})
    admit = s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join])
    contribution = s.write("bob contributes", "bob", "contribution",
                           {"title": "trail map", "kind": "docs", "value": 5}, [admit])
    review = s.write("alice accepts", "alice", "review",
                     {"contribution": contribution.id, "verdict": "accept", "value": 8}, [contribution])
    proposal = s.write("alice proposes 2 accepts", "alice", "rule_proposal",
                       {"changes": {"review.accepts": 2}, "title": "two eyes"}, [review])
    s.write("bob votes (not a steward)", "bob", "vote", {"proposal": proposal.id, "choice": "yes"}, [proposal])
    s.write("alice distributes 100", "alice", "distribution", {"amount": 100, "currency": "EUR"}, [proposal])
    return s


def mutual_removal() -> Scenario:
    s = Scenario(stewards=("alice", "bob"))
    a = s.write("alice contributes", "alice", "contribution", {"title": "a", "value": 1}, [s.genesis])
    b = s.write("bob contributes", "bob", "contribution", {"title": "b", "value": 1}, [a])
    s.write("alice removes bob", "alice", "sanction",
            {"member": s.key("bob"), "action": "remove", "reason": "dispute"}, [b])
    s.write("bob removes alice (concurrently)", "bob", "sanction",
            {"member": s.key("alice"), "action": "remove", "reason": "dispute"}, [a])
    return s


def backdated() -> Scenario:
    s = Scenario()
    join = s.write("carol joins", "carol", "join", {"name": "carol"})
    admit = s.write("alice admits carol", "alice", "admission", {"join": join.id}, [join])
    ok = s.write("carol contributes", "carol", "contribution", {"title": "fine", "value": 2}, [admit])
    s.write("alice removes carol", "alice", "sanction",
            {"member": s.key("carol"), "action": "remove", "reason": "spam"}, [ok])
    s.write("carol backdates a contribution", "carol", "contribution", {"title": "sneaky", "value": 50}, [admit])
    return s


def backdated_leave() -> Scenario:
    s = Scenario()
    join = s.write("carol joins", "carol", "join", {"name": "carol"})
    admit = s.write("alice admits carol", "alice", "admission", {"join": join.id}, [join])
    ok = s.write("carol contributes", "carol", "contribution", {"title": "fine", "value": 2}, [admit])
    busy = ok
    for i in range(3):  # alice's own chain: the removal sorts after carol's two backdated entries
        busy = s.write(f"alice contributes ({i + 1})", "alice", "contribution", {"title": f"a{i}", "value": 1},
                       [busy])
    s.write("alice removes carol", "alice", "sanction",
            {"member": s.key("carol"), "action": "remove", "reason": "spam"}, [busy])
    sneaky = s.write("carol backdates a contribution", "carol", "contribution", {"title": "sneaky", "value": 50},
                     [ok])
    s.write("carol backdates a leave after it", "carol", "leave", {}, [sneaky])
    return s


def fork() -> Scenario:
    s = Scenario()
    join = s.write("dave joins", "dave", "join", {"name": "dave"})
    admit = s.write("alice admits dave", "alice", "admission", {"join": join.id}, [join])
    first = s.write("dave contributes", "dave", "contribution", {"title": "one", "value": 1}, [admit])
    s.last["dave"] = join  # sign a second entry at the same seq: equivocation
    s.write("dave forks", "dave", "contribution", {"title": "twin", "value": 1}, [admit])
    s.write("alice reviews the first", "alice", "review", {"contribution": first.id, "verdict": "accept"}, [first])
    return s


def adversarial() -> Scenario:
    s = Scenario(resources=[{"name": "water", "rivalrous": True, "quota": 5, "period": 86400, "unit": "m3"}])
    join = s.write("bob joins", "bob", "join", {"name": "bob"})
    admit = s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join])
    mine = s.write("alice contributes", "alice", "contribution", {"title": "x", "value": 3}, [admit])
    s.write("bob reviews (not a reviewer)", "bob", "review", {"contribution": mine.id, "verdict": "accept"},
            [mine])
    s.write("bob proposes open review", "bob", "rule_proposal", {"changes": {"review.roles": ["member"]}}, [mine])
    s.write("bob sanctions alice (not a steward)", "bob", "sanction",
            {"member": s.key("alice"), "action": "remove", "reason": "coup"}, [mine])
    s.write("alice votes on an unknown proposal", "alice", "vote",
            {"proposal": CID.of(b"nothing"), "choice": "yes"}, [mine])
    p = s.write("alice proposes bad rule", "alice", "rule_proposal", {"changes": {"no.such": 1}}, [mine])
    from p2pcommons.dagcbor import encode

    water = CID.of(encode({"name": "water", "period": 86400, "quota": 5, "rivalrous": True, "unit": "m3"}))
    u = s.write("bob uses 4 m3", "bob", "resource_use", {"resource": water, "amount": 4}, [p])
    s.write("bob uses 2 more m3 (over quota)", "bob", "resource_use", {"resource": water, "amount": 2}, [u])
    return s


def waiting() -> Scenario:
    s = Scenario()
    join = s.write("bob joins (withheld)", "bob", "join", {"name": "bob"}, include=False)
    s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join])
    s.write("alice contributes", "alice", "contribution", {"title": "y", "value": 1}, [s.genesis])
    return s


def overflow() -> Scenario:
    air = {"name": "air", "rivalrous": False, "quota": 0, "period": 0, "unit": "l"}
    s = Scenario(resources=[air], rules={"values": {"default": 100, "code": 2**53}, "review": {"self_review": True}})
    from p2pcommons.dagcbor import encode

    rid = CID.of(encode(air))
    u = s.write("alice uses 2^53 l of air", "alice", "resource_use", {"resource": rid, "amount": 2**53})
    u = s.write("alice uses 1 l more (above the bound)", "alice", "resource_use", {"resource": rid, "amount": 1},
                [u])
    code = s.write("alice contributes code worth 200", "alice", "contribution",
                   {"title": "c", "kind": "code", "value": 200}, [u])
    r = s.write("alice accepts it (200 at a weight of 2^53 % is 2^54: above the bound)", "alice", "review",
                {"contribution": code.id, "verdict": "accept"}, [code])
    big = s.write("alice contributes docs worth 2^53", "alice", "contribution",
                  {"title": "d", "kind": "docs", "value": 2**53}, [r])
    r = s.write("alice accepts it (ledger total 2^53)", "alice", "review",
                {"contribution": big.id, "verdict": "accept"}, [big])
    one = s.write("alice contributes docs worth 1", "alice", "contribution", {"title": "e", "kind": "docs", "value": 1},
                  [r])
    r = s.write("alice accepts it (ledger total above the bound)", "alice", "review",
                {"contribution": one.id, "verdict": "accept"}, [one])
    s.write("alice distributes 2^53", "alice", "distribution", {"amount": 2**53}, [r])
    return s


def rejected_sanction() -> Scenario:
    s = Scenario(stewards=("alice", "dave"))
    join = s.write("bob joins", "bob", "join", {"name": "bob"})
    admit = s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join])
    w = s.write("alice warns bob", "alice", "sanction", {"member": s.key("bob"), "action": "warning",
                                                         "reason": "rude"}, [admit])
    w = s.write("alice warns bob again", "alice", "sanction", {"member": s.key("bob"), "action": "warning",
                                                               "reason": "rude"}, [w])
    leave = s.write("bob leaves", "bob", "leave", {}, [w])
    rejoin = s.write("bob joins again", "bob", "join", {"name": "bob"}, [leave])
    again = s.write("dave admits bob again", "dave", "admission", {"join": rejoin.id}, [rejoin])
    s.write("bob contributes", "bob", "contribution", {"title": "back", "value": 2}, [again])
    busy = leave
    for i in range(4):  # alice's own chain: her removal sorts after bob's rejoin
        busy = s.write(f"alice contributes ({i + 1})", "alice", "contribution", {"title": f"a{i}", "value": 1},
                       [busy])
    s.write("alice, who saw the leave but not the rejoin, removes bob (already left)", "alice", "sanction",
            {"member": s.key("bob"), "action": "remove", "reason": "gone"}, [busy])
    return s


def _found(s: Scenario, body: dict[str, Any]) -> None:
    """Replace the scenario's genesis with one of this exact body (not checked by genesis_body)."""
    s.genesis = sign_entry(s.signers["alice"], commons=None, seq=1, prev=None, kind="genesis", body=body,
                           timestamp=s.time)
    s.entries = [("genesis", s.genesis)]
    s.last = {"alice": s.genesis}


def invalid_rules() -> Scenario:
    s = Scenario()
    _found(s, {"name": "bad rules", "rules": {"membership": {"policy": "closed"}}})
    s.write("bob joins", "bob", "join", {"name": "bob"})
    return s


def invalid_resource() -> Scenario:
    s = Scenario()
    _found(s, {"name": "bad resource", "description": "the second resource has no quota",
               "resources": [{"name": "oven", "rivalrous": True, "quota": 3},
                             {"name": "kiln", "rivalrous": True}, {"name": "never reached"}]})
    s.write("alice contributes", "alice", "contribution", {"title": "x"})
    return s


def defaults() -> Scenario:
    """The canonical form's value types and defaults (commons.md §5), one of each."""
    s = Scenario(stewards=("alice", "bob"))
    oven = {"name": "oven", "rivalrous": True, "quota": 3, "period": 3600}  # no unit: "unit"
    body = {"name": "defaults", "stewards": sorted([s.key("alice"), s.key("bob")]),  # no description, license
            "rules": {"membership": {"policy": "approval", "approvals": 2}, "rule_change": {"threshold": 60}},
            "resources": [oven]}
    _found(s, body)
    carol = s.write("carol joins without a name", "carol", "join", {})
    one = s.write("alice approves carol (1 of 2)", "alice", "admission", {"join": carol.id}, [carol])
    dave = s.write("dave joins", "dave", "join", {"name": "dave"})
    first = s.write("alice approves dave", "alice", "admission", {"join": dave.id}, [dave, one])
    admitted = s.write("bob approves dave (2 of 2)", "bob", "admission", {"join": dave.id}, [first])
    bread = s.write("dave contributes (no kind, value, ref)", "dave", "contribution", {"title": "bread"},
                    [admitted])
    flour = s.write("bob contributes, value 0", "bob", "contribution", {"title": "flour", "value": 0}, [bread])
    accepted = s.write("alice accepts bob's (value 0)", "alice", "review",
                       {"contribution": flour.id, "verdict": "accept"}, [flour])
    repair = s.write("alice contributes", "alice", "contribution", {"title": "oven repair", "value": 4}, [accepted])
    done = s.write("bob accepts alice's", "bob", "review", {"contribution": repair.id, "verdict": "accept"},
                   [repair])
    shared = s.write("alice distributes 10 (bob's share 0)", "alice", "distribution", {"amount": 10}, [done])
    proposal = s.write("alice proposes (no title; 1 of 2 at 60%: open)", "alice", "rule_proposal",
                       {"changes": {"rule_change.threshold": 75}}, [shared])
    from p2pcommons.dagcbor import encode

    used = s.write("dave uses the oven", "dave", "resource_use", {"resource": CID.of(encode(oven)), "amount": 2},
                   [proposal])
    s.write("dave leaves", "dave", "leave", {}, [used])
    return s


def decisions() -> Scenario:
    """Decisions that end (commons.md §2.1): a default deadline, abstention, a quorum, the
    closing entry's causal past, a vote dated after the deadline, a backdated vote, a
    withdrawal, an explicit deadline."""
    s = Scenario(stewards=("alice", "bob", "carol", "dave"))
    _found(s, {"name": "decisions", "stewards": sorted(s.key(n) for n in ("alice", "bob", "carol", "dave")),
               "rules": {"decisions": {"deadline": 600, "quorum": "1/2"}}})
    t = s.time
    p = s.write("alice proposes (deadline: her time + 600 s)", "alice", "rule_proposal",
                {"changes": {"review.accepts": 2}, "title": "two eyes"}, time=t + 1000)
    deadline = t + 1000 + 600_000
    no = s.write("bob votes no", "bob", "vote", {"proposal": p.id, "choice": "no"}, [p], time=t + 2000)
    abstain = s.write("carol abstains", "carol", "vote", {"proposal": p.id, "choice": "abstain"}, [p],
                      time=t + 3000)
    s.write("dave votes yes (alice never sees it)", "dave", "vote", {"proposal": p.id, "choice": "yes"}, [p],
            time=t + 4000)
    closer = s.write("alice writes after the deadline: closes it (1 yes, 1 no seen: rejected)", "alice",
                     "contribution", {"title": "after"}, [no, abstain], time=deadline + 1)
    s.write("bob, having seen the close, votes again backdated", "bob", "vote",
            {"proposal": p.id, "choice": "yes"}, [closer], time=t + 5000)
    q = s.write("alice proposes again, explicit deadline", "alice", "rule_proposal",
                {"changes": {"review.rejects": 2}, "deadline": deadline + 10_000}, [closer], time=deadline + 2000)
    s.write("carol votes after its deadline (closes it: quorum 1 of 4 not met)", "carol", "vote",
            {"proposal": q.id, "choice": "yes"}, [q], time=deadline + 20_000)
    r = s.write("bob proposes", "bob", "rule_proposal", {"changes": {"values.code": 150}}, [closer],
                time=deadline + 3000)
    s.write("carol tries to withdraw bob's", "carol", "withdraw", {"proposal": r.id}, [r], time=deadline + 4000)
    s.write("bob withdraws", "bob", "withdraw", {"proposal": r.id}, [r], time=deadline + 5000)
    return s


def trusted_time() -> Scenario:
    """Time you can trust (commons.md §2.4): an entry dated before its causal past is
    rejected, transitively (a rejected backdated entry cannot launder a later one), and a
    vote by someone who has seen an entry dated after the deadline cannot count."""
    water = {"name": "water", "rivalrous": True, "quota": 100, "period": 90 * 86400, "unit": "l"}
    s = Scenario(stewards=("alice", "bob"), resources=[water], rules={"decisions": {"deadline": 600}})
    from p2pcommons.dagcbor import encode

    rid = CID.of(encode(water))
    t = s.time
    season = 90 * 86400 * 1000
    u = s.write("alice draws 100 l (the season's quota)", "alice", "resource_use", {"resource": rid, "amount": 100},
                time=t + 1000)
    back = s.write("alice sets her clock back 91 days and draws 100 l again (dated before her own last entry)",
                   "alice", "resource_use", {"resource": rid, "amount": 100}, [u], time=t + 1000 - season - 86400_000)
    s.write("alice draws once more, dated after her rejected entry but still before her first draw",
            "alice", "resource_use", {"resource": rid, "amount": 100}, [back], time=t + 2000 - season - 86400_000)
    p = s.write("bob proposes (deadline: his time + 600 s)", "bob", "rule_proposal",
                {"changes": {"review.accepts": 2}, "title": "two eyes"}, time=t + 3000)
    seen = s.write("alice writes after the deadline, not having seen the proposal (closes nothing)", "alice",
                   "contribution", {"title": "late"}, time=t + 3000 + 600_001)
    s.write("alice, having seen that, votes yes dated before the deadline", "alice", "vote",
            {"proposal": p.id, "choice": "yes"}, [p, seen], time=t + 4000)
    s.write("bob writes at exactly his parents' latest time (allowed)", "bob", "contribution", {"title": "same"},
            [p, seen], time=t + 3000 + 600_001)
    return s


def appeal() -> Scenario:
    """Due process (commons.md §2.2): an accepted contribution appealed and re-opened (its
    value leaves the ledger), reviewed again; a rejected one appealed and accepted on review;
    an appeal of a pending contribution refused."""
    s = Scenario(stewards=("alice", "bob", "carol"))
    t = s.time
    work = s.write("bob contributes a survey worth 40", "bob", "contribution", {"title": "survey", "value": 40},
                   time=t + 1000)
    ok = s.write("alice accepts it", "alice", "review", {"contribution": work.id, "verdict": "accept"}, [work],
                 time=t + 2000)
    p = s.write("carol proposes an appeal: copied", "carol", "proposal",
                {"action": {"act": "appeal", "contribution": work.id, "reason": "copied"}}, [ok], time=t + 3000)
    yes = s.write("alice votes yes (2 of 3: adopted, re-opened)", "alice", "vote", {"proposal": p.id, "choice": "yes"},
                  [p], time=t + 4000)
    s.write("carol appeals again (it is pending now: refused)", "carol", "proposal",
            {"action": {"act": "appeal", "contribution": work.id, "reason": "again"}}, [yes], time=t + 5000)
    again = s.write("alice, re-reviewing, rejects it", "alice", "review",
                    {"contribution": work.id, "verdict": "reject"}, [yes], time=t + 6000)
    q = s.write("bob appeals the rejection", "bob", "proposal",
                {"action": {"act": "appeal", "contribution": work.id, "reason": "it is original"}}, [again],
                time=t + 7000)
    yes = s.write("carol votes yes (adopted: re-opened)", "carol", "vote", {"proposal": q.id, "choice": "yes"}, [q],
                  time=t + 8000)
    s.write("carol accepts it (now 1 accept suffices)", "carol", "review",
            {"contribution": work.id, "verdict": "accept"}, [yes], time=t + 9000)
    return s


def probation() -> Scenario:
    """Boundaries against Sybils (commons.md §2.5): an open commons where members sanction,
    with a one-hour probation: a newcomer's sanction within the hour is rejected, one after
    it applies; the founder's applies at once."""
    s = Scenario(rules={"membership": {"probation": 3600}, "sanctions": {"roles": ["member"]}})
    t = s.time
    join = s.write("bob joins", "bob", "join", {"name": "bob"}, time=t + 1000)
    adm = s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join], time=t + 2000)
    s.write("bob warns alice within the hour (probation: rejected)", "bob", "sanction",
            {"member": s.key("alice"), "action": "warning", "reason": "spam"}, [adm], time=t + 3000)
    s.write("bob warns alice an hour after his admission (applied)", "bob", "sanction",
            {"member": s.key("alice"), "action": "warning", "reason": "spam"}, [adm], time=t + 2000 + 3_600_000)
    s.write("alice warns bob (a founder: no probation)", "alice", "sanction",
            {"member": s.key("bob"), "action": "warning", "reason": "noise"}, [adm], time=t + 4000)
    return s


def acts() -> Scenario:
    """Decisions on governed acts (commons.md §2.2): a community role, admission by the
    members' decision, a removal that needs a decision, a grant, a lapsed decision."""
    s = Scenario(stewards=("alice", "bob"))
    rules = {"roles": {"custom": ["ecologist"]}, "decide": {"removal": True, "admission": True},
             "electorate": {"admission": ["member"], "removal": ["ecologist", "steward"]},
             "threshold": {"removal": "2/3"}}
    _found(s, {"name": "acts", "stewards": sorted([s.key("alice"), s.key("bob")]), "rules": rules})
    carol = s.write("carol joins", "carol", "join", {"name": "carol"})
    direct = s.write("alice admits carol directly (refused: decide.admission)", "alice", "admission",
                     {"join": carol.id}, [carol])
    p = s.write("alice proposes admitting carol", "alice", "proposal",
                {"action": {"act": "admission", "join": carol.id}, "title": "welcome carol"}, [direct])
    yes = s.write("bob votes yes (2 of 2 members: carol admitted here)", "bob", "vote",
                  {"proposal": p.id, "choice": "yes"}, [p])
    grant = s.write("bob grants carol the community role ecologist", "bob", "role",
                    {"member": s.key("carol"), "role": "ecologist"}, [yes])
    dave = s.write("dave joins", "dave", "join", {"name": "dave"}, [grant])
    q = s.write("carol proposes admitting dave", "carol", "proposal",
                {"action": {"act": "admission", "join": dave.id}}, [dave])
    s.write("alice votes yes (2 of 3 members: dave admitted here)", "alice", "vote",
            {"proposal": q.id, "choice": "yes"}, [q])
    last = s.write("bob votes yes (refused: already adopted)", "bob", "vote", {"proposal": q.id, "choice": "yes"},
                   [q, s.last["alice"]])
    sanction = s.write("bob removes dave directly (refused: decide.removal)", "bob", "sanction",
                       {"member": s.key("dave"), "action": "remove", "reason": "logging"}, [last])
    r = s.write("carol proposes removing dave", "carol", "proposal",
                {"action": {"act": "removal", "member": s.key("dave"), "reason": "logging"}}, [sanction])
    s.write("dave votes on his own removal (refused: strong removal, since the decision removes him)", "dave", "vote",
            {"proposal": r.id, "choice": "no"}, [r])
    s.write("alice votes yes (2 of 3 ecologists and stewards: not above 2/3)", "alice", "vote",
            {"proposal": r.id, "choice": "yes"}, [r])
    s.write("bob votes yes (3 of 3: dave removed)", "bob", "vote", {"proposal": r.id, "choice": "yes"},
            [r, s.last["alice"]])
    return s


def budget() -> Scenario:
    """A collective budget decided by vote (commons.md §2.2): a budget line (a rivalrous
    resource) and a distribution of a surplus by the ledger, each needing a decision."""
    s = Scenario(stewards=("alice", "bob"))
    rules = {"decide": {"resource": True, "distribution": True},
             "electorate": {"resource": ["member"], "distribution": ["member"]},
             "decisions": {"deadline": 3600}}
    _found(s, {"name": "budget", "stewards": sorted([s.key("alice"), s.key("bob")]), "rules": rules})
    work = s.write("alice contributes", "alice", "contribution", {"title": "bookkeeping", "value": 3})
    review = s.write("bob accepts", "bob", "review", {"contribution": work.id, "verdict": "accept"}, [work])
    direct = s.write("bob distributes directly (refused: decide.distribution)", "bob", "distribution",
                     {"amount": 100}, [review])
    line = s.write("alice proposes a budget line", "alice", "proposal",
                   {"action": {"act": "resource", "resource": {"name": "Events", "rivalrous": True, "quota": 200,
                                                               "period": 7776000, "unit": "EUR"}}}, [direct])
    share = s.write("alice proposes sharing 900 EUR", "alice", "proposal",
                    {"action": {"act": "distribution", "amount": 900, "currency": "EUR"}}, [line])
    yes = s.write("bob votes yes on the line (adopted)", "bob", "vote", {"proposal": line.id, "choice": "yes"},
                  [line])
    s.write("bob abstains on the share (1 yes of 2: open)", "bob", "vote", {"proposal": share.id,
                                                                           "choice": "abstain"}, [share, yes])
    use = s.write("bob draws 150 EUR from the line", "bob", "resource_use",
                  {"resource": line.id, "amount": 150, "note": "venue"}, [yes])
    s.write("alice writes after the deadline: closes the share (1 yes, 0 no: adopted, 900 EUR shared)", "alice",
            "contribution",
            {"title": "minutes"}, [use], time=s.time + 3_600_000)
    return s


def _bob_with_laptop(s: Scenario) -> tuple[Entry, Entry]:
    """Bob joins, is admitted, and binds his laptop's key (the laptop signs its own log)."""
    join = s.write("bob joins", "bob", "join", {"name": "bob"})
    admit = s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join])
    bind = s.write("bob binds his laptop", "bob", "device", {"device": s.key("bob-laptop"), "action": "add"},
                   [admit])
    return admit, bind


def devices() -> Scenario:
    """One member, two keys: the laptop's entries count as bob's (ledger, votes: one member, one vote)."""
    s = Scenario(stewards=("alice", "carol"))
    admit, bind = _bob_with_laptop(s)
    early = s.write("the laptop contributes without the binding in its past", "bob-laptop", "contribution",
                    {"title": "early", "value": 1}, [admit])
    work = s.write("the laptop contributes", "bob-laptop", "contribution", {"title": "laptop work", "value": 7},
                   [bind, early])
    review = s.write("alice accepts the laptop's work", "alice", "review",
                     {"contribution": work.id, "verdict": "accept"}, [work])
    grant = s.write("alice makes bob a steward", "alice", "role",
                    {"member": s.key("bob"), "role": "steward"}, [review])
    proposal = s.write("alice proposes 3 accepts", "alice", "rule_proposal",
                       {"changes": {"review.accepts": 3}, "title": "three eyes"}, [grant])
    vote = s.write("bob votes no from his own key", "bob", "vote", {"proposal": proposal.id, "choice": "no"},
                   [proposal])
    again = s.write("bob's laptop votes yes (bob already voted)", "bob-laptop", "vote",
                    {"proposal": proposal.id, "choice": "yes"}, [vote, work])
    s.write("alice distributes 10", "alice", "distribution", {"amount": 10}, [again])
    s.write("the laptop binds a phone", "bob-laptop", "device", {"device": s.key("bob-phone")}, [again])
    s.write("alice binds bob's laptop (already bound)", "alice", "device", {"device": s.key("bob-laptop")},
            [again])
    return s


def device_revoked() -> Scenario:
    """A revoked device is strongly removed: what it backdates around the revocation has no effect."""
    s = Scenario()
    _, bind = _bob_with_laptop(s)
    kept = s.write("the laptop contributes", "bob-laptop", "contribution", {"title": "kept", "value": 2}, [bind])
    revoke = s.write("bob revokes the laptop", "bob", "device",
                     {"device": s.key("bob-laptop"), "action": "revoke"}, [kept])
    s.write("the laptop backdates a contribution", "bob-laptop", "contribution",
            {"title": "backdated", "value": 50}, [bind])
    s.write("the laptop writes after the revocation", "bob-laptop", "contribution",
            {"title": "after", "value": 1}, [revoke])
    s.write("bob contributes from his own key", "bob", "contribution", {"title": "still bob", "value": 1},
            [revoke])
    return s


def device_fork() -> Scenario:
    """A fork costs a device, not a member: the laptop's log forks, bob carries on from a new device."""
    s = Scenario()
    _, bind = _bob_with_laptop(s)
    own = s.write("bob contributes from his own key", "bob", "contribution", {"title": "one", "value": 3}, [bind])
    accept = s.write("alice accepts it", "alice", "review", {"contribution": own.id, "verdict": "accept"}, [own])
    s.write("the laptop contributes", "bob-laptop", "contribution", {"title": "two", "value": 3}, [bind])
    s.last.pop("bob-laptop")  # a restored backup of the laptop signs seq 1 again
    twin = s.write("the restored laptop forks", "bob-laptop", "contribution", {"title": "twin", "value": 3},
                   [bind])
    s.write("the forked laptop binds a phone", "bob-laptop", "device", {"device": s.key("bob-phone")}, [twin])
    phone = s.write("bob binds a phone from his own key", "bob", "device", {"device": s.key("bob-phone")},
                    [accept, twin])
    s.write("the phone contributes", "bob-phone", "contribution", {"title": "three", "value": 4}, [phone])
    return s


def device_removed() -> Scenario:
    """A removed member's devices are excluded with them: a device cannot backdate around a removal."""
    s = Scenario()
    _, bind = _bob_with_laptop(s)
    removal = s.write("alice removes bob", "alice", "sanction",
                      {"member": s.key("bob"), "action": "remove", "reason": "spam"}, [bind])
    s.write("the laptop backdates a contribution", "bob-laptop", "contribution",
            {"title": "backdated", "value": 9}, [bind])
    s.write("alice writes after", "alice", "contribution", {"title": "after", "value": 1}, [removal])
    return s


def device_recovery() -> Scenario:
    """Bob lost every device: a majority of the stewards (2 of 3) binds his new key."""
    s = Scenario(stewards=("alice", "carol", "dave"))
    join = s.write("bob joins", "bob", "join", {"name": "bob"})
    admit = s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join])
    work = s.write("bob contributes", "bob", "contribution", {"title": "before the loss", "value": 2}, [admit])
    accept = s.write("alice accepts it", "alice", "review", {"contribution": work.id, "verdict": "accept"}, [work])
    body = {"device": s.key("bob-phone"), "action": "recover", "member": s.key("bob")}
    first = s.write("alice approves bob's new key (1 of 3: not yet)", "alice", "device", body, [accept])
    early = s.write("the new key writes before it is bound", "bob-phone", "contribution",
                    {"title": "too early", "value": 1}, [first])
    second = s.write("carol approves (2 of 3: a majority)", "carol", "device", body, [first])
    s.write("dave approves too (already bound)", "dave", "device", body, [second])
    s.write("the recovered key contributes as bob", "bob-phone", "contribution", {"title": "recovered", "value": 1},
            [second, early])
    s.write("bob cannot recover a key for himself", "bob", "device",
            {"device": s.key("bob-laptop"), "action": "recover", "member": s.key("bob")}, [work])
    return s


def resource_change() -> Scenario:
    """Changing and closing a resource (commons.md §1.1, §2.2): a steward raises a quota
    directly; with decide.resource a change and a close need a decision; a closed resource
    refuses new uses; a change of a closed one, and a period change of a used one, refused."""
    s = Scenario(stewards=("alice", "bob"))
    timber = s.write("alice adds timber (10 m3 per member)", "alice", "resource_add",
                     {"name": "timber", "rivalrous": True, "quota": 10, "unit": "m3"})
    use = s.write("alice uses 10 m3", "alice", "resource_use", {"resource": timber.id, "amount": 10}, [timber])
    raised = s.write("alice raises the quota to 15 and sets a capacity of 20", "alice", "resource_change",
                     {"resource": timber.id, "quota": 15, "capacity": 20}, [use])
    more = s.write("alice uses 5 more (within the new quota)", "alice", "resource_use",
                   {"resource": timber.id, "amount": 5}, [raised])
    period = s.write("alice changes the period of a used resource (refused)", "alice", "resource_change",
                     {"resource": timber.id, "period": 3600}, [more])
    rule = s.write("alice proposes decide.resource", "alice", "rule_proposal",
                   {"changes": {"decide.resource": True}}, [period])
    yes = s.write("bob votes yes (adopted)", "bob", "vote", {"proposal": rule.id, "choice": "yes"}, [rule])
    direct = s.write("bob closes timber directly (refused: decide.resource)", "bob", "resource_change",
                     {"resource": timber.id, "close": True}, [yes])
    close = s.write("bob proposes closing timber", "bob", "proposal",
                    {"action": {"act": "resource_change", "resource": timber.id, "close": True}}, [direct])
    closed = s.write("alice votes yes (timber closed here)", "alice", "vote", {"proposal": close.id, "choice": "yes"},
                     [close])
    late = s.write("alice uses 1 m3 (refused: closed)", "alice", "resource_use", {"resource": timber.id, "amount": 1},
                   [closed])
    s.write("alice proposes a quota for the closed timber (refused)", "alice", "proposal",
            {"action": {"act": "resource_change", "resource": timber.id, "quota": 20}}, [late])
    return s


def recovery_decided() -> Scenario:
    """Key recovery by decision (commons.md §1.3, §2.2): with decide.recovery, a steward's
    direct approval is refused; a proposal binds bob's new key at the vote that carries it."""
    s = Scenario(stewards=("alice", "carol", "dave"), rules={"decide": {"recovery": True}})
    join = s.write("bob joins", "bob", "join", {"name": "bob"})
    admit = s.write("alice admits bob", "alice", "admission", {"join": join.id}, [join])
    body = {"device": s.key("bob-phone"), "action": "recover", "member": s.key("bob")}
    direct = s.write("alice approves bob's new key directly (refused: decide.recovery)", "alice", "device", body,
                     [admit])
    p = s.write("alice proposes recovering bob with his new key", "alice", "proposal",
                {"action": {"act": "recovery", "member": s.key("bob"), "device": s.key("bob-phone")}}, [direct])
    own = s.write("bob votes on his own recovery (refused)", "bob", "vote", {"proposal": p.id, "choice": "yes"},
                  [p, admit])
    carried = s.write("carol votes yes (2 of 3: the key is bound here)", "carol", "vote",
                      {"proposal": p.id, "choice": "yes"}, [p])
    s.write("the recovered key contributes as bob", "bob-phone", "contribution", {"title": "recovered"},
            [carried, own])
    return s


def vouches() -> Scenario:
    """Vouching (commons.md §2.5): with membership.vouches = 2 in an open commons where members
    sanction, a newcomer's sanction is refused until two settled members vouched for them in
    its causal past; a newcomer cannot vouch; a second vouch by the same member is refused."""
    s = Scenario(stewards=("alice", "bob"), rules={"membership": {"vouches": 2}, "sanctions": {"roles": ["member"]}})
    join = s.write("carol joins", "carol", "join", {"name": "carol"})
    admit = s.write("alice admits carol", "alice", "admission", {"join": join.id}, [join])
    djoin = s.write("dave joins", "dave", "join", {"name": "dave"}, [admit])
    dadmit = s.write("alice admits dave", "alice", "admission", {"join": djoin.id}, [djoin])
    early = s.write("carol warns dave (refused: 0 of 2 vouches)", "carol", "sanction",
                    {"member": s.key("dave"), "action": "warning", "reason": "spam"}, [dadmit])
    sybil = s.write("dave vouches for carol (refused: dave is a newcomer)", "dave", "vouch",
                    {"member": s.key("carol")}, [dadmit])
    first = s.write("alice vouches for carol", "alice", "vouch", {"member": s.key("carol")}, [early, sybil])
    again = s.write("alice vouches again (refused)", "alice", "vouch", {"member": s.key("carol")}, [first])
    second = s.write("bob vouches for carol (2 of 2)", "bob", "vouch", {"member": s.key("carol")}, [again])
    s.write("carol warns dave (applied: settled)", "carol", "sanction",
            {"member": s.key("dave"), "action": "warning", "reason": "spam"}, [second])
    return s


def seats() -> Scenario:
    """Multi-stakeholder seats (commons.md §2.5): workers and users each elect their seat;
    the steward's direct grant of a seat and a user's vote on the workers' seat are refused."""
    s = Scenario(stewards=("alice",), rules={"roles": {"custom": ["worker", "user", "worker_seat", "user_seat"]},
                                            "seats": {"worker_seat": ["worker"], "user_seat": ["user"]},
                                            "threshold": {"role": "1/3"}})
    last: Entry = s.genesis
    for name, role in (("bob", "worker"), ("carol", "worker"), ("dave", "user")):
        join = s.write(f"{name} joins", name, "join", {"name": name}, [last])
        admit = s.write(f"alice admits {name}", "alice", "admission", {"join": join.id}, [join])
        last = s.write(f"alice grants {name} the class {role}", "alice", "role", {"member": s.key(name), "role": role},
                       [admit])
    direct = s.write("alice grants bob the workers' seat directly (refused)", "alice", "role",
                     {"member": s.key("bob"), "role": "worker_seat"}, [last])
    workers = s.write("bob proposes carol for the workers' seat (1 of 2 workers, above a third: adopted)", "bob",
                      "proposal",
                      {"action": {"act": "grant", "member": s.key("carol"), "role": "worker_seat"}}, [direct])
    s.write("dave, a user, votes on the workers' seat (refused)", "dave", "vote",
            {"proposal": workers.id, "choice": "no"}, [workers])
    s.write("dave proposes himself for the users' seat (1 of 1 users, no implicit yes: open)", "dave", "proposal",
            {"action": {"act": "grant", "member": s.key("dave"), "role": "user_seat"}}, [workers])
    return s


def treasury() -> Scenario:
    """The treasury (commons.md §8): pools declared by the rules, payments in that never credit
    the payer, a distribution that must draw from a pool, concurrent spends where the one that
    would overdraw is rejected with the numbers, and a decided spend that lapses for want of funds."""
    s = Scenario(stewards=("alice", "bob"))
    _found(s, {"name": "treasury", "stewards": sorted([s.key("alice"), s.key("bob")]),
               "rules": {"pools": {"fund": "EUR", "tools": "hours"}}})
    join = s.write("dave joins", "dave", "join", {"name": "dave"})
    admit = s.write("alice admits dave", "alice", "admission", {"join": join.id}, [join])
    dues = s.write("dave pays 50 EUR dues", "dave", "pay", {"pool": "fund", "amount": 50, "source": "dues"}, [admit])
    payback = s.write("bob records Acme's 2000 EUR CopyFair payback", "bob", "pay",
                      {"pool": "fund", "amount": 2000, "source": "payback", "payer": "Acme Tools Ltd"}, [dues])
    work = s.write("dave contributes", "dave", "contribution", {"title": "seed press", "value": 5}, [payback])
    review = s.write("alice accepts", "alice", "review", {"contribution": work.id, "verdict": "accept"}, [work])
    bare = s.write("alice distributes 1000 without a pool (refused: the rules declare pools)", "alice",
                   "distribution", {"amount": 1000}, [review])
    share = s.write("alice distributes 1000 EUR from the fund", "alice", "distribution",
                    {"amount": 1000, "pool": "fund"}, [bare])
    s.write("alice pays dave 800 EUR", "alice", "spend",
            {"pool": "fund", "amount": 800, "member": s.key("dave"), "reason": "repairs"}, [share])
    other = s.write("bob pays dave 800 EUR concurrently (one of the two overdraws)", "bob", "spend",
                    {"pool": "fund", "amount": 800, "member": s.key("dave"), "reason": "travel"}, [share])
    tools = s.write("alice proposes 100 hours from the tools pool for dave", "alice", "proposal",
                    {"action": {"act": "spend", "pool": "tools", "amount": 100, "member": s.key("dave"),
                                "reason": "workshop"}}, [other])
    s.write("bob votes yes (adopted, but it would overdraw: lapsed)", "bob", "vote",
            {"proposal": tools.id, "choice": "yes"}, [tools])
    s.write("dave pays into an undeclared pool (refused)", "dave", "pay", {"pool": "bank", "amount": 5}, [tools])
    return s


def equation() -> Scenario:
    """The value equation (commons.md §9): an equation setting refused under values, a role
    weight, a review beyond the cap refused, a derivative referencing its original (and one
    referencing a contribution outside its causal past, refused), a CopyFair payback into a
    pool that never credits its payer, a distribution 30 days later (decay) recording the
    equation's id, and receipts (one by a member without a share, refused)."""
    s = Scenario(stewards=("alice", "bob"))
    _found(s, {"name": "equation", "stewards": sorted([s.key("alice"), s.key("bob")]),
               "rules": {"pools": {"fund": "EUR"}, "roles": {"custom": ["lead"]}, "role_weights": {"lead": 150},
                         "equation": {"review_cap": 50, "half_life": 30, "reference_share": "1/4"}}})
    decay = s.write("alice proposes values.decay = 10 (refused: not a contribution kind)", "alice", "rule_proposal",
                    {"changes": {"values.decay": 10}})
    join = s.write("dave joins", "dave", "join", {"name": "dave"})
    admit = s.write("alice admits dave", "alice", "admission", {"join": join.id}, [join, decay])
    lead = s.write("alice makes dave a lead", "alice", "role", {"member": s.key("dave"), "role": "lead"}, [admit])
    original = s.write("bob contributes a seed drill", "bob", "contribution", {"title": "seed drill", "value": 100})
    unseen = s.write("dave's derivative references what he has not seen (refused)", "dave", "contribution",
                     {"title": "wider seed drill", "value": 80, "refs": [original.id]}, [lead])
    derivative = s.write("dave's derivative references bob's seed drill", "dave", "contribution",
                         {"title": "wider seed drill", "value": 80, "refs": [original.id]}, [unseen, original])
    over = s.write("alice accepts it at 200 (refused: beyond the 50% cap)", "alice", "review",
                   {"contribution": derivative.id, "verdict": "accept", "value": 200}, [derivative])
    accept = s.write("alice accepts it at 120", "alice", "review",
                     {"contribution": derivative.id, "verdict": "accept", "value": 120}, [over])
    accept_original = s.write("alice accepts the seed drill", "alice", "review",
                              {"contribution": original.id, "verdict": "accept"}, [accept])
    payback = s.write("bob records Acme's 1000 EUR CopyFair payback", "bob", "pay",
                      {"pool": "fund", "amount": 1000, "source": "payback", "payer": "Acme Tools Ltd"},
                      [accept_original])
    s.time += 30 * 86_400_000  # a half-life later
    share = s.write("alice distributes 1000 EUR from the fund, 30 days on", "alice", "distribution",
                    {"amount": 1000, "pool": "fund"}, [payback])
    ack = s.write("dave acknowledges his share", "dave", "receipt", {"distribution": share.id, "note": "thanks"},
                  [share])
    s.write("alice acknowledges it (refused: no share)", "alice", "receipt", {"distribution": share.id}, [ack])
    return s


def capacity() -> Scenario:
    """Shared capacity (commons.md §1.1): a workshop's 8 seats booked by three members (the
    booking past the capacity refused with the numbers), a cancellation, a re-booking, a
    cancellation by someone else and a second one refused."""
    s = Scenario(stewards=("alice", "bob", "carol"))
    seats = s.write("alice adds 8 seats (4 per member)", "alice", "resource_add",
                    {"name": "Workshop seats", "rivalrous": True, "quota": 4, "capacity": 8, "unit": "seats"})
    a = s.write("alice books 4", "alice", "resource_use", {"resource": seats.id, "amount": 4}, [seats])
    b = s.write("bob books 3", "bob", "resource_use", {"resource": seats.id, "amount": 3}, [seats])
    c = s.write("carol books 2 (refused: 7 + 2 > 8)", "carol", "resource_use", {"resource": seats.id, "amount": 2},
                [a, b])
    other = s.write("carol cancels bob's booking (refused)", "carol", "resource_cancel", {"use": b.id}, [c])
    cancel = s.write("bob cancels his booking", "bob", "resource_cancel", {"use": b.id}, [other])
    s.write("bob cancels it again (refused)", "bob", "resource_cancel", {"use": b.id}, [cancel])
    s.write("carol books 4 (applied: 4 + 4 = 8)", "carol", "resource_use", {"resource": seats.id, "amount": 4},
            [cancel])
    return s


SCENARIOS = {
    "basic": (basic, "founder, newcomer, admission, review with adjusted value, rule proposal, vote by a "
                     "non-steward, distribution"),
    "mutual-removal": (mutual_removal, "two stewards remove each other concurrently: exactly one removal"),
    "backdated": (backdated, "a removed member backdates an entry around the removal: no effect"),
    "backdated-leave": (backdated_leave, "a removed member backdates a contribution and a leave so that both "
                                         "sort before the removal: the removal still takes effect, neither does"),
    "fork": (fork, "an author signs two entries at one seq: the author's entries from there on have no effect"),
    "adversarial": (adversarial, "review by a non-reviewer, unauthorized sanction, vote on an unknown "
                                 "proposal, invalid rule, over-quota resource use"),
    "waiting": (waiting, "an entry whose dependency is missing waits, and so does what depends on it"),
    "overflow": (overflow, "bounded sums: a resource use, an accepted value and a ledger total that would pass "
                           "2^53 are rejected with the numbers; the state stays computable"),
    "rejected-sanction": (rejected_sanction, "a removal whose author saw the target leave but not rejoin is "
                                             "rejected and excludes nothing; warnings survive leave and rejoin"),
    "defaults": (defaults, "the canonical form's types and defaults: empty texts, a pending join with one "
                           "approval, a pending contribution (value 0), an open proposal, a percentage threshold, "
                           "a quota period key, a zero share left out, a member who left (no roles)"),
    "decisions": (decisions, "decisions that end: a default deadline and quorum, yes, no and abstain, a vote "
                             "the closing entry had not seen (not counted), a backdated vote after the close, "
                             "a vote after an explicit deadline, a withdrawal and one by someone else"),
    "time": (trusted_time, "time you can trust: a draw dated before its author's last entry is rejected, and so "
                           "is the next one laundered through it; a vote by a member who has seen an entry dated "
                           "after the deadline is rejected; an entry dated exactly at its parents' time is fine"),
    "appeal": (appeal, "due process: an accepted contribution appealed by decision is re-opened and its value "
                       "leaves the ledger; re-reviewed, rejected, appealed again and accepted; an appeal of a "
                       "pending contribution is refused"),
    "probation": (probation, "newcomers on probation: a sanction by a member admitted less than "
                             "membership.probation seconds before its time is rejected, one after it applies, a "
                             "founder's applies at once"),
    "acts": (acts, "decisions on governed acts: a community role, admissions decided by the members, a removal "
                   "that needs a decision (the direct one refused), its target's vote refused, a 2/3 threshold"),
    "budget": (budget, "a collective budget decided by vote: a budget line and a distribution that need a "
                       "decision, a use of the line, an abstention, a distribution adopted at its deadline"),
    "treasury": (treasury, "pools with balances: dues and a payback in (never credited as contributions), a "
                           "distribution refused without a pool and drawn from one, two concurrent spends where "
                           "the one that would overdraw is rejected with the numbers, a decided spend that lapses, "
                           "a payment into an undeclared pool"),
    "equation": (equation, "the value equation: values.decay refused, a lead's role weight, a review beyond the "
                           "cap refused, a derivative passing a share to its original (one referencing what it "
                           "has not seen refused), a CopyFair payback that credits nobody, decay over a "
                           "half-life, the distribution's equation id, receipts"),
    "capacity": (capacity, "shared capacity: eight workshop seats, a booking past the capacity refused with the "
                           "numbers, cancellations (one by someone else refused, a second one refused) and a "
                           "re-booking"),
    "invalid-rules": (invalid_rules, "a genesis whose rules are invalid: the state says why in 'invalid' (the "
                                     "offending value rendered as Python's repr) and every other entry is rejected"),
    "invalid-resource": (invalid_resource, "a genesis whose second resource is invalid: rules, info and members "
                                           "are set, resources hold the first one only"),
    "devices": (devices, "a member's device: its entries count as the member's (ledger, one vote per member); "
                         "one written without its binding in its causal past has no effect; a device binds "
                         "another; a key already bound cannot be bound again"),
    "device-revoked": (device_revoked, "a revoked device is strongly removed: its entry backdated around the "
                                       "revocation and its entry after it have no effect; the member carries on"),
    "device-fork": (device_fork, "a device's log forks: its entries from the fork point have no effect, the member "
                                 "keeps standing and ledger and carries on from a new device"),
    "device-recovery": (device_recovery, "a member who lost every device gets a new key bound by a majority of "
                                         "the stewards; standing and ledger kept"),
    "resource-change": (resource_change, "a resource changed and closed: a quota raised directly, a period change "
                                         "of a used resource refused, a close that needs a decision, a use of the "
                                         "closed resource refused, a change of it refused"),
    "recovery-decided": (recovery_decided, "key recovery decided by vote: the direct approval refused, the member "
                                           "named not voting, the key bound at the vote that carries it"),
    "vouches": (vouches, "vouching: a newcomer's sanction refused until two settled members vouched for them, a "
                         "newcomer's vouch refused, a second vouch by one member refused"),
    "seats": (seats, "multi-stakeholder seats: the workers' seat proposed among workers, a user's vote on it and a "
                     "steward's direct grant of it refused, a users' seat proposed by its nominee"),
    "device-removed": (device_removed, "a removed member's device backdates an entry around the removal: no "
                                       "effect"),
}


def vector(name: str) -> dict[str, Any]:
    builder, description = SCENARIOS[name]
    s = builder()
    state = fold([e for _, e in s.entries], s.genesis.id)
    seeds = {**SEEDS, **DEVICE_SEEDS}
    used = {name for name, signer in s.signers.items() if any(e.author == signer.public_key for _, e in s.entries)}
    return {
        "format": "p2pcommons commons-state test vector, version 1",
        "spec": "protocols/commons.md",
        "generator": "protocols/vectors/generate_commons.py",
        "name": name,
        "description": description,
        "authors": {n: {"seed": seeds[n].hex(), "public_key": Signer(seeds[n]).public_key.hex()}
                    for n in (*NAMES, *(d for d in DEVICES if d in used))},
        "commons": str(s.genesis.id),
        "entries": [{"label": label, "id": str(e.id), "raw": e.raw.hex()} for label, e in s.entries],
        "state_hash": state.state_hash,
        "outcomes": [
            {"label": label, "id": str(e.id), "status": o.status, "reason": o.reason}
            for label, e in s.entries
            for o in [state.outcome(e.id)]
            if o is not None
        ],
        "state": state.canonical,
    }


def main() -> None:
    check = "--check" in sys.argv[1:]
    stale = []
    for name in SCENARIOS:
        path = HERE / f"commons-{name}.json"
        text = json.dumps(vector(name), indent=1, sort_keys=True) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parent.parent)}")
    if stale:
        raise SystemExit("out of date: " + ", ".join(stale))


if __name__ == "__main__":
    main()
