"""The replayer's index of named archived entries (p2pcommons/state/refindex.py): a hash
table of small byte-string buckets that must read exactly as the dict it stands for."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.state import refindex
from p2pcommons.state.refindex import RefIndex
from tests.test_state_histories import prop_settings

_PREFIX = CID.of(b"x").raw[:-32]


def _sparse(i: int) -> bytes:
    """A digest of zeros with at most one byte set: one such digest occurs in a bucket's
    bytes across two others, at an offset that is not a row's start."""
    return bytes(32) if i >= 32 else bytes(i) + b"\x01" + bytes(31 - i)


# Keys: ids; ids with sparse digests; ids of another prefix or length; short keys.
_KEY = st.one_of(
    st.integers(0, 2000).map(lambda k: CID.of(b"%d" % k).raw),
    st.integers(0, 32).map(lambda i: _PREFIX + _sparse(i)),
    st.integers(0, 32).map(lambda i: b"\x07" + _PREFIX + _sparse(i)),
    st.binary(max_size=33),
)
_OPS = st.lists(st.tuples(st.sampled_from(["set"] * 8 + ["del", "pop", "clear"]), _KEY,
                          st.one_of(st.integers(0, 300), st.integers(0, 2**100))), max_size=200)


@contextlib.contextmanager
def _buckets(first: int, rows: int, pending: int = refindex._PENDING) -> Iterator[None]:
    saved = refindex._BUCKETS, refindex._ROWS, refindex._PENDING
    refindex._BUCKETS, refindex._ROWS, refindex._PENDING = first, rows, pending
    try:
        yield
    finally:
        refindex._BUCKETS, refindex._ROWS, refindex._PENDING = saved


def _apply(table: RefIndex, model: dict[bytes, int], op: str, key: bytes, value: int) -> None:
    """One operation of ``_OPS`` on the table and on the dict it models (a delete of a
    missing key must raise KeyError)."""
    if op == "set":
        table[key] = model[key] = value
    elif op == "del":
        if key in model:
            del table[key], model[key]
        with pytest.raises(KeyError):
            del table[key]
    elif op == "pop":
        assert table.pop(key, None) == model.pop(key, None)
    else:
        table.clear()
        model.clear()


@prop_settings(300)
@given(ops=_OPS, first=st.sampled_from([1, 16]), rows=st.sampled_from([1, 2, 32]))
def test_the_ref_index_reads_as_the_dict_it_replaces(ops: list[tuple[str, bytes, int]], first: int,
                                                     rows: int) -> None:
    """Any mix of writes (new keys, overwrites, values that need wider rows), deletes, pops
    and clears, from one bucket or sixteen, doubling after every row or every few, reads as
    a dict: every key and a missing one, its length, its items, its keys and values in step
    (a checkpoint writes them side by side)."""
    with _buckets(first, rows):
        table, model = RefIndex(), {}
        for op, key, value in ops:
            _apply(table, model, op, key, value)
            assert len(table) == len(model) and dict(table.items()) == model
            assert table.get(key) == model.get(key) and (key in table) == (key in model)
            assert dict(zip(table, table.values(), strict=True)) == model
        for key in model:
            assert table[key] == model[key]
        with pytest.raises(KeyError):
            table[b"\x00" * 40]
        assert (b"\x00" * 40) not in table and 5 not in table  # type: ignore[comparison-overlap]


@prop_settings(300)
@given(ops=_OPS, first=st.sampled_from([1, 16]), rows=st.sampled_from([1, 2, 32]),
       pending=st.sampled_from([1, 2, 7, 4096]), every=st.integers(1, 40))
def test_rows_written_before_a_flush_read_as_the_dict(ops: list[tuple[str, bytes, int]], first: int, rows: int,
                                                      pending: int, every: int) -> None:
    """Rows wait in a plain dict and go into their buckets a batch at a time: with batches of
    one row, a few or more than the whole run, and the table counted, iterated and compared
    whole (which flushes) only every few operations, every lookup between flushes — of a
    row written since, overwritten since, in the buckets, or absent — reads as the dict, and
    so does the whole table at each flush and at the end."""
    with _buckets(first, rows, pending):
        table, model = RefIndex(), {}
        for i, (op, key, value) in enumerate(ops):
            _apply(table, model, op, key, value)
            assert table.get(key) == model.get(key) and (key in table) == (key in model)
            assert all(table.get(k) == v for k, v in model.items())
            if i % every == 0:
                assert len(table) == len(model) and dict(table.items()) == model
        assert len(table) == len(model) and dict(table.items()) == model
        assert dict(zip(table, table.values(), strict=True)) == model


def test_a_ref_index_refuses_negative_values() -> None:
    """Packed positions are never negative; a negative value is a caller's error, not a row."""
    table = RefIndex()
    with pytest.raises(ValueError):
        table[CID.of(b"a").raw] = -1
    assert not table
