"""The fold's checkpoint is written as it is encoded (state/checkpoint.py, "streaming"), and
saved into the store from a temporary file a chunk at a time (state/engine.py
``_put_checkpoint``): the bytes are exactly those of the plain document encoded at once, so
checkpoints written before and after read the same.  Why: the first save after a fresh fold
of a million entries held the document, its encoding and SQLite's copy at once (1.8 GB)."""

from __future__ import annotations

from pathlib import Path

import cbor2
from hypothesis import given

from p2pcommons.state import Folder, checkpoint
from p2pcommons.state.engine import _cache_key, current_state, forget
from p2pcommons.store import Store
from tests.support.histories import linear_history
from tests.test_state_histories import ACTIONS, build, prop_settings


def test_cbor_heads_match_cbor2() -> None:
    for n in (0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1):
        assert checkpoint.cbor_head(0, n) == cbor2.dumps(n)  # (an unsigned int is its own head)
    for n in (0, 23, 24, 300, 70_000):
        head = checkpoint.cbor_head(4, n)
        assert cbor2.dumps([0] * n) == head + b"\0" * n
        assert cbor2.dumps(b"\0" * n) == checkpoint.cbor_head(2, n) + b"\0" * n


@prop_settings(60)
@given(actions=ACTIONS)
def test_streamed_checkpoint_is_the_plain_encoding(actions: list[tuple[int, int, int]]) -> None:
    history = build(actions)
    folder = Folder(history.commons)
    for entry in history.entries:
        folder.add(entry)
    folder.run()
    plain = cbor2.dumps(checkpoint._plain(checkpoint._doc(folder)))
    streamed = checkpoint.dump(folder)
    assert streamed == plain
    by_id = {e.id.raw: e for e in history.entries}
    resumed = checkpoint.load(streamed, history.commons, by_id.get)
    assert resumed is not None and resumed.result().state_hash == folder.result().state_hash


def test_rows_longer_than_a_chunk(tmp_path: Path) -> None:
    """Parts of more rows than one encoding chunk (_CHUNK): the engine's saved checkpoint is
    the plain encoding of its document, and a new process resumes from it."""
    entries = linear_history(3, 1200)
    path = tmp_path / "store.sqlite"
    commons = entries[0].id
    with Store(path) as store:
        store.insert(entries)
        state = current_state(store, commons, persist=True)
        from p2pcommons.state.engine import _key, _live

        live = _live[_key(store, commons)]
        saved = store.get_cache(_cache_key(commons, "checkpoint"))
        assert saved is not None
        doc = cbor2.loads(saved)
        assert doc["max_n"] == live.max_n
        assert doc["folder"] == cbor2.dumps(checkpoint._plain(checkpoint._doc(live.folder)))
        assert live.folder.state is not None and len(live.folder.state.contributions) > checkpoint._CHUNK
        forget()
        resumed = current_state(store, commons)
        assert resumed.state_hash == state.state_hash
        assert not list(tmp_path.glob(".p2pc-checkpoint-*"))
    forget()
