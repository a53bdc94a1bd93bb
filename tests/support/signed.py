"""Hypothesis strategies for real, signed multi-author histories (with forks), shared by
the codec, ingest, bundle and store property tests."""

from __future__ import annotations

import atexit
import hashlib
import itertools
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from p2pcommons.dagcbor import CID
from p2pcommons.entry import GENESIS, MAX_DEPS, MAX_TIME, Entry, Signer, sign_entry
from p2pcommons.store import Store

SIGNERS = [Signer(hashlib.sha256(b"property-author-%d" % i).digest()) for i in range(6)]
KINDS = ("contribution", "review", "join", "note", "vote")
T0 = 1_700_000_000_000

# --- DAG-CBOR values (the data model minus floats) -------------------------------------------

links = st.binary(min_size=32, max_size=32).map(lambda digest: CID(bytes([1, 0x71, 0x12, 32]) + digest))
scalars = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.booleans(),
    st.none(),
    links,
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=12), children, max_size=5),
    ),
    max_leaves=24,
)
bodies = st.dictionaries(st.text(max_size=12), values, max_size=6)
kinds = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True).filter(lambda k: k != GENESIS)


@st.composite
def single_entries(draw: st.DrawFn) -> Entry:
    """One signed entry with arbitrary (valid) field values; not part of any history."""
    signer = draw(st.sampled_from(SIGNERS))
    genesis = draw(st.booleans())
    if genesis:
        return sign_entry(signer, commons=None, seq=1, prev=None, kind=GENESIS, body=draw(bodies),
                          timestamp=draw(st.integers(0, MAX_TIME - 1)))
    seq = draw(st.one_of(st.integers(1, 30), st.integers(1, 2**53)))
    return sign_entry(
        signer,
        commons=draw(links),
        seq=seq,
        prev=None if seq == 1 else draw(links),
        kind=draw(kinds),
        body=draw(bodies),
        deps=draw(st.lists(links, max_size=MAX_DEPS, unique=True)),
        timestamp=draw(st.integers(0, MAX_TIME - 1)),
    )


# --- histories ---------------------------------------------------------------------------------


@dataclass
class History:
    genesis: Entry
    entries: list[Entry]  # causal order: every entry after its backlink and dependencies
    forks: set[tuple[bytes, int]] = field(default_factory=set)  # (author key, seq)

    @property
    def commons(self) -> CID:
        return self.genesis.id

    @property
    def raws(self) -> list[bytes]:
        return [e.raw for e in self.entries]

    @property
    def ids(self) -> set[bytes]:
        return {e.id.raw for e in self.entries}


@st.composite
def histories(draw: st.DrawFn, *, max_authors: int = 3, max_steps: int = 10, forks: bool = True,
              label: str = "h") -> History:
    """A commons founded by author 0, then random steps: an author appends to its log
    (depending on some other authors' heads) or, sometimes, forks its log by signing a
    second, different entry at a sequence number it already used."""
    n = draw(st.integers(1, max_authors))
    signers = SIGNERS[:n]
    genesis = sign_entry(signers[0], commons=None, seq=1, prev=None, kind=GENESIS,
                         body={"name": f"commons {label}", "salt": draw(st.integers(0, 3))}, timestamp=T0)
    entries = [genesis]
    heads: dict[int, Entry] = {0: genesis}
    history = History(genesis, entries)
    steps = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(KINDS), st.integers(0, 9)),
                          max_size=max_steps))
    for i, (author, kind, choice) in enumerate(steps):
        signer = signers[author]
        head = heads.get(author)
        fork = forks and choice == 0 and head is not None and (head.seq > 1 or author != 0)
        if fork:
            assert head is not None
            # a sibling of the current head: same seq, same backlink, different body
            seq, prev = head.seq, head.prev
        else:
            seq, prev = (head.seq + 1, head.id) if head else (1, None)
        others = [h.id for a, h in sorted(heads.items()) if a != author]
        deps = others[: choice % 3]
        entry = sign_entry(signer, commons=genesis.id, seq=seq, prev=prev, kind=kind,
                           body={"step": i, "fork": fork}, deps=deps, timestamp=T0 + 1000 * (i + 1))
        entries.append(entry)
        if fork:
            history.forks.add((signer.public_key, seq))
        else:
            heads[author] = entry
    return history


def scaled(fraction: float) -> int:
    """An example count: ``fraction`` of the loaded hypothesis profile's max_examples
    (tests/conftest.py picks the profile from P2PC_HYPOTHESIS_PROFILE)."""
    from hypothesis import settings

    current = settings.default
    assert current is not None
    return max(1, round(current.max_examples * fraction))


_template: dict[str, Path] = {}
_store_numbers = itertools.count()


def new_store(directory: Path) -> Store:
    """A new, empty store file in ``directory``.

    Copies a once-initialized empty store instead of creating the schema again: creating
    a store commits about ten schema statements, each with an fsync, which dominated the
    run time of the property tests (a fresh store per hypothesis example)."""
    template = _template.get("store")
    if template is None:
        folder = Path(tempfile.mkdtemp(prefix="p2pc-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        template = folder / "empty.sqlite"
        Store(template).close()  # closing checkpoints the WAL into the file
        _template["store"] = template
    path = directory / f"store-{next(_store_numbers)}.sqlite"
    shutil.copyfile(template, path)
    return Store(path)
