"""The implementation against the published test vectors (protocols/vectors/).

Every valid vector is rebuilt from its seed and fields and must come out byte for byte; every
invalid one must raise exactly its labelled exception class (not a subclass, not a sibling);
every chain scenario must end the same way in both verification modes; every bundle file
must import or fail as labelled, leaving the target store untouched on failure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any, Literal

import cbor2
import pytest

from p2pcommons import dagcbor, errors
from p2pcommons.bundle import import_bundle
from p2pcommons.dagcbor import CID
from p2pcommons.entry import SIGNATURE_DOMAIN, Signer, decode_entry, sign_entry
from p2pcommons.identity import (
    author_id_text,
    parse_author_id,
    peer_id_text,
    public_key_from_peer_id,
)
from p2pcommons.ingest import Ingestor
from p2pcommons.store import Store

VECTORS = Path(__file__).resolve().parent.parent / "protocols" / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "entries.json").read_text(encoding="utf-8"))


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item.get("name") or item["file"] for item in items]


def _error(name: str) -> type[errors.ReceivedDataError]:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.ReceivedDataError)
    return cls  # type: ignore[no-any-return]


def test_vector_file_covers_every_error_class() -> None:
    labelled = {v["error"] for v in DOC["invalid"]} | {e for c in DOC["chains"] for e in c["errors"]}
    labelled |= {b["error"] for b in DOC["bundles"] if b["error"]}
    wanted = {cls.__name__ for cls in vars(errors).values()
              if isinstance(cls, type) and issubclass(cls, errors.InvalidEntry) and cls is not errors.InvalidEntry}
    assert wanted <= labelled, wanted - labelled
    assert {"BundleTruncated", "BundleTampered"} <= labelled
    assert any(c["forks"] for c in DOC["chains"])


def test_generator_is_deterministic_and_files_are_current(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("p2pc_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        files: dict[str, bytes] = module.render(module.build())
    finally:
        del sys.modules[spec.name]
    # other generators share the directory (commons-*.json); entries.json and bundle-*.bin are ours
    ours = {p.name for p in VECTORS.iterdir() if p.name == "entries.json" or p.name.startswith("bundle-")}
    assert sorted(files) == sorted(ours)
    for name, data in files.items():
        assert (VECTORS / name).read_bytes() == data, f"{name} is out of date: run protocols/vectors/generate.py"


@pytest.mark.parametrize("author", DOC["authors"], ids=lambda a: a["name"])
def test_author_ids(author: dict[str, Any]) -> None:
    signer = Signer(bytes.fromhex(author["seed"]))
    assert signer.public_key.hex() == author["public_key"]
    assert author_id_text(signer.public_key) == author["author_id"]
    assert author["author_id"].startswith("z6Mk")
    assert peer_id_text(signer.public_key) == author["peer_id"]
    assert author["peer_id"].startswith("12D3KooW")
    assert parse_author_id(author["author_id"]) == signer.public_key
    assert public_key_from_peer_id(author["peer_id"]) == signer.public_key


@pytest.mark.parametrize("vector", DOC["valid"], ids=_ids(DOC["valid"]))
def test_valid_entry(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    fields = vector["fields"]
    entry = decode_entry(raw)
    entry.verify_signature()
    assert len(raw) == vector["size"]
    assert str(entry.id) == vector["id"]
    assert entry.id.raw.hex() == vector["id_hex"]
    assert entry.id == CID.parse(vector["id"])
    assert entry.id.raw == bytes([1, 0x71, 0x12, 32]) + hashlib.sha256(raw).digest()
    assert entry.sig.hex() == vector["signature"]
    assert entry.author.hex() == fields["author"]
    assert author_id_text(entry.author) == vector["author_id"]
    assert peer_id_text(entry.author) == vector["peer_id"]
    if vector["signing_input_hex"] is not None:
        assert entry.signing_bytes().hex() == vector["signing_input_hex"]
    signing = entry.signing_bytes()
    assert signing.startswith(SIGNATURE_DOMAIN)
    # the signing input is the canonical encoding of the map without "sig"
    unsigned = {k: v for k, v in cbor2.loads(raw).items() if k != "sig"}
    assert signing == SIGNATURE_DOMAIN + dagcbor.encode(unsigned)

    # rebuild from the seed and fields: byte for byte the same entry
    signer = Signer(bytes.fromhex(vector["seed"]))
    body = dagcbor.decode(bytes.fromhex(fields["body_hex"]))
    rebuilt = sign_entry(
        signer,
        commons=None if fields["commons"] is None else CID.parse(fields["commons"]),
        seq=fields["seq"],
        prev=None if fields["prev"] is None else CID.parse(fields["prev"]),
        kind=fields["kind"],
        body=body,
        deps=[CID.parse(d) for d in fields["deps"]],
        timestamp=fields["time"],
    )
    assert rebuilt.raw == raw
    assert (entry.seq, entry.kind, entry.time) == (fields["seq"], fields["kind"], fields["time"])
    assert [str(d) for d in entry.deps] == fields["deps"]
    assert dagcbor.decode(raw) == cbor2.loads(raw)  # the generic decoder accepts it too
    assert dagcbor.encode(dagcbor.decode(raw)) == raw


@pytest.mark.parametrize("vector", DOC["invalid"], ids=_ids(DOC["invalid"]))
def test_invalid_entry(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    expected = _error(vector["error"])
    with pytest.raises(errors.InvalidEntry) as caught:
        entry = decode_entry(raw)
        assert vector["stage"] == "signature", "decoded, but the vector says decoding must fail"
        entry.verify_signature()
    assert type(caught.value) is expected, caught.value
    message = str(caught.value)
    assert message and message.endswith(".") and "\n" not in message


@pytest.mark.parametrize("vector", DOC["invalid"], ids=_ids(DOC["invalid"]))
@pytest.mark.parametrize("verify", ["segment", "each"])
def test_invalid_entry_through_ingest(vector: dict[str, Any], verify: Literal["segment", "each"],
                                      genesis_store: Store) -> None:
    """The ingest path (sync, bundles) reports the same error and stores nothing."""
    before = genesis_store.count()
    report = Ingestor(genesis_store, verify=verify).add_batch([bytes.fromhex(vector["hex"])])
    assert [type(e).__name__ for e in report.rejected] == [vector["error"]]
    assert report.added_count == 0 and genesis_store.count() == before
    with pytest.raises(_error(vector["error"])):
        Ingestor(genesis_store, verify=verify, atomic=True).add_batch([bytes.fromhex(vector["hex"])])
    assert genesis_store.count() == before


ED25519_EDGES = {
    "ed25519-r-order-8-component", "ed25519-r-identity", "ed25519-r-identity-sign-bit", "ed25519-r-non-canonical",
    "ed25519-s-not-reduced", "ed25519-key-identity", "ed25519-key-identity-sign-bit",
    "ed25519-key-identity-non-canonical", "ed25519-key-order-2", "ed25519-key-order-4", "ed25519-key-order-4-negated",
    "ed25519-key-order-4-non-canonical", "ed25519-key-order-8", "ed25519-key-order-8-negated",
    "ed25519-key-order-8-other", "ed25519-key-mixed-order",
}


def test_ed25519_edges_are_covered() -> None:
    """entry.md §4: every rule that separates libsodium from a lenient Ed25519 verifier has a
    vector (each is checked by test_invalid_entry: decoding succeeds, verification refuses)."""
    by_name = {v["name"]: v for v in DOC["invalid"]}
    assert set(by_name) >= ED25519_EDGES
    assert {by_name[n]["error"] for n in ED25519_EDGES} == {"BadSignature"}
    assert {by_name[n]["stage"] for n in ED25519_EDGES} == {"signature"}
    assert [v["name"] for v in DOC["valid_unusual"]] == ["ed25519-key-mixed-order-k-multiple-of-8"]


@pytest.mark.parametrize("vector", DOC["valid_unusual"], ids=_ids(DOC["valid_unusual"]))
def test_valid_unusual_entry(vector: dict[str, Any], tmp_path: Path) -> None:
    """An edge of the signature rules that must be ACCEPTED (a mixed-order key whose
    cofactorless equation holds): refusing it would score an honest relay as hostile."""
    raw = bytes.fromhex(vector["hex"])
    entry = decode_entry(raw)
    entry.verify_signature()
    assert str(entry.id) == vector["id"]
    genesis = next(v for v in DOC["valid"] if v["name"] == "genesis")
    with Store(tmp_path / "u.sqlite") as store:
        report = Ingestor(store, verify="each").add_batch([bytes.fromhex(genesis["hex"]), raw])
        assert report.added_count == 2 and not report.rejected


def test_text_is_byte_exact_with_a_leading_bom() -> None:
    """entry.md §1: a leading U+FEFF is part of the text, not an encoding marker."""
    vector = next(v for v in DOC["valid"] if v["name"] == "text-leading-bom")
    raw = bytes.fromhex(vector["hex"])
    assert b"\x6c\xef\xbb\xbfSeed list" in raw  # a 12-byte text string: EF BB BF, then 9 ASCII bytes
    assert decode_entry(raw).body["title"] == "\ufeffSeed list"
    assert dagcbor.decode(bytes.fromhex(vector["fields"]["body_hex"]))["title"].startswith("\ufeff")


@pytest.fixture(scope="module")
def genesis_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("vectors") / "g.sqlite")
    genesis = next(v for v in DOC["valid"] if v["name"] == "genesis")
    Ingestor(store, atomic=True).add_batch([bytes.fromhex(genesis["hex"])])
    return store


@pytest.mark.parametrize("vector", DOC["chains"], ids=_ids(DOC["chains"]))
@pytest.mark.parametrize("verify", ["segment", "each"])
def test_chain(vector: dict[str, Any], verify: Literal["segment", "each"], tmp_path: Path) -> None:
    with Store(tmp_path / "c.sqlite") as store:
        setup = [bytes.fromhex(h) for h in vector["setup"]]
        if setup:
            assert Ingestor(store, verify="each", atomic=True).add_batch(setup).added_count == len(setup)
        before = store.count()
        commons = None if vector["commons"] is None else CID.parse(vector["commons"])
        report = Ingestor(store, commons=commons, verify=verify).add_batch(bytes.fromhex(h) for h in vector["input"])
        assert sorted(str(e.id) for e in report.added) == vector["accepted"]
        assert report.duplicates == vector["duplicates"]
        assert [type(e).__name__ for e in report.rejected] == vector["errors"]
        assert sorted((author_id_text(a), s) for _c, a, s in report.forks) == sorted(
            (f["author_id"], f["seq"]) for f in vector["forks"]
        )
        assert store.count() == before + len(vector["accepted"])
        for entry_id in vector["accepted"]:
            assert store.has(CID.parse(entry_id))
        for fork in vector["forks"]:
            stored = [f for f in store.forks() if f.author == parse_author_id(fork["author_id"])]
            assert [f.seq for f in stored] == [fork["seq"]]
            assert len(stored[0].ids) == 2
        if vector["errors"]:
            # atomically, the first error aborts and the store is unchanged
            with Store(tmp_path / "atomic.sqlite") as atomic_store:
                if setup:
                    Ingestor(atomic_store, verify="each", atomic=True).add_batch(setup)
                with pytest.raises(_error(vector["errors"][0])), atomic_store.transaction():
                    Ingestor(atomic_store, commons=commons, verify=verify, atomic=True).add_batch(
                        bytes.fromhex(h) for h in vector["input"]
                    )
                assert atomic_store.count() == len(setup)


@pytest.mark.parametrize("vector", DOC["bundles"], ids=_ids(DOC["bundles"]))
def test_bundle_file(vector: dict[str, Any], tmp_path: Path) -> None:
    data = (VECTORS / vector["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == vector["sha256"]
    with Store(tmp_path / "b.sqlite") as store:
        if vector["error"] is None:
            header, report = import_bundle(store, io.BytesIO(data))
            assert report.added_count == vector["entries"] == store.count() == header.entries
            # importing again is a no-op
            _header, again = import_bundle(store, io.BytesIO(data))
            assert again.added_count == 0 and again.duplicates == vector["entries"]
        else:
            with pytest.raises(_error(vector["error"])):
                import_bundle(store, io.BytesIO(data))
            assert store.count() == 0
