"""The query tables (p2pcommons/tables.py) say what the fold says.

After random histories stored in a real SQLite file in random chunks, and the engine's
persists between them (incremental, and whole after a "new process"), the tables equal the
views of the in-memory state; they are refused as soon as the store holds an entry they do
not; and ``p2pc contribute``'s path without the fold stores exactly the entry the fold's
path accepts.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from p2pcommons import tables
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer, sign_entry
from p2pcommons.ingest import Ingestor
from p2pcommons.state import APPLIED, genesis_body
from p2pcommons.state.engine import current_state, forget
from p2pcommons.state.handlers.common import MAX_TEXT
from p2pcommons.store import Store
from p2pcommons.web import data as views
from tests.test_state_histories import ACTIONS, build, prop_settings


def _ingest(store: Store, raws: list[bytes]) -> None:
    with store.transaction():
        Ingestor(store, verify="each", atomic=False, clock=None).add_batch(raws)


def _assert_tables_equal_state(store: Store, commons: CID) -> None:
    found = tables.read(store, commons)
    assert found is not None, "persisted tables with nothing stored since must be current"
    assert found.summary == views.state(store, commons, full=False)
    assert found.members() == views.members(store, commons)["members"]
    rows = views.contributions(store, commons)["contributions"]
    assert found.contributions() == rows
    for status in ("pending", "accepted", "rejected"):
        assert found.contributions(status) == [r for r in rows if r["status"] == status]
        assert found.contribution_count(status) == sum(1 for r in rows if r["status"] == status)
    assert found.contribution_count() == len(rows)
    assert found.contributions(limit=3) == rows[:3]
    indexes = {name for (name,) in store.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'query_contributions'")}
    assert set(tables._INDEXES) <= indexes  # (a whole rewrite built them again)


@prop_settings(150)
@given(actions=ACTIONS, cuts=st.lists(st.integers(1, 12), min_size=2, max_size=6),
       restarts=st.lists(st.integers(0, 2), min_size=6, max_size=6), shuffle=st.booleans(),
       order=st.randoms(use_true_random=False), rebuild=st.booleans())
def test_tables_equal_the_folded_state(tmp_path_factory: object, actions: list[tuple[int, int, int]],
                                       cuts: list[int], restarts: list[int], shuffle: bool, order: object,
                                       rebuild: bool) -> None:
    """``rebuild``: a whole rewrite builds the indexes after the rows whatever its size (as
    one of 4,096 rows or more does: ``tables.REBUILD_ROWS``)."""
    saved = tables.REBUILD_ROWS
    tables.REBUILD_ROWS = 0 if rebuild else saved
    try:
        _check_tables(tmp_path_factory, actions, cuts, restarts, shuffle, order)
    finally:
        tables.REBUILD_ROWS = saved


def _check_tables(tmp_path_factory: object, actions: list[tuple[int, int, int]], cuts: list[int],
                  restarts: list[int], shuffle: bool, order: object) -> None:
    history = build(actions)
    raws = [e.raw for e in history.entries]
    if shuffle:  # any arrival order (else log order, as sync and bundles deliver)
        rest = raws[1:]
        order.shuffle(rest)  # type: ignore[attr-defined]
        raws = raws[:1] + rest
    path = Path(tmp_path_factory.mktemp("tables")) / "store.db"  # type: ignore[attr-defined]
    store = Store(path)
    try:
        commons = history.commons
        start = 0
        for i, cut in enumerate([*cuts, len(raws)]):
            chunk = raws[start:start + cut] if i < len(cuts) else raws[start:]
            start += len(chunk)
            if chunk:
                before = (store.last_arrival(), store.count(commons))
                _ingest(store, chunk)  # (an outsider's entry, say, may not be stored)
                if (store.last_arrival(), store.count(commons)) != before and tables.read(store, commons) is not None:
                    raise AssertionError("tables from before the newest entries were taken as current")
            restart = restarts[i] if i < len(restarts) else 0
            if restart == 1:
                forget()  # a new process: resumes from the checkpoint, then writes incrementally
            elif restart == 2:
                tables.forget()  # as if another process wrote them: the next write is whole
            current_state(store, commons, persist=True)
            _assert_tables_equal_state(store, commons)
            if start >= len(raws):
                break
    finally:
        forget()
        store.close()


SIGNERS = [Signer(bytes([i + 40]) * 32) for i in range(3)]


def _commons(store: Store) -> CID:
    body = genesis_body("t", "a commons", "CC0-1.0", founders=[SIGNERS[0].public_key, SIGNERS[2].public_key])
    genesis = sign_entry(SIGNERS[0], commons=None, seq=1, prev=None, kind="genesis", body=body, timestamp=1_000_000)
    _ingest(store, [genesis.raw])
    current_state(store, genesis.id, persist=True)
    return genesis.id


def test_contribute_without_the_fold_adds_what_the_fold_then_applies(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    try:
        commons = _commons(store)
        forget()  # (as a CLI process: nothing folded in memory)
        entry = tables.contribute(store, SIGNERS[0], commons, {"title": "fixed a bug", "kind": "code", "value": 3})
        assert entry is not None
        found = tables.read(store, commons)
        assert found is not None  # still current: the row was added with the entry
        assert found.summary["unfolded_count"] == 1
        assert found.summary["contribution_counts"]["pending"] == 1
        assert found.contribution_count("pending") == found.contribution_count() == 1
        assert found.contribution_count("accepted") == 0
        assert [r["id"] for r in found.contributions("pending")] == [str(entry.id)]
        before_fold = found.contributions()
        state = current_state(store, commons, persist=True)
        assert views.contributions(store, commons)["contributions"] == before_fold  # the row the fold then writes
        outcome = state.outcome(entry.id)
        assert outcome is not None and outcome.status == APPLIED
        _assert_tables_equal_state(store, commons)
        assert tables.read(store, commons).summary["unfolded_count"] == 0  # type: ignore[union-attr]
    finally:
        forget()
        store.close()


def test_contribute_without_the_fold_leaves_undecided_cases_to_the_fold(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    try:
        commons = _commons(store)
        before = store.count(commons)
        # Not a member (the rules let anyone contribute: the fold decides it is an outsider's).
        assert tables.contribute(store, SIGNERS[1], commons, {"title": "drive-by"}) is None
        # A field the handler refuses, and one the tables do not know.
        assert tables.contribute(store, SIGNERS[0], commons, {"title": "x" * (MAX_TEXT + 1)}) is None
        assert tables.contribute(store, SIGNERS[0], commons, {"title": "x", "extra": 1}) is None
        assert store.count(commons) == before  # nothing stored
    finally:
        forget()
        store.close()


def test_the_gate_is_the_handlers_limit() -> None:
    assert tables.MAX_TEXT == MAX_TEXT


def test_a_review_between_persists_rewrites_the_row(tmp_path: Path) -> None:
    """An incremental write takes a changed record (a contribution reviewed), not only new ones."""
    store = Store(tmp_path / "store.db")
    try:
        commons = _commons(store)
        entry = tables.contribute(store, SIGNERS[0], commons, {"title": "a map"})
        assert entry is not None
        current_state(store, commons, persist=True)
        found = tables.read(store, commons)
        assert found is not None and [r["status"] for r in found.contributions()] == ["pending"]
        review = sign_entry(SIGNERS[2], commons=commons, seq=1, prev=None, kind="review",
                            body={"contribution": entry.id, "verdict": "accept"}, deps=[entry.id],
                            timestamp=entry.time + 1)
        _ingest(store, [review.raw])
        assert tables.read(store, commons) is None  # the review is not in them yet
        state = current_state(store, commons, persist=True)
        status = state.contribution(entry.id).status  # type: ignore[union-attr]
        assert status != "pending"
        _assert_tables_equal_state(store, commons)
        assert [r["status"] for r in tables.read(store, commons).contributions()] == [status]  # type: ignore[union-attr]
    finally:
        forget()
        store.close()


def test_the_daemons_query_pages_and_summarizes(tmp_path: Path) -> None:
    """The control socket's ``query`` (protocols/control.md §4) takes ``full`` and ``limit``
    as the CLI does; a request without them (an older client) gets everything, as before."""
    from p2pcommons.node.queries import answer_query

    store = Store(tmp_path / "store.db")
    try:
        commons = _commons(store)
        for i in range(3):
            assert tables.contribute(store, SIGNERS[0], commons, {"title": f"work {i}"}) is not None
        ask = {"cmd": "query", "commons": str(commons)}
        assert "proposals" in answer_query(store, {**ask, "what": "state"})["data"]
        summary = answer_query(store, {**ask, "what": "state", "full": False})["data"]
        assert "proposals" not in summary and summary["contribution_counts"]["pending"] == 3
        page = answer_query(store, {**ask, "what": "contributions", "limit": 2})["data"]
        assert len(page["contributions"]) == 2 and page["total_count"] == 3 and page["more_count"] == 1
        assert len(answer_query(store, {**ask, "what": "contributions"})["data"]["contributions"]) == 3
    finally:
        forget()
        store.close()


def test_state_json_hash_is_always_of_every_stored_entry(tmp_path: Path) -> None:
    """``p2pc contribute`` without a daemon records its row without the fold; ``p2pc state``
    then says its hash is from before that entry, while ``p2pc state --json`` (what scripts
    compare between nodes) folds it first: its hash is a fold's of every stored entry."""
    import json

    from p2pcommons.state.engine import rebuild
    from tests.support.cli import invoke

    home = str(tmp_path / "home")
    invoke("init", "--home", home)
    invoke("commons", "create", "Tables", "--home", home)
    invoke("state", "--home", home)  # (folded and saved once: the tables now exist)
    invoke("contribute", "--title", "one", "--home", home)
    invoke("contribute", "--title", "two", "--home", home)
    forget()
    assert "before the newest 2 local entries" in invoke("state", "--home", home).stdout
    doc = json.loads(invoke("state", "--json", "--home", home).stdout)["data"]
    with Store(tmp_path / "home" / "store.sqlite") as store:
        commons = store.commons_ids()[0]
        assert doc["state_hash"] == rebuild(store, commons).state_hash
    assert doc["unfolded_count"] == 0 and doc["contribution_counts"]["pending"] == 2
    assert "before the newest" not in invoke("state", "--home", home).stdout  # (that fold saved the tables)
