"""Issue 11, item 5: bounded arithmetic.  Every sum the fold keeps has a stated bound
(protocols/commons.md §3.7) and every time and amount field a limit enforced at decode
(protocols/entry.md §3), so one member cannot make the state uncomputable on every node.

The two reported failures are reproduced through the CLI (a bundle built as a hostile
member would, imported with ``p2pc import``); a hypothesis property drives the fold with
adversarially large values."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons.bundle import MAGIC, write_bundle
from p2pcommons.dagcbor import CID, encode
from p2pcommons.entry import FORMAT_VERSION, SIGNATURE_DOMAIN, Entry, Signer, decode_entry, sign_entry
from p2pcommons.errors import MalformedEntry
from p2pcommons.identity import parse_author_id
from p2pcommons.ingest import ingest
from p2pcommons.protocols.framing import encode_uvarint
from p2pcommons.state import REJECTED, fold, genesis_body
from p2pcommons.state.engine import forget
from tests.support.cli import fresh_live_state, invoke  # noqa: F401 (an autouse fixture)
from tests.support.cli_json import unwrap
from tests.support.signed import new_store
from tests.test_state_histories import SIGNERS, prop_settings

BIG = 2**53  # the largest amount an entry may carry
MAX_TOTAL = 2**53  # the bound of every sum the fold keeps (protocols/commons.md §3.7)
AIR = {"name": "air", "rivalrous": False, "quota": 0, "period": 0, "unit": "l"}


def p2pc(*args: str, code: int = 0) -> tuple[str, str]:
    result = invoke(*args, code=code)
    return result.stdout, result.stderr


def _home(tmp_path: Path) -> tuple[str, bytes]:
    home = str(tmp_path / "home")
    out, _ = p2pc("init", "--home", home, "--json")
    return home, parse_author_id(unwrap(out)["author"])


def _raw_entry(signer: Signer, **fields: Any) -> bytes:
    """A signed entry's bytes without going through the decoder (which refuses what we build)."""
    unsigned = {"version": FORMAT_VERSION, "author": signer.public_key, "deps": [], **fields}
    signature = signer.sign(SIGNATURE_DOMAIN + dagcbor.encode(unsigned))
    return dagcbor.encode({**unsigned, "sig": signature})


def _bundle_of(raws: list[bytes], commons: CID, path: Path) -> None:
    """A bundle file in the format of protocols/bundle.md, from raw entries (genesis first,
    then each log in seq order): what a hostile peer can hand anyone."""
    out = io.BytesIO()
    out.write(MAGIC)
    header = dagcbor.encode({"commons": commons, "created": 0, "entries": len(raws),
                             "bytes": sum(map(len, raws))})
    out.write(encode_uvarint(len(header)) + header)
    for raw in raws:
        out.write(encode_uvarint(len(raw)) + raw)
    out.write(b"\x00")
    data = out.getvalue()
    path.write_bytes(data + hashlib.sha256(data).digest())


def test_import_of_a_genesis_with_time_beyond_the_bound_is_a_typed_error(tmp_path: Path) -> None:
    """Reported: a genesis time >= 2**63 crashed ``p2pc import`` with a traceback."""
    home, _ = _home(tmp_path)
    raw = _raw_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body={"name": "late"},
                     time=2**63)
    bundle = tmp_path / "late.p2pc"
    _bundle_of([raw], CID.of(raw), bundle)
    _, err = p2pc("import", str(bundle), "--home", home, code=3)
    message = err.strip()
    assert message.startswith("p2pc: ") and "\n" not in message and "Traceback" not in message
    assert "time" in message
    with pytest.raises(MalformedEntry, match="time"):
        decode_entry(raw)


@pytest.mark.parametrize("time", [-1, 2**53, 2**63, 2**64 - 1])
def test_time_outside_its_range_is_refused_at_decode(time: int) -> None:
    with pytest.raises(MalformedEntry):
        decode_entry(_raw_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body={}, time=time))
    assert decode_entry(_raw_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body={},
                                   time=2**53 - 1)).time == 2**53 - 1


