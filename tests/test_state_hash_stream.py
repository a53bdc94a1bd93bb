"""The state hash streamed into the hasher (dagcbor.encode_to, records.canonical_stream) is
the SHA-256 of exactly the canonical encoding the dict path builds: over random histories
and over random, adversarial states (odd key lengths, non-ASCII text, every table filled).
Example counts (default profile): 300 histories, 300 states, 300 lazy values, 200 ids."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.dagcbor import CID, LazyList, LazyMap, cid_from_text, encode, sha256_stream
from p2pcommons.state import Folder, fold
from p2pcommons.state.engine import cached_head, current_state
from p2pcommons.state.records import (
    Contribution,
    Device,
    Join,
    Member,
    Proposal,
    State,
    canonical_state,
    canonical_stream,
)
from p2pcommons.state.views import CommonsState
from p2pcommons.store import Store
from tests.test_state_histories import ACTIONS, build, prop_settings


def _dict_hash(state: CommonsState) -> str:
    return hashlib.sha256(encode(state.canonical)).hexdigest()


@prop_settings(300)
@given(actions=ACTIONS)
def test_streamed_hash_equals_dict_hash_over_histories(actions: list[tuple[int, int, int]]) -> None:
    history = build(actions)
    streamed = fold(history.entries)
    assert streamed._canonical is None
    digest = streamed.state_hash
    assert streamed._canonical is None  # the hash built no canonical form
    assert digest == _dict_hash(fold(history.entries))


def test_hash_of_a_state_keeps_no_canonical_form() -> None:
    """The fold/save path only asks for the hash: it must not build (and hold) the canonical state."""
    history = build([(0, 4, 1), (2, 0, 3), (0, 2, 0), (2, 0, 5), (0, 6, 2)])
    state = fold(history.entries)
    assert state.state_hash == _dict_hash(fold(history.entries))
    assert state._canonical is None
    assert not state.release_canonical()


_KEYS = st.binary(min_size=0, max_size=40)  # author keys of any length: hex keys of unequal lengths
_TEXT = st.text(max_size=12)  # non-ASCII, empty, NUL ...
_IDS = st.binary(min_size=1, max_size=16).map(CID.of)
_INTS = st.integers(-(2**63), 2**64 - 1)
_DATA = st.recursive(st.none() | st.booleans() | _INTS | _TEXT | st.binary(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                     max_leaves=8)


@st.composite
def _states(draw: st.DrawFn) -> State:
    s = State()
    s.info = draw(st.dictionaries(_TEXT, _DATA, max_size=4))
    if draw(st.booleans()):
        s.rules = {**s.rules, "pools": draw(st.dictionaries(_TEXT, _TEXT, min_size=1, max_size=3))}
    keys = draw(st.lists(_KEYS, unique=True, max_size=6))
    ids = draw(st.lists(_IDS, unique=True, max_size=12))
    some = st.lists(st.sampled_from(keys), unique=True, max_size=3).map(tuple) if keys else st.just(())
    for k in keys:
        s.members[k] = Member(draw(_TEXT), tuple(draw(st.lists(_TEXT, max_size=2))), (), draw(_TEXT),
                              draw(_IDS), draw(st.integers(0, 300)))
        if draw(st.booleans()):
            s.ledger[k] = (draw(st.integers(0, 2**40)), draw(_INTS))
        if draw(st.booleans()):
            s.vouches[k] = tuple((v, draw(_IDS)) for v in draw(some))
        if draw(st.booleans()):
            s.devices[k] = Device(k, draw(st.none() | _IDS), draw(st.none() | _IDS))
    for n, c in enumerate(ids):
        author = draw(st.sampled_from(keys)) if keys else b"\x01" * 32
        pick = n % 3
        if pick == 0:
            s.contributions[c] = Contribution(author, draw(_TEXT), draw(_TEXT), draw(_TEXT), draw(_INTS),
                                              draw(st.sampled_from(["pending", "accepted", "rejected"])),
                                              draw(some), draw(some), draw(_INTS), draw(st.booleans()),
                                              tuple(sorted(draw(st.lists(_IDS, max_size=2)), key=lambda x: x.raw)))
        elif pick == 1:
            s.proposals[c] = Proposal(author, draw(_TEXT), draw(st.dictionaries(_TEXT, _DATA, max_size=3)),
                                      draw(some), draw(some), draw(_TEXT), draw(some), draw(st.integers(0, 2**50)),
                                      0, draw(st.none() | _IDS),
                                      draw(st.none() | st.dictionaries(_TEXT, _DATA, max_size=2)))
        else:
            s.joins[c] = Join(author, draw(_TEXT), draw(some))
    for c in draw(st.lists(_IDS, max_size=3)):
        d: dict[str, Any] = {"id": c, "amount": draw(_INTS), "currency": draw(_TEXT),
                             "shares": {k: draw(st.integers(0, 2**40)) for k in draw(some)}}
        if draw(st.booleans()):
            d["pool"] = draw(_TEXT)
        s.distributions.append(d)
    for c in draw(st.lists(_IDS, max_size=3)):
        s.sanctions.append({"id": c, "member": draw(_KEYS), "action": draw(_TEXT), "reason": draw(_TEXT),
                            "by": draw(_KEYS)})
        s.flows.append({"id": c, "pool": draw(_TEXT), "flow": draw(_TEXT), "amount": draw(_INTS),
                        "party": draw(_TEXT), "why": draw(_TEXT), "balance": draw(_INTS)})
    return s


@prop_settings(300)
@given(state=_states())
def test_streamed_hash_equals_dict_hash_over_adversarial_states(state: State) -> None:
    assert sha256_stream(canonical_stream(state)) == hashlib.sha256(encode(canonical_state(state))).hexdigest()


@prop_settings(300)
@given(value=st.dictionaries(_TEXT, _DATA, max_size=30), lists=st.lists(_DATA, max_size=30))
def test_encode_to_matches_encode(value: dict[str, Any], lists: list[Any]) -> None:
    """Lazy maps (rows in canonical order) and lists stream exactly :func:`encode`'s bytes,
    including counts past the one-byte head (24+ rows) and keys of every length."""
    rows = sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
    whole = {"m": value, "l": lists, "x": 1}
    lazy = {"m": LazyMap(len(rows), lambda: iter(rows)), "l": LazyList(len(lists), lambda: iter(lists)), "x": 1}
    assert sha256_stream(lazy) == hashlib.sha256(encode(whole)).hexdigest()


def test_encode_to_refuses_rows_out_of_order_or_miscounted() -> None:
    with pytest.raises(ValueError):
        sha256_stream({"m": LazyMap(2, lambda: iter([("bb", 1), ("a", 2)]))})
    with pytest.raises(ValueError):
        sha256_stream({"m": LazyMap(2, lambda: iter([("a", 1), ("a", 2)]))})
    with pytest.raises(ValueError):
        sha256_stream({"m": LazyMap(3, lambda: iter([("a", 1), ("b", 2)]))})
    with pytest.raises(ValueError):
        sha256_stream({"l": LazyList(1, lambda: iter([1, 2]))})


@prop_settings(200)
@given(data=st.binary(max_size=64))
def test_cid_from_text_inverts_str(data: bytes) -> None:
    cid = CID.of(data)
    assert cid_from_text(str(cid)) == cid


def test_incremental_fold_hash_unchanged_by_streaming() -> None:
    """A live folder's successive results hash the same as a fresh fold (stream on both)."""
    history = build([(0, 4, 1), (2, 0, 3), (0, 2, 0), (2, 0, 5), (0, 6, 2), (1, 8, 4), (4, 0, 9)])
    folder = Folder(history.commons)
    for entry in history.entries:
        folder.add(entry)
        folder.run()
    assert folder.result().state_hash == _dict_hash(fold(history.entries))


def test_engine_save_path_streams_the_hash(tmp_path: Path) -> None:
    """The engine's fold and save (what the daemon runs after a sync) write the streamed hash
    into the head and keep no canonical form; the hash is the dict path's."""
    history = build([(0, 4, 1), (2, 0, 3), (0, 2, 0), (2, 0, 5), (0, 6, 2), (1, 8, 4), (4, 0, 9)])
    with Store(tmp_path / "s.sqlite") as store:
        store.insert(history.entries)
        state = current_state(store, history.commons, persist=True)
        assert state._canonical is None
        head = cached_head(store, history.commons)
        assert head is not None and head["state_hash"] == state.state_hash
        assert state.state_hash == _dict_hash(fold(history.entries))
