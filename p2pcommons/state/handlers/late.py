"""Which late entries the state at one position can judge for every earlier position.

An evicting fold (:mod:`..fold`, "Eviction") no longer holds the positions before its
archive's base.  An entry that sorts there would mean refolding everything — unless the
governance rules say its effect is the same wherever it sorts before the base.  That
question is about the rules, not about ordering, so it is answered here, beside the
handlers, and the replayer only acts on the answer.  So is the reverse question, for an
entry archived there whose key forked before it later (:func:`take_out`): what was its
effect, that it no longer has.
"""

from __future__ import annotations

from collections.abc import Callable

from ...entry import Entry
from ..records import State
from .view import REJECTED

STRANGER = "stranger"  # its handler, applied to the base state, gives its effect anywhere before it
REMOVED = "removed"  # its author was removed: strong removal decides (the replayer's exclusions)
REFOLD = ""  # the rules cannot tell: fold again from the start


def late_judge(base: State) -> Callable[[Entry], str]:
    """How an entry sorting at or before ``base``'s position can be judged from ``base``:

    * its author is not a member there — so at no earlier position either (members are never
      dropped from the state) — or has left: STRANGER.  Its handler rejects it wherever it
      sorts, or (a join; a contribution while contributions are open to anyone, and their
      policy was never changed) records it pending, which nothing before the base can
      observe (an entry naming it depends on it, so it is new too).  A former member had
      left wherever the entry sorts, since it chains through their leave and only their own
      (later, so not yet applied) entries could have left again after a readmission;
    * its author was removed there, or is a revoked device: REMOVED (strong removal may reject
      it wherever it sorts);
    * its author is a device bound there (it speaks for its member): REFOLD;
    * anything else (a member's entry, a contribution once the contribution policy changed): REFOLD.
    """
    changed: list[bool] = []  # (asked only for a contribution, once)

    def policy_changed() -> bool:
        if not changed:  # (only proposals whose packed record names a contribution rule are read)
            changed.append(any(p.status == "adopted" and any(k.split(".")[0] == "contribution" for k in p.changes)
                               for p in base.proposals.screened(b"contribution")))
        return changed[0]

    def judge(entry: Entry) -> str:
        device = base.devices.get(entry.author)
        if device is not None:  # a member's device (or the member's own key, revoked)
            return REMOVED if device.revocation is not None else REFOLD
        former = base.members.get(entry.author)
        if former is not None and former.status == "removed":
            return REMOVED
        if (former is not None and former.status != "left") or (entry.kind == "contribution" and policy_changed()):
            return REFOLD
        return STRANGER

    return judge


def take_out(state: State, entry: Entry, status: str, stored_naming: Callable[[str, bytes], bool]) -> bool:
    """Take a stranger's archived entry's effect out of ``state``, the state at the archive's
    base, because its key forked at or before it (the fork penalty: it has none): the record
    of a pending join or of an outsider's contribution still pending and unreviewed.  True
    if that was its whole effect (or it had none: ``status`` rejected); False if the rules
    cannot tell from the state (the replayer then refolds).  ``stored_naming(kind, key)``:
    whether a stored entry of ``kind`` may name ``key``.

    A pending join is also seen without being named: a key with one cannot be bound as a
    device (:func:`.devices.bindable`), and a refused binding leaves no trace in the state.
    So a join whose going leaves its key without a pending join is taken out only when no
    stored device entry names the key."""
    cid, author = entry.id, entry.author
    if entry.kind == "join" and cid in state.joins:
        join = state.joins[cid]
        if join.author != author or join.approvals:
            return False
        del state.joins[cid]
        left = state.join_authors.get(author, 0) - 1
        if left > 0:
            state.join_authors[author] = left
        else:
            state.join_authors.pop(author, None)
        return any(other.author == author for other in state.joins.values()) or not stored_naming("device", author)
    if entry.kind == "contribution" and cid in state.contributions:
        contribution = state.contributions[cid]
        if contribution.author != author or contribution.status != "pending" or not contribution.outside \
                or contribution.accepts or contribution.rejects:
            return False
        del state.contributions[cid]
        return True
    return status == REJECTED