@pytest.mark.parametrize(("kind", "body"), [
    ("contribution", {"title": "t", "value": BIG + 1}),
    ("review", {"verdict": "accept", "value": -1}),
    ("resource_use", {"amount": 2**64 - 1}),
    ("distribution", {"amount": BIG + 1}),
    ("resource_add", {"name": "r", "quota": BIG + 1}),
    ("resource_add", {"name": "r", "period": -(2**64)}),
    ("genesis", {"resources": [{"name": "r", "quota": BIG + 1}]}),
])
def test_amount_outside_its_range_is_refused_at_decode(kind: str, body: dict[str, Any]) -> None:
    commons = None if kind == "genesis" else CID.of(b"commons")
    raw = _raw_entry(SIGNERS[0], commons=commons, seq=1, prev=None, kind=kind, body=body, time=1)
    with pytest.raises(MalformedEntry, match=r"outside \[0, 2\^53\]"):
        decode_entry(raw)


def _hostile_use_bundle(tmp_path: Path, steward: bytes, uses: int) -> tuple[Path, Entry, list[Entry]]:
    """A founder who shares stewardship with the node's user writes ``uses`` resource uses of
    2**53 litres of a non-rivalrous resource (2,049 of them overflowed 64 bits)."""
    attacker = SIGNERS[5]
    genesis = sign_entry(attacker, commons=None, seq=1, prev=None, kind="genesis", timestamp=1_000,
                         body=genesis_body("shared air", "", "CC0-1.0", founders=[attacker.public_key, steward],
                                           resources=[AIR]))
    air = CID.of(encode(AIR))
    entries = [genesis]
    for n in range(uses):
        entries.append(sign_entry(attacker, commons=genesis.id, seq=n + 2, prev=entries[-1].id,
                                  kind="resource_use", body={"resource": air, "amount": BIG},
                                  timestamp=2_000 + n))
    store = new_store(tmp_path / "builder")
    try:
        ingest(store, [e.raw for e in entries])
        path = tmp_path / "air.p2pc"
        with path.open("wb") as out:
            write_bundle(store, genesis.id, out, created=0)
    finally:
        store.close()
    return path, genesis, entries


def test_overflowing_resource_use_is_rejected_and_the_state_stays_computable(tmp_path: Path) -> None:
    """Reported: 2,049 uses of 2**53 overflowed 64 bits; ``state``, ``ledger`` and the
    ``sanction … remove`` that would stop them failed (exit 3) and ``verify`` exited 5."""
    (tmp_path / "builder").mkdir()
    home, me = _home(tmp_path)
    bundle, genesis, entries = _hostile_use_bundle(tmp_path, me, 2049)
    p2pc("import", str(bundle), "--home", home)
    commons = str(genesis.id)
    state = unwrap(p2pc("state", "--commons", commons, "--home", home, "--json")[0])
    assert len(state["state_hash"]) == 64
    p2pc("ledger", "--commons", commons, "--home", home, "--json")
    p2pc("verify", "--home", home)
    first = unwrap(p2pc("status", str(entries[1].id), "--home", home, "--json")[0])
    assert first["status"] == "applied"
    second = unwrap(p2pc("status", str(entries[2].id), "--home", home, "--json")[0])
    assert second["status"] == REJECTED
    assert f"to {2 * BIG} l, above the bound {MAX_TOTAL}" in second["reason"]
    used = unwrap(p2pc("resource", "list", "--commons", commons, "--home", home, "--json")[0])
    assert str(used).count(str(BIG)) >= 1 and str(2 * BIG) not in str(used)
    out, _ = p2pc("sanction", SIGNERS[5].public_key.hex(), "remove", "--reason", "flooding the air",
                  "--commons", commons, "--home", home, "--json")
    assert unwrap(out)["outcome"]["status"] == "applied"


