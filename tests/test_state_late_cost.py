"""What a late entry costs must not grow with the state (issue 12: a late entry 10,000
positions back at 1,000,000 entries took 365 ms, over the 100 ms target).

Two costs grew with the state, and each has a rule tested here rather than a time:

* the late-entry judge (:func:`p2pcommons.state.handlers.late.late_judge`) asked whether any
  proposal ever changed a contribution rule by decoding every proposal (50,000 at 1M
  entries); it now reads only the proposals whose packed record names such a rule
  (:meth:`Packed.screened`, a byte search) — a superset screen, checked against the plain
  scan on random tables;
* the replay window: snapshots came every ``state.size() // 32`` positions, so at 1M a late
  entry replayed from a snapshot up to two such intervals back (tens of thousands of
  positions); the interval is now capped (``fold.SNAPSHOT_MAX``), so what an evicting fold
  holds after its archive's base — all a late stranger's entry replays — is bounded
  whatever the state's size.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer, sign_entry
from p2pcommons.state import Folder, fold
from p2pcommons.state.archiving import MemoryArchive
from p2pcommons.state.compact import Proposals
from p2pcommons.state.fold import SNAPSHOT_MAX
from p2pcommons.state.handlers.late import STRANGER, late_judge
from p2pcommons.state.records import Proposal, State
from tests.test_state_histories import prop_settings
from tests.test_state_layers import _merge_min
from tests.test_state_snapshot_plan import _counting, _long_history

_KEYS = ["contribution.policy", "review.accepts", "values.code", "membership.policy", "contributions", "x"]
_TITLES = ["", "contribution.policy", "a contribution", "work", "é contribution"]


def _proposal(i: int, key: int, title: int, status: int) -> Proposal:
    return Proposal(bytes([i % 5]) * 32, _TITLES[title], {_KEYS[key]: i}, (), (),
                    ("open", "adopted", "rejected")[status])


@prop_settings(200)
@given(ops=st.lists(st.tuples(st.sampled_from(["set", "del", "copy"]), st.integers(0, 30), st.integers(0, 5),
                              st.integers(0, 4), st.integers(0, 2)), max_size=80),
       merge_min=st.sampled_from([0, 1, 4, 1 << 30]))
def test_the_screen_finds_every_record_that_names_the_needle(ops: list[tuple[str, int, int, int, int]],
                                                            merge_min: int) -> None:
    """Any mix of writes, deletes and copies (merged into the base at once, or never): every
    record with a string naming ``contribution`` is among those screened, each at most once,
    and every screened record is one the table holds."""
    with _merge_min(merge_min):
        table = Proposals()
        model: dict[CID, Proposal] = {}
        for op, i, key, title, status in ops:
            cid = CID.of(b"p%d" % i)
            if op == "set":
                table[cid] = model[cid] = _proposal(i, key, title, status)
            elif op == "del" and cid in model:
                del table[cid], model[cid]
            elif op == "copy":
                table = table.copy()
            screened = list(table.screened(b"contribution"))
            naming = [p for p in model.values()
                      if "contribution" in p.title or any("contribution" in k for k in p.changes)]
            held = list(model.values())
            assert all(screened.count(p) <= held.count(p) for p in screened)
            assert all(screened.count(p) >= naming.count(p) for p in naming)


def test_the_late_judge_reads_only_the_proposals_that_name_a_contribution_rule(monkeypatch: Any) -> None:
    """A base state with 2,000 proposals, none about contributions: judging a stranger's late
    contribution decoded all 2,000 (at 1M entries, 50,000: a quarter of a second); now none."""
    state = State()
    for i in range(2000):
        state.proposals[CID.of(b"p%d" % i)] = Proposal(bytes(32), f"p{i}", {"values.code": i}, (), (), "adopted")
    state.copy()  # (merged into the table's flat base, as a large fold's is)
    decoded = []
    unpack = Proposals._unpack
    monkeypatch.setattr(Proposals, "_unpack", lambda self, blob: decoded.append(1) or unpack(self, blob))
    late = sign_entry(Signer(b"\x07" * 32), commons=CID.of(b"commons"), seq=1, prev=None, kind="contribution",
                      body={"title": "late", "value": 1}, deps=[CID.of(b"anchor")], timestamp=1)
    assert late_judge(state)(late) == STRANGER
    assert len(decoded) == 0, f"{len(decoded)} proposals decoded"
    changed = CID.of(b"p7")
    state.proposals[changed] = Proposal(bytes(32), "open up", {"contribution.policy": "members"}, (), (), "adopted")
    assert late_judge(state)(late) != STRANGER  # (the rule as before: a changed policy refolds)


def test_what_a_late_entry_replays_is_bounded_whatever_the_state_size(monkeypatch: Any) -> None:
    """An evicting fold whose state reports the size of a multi-million-entry commons's
    (snapshots were due every size / 32 = 312,500 positions: none was ever taken, nothing
    was archived, and a late entry replayed everything): taking entries one at a time, it
    holds at most about two snapshot intervals after its archive's base; after one bulk run,
    at most one; and a stranger's late entry, wherever it sorts, replays no more than that
    window — all bounded by ``SNAPSHOT_MAX``, not by the state's size.  Same state hash as a
    fold of everything."""
    monkeypatch.setattr(State, "size", lambda self: 10_000_000)
    history = _long_history(3 * SNAPSHOT_MAX + 300)
    reference = Folder(history.commons)
    for entry in history.entries:
        reference.add(entry)
    reference.run()
    order = list(reference.order)

    bulk = Folder(history.commons, archive=MemoryArchive())
    for entry in history.entries:
        bulk.add(entry)
    bulk.run()
    assert len(bulk.order) <= SNAPSHOT_MAX, len(bulk.order)

    folder = Folder(history.commons, archive=MemoryArchive())
    counts = _counting(folder)
    held = []
    for entry in history.entries:
        folder.add(entry)
        folder.run()
        held.append(len(folder.order))
    assert max(held) <= 2 * SNAPSHOT_MAX + 16, max(held)
    ids = {entry.id.raw: entry.id for entry in history.entries}
    for k, distance in enumerate((5, 300, 1500, 3000)):
        anchor = order[len(order) - distance]
        late = sign_entry(Signer(bytes([0x30 + k]) * 32), commons=history.commons, seq=1, prev=None,
                          kind="contribution", body={"title": f"late {distance}", "value": 1},
                          deps=[ids[anchor[1]]], timestamp=5)
        counts["applied"] = 0
        folder.add(late)
        state = folder.result()
        history.entries.append(late)
        assert counts["applied"] <= 2 * SNAPSHOT_MAX + 16, (distance, counts)
        assert folder.refolds == 0
        assert state.state_hash == fold(history.entries).state_hash
