"""Hostile input, fuzzed: bytes from outside never raise anything but our own error types.

Targets here: bundle files (arbitrary bytes, and single/multi-byte mutations and cuts of a
valid bundle), config files and key files.  Entry decoding is fuzzed in
test_codec_properties.py; sync frames and invite codes in the protocol tests.
Each target prints how many inputs it tried.  P2PC_FUZZ_EXAMPLES sets the count
(default 300 per target; a long run outside CI with 20,000 per target passed in 90 s).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tracemalloc
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pcommons.bundle import import_bundle, write_bundle
from p2pcommons.errors import P2PCError, ReceivedDataError
from p2pcommons.home import Home
from p2pcommons.ingest import ingest
from p2pcommons.protocols.framing import encode_uvarint
from p2pcommons.store import Store

from .support.histories import linear_history, raws

EXAMPLES = int(os.environ.get("P2PC_FUZZ_EXAMPLES", "300"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
tried: Counter[str] = Counter()
# One worker for the whole module under `-n 2 --dist loadgroup`: test_report_counts reads the
# counters its neighbours fill in this process; CI failed when xdist ran it on the other worker.
pytestmark = pytest.mark.xdist_group("fuzz")


@pytest.fixture(scope="module")
def valid_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    entries = linear_history(authors=3, per_author=4, label="fuzz")
    store = Store(tmp_path_factory.mktemp("src") / "s.sqlite")
    ingest(store, raws(entries))
    out = io.BytesIO()
    write_bundle(store, entries[0].id, out, created=0)
    store.close()
    return out.getvalue()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("dst") / "d.sqlite")


def _import(store: Store, data: bytes) -> None:
    before = store.count()
    try:
        import_bundle(store, io.BytesIO(data))
    except ReceivedDataError:
        assert store.count() == before  # all or nothing
    else:
        assert store.count() >= before


@fuzz
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_as_bundle(target: Store, data: bytes) -> None:
    tried["bundle: arbitrary bytes"] += 1
    _import(target, data)


@fuzz
@given(st.data())
def test_mutated_bundles(target: Store, valid_bundle: bytes, data: st.DataObject) -> None:
    tried["bundle: mutations"] += 1
    blob = bytearray(valid_bundle)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        if action == "flip":
            blob[where] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "set":
            blob[where] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del blob[where:]
        elif action == "insert":
            blob[where:where] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del blob[where:where + data.draw(st.integers(1, 8))]
        if not blob:
            break
    _import(target, bytes(blob))


@fuzz
@given(text=st.text(max_size=400) | st.binary(max_size=400).map(lambda b: b.decode("latin-1")))
def test_config_files(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    tried["config.toml"] += 1
    home = Home(tmp_path_factory.mktemp("cfg", numbered=True))
    home.config_file.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        config = home.config()
    except P2PCError:
        return
    assert isinstance(config, dict)


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=80) | st.sampled_from(
    ["00" * 16, "00" * 32, "zz", "ed25519", 1, 2**40]
)
_key_documents = st.fixed_dictionaries(
    {"version": st.sampled_from([1, 2, "1"]), "type": st.sampled_from(["ed25519", "rsa"])},
    optional={k: _json_scalars for k in ("seed", "ciphertext", "salt", "opslimit", "memlimit", "encryption")},
).map(json.dumps)


@fuzz
@given(text=st.text(max_size=300) | _key_documents)
def test_key_files(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    from p2pcommons.identity import load_identity

    tried["identity.json"] += 1
    home = Home(tmp_path_factory.mktemp("key", numbered=True))
    home.create_dirs()
    home.key_file.write_text(text, encoding="utf-8")
    os.chmod(home.key_file, 0o600)
    with contextlib.suppress(P2PCError):
        load_identity(home, "passphrase")


def test_huge_announced_frames_are_refused_not_allocated(target: Store, valid_bundle: bytes) -> None:
    """A frame length may announce gigabytes; the reader must refuse it, not allocate it."""
    tracemalloc.start()
    try:
        for announced in (2**20, 2**31, 2**34):
            forged = valid_bundle[:8] + encode_uvarint(announced) + b"x" * 16
            _import(target, forged)
            tried["bundle: huge frame lengths"] += 1
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_report_counts() -> None:
    """Print the per-target counts (run last in this module) for docs/reliability.md."""
    print("\nfuzz inputs tried: " + ", ".join(f"{k}: {v}" for k, v in sorted(tried.items())))
    assert sum(tried.values()) > 0

