"""What the state's big tables cost to hold (issue 12: a million-entry commons under 200 MB).

Measured with tracemalloc (bytes, not time): each table rebuilt alone from its checkpoint
rows, so what it holds is counted whole (ids, keys, titles), nothing shared with entries.
The bounds are about 1.3 times what the compact forms take (:mod:`p2pcommons.state.compact`;
a share of a distribution with about ten members each, as here) and half or less of what
plain records took (626 bytes per contribution — the test failed with it —, 115 per share
of a distribution, 860 per proposal, 420 per booking, 260 per vote)."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import cbor2

from p2pcommons.dagcbor import CID, encode
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.state import Folder, fold, genesis_body
from p2pcommons.state.checkpoint import _dump_state, _load_state
from p2pcommons.state.records import SEQUENCES, TABLES, State, canonical_state

T0 = 1_700_000_000_000


def _history(n: int, authors: int = 20) -> list[Entry]:
    """``n`` entries by ``authors`` founders: contributions, reviews accepting them, rivalrous
    uses, proposals and votes, distributions over everyone's accepted value."""
    signers = [Signer(bytes([i + 1]) * 32) for i in range(authors)]
    water = {"name": "water", "rivalrous": True, "quota": 1000, "period": 86400, "unit": "l"}
    body = genesis_body("memory", founders=[s.public_key for s in signers], resources=[water])
    genesis = sign_entry(signers[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=T0)
    water_id = CID.of(encode(water))
    entries, last = [genesis], {signers[0].public_key: genesis}
    open_work: list[CID] = []
    t = T0

    def write(signer: Signer, kind: str, body: dict[str, Any], extra: tuple[CID, ...] = ()) -> Entry:
        nonlocal t
        t += 1000
        prev = last.get(signer.public_key)
        deps = [e.id for a, e in last.items() if a != signer.public_key][:14]
        deps += [x for x in extra if x not in deps]
        entry = sign_entry(signer, commons=genesis.id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind=kind, body=body, deps=deps, timestamp=t)
        last[signer.public_key] = entry
        entries.append(entry)
        return entry

    i = 0
    while len(entries) < n:
        i += 1
        author = signers[i % authors]
        r = i % 20
        if r < 10:
            open_work.append(write(author, "contribution", {"title": f"work {i}", "kind": "code", "value": 3}).id)
        elif r < 15 and open_work:
            write(signers[(i + 1) % authors], "review", {"contribution": open_work.pop(0), "verdict": "accept"})
        elif r < 17:
            write(author, "resource_use", {"resource": water_id, "amount": 1 + i % 7})
        elif r == 17:
            write(author, "rule_proposal", {"changes": {"values.code": 100 + i % 50}})
        else:
            write(author, "distribution", {"amount": 1000, "currency": "EUR"})
    return entries


def _alone(name: str, state: State) -> tuple[int, int]:
    """(rows, bytes) of one table or sequence rebuilt alone from its checkpoint rows."""
    table = next((t for t in TABLES if t.name == name), None)
    if table is not None:
        items = getattr(state, name)
        blob = cbor2.dumps([table.row(k, v) for k, v in items.items()])
        gc.collect()
        tracemalloc.start()
        copy = table.make(map(table.unrow, cbor2.loads(blob)))
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(copy) == len(items)
        return len(items), size
    sequence = next(s for s in SEQUENCES if s.name == name)
    items = getattr(state, name)
    blob = cbor2.dumps([sequence.row(x) for x in items])
    gc.collect()
    tracemalloc.start()
    rows = [sequence.unrow(r) for r in cbor2.loads(blob)]
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(rows) == len(items)
    return len(items), size


def test_big_tables_stay_compact() -> None:
    entries = _history(3000)
    folder = Folder(entries[0].id)
    for entry in entries:
        folder.add(entry)
    folder.run()
    state = folder.state
    assert state is not None
    n, size = _alone("contributions", state)
    assert n > 1000 and sum(1 for c in state.contributions.values() if c.status == "accepted") > 500
    assert size / n < 320, f"{size / n:.0f} bytes per contribution"
    n, size = _alone("distributions", state)
    shares = sum(len(d["shares"]) for d in state.distributions)
    assert n > 100 and shares > 8 * n
    assert size / shares < 80, f"{size / shares:.0f} bytes per share of a distribution"
    n, size = _alone("proposals", state)
    assert n > 100 and size / n < 500, f"{size / n:.0f} bytes per proposal"
    n, size = _alone("bookings", state)
    assert n > 100 and size / n < 300, f"{size / n:.0f} bytes per booking"
    n, size = _alone("votes", state)
    assert n > 100 and size / n < 220, f"{size / n:.0f} bytes per vote"


def test_compact_tables_read_back_what_was_written() -> None:
    """The records read back from the compact tables are the ones written: the same state
    hash through a checkpoint's rows, snapshots independent of the state they were copied from."""
    entries = _history(800)
    reference = fold(entries)
    folder = Folder(entries[0].id)
    for entry in entries:
        folder.add(entry)
    folder.run()
    state = folder.state
    assert state is not None
    assert folder.result().state_hash == reference.state_hash
    loaded = _load_state(cbor2.loads(cbor2.dumps(_dump_state(state))))
    assert canonical_state(loaded) == canonical_state(state)
    snap = state.copy()
    cid, record = next(iter(state.contributions.items()))
    state.contributions[cid] = record._replace(status="rejected", rejects=(b"\x09" * 32,))
    assert snap.contributions[cid] == record and state.contributions[cid].rejects == (b"\x09" * 32,)
    assert dict(snap.contributions.items()) != dict(state.contributions.items())
    vote = next(iter(state.votes))
    del snap.votes[vote]
    assert vote in state.votes and vote not in snap.votes


def test_a_record_marshal_cannot_hold_is_kept_as_it_is() -> None:
    """A value the packed form cannot hold (an id object inside a proposal's changes, data
    nested deeper than marshal goes) must not crash the fold: the record is kept whole."""
    entries = _history(400)
    state = fold(entries)._folder.state
    assert state is not None
    cid, record = next(iter(state.proposals.items()))
    nested: Any = 0
    for _ in range(3000):
        nested = [nested]
    for odd in (record._replace(changes={"x": CID.of(b"x")}), record._replace(action={"deep": nested})):
        state.proposals[cid] = odd
        assert state.proposals[cid] == odd and state.proposals.get(cid) == odd
        assert state.proposals.copy()[cid] == odd
