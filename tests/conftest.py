"""Shared test configuration.

Hypothesis profiles, chosen with ``P2PC_HYPOTHESIS_PROFILE``:

* ``default`` (what CI and a plain ``pytest`` run use): hypothesis' usual 100 examples per
  property, scaled down per test where each example is expensive (see each test's
  ``settings``); no deadline, since real SQLite files and signatures on a shared machine
  make per-example timing meaningless.
* ``quick``: 10 examples, for a fast local loop.
* ``thorough``: 1,000 examples (about 10x the default run time).
* ``soak``: 10,000 examples, for an overnight run.

Property tests scale their example counts from the loaded profile's ``max_examples``, so
one variable sizes every run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The processes the tests start (p2pc commands, daemons) compile the project's modules once and
# reuse the bytecode: with PYTHONDONTWRITEBYTECODE set (some machines set it), every one of the
# hundreds of `p2pc` runs recompiled about 200 modules, more than doubling the CLI tests' time.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
settings.register_profile("default", max_examples=100, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("quick", max_examples=10, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=1_000, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("soak", max_examples=10_000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("P2PC_HYPOTHESIS_PROFILE", "default"))


# --- markers by layer (docs/architecture.md), so one layer's tests can be run alone ---------
# `-m state`, `-m "protocols or core"`, … ; every test gets exactly one layer, from its file.
_LAYERS = {
    "repo": ("test_lint", "test_layers", "test_packaging"),
    "cli": ("test_cli_", "test_docs", "test_examples"),
    "state": ("test_state_",),
    "protocols": ("test_sync_protocol", "test_sync_vectors", "test_gossip_vectors", "test_invite_vectors",
                  "test_control_protocol", "test_vectors", "test_address_records"),
    "node": ("test_node_", "test_session_", "test_sync_", "test_reliability_"),
}


def _layer(filename: str) -> str:
    for layer, prefixes in _LAYERS.items():
        if filename.startswith(prefixes):
            return layer
    return "core"


# Kernel tests that dominate the fast loop (large folds measured for time or memory), marked
# slow here rather than in their files, which the kernel's rework is rewriting: CI runs them.
_SLOW = {
    "test_state_memory.py::test_memory_does_not_grow_with_entries_beyond_the_state",
    "test_state_memory.py::test_memory_stays_bounded_when_a_member_falls_silent",
    "test_state_memory.py::test_memory_stays_bounded_when_every_member_is_silent",
    "test_state_memory.py::test_memory_stays_bounded_after_forks",
    "test_state_causal.py::test_concurrent_joins_cost_linear_causal_structure",
    "test_state_archive.py::test_long_history_through_the_store_archive",
    # many processes each: the whole CLI surface, kill -9 loops, ten thousand authors over sync
    "test_cli_json.py::test_every_command_speaks_the_envelope",
    "test_cli_json.py::test_errors_are_envelopes_in_either_position[before]",
    "test_cli_json.py::test_errors_are_envelopes_in_either_position[after]",
    "test_crash_safety.py::test_kill_9_never_corrupts_or_loses_reported_writes",
    "test_sync_many_authors.py::test_ten_thousand_authors_sync_in_bounded_pages",
    "test_node_ingest_process.py::test_the_child_dies_with_its_parent",
    "test_store_busy.py::test_a_writer_past_the_busy_timeout_fails_in_one_sentence",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the markers added here count
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(getattr(pytest.mark, _layer(item.path.name)))
        if f"{item.path.name}::{item.name}" in _SLOW:
            item.add_marker(pytest.mark.slow)
        if "nodes" in getattr(item, "fixturenames", ()):
            # the `nodes` fixture (tests/test_node_integration.py) starts real libp2p nodes
            item.add_marker(pytest.mark.network)
        if item.get_closest_marker("network") is not None or item.get_closest_marker("slow") is not None:
            # Under `-n 2 --dist loadgroup` (the README's full command) the tests that run real
            # nodes, namespaces, browsers and many processes share one worker, one at a time,
            # as they would alone; the in-process tests (properties, vectors) use the other core.
            item.add_marker(pytest.mark.xdist_group("processes"))
