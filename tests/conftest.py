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

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
settings.register_profile("default", max_examples=100, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("quick", max_examples=10, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=1_000, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("soak", max_examples=10_000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("P2PC_HYPOTHESIS_PROFILE", "default"))