def test_accepted_values_and_the_ledger_are_bounded() -> None:
    """A review whose accepted value (claimed value × weight) or the ledger's total would pass
    the bound is rejected with the numbers; the contribution stays pending."""
    founder = SIGNERS[0]
    rules = {"values": {"default": 100, "code": BIG}, "review": {"self_review": True}}
    genesis = sign_entry(founder, commons=None, seq=1, prev=None, kind="genesis", timestamp=1,
                         body=genesis_body("c", "", "CC0-1.0", founders=[founder.public_key], rules=rules))
    log = [genesis]

    def write(kind: str, body: dict[str, Any], deps: tuple[Entry, ...] = ()) -> Entry:
        entry = sign_entry(founder, commons=genesis.id, seq=len(log) + 1, prev=log[-1].id, kind=kind, body=body,
                           deps=[d.id for d in deps], timestamp=len(log) + 1)
        log.append(entry)
        return entry

    heavy = write("contribution", {"title": "heavy", "kind": "code", "value": 200})
    big = write("contribution", {"title": "big", "value": BIG})
    more = write("contribution", {"title": "more", "value": 1})
    r1 = write("review", {"contribution": heavy.id, "verdict": "accept"}, (heavy,))
    r2 = write("review", {"contribution": big.id, "verdict": "accept"}, (big,))
    r3 = write("review", {"contribution": more.id, "verdict": "accept"}, (more,))
    state = fold(log)
    assert f"value of {2 * BIG}, above the bound {MAX_TOTAL}" in state.outcome(r1.id).reason  # type: ignore[union-attr]
    assert state.outcome(r2.id).status != REJECTED  # type: ignore[union-attr]
    assert f"total value to {BIG + 1}, above the bound" in state.outcome(r3.id).reason  # type: ignore[union-attr]
    assert state.contribution(heavy.id).status == "pending"  # type: ignore[union-attr]
    assert len(state.state_hash) == 64


# --- the property -------------------------------------------------------------------------------------

_HUGE = st.one_of(st.integers(0, 3), st.integers(BIG - 3, BIG), st.integers(0, BIG))
_KINDS = ("contribution", "review", "resource_use", "distribution", "resource_add", "rule_proposal")


@prop_settings(200)
@given(steps=st.lists(st.tuples(st.sampled_from(_KINDS), st.integers(0, 3), _HUGE, _HUGE), min_size=1, max_size=40))
def test_the_fold_never_raises_and_every_kept_sum_stays_bounded(steps: list[tuple[str, int, int, int]]) -> None:
    """For random histories with adversarially large values (amounts, claimed and adjusted
    values, weights, quotas, periods, times), the fold never raises, and every sum it keeps —
    uses per member and resource (per period and over all), accepted values, each member's
    ledger and the ledger's total, distributions — stays within its bound."""
    authors = SIGNERS[:4]
    genesis = sign_entry(authors[0], commons=None, seq=1, prev=None, kind="genesis", timestamp=0,
                         body=genesis_body("c", "", "CC0-1.0", founders=[a.public_key for a in authors],
                                           resources=[AIR, {"name": "w", "rivalrous": True, "quota": BIG,
                                                            "period": 1, "unit": "m3"}],
                                           rules={"review": {"self_review": True}}))
    entries: list[Entry] = [genesis]
    last: dict[int, Entry] = {0: genesis}
    contributions: list[Entry] = []
    resources = [CID.of(encode(AIR)), CID.of(encode({"name": "w", "period": 1, "quota": BIG, "rivalrous": True,
                                                      "unit": "m3"}))]
    for n, (kind, who, x, y) in enumerate(steps):
        body: dict[str, Any]
        deps: list[CID] = [e.id for e in entries[-3:] if e.author != authors[who].public_key]
        if kind == "contribution":
            body = {"title": "t", "kind": ("code", "docs")[x % 2], "value": y}
        elif kind == "review":
            if not contributions:
                continue
            target = contributions[x % len(contributions)]
            body = {"contribution": target.id, "verdict": "accept", "value": y}
            deps.append(target.id)
        elif kind == "resource_use":
            body = {"resource": resources[x % 2], "amount": max(1, y)}
        elif kind == "distribution":
            body = {"amount": max(1, y)}
        elif kind == "resource_add":
            body = {"name": "r", "rivalrous": False, "quota": x, "period": y}
        else:
            body = {"changes": {"values.code": max(1, y)}, "title": "weights"}
        prev = last.get(who)
        entry = sign_entry(authors[who], commons=genesis.id, seq=1 if prev is None else prev.seq + 1,
                           prev=None if prev is None else prev.id, kind=kind, body=body,
                           deps=sorted(set(deps), key=lambda c: c.raw), timestamp=(x * 1_000_003 + n) % BIG)
        last[who] = entry
        entries.append(entry)
        if kind == "contribution":
            contributions.append(entry)
    state = fold(entries)
    canonical = state.canonical
    assert len(state.state_hash) == 64  # encodable: every integer fits DAG-CBOR
    folder = state._folder
    s = folder.state
    assert s is not None
    assert all(0 <= v <= MAX_TOTAL for v in s.usage.values())
    assert all(0 <= v <= MAX_TOTAL for v in getattr(s, "totals", {}).values())
    assert all(0 <= c.value <= MAX_TOTAL for c in s.contributions.values())
    assert all(0 <= v <= MAX_TOTAL for _, v in s.ledger.values())
    assert sum(v for _, v in s.ledger.values()) <= MAX_TOTAL
    for d in canonical["distributions"]:
        assert sum(d["shares"].values()) == d["amount"] <= MAX_TOTAL
    for resource in canonical["resources"].values():
        per_author: dict[str, int] = {}
        for period in resource["used"].values():
            for author, amount in period.items():
                per_author[author] = per_author.get(author, 0) + amount
        assert all(v <= MAX_TOTAL for v in per_author.values())
    for entry in entries:
        outcome = state.outcome(entry.id)
        assert outcome is not None and (outcome.status != REJECTED or outcome.reason)


