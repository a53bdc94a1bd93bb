"""A registered entry kind: its handler."""

from __future__ import annotations

from typing import NamedTuple

from .view import Handler


class Kind(NamedTuple):
    apply: Handler
