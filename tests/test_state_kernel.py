"""The kernel's shape (issue 12): records declared once, handlers behind one registry and a
narrow view, a replayer that names no entry kind, a one-way import graph.  These pin the
structure so it does not drift back; the behaviour itself is pinned by the vectors and the
merge properties (test_state_properties.py, test_state_vectors.py)."""

from __future__ import annotations

import ast
import importlib
import random
from pathlib import Path

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.state import Folder, checkpoint, records
from p2pcommons.state.handlers import HANDLERS, KINDS, _registry
from tests.test_state_histories import ACTIONS, build, prop_settings

# (``p2pcommons.state.fold`` as an attribute is the fold function, not the module.)
fold_mod = importlib.import_module("p2pcommons.state.fold")
STATE = Path(fold_mod.__file__).parent


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, relative ones resolved against p2pcommons.state."""
    package = "p2pcommons.state" + ("" if path.parent == STATE else "." + path.parent.name)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", [*sorted((STATE / "handlers").glob("*.py")), STATE / "records.py",
                                  STATE / "positions.py"], ids=lambda p: p.name)
def test_handlers_and_records_see_no_replayer_and_no_store(path: Path) -> None:
    """Handlers and records import neither the replayer, the engine, the archive nor the
    store: a handler sees the fold only through handlers.view.View."""
    banned = {"p2pcommons.state.fold", "p2pcommons.state.engine", "p2pcommons.state.archive",
              "p2pcommons.state.checkpoint", "p2pcommons.state.views", "p2pcommons.store"}
    assert not {m for m in _imports(path) if any(m == b or m.startswith(b + ".") for b in banned)}


def test_archive_does_not_import_the_engine() -> None:
    assert not {m for m in _imports(STATE / "archive.py") if m.startswith("p2pcommons.state.engine")}


def test_the_replayer_names_no_entry_kind() -> None:
    """No string literal in fold.py is the name of a registered kind."""
    tree = ast.parse((STATE / "fold.py").read_text(encoding="utf-8"))
    literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert not literals & set(KINDS)


def test_registry_refuses_a_kind_twice() -> None:
    family = {"join": KINDS["join"]}
    with pytest.raises(ValueError, match="registered twice"):
        _registry(family, family)
    with pytest.raises(ValueError, match="registered twice"):
        _registry({"genesis": KINDS["join"]})
    assert set(HANDLERS) == set(KINDS)


def test_state_fields_are_the_declared_ones() -> None:
    declared = (*records.VALUES, *(t.name for t in records.TABLES), *(s.name for s in records.SEQUENCES),
                *records.DERIVED)
    assert records.State.__slots__ == declared
    assert set(checkpoint._dump_state(records.State())) == set(declared) - set(records.DERIVED)


@prop_settings(100)
@given(actions=ACTIONS)
def test_every_declared_field_survives_copy_and_checkpoint(actions: list[tuple[int, int, int]]) -> None:
    """A snapshot copy and a checkpoint round trip give back every declared field, derived
    ones included, and a copy shares no table with its original (records are immutable)."""
    history = build(actions)
    folder = Folder(history.commons)
    for entry in history.entries:
        folder.add(entry)
    folder.run()
    state = folder.state
    assert state is not None
    copy = state.copy()
    loaded = checkpoint._load_state(checkpoint._dump_state(state))
    for name in records.State.__slots__:
        assert getattr(copy, name) == getattr(state, name) == getattr(loaded, name), name
    for table in records.TABLES:
        assert getattr(copy, table.name) is not getattr(state, table.name)
    for sequence in records.SEQUENCES:
        assert getattr(copy, sequence.name) is not getattr(state, sequence.name)


def test_a_checkpoint_of_another_version_is_not_used() -> None:
    """A checkpoint written by another version of the fold is refused (the fold starts
    again) rather than misread."""
    history = build([(0, 0, 0), (1, 1, 1), (2, 2, 2)])
    folder = Folder(history.commons)
    for entry in history.entries:
        folder.add(entry)
    folder.run()
    blob = checkpoint.dump(folder)
    assert checkpoint.load(blob, history.commons, lambda raw: None) is not None
    doc = cbor2.loads(blob)
    doc["version"] = checkpoint.VERSION - 1
    assert checkpoint.load(cbor2.dumps(doc), history.commons, lambda raw: None) is None


def test_a_checkpoint_holds_every_folder_attribute_or_says_why_not() -> None:
    """Every attribute of a Folder is held by one checkpoint part, rebuilt on load,
    transient, or configuration: a new attribute must be placed in one of them."""
    history = build([(0, 0, 0)])
    attributes = set(vars(Folder(history.commons)))
    # (``held``: the feeder's, which keeps its count beside the checkpoint: state.engine)
    config = {"commons", "_commons_raw", "archive", "snapshot_every", "silent_after", "held", "refold_in_place"}
    held = [name for part in checkpoint._PARTS for name in part.holds]
    assert len(held) == len(set(held))
    placed = [*held, *checkpoint.REBUILT, *checkpoint.TRANSIENT, *config]
    assert sorted(placed) == sorted(attributes)


def test_a_refold_inside_a_replay_keeps_the_replayed_order() -> None:
    """A refold from the archive starts while ``_apply_all`` iterates over ``order`` (a
    strong removal excludes an archived entry): resetting the fold must empty the same
    containers, not replace them, or that loop goes on over the old order (found by
    test_state_memory's property at the default profile while restructuring)."""
    import random

    from p2pcommons.state import fold
    from p2pcommons.state.fold import MemoryArchive

    history = build([(0, 9, 0), (0, 16, 0), (0, 16, 0), (0, 34, 1), (0, 9, 0), (0, 9, 0), (2, 40, 0)])
    reference = fold(history.entries).state_hash
    for seed in range(20):
        rng = random.Random(seed)
        arrival = list(history.entries)
        for _ in range(3):  # mostly in order, a few late (as test_state_memory delivers them)
            arrival.append(arrival.pop(rng.randrange(1, len(arrival))))
        folder = Folder(history.commons, snapshot_every=1, archive=MemoryArchive())
        for entry in arrival:
            folder.add(entry)
            if rng.random() < 0.7:
                folder.run()
        assert folder.result().state_hash == reference, seed


@prop_settings(200)
@given(actions=ACTIONS, seed=st.integers(0, 2**32 - 1), in_order=st.booleans())
def test_add_in_order_equals_the_fold_of_everything(actions: list[tuple[int, int, int]], seed: int,
                                                    in_order: bool) -> None:
    """``Folder.add_in_order`` (the engine's intake: no readiness queue when the parents are
    ready) gives the fold of everything, whether the entries come in the fold's order (it
    only appends) or in any order (it inserts, replays, or falls back to ``add``)."""
    history = build(actions)
    reference = Folder(history.commons)
    for entry in history.entries:
        reference.add(entry)
    expected = reference.result()
    last = (2**62, b"")  # (waiting entries last)
    arrival = sorted(history.entries, key=lambda e: reference.meta.get(e.id.raw, last))
    rng = random.Random(seed)
    if not in_order:
        rng.shuffle(arrival)
    folder = Folder(history.commons, snapshot_every=rng.choice([1, 3, 256]))
    for entry in arrival:
        folder.add_in_order(entry)
        if rng.random() < 0.3:
            folder.run()
    result = folder.result()
    assert result.state_hash == expected.state_hash
    for entry in history.entries:
        assert result.outcome(entry.id) == expected.outcome(entry.id), entry