def test_a_schema_1_store_holding_an_out_of_range_entry_opens_and_folds(tmp_path: Path) -> None:
    """A store written before the bounds may hold a hostile author's entry whose time is now
    out of range (2**53 ≤ time < 2**63 fitted SQLite). Opening it upgrades the schema (the
    outsiders' tables appear) and cuts that log at the entry, so the commons folds again
    instead of failing on every node that upgraded; the honest entries stay."""
    from p2pcommons.store import SCHEMA_VERSION, Store

    genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body=genesis_body("old"),
                         timestamp=1)
    honest = sign_entry(SIGNERS[0], commons=genesis.id, seq=2, prev=genesis.id, kind="contribution",
                        body={"title": "kept", "value": 1}, timestamp=2)
    first = sign_entry(SIGNERS[1], commons=genesis.id, seq=1, prev=None, kind="contribution",
                       body={"title": "fine", "value": 1}, timestamp=3)
    late = _raw_entry(SIGNERS[1], commons=genesis.id, seq=2, prev=first.id, kind="contribution",
                      body={"title": "late", "value": 1}, time=2**53 + 5)
    path = tmp_path / "store.sqlite"
    store = Store(path)
    with store.transaction():
        ingest(store, [genesis.raw, honest.raw, first.raw])
    # What the old code stored unchecked, and an old schema: no outsiders' tables, version 1.
    log = store._db.execute("SELECT log FROM entries WHERE id = ?", (first.id.raw,)).fetchone()[0]
    store._db.execute("INSERT INTO entries (id, log, seq, kind, raw) VALUES (?, ?, 2, 'contribution', ?)",
                      (CID.of(late).raw, log, late))
    store._db.execute("UPDATE logs SET max_seq = 2 WHERE log = ?", (log,))
    for table in ("insiders", "vouched", "outsider_logs"):
        store._db.execute(f"DROP TABLE {table}")
    store._db.execute("PRAGMA user_version=1")
    store.close()

    store = Store(path)
    try:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store._db.execute("SELECT count(*) FROM insiders").fetchone()[0] >= 0
        assert store.get(CID.of(late)) is None and store.get(first.id) is not None
        assert store.max_seq(genesis.id, SIGNERS[1].public_key) == 1
        assert store.count(genesis.id) == 3  # the kept counts (schema 3) are taken after the cut
        forget()
        from p2pcommons.state.engine import current_state

        state = current_state(store, genesis.id)
        assert state.outcome(honest.id) is not None and state.canonical["entries"] == 3
    finally:
        store.close()
