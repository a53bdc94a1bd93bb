"""A registered entry kind: its handler, and whether later entries may name it."""

from __future__ import annotations

from typing import NamedTuple

from .view import Handler


class Kind(NamedTuple):
    apply: Handler
    # A later entry may name an entry of this kind (a review its contribution, a vote its
    # proposal, an admission its join, a member record the admission or grant that made it,
    # a resource use its resource, a lifted suspension its reinstatement): the replayer keeps
    # such an entry's position after evicting it, so naming it costs no archive lookup.
    named: bool
