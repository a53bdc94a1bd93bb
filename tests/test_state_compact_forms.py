"""The compact forms of contributions and bookings (:class:`p2pcommons.state.compact.Contributions`,
:class:`~p2pcommons.state.compact.Bookings`): about 36 and 13 bytes a record in the usual case,
``marshal``'s form for a record out of their range (refs, another status, ints beyond 32 bits,
many reviewers, a bool where an int is).  Whatever the record, the table reads back exactly the
record written — equal and of the same types, since the canonical encoding tells 1 from True —
through any mix of writes, deletes, copies and merges, as the plain dict it replaces does."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.state.compact import Bookings, Contributions
from p2pcommons.state.records import Contribution
from tests.test_state_histories import prop_settings
from tests.test_state_layers import _merge_min

_CIDS = [CID.of(b"c%d" % i) for i in range(10)]
_KEYS = st.sampled_from([bytes([i]) * 32 for i in range(5)])
_INTS = st.one_of(st.integers(-3, 300), st.integers(-(2**70), 2**70), st.sampled_from([2**31 - 1, 2**31, -(2**31),
                                                                                     -(2**31) - 1, 2**63]))
_MANY = tuple(bytes([i]) * 32 for i in range(70))  # (more reviewers than the compact form holds)
_TEXT = st.one_of(st.sampled_from(["", "work 1", "code", "é ✓ \U0001f600"]), st.text(max_size=40))

CONTRIBUTIONS = st.builds(
    Contribution,
    author=_KEYS,
    title=_TEXT,
    kind=st.one_of(_TEXT, st.sampled_from([1, True, b"code"])),  # (not text: marshal's form, types kept)
    ref=st.one_of(st.just(""), _TEXT, st.just("r" * 70_000)),  # (a ref longer than its u16 length)
    claimed=st.one_of(_INTS, st.booleans()),
    status=st.sampled_from(["pending", "accepted", "rejected", "withdrawn"]),
    accepts=st.lists(_KEYS, max_size=3).map(tuple) | st.just(_MANY),
    rejects=st.lists(_KEYS, max_size=3).map(tuple),
    value=_INTS,
    outside=st.one_of(st.booleans(), st.just(0)),
    refs=st.lists(st.sampled_from(_CIDS), max_size=2).map(tuple),
    time=st.one_of(st.integers(0, 2**45), st.integers(-(2**70), 2**70)),
)
BOOKINGS = st.tuples(st.sampled_from(_CIDS), _INTS, _KEYS, _INTS)
OPS = st.lists(st.tuples(st.sampled_from(["set", "set", "del", "copy", "switch"]), st.integers(0, 9),
                         CONTRIBUTIONS, BOOKINGS, st.integers(0, 99)), max_size=40)


def _typed(x: Any) -> Any:
    """A record with the type of each field, so 1 and True do not compare equal."""
    if isinstance(x, tuple):
        return tuple(_typed(v) for v in x)
    return (type(x).__name__, x)


@prop_settings(300)
@given(ops=OPS, merge_min=st.sampled_from([0, 1, 1 << 30]))
def test_compact_tables_read_as_the_dicts_they_replace(ops: list[tuple[str, int, Contribution, Any, int]],
                                                       merge_min: int) -> None:
    with _merge_min(merge_min):
        tables: list[tuple[Contributions, Bookings, dict[CID, Contribution], dict[CID, Any]]] = [
            (Contributions(), Bookings(), {}, {})]
        at = 0
        for op, k, record, booking, pick in ops:
            table, bookings, model, bmodel = tables[at]
            cid = _CIDS[k]
            if op == "set":
                table[cid] = model[cid] = record
                bookings[cid] = bmodel[cid] = booking
            elif op == "del":
                if cid in model:
                    del table[cid], model[cid], bookings[cid], bmodel[cid]
                with contextlib.suppress(KeyError):
                    del table[cid]
                    raise AssertionError("deleted twice")
            elif op == "copy":
                tables.append((table.copy(), bookings.copy(), dict(model), dict(bmodel)))
            else:
                at = pick % len(tables)
            for t, b, m, bm in tables:
                assert len(t) == len(m) and len(b) == len(bm)
                assert {c: _typed(r) for c, r in t.items()} == {c: _typed(r) for c, r in m.items()}
                assert {c: _typed(r) for c, r in b.items()} == {c: _typed(r) for c, r in bm.items()}
                assert _typed(t.get(cid)) == _typed(m.get(cid)) and _typed(b.get(cid)) == _typed(bm.get(cid))
                assert all(type(r) is Contribution for r in t.values())
                if cid in m:
                    assert t.same(t.copy(), cid)


def test_the_usual_records_take_the_compact_forms() -> None:
    """A reviewed contribution and a booking as the fold makes them: 36 and 13 bytes."""
    table, bookings = Contributions(), Bookings()
    record = Contribution(b"\x01" * 32, "work 123456", "code", "", 3, "accepted", (b"\x02" * 32,), (), 3, False,
                          (), 1_700_000_123_000)
    table[_CIDS[0]] = record
    bookings[_CIDS[0]] = (_CIDS[1], 19_675, b"\x01" * 32, 4)
    assert len(table._top[_CIDS[0].raw]) == 36 and table[_CIDS[0]] == record
    assert len(bookings._top[_CIDS[0].raw]) == 13 and bookings[_CIDS[0]] == (_CIDS[1], 19_675, b"\x01" * 32, 4)


_DISTRIBUTION = st.fixed_dictionaries(
    {"id": st.sampled_from(_CIDS), "amount": st.integers(0, 2**64), "currency": st.sampled_from(["EUR", "h"]),
     "shares": st.dictionaries(_KEYS, st.integers(0, 2**40), max_size=4)},
    optional={"pool": st.text(max_size=3), "acknowledged": st.lists(_KEYS, max_size=2).map(tuple)})
_ODD = {"id": "not an id", "amount": 1, "currency": "EUR", "shares": {}}  # (kept as it is, unpacked)
LIST_OPS = st.lists(st.tuples(st.sampled_from(["append", "append", "append", "replace", "copy", "switch", "slice"]),
                              st.one_of(_DISTRIBUTION, st.just(_ODD)), st.integers(0, 200)), max_size=60)


@prop_settings(300)
@given(ops=LIST_OPS, chunk=st.sampled_from([1, 2, 3, 256]))
def test_chunked_distributions_read_as_the_lists_they_replace(ops: list[tuple[str, dict[str, Any], int]],
                                                              chunk: int) -> None:
    """Distributions frozen a few at a time into shared chunks (``DISTRIBUTION_CHUNK``
    lowered): through any mix of appends, replacements (a receipt, in a frozen chunk or the
    tail), copies and prefix slices (a checkpoint's delta), each copy reads as the list it
    was copied from, changed only by its own writes, and the common prefix of any two is
    what their lists say."""
    from p2pcommons.state import compact
    from p2pcommons.state.compact import Distributions

    before = compact.DISTRIBUTION_CHUNK
    compact.DISTRIBUTION_CHUNK = chunk
    try:
        lists: list[tuple[Distributions, list[dict[str, Any]]]] = [(Distributions(), [])]
        at = 0
        for op, d, pick in ops:
            packed, model = lists[at]
            if op == "append":
                packed.append(d)
                model.append(dict(d))
            elif op == "replace" and model:
                i = pick % len(model) - (len(model) if pick % 2 else 0)  # (negative places too)
                packed[i] = model[i] = dict(d)
            elif op == "copy":
                lists.append((packed.copy(), list(model)))
            elif op == "slice":
                cut = pick % (len(model) + 2)
                lists.append((packed[:cut], model[:cut]))
            else:
                at = pick % len(lists)
            for p, m in lists:
                assert len(p) == len(m) and list(p) == m and [p[i] for i in range(len(m))] == m
                assert list(p[1::2]) == m[1::2]
            other, other_model = lists[pick % len(lists)]
            common = next((i for i, (x, y) in enumerate(zip(model, other_model, strict=False)) if x != y),
                          min(len(model), len(other_model)))
            assert packed.same_prefix(other) == common == packed.same_prefix(other_model)
    finally:
        compact.DISTRIBUTION_CHUNK = before


def test_a_kind_that_is_not_text_keeps_its_type() -> None:
    """Kinds are held by key-table index only when text: 1 and True (one dict key) stay apart."""
    table = Contributions()
    base = Contribution(b"\x01" * 32, "t", "code", "", 3, "pending", (), (), 0, False)
    table[_CIDS[0]] = base._replace(kind=1)  # type: ignore[arg-type]
    table[_CIDS[1]] = base._replace(kind=True)  # type: ignore[arg-type]
    assert type(table[_CIDS[0]].kind) is int and type(table[_CIDS[1]].kind) is bool
