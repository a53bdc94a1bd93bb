"""The kind handlers, one module per family, and the one registry the replayer dispatches through.

To add an entry kind: write its handler in the family's module (or a new module) — a
function ``(view, state, entry, meta) -> status`` (see :mod:`.view`) — add it to that
module's ``KINDS``, specify it in ``protocols/commons.md`` and add vectors
(``protocols/vectors/generate_commons.py``).  If it keeps new records, declare them in
:mod:`..records`.  Nothing in the replayer (:mod:`..fold`) changes.
"""

from __future__ import annotations

from ...entry import Entry
from ..positions import Meta
from ..records import State
from . import contributions, decisions, devices, distributions, membership, pools, resources, rules_votes, sanctions
from .registry import Kind
from .view import APPLIED, PENDING, REJECTED, WAITING, Handler, Rejected, View

GENESIS = "genesis"  # founded by :func:`.genesis.found`, not through the registry


def _registry(*families: dict[str, Kind]) -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for family in families:
        for name, kind in family.items():
            if name in kinds or name == GENESIS:
                raise ValueError(f"entry kind '{name}' registered twice")
            kinds[name] = kind
    return kinds


KINDS: dict[str, Kind] = _registry(membership.KINDS, sanctions.KINDS, contributions.KINDS, rules_votes.KINDS,
                                   resources.KINDS, distributions.KINDS, decisions.KINDS, devices.KINDS,
                                   pools.KINDS)


def judged(handler: Handler) -> Handler:
    """``handler`` as the replayer calls it.  Every handler judges a bound device's entry as
    its member's (one member, one standing: :func:`.devices.speaking_for`), and first closes
    the proposals whose deadline that entry closes (:func:`.decisions.settle`: any member's
    entry dated after a deadline closes the proposal, so the entry itself is judged after the
    decision; a member's device closes a deadline as its member would).  One wrapper, and
    neither step costs a call where it has nothing to do (no device bound, no deadline
    open): it runs for every entry."""
    def apply(v: View, s: State, e: Entry, m: Meta) -> str:
        if s.devices:
            e = devices.speaking_for(v, s, e, m)
        if s.due:
            decisions.settle(v, s, e, m)
        return handler(v, s, e, m)
    apply.__doc__ = handler.__doc__
    return apply


HANDLERS: dict[str, Handler] = {name: judged(kind.apply) for name, kind in KINDS.items()}

__all__ = ["APPLIED", "GENESIS", "HANDLERS", "KINDS", "PENDING", "REJECTED", "WAITING", "Handler", "Kind",
           "Rejected", "View"]
