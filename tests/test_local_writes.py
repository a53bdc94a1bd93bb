"""Local writes never fork the author's own log (issue 11, items 1 and 2).

Every local write path chooses seq and prev inside the store's write transaction, so
parallel commands, the daemon's automatic admissions and a stale or hand-edited
``logs.max_seq`` can never make one author write two entries at one seq.  And a member's
daemon admits each join at most once, even when that member's own admissions are rejected
(its log forked).  Real processes, real SQLite files, real signatures.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons.author import append, create_commons
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Entry, Signer, sign_entry
from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from p2pcommons.ingest import Ingestor
from p2pcommons.node.notify import request
from p2pcommons.state.engine import auto_admit, current_state, forget
from p2pcommons.store import Store
from tests.support.cli_json import unwrap

from .support.localnode import ENV, P2PC, Daemon, founder, run, wait_for
from .support.signed import SIGNERS, new_store, scaled


def own_log(home: Path, commons: CID, author: bytes) -> list[tuple[int, str]]:
    with Store(Home(home).store_file) as store:
        return [(e.seq, e.kind) for e in store.iter_entries(commons, author=author, order="log")]


def assert_no_fork_and_applied(home: Path, commons: CID, author: bytes, ids: list[str]) -> None:
    forget()
    with Store(Home(home).store_file) as store:
        assert store.forks(commons) == []
        seqs = [seq for seq, _ in own_log(home, commons, author)]
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        state = current_state(store, commons, persist=False)
        for text in ids:
            outcome = state.outcome(CID.parse(text))
            assert outcome is not None and outcome.status != "rejected", (text, outcome)
    forget()


def start_contributors(home: Path, count: int, label: str) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen([*P2PC, "contribute", "--title", f"{label} {i}", "--home", str(home), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        for i in range(count)
    ]


def finish(procs: list[subprocess.Popen[str]]) -> list[str]:
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        ids.append(unwrap(out)["id"])
    return ids


# --- item 1: parallel local writers -------------------------------------------------------


@pytest.mark.slow  # many p2pc processes: out of the fast loop, run by CI
def test_parallel_contribute_processes_on_one_home_never_fork(tmp_path: Path) -> None:
    """Six ``p2pc contribute`` at once on one home (three rounds): one log, no fork, all applied."""
    home, commons, me = founder(tmp_path)
    ids: list[str] = []
    for round_ in range(3):
        ids += finish(start_contributors(home, 6, f"round {round_}"))
    assert len(set(ids)) == 18
    assert_no_fork_and_applied(home, commons, me, ids)


_WRITER = """
import sys
from p2pcommons.author import append
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer
from p2pcommons.store import Store
store_path, commons, seed, count, tag = sys.argv[1:]
sys.stdin.buffer.read()              # the start line: EOF when the parent closes the pipe, for every writer at once
with Store(store_path) as store:
    for i in range(int(count)):
        append(store, Signer(bytes.fromhex(seed)), CID.parse(commons), "contribution",
               {"title": f"{tag} {i}", "kind": "work", "value": 1})
"""


def test_stress_concurrent_writer_processes_one_author(tmp_path: Path) -> None:
    """Bounded stress: four processes released at once, each appending 25 entries for the
    same author through ``author.append``: 100 entries at seqs 2..101, no fork."""
    home, commons, me = founder(tmp_path)
    seed = load_identity(Home(home)).seed
    start, go = os.pipe()  # every writer reads ``start`` as its stdin; closing ``go`` releases them all
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", _WRITER, str(Home(home).store_file), str(commons), seed.hex(),
                              "25", f"w{n}"], stdin=start, stderr=subprocess.PIPE, text=True, env=ENV)
            for n in range(4)
        ]
    finally:
        os.close(start)
        os.close(go)
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    log = own_log(home, commons, me)
    assert [seq for seq, _ in log] == list(range(1, 102))
    with Store(Home(home).store_file) as store:
        assert store.forks(commons) == []
        assert store.max_seq(commons, me) == 101


@pytest.mark.slow  # p2pc processes per hand-edited store: out of the fast loop, run by CI
@pytest.mark.parametrize("bad_max_seq", [1, 0, 99])
def test_hand_edited_max_seq_does_not_fork(tmp_path: Path, bad_max_seq: int) -> None:
    """``logs.max_seq`` is an index; a stale or hand-edited one must not choose the seq."""
    home, commons, me = founder(tmp_path)
    ids = [run(home, "contribute", "--title", f"before {i}")["id"] for i in range(2)]
    with sqlite3.connect(Home(home).store_file) as db:
        db.execute("UPDATE logs SET max_seq = ? WHERE author = ?", (bad_max_seq, me))
    written = run(home, "contribute", "--title", "after the edit")
    assert written["seq"] == 4
    ids.append(written["id"])
    assert_no_fork_and_applied(home, commons, me, ids)
    with Store(Home(home).store_file) as store:
        assert store.max_seq(commons, me) == 4  # the index was repaired


# --- item 1 with a daemon, and item 2 --------------------------------------------------------


def joins(commons: CID, genesis: CID, count: int, label: str) -> list[Entry]:
    """Join entries of ``count`` fresh identities."""
    return [
        sign_entry(Signer(hashlib.sha256(f"{label}-{i}".encode()).digest()), commons=commons, seq=1, prev=None,
                   kind="join", body={"name": f"{label}{i}"}, deps=[genesis])
        for i in range(count)
    ]


def deliver(home: Path, entries: list[Entry]) -> None:
    """Entries arriving from elsewhere (as a sync or an import would store them)."""
    with Store(Home(home).store_file) as store:
        report = Ingestor(store).add_batch([e.raw for e in entries])
        assert not report.rejected, report.rejected
    request(Home(home), {"cmd": "notify"}, timeout=30)


def admissions_by(home: Path, commons: CID, author: bytes) -> Counter[bytes]:
    with Store(Home(home).store_file) as store:
        return Counter(dagcbor.link(e.body["join"]).raw
                       for e in store.iter_entries(commons, author=author, kind="admission"))


@pytest.mark.network
def test_daemon_admissions_racing_parallel_contributes_never_fork(tmp_path: Path) -> None:
    """The daemon admits arriving joins (open commons) while the user runs contributes in
    parallel on the same home: no fork, every contribution applied, every join admitted once."""
    home, commons, me = founder(tmp_path)
    daemon = Daemon(home, tmp_path / "a.log")
    try:
        ids: list[str] = []
        arrived: list[Entry] = []
        for wave in range(3):
            procs = start_contributors(home, 4, f"wave {wave}")
            batch = joins(commons, commons, 3, f"w{wave}-")
            deliver(home, batch)
            arrived += batch
            ids += finish(procs)
        wanted = {j.id.raw for j in arrived}
        wait_for(lambda: wanted <= set(admissions_by(home, commons, me)), 60, "every join to be admitted")
    finally:
        daemon.stop()
    assert_no_fork_and_applied(home, commons, me, ids)
    assert set(admissions_by(home, commons, me).values()) == {1}
    forget()
    with Store(Home(home).store_file) as store:
        state = current_state(store, commons, persist=False)
        assert state.pending_joins() == {}
    forget()


def fork_own_log(home: Path, commons: CID) -> bytes:
    """Store two different entries at the founder's seq 2 (as a restored backup would)."""
    signer = load_identity(Home(home)).signer
    siblings = [
        sign_entry(signer, commons=commons, seq=2, prev=commons, kind="contribution",
                   body={"title": f"twin {n}", "kind": "work", "value": 1}, deps=[])
        for n in range(2)
    ]
    with Store(Home(home).store_file) as store:
        report = Ingestor(store).add_batch([e.raw for e in siblings])
        assert not report.rejected and report.forks
    return signer.public_key


@pytest.mark.network
def test_forked_members_daemon_admits_each_join_once(tmp_path: Path) -> None:
    """A member whose log is forked (so its admissions are rejected and the joins stay
    pending) must not admit every pending join again on each new arrival."""
    home, commons, _ = founder(tmp_path)
    me = fork_own_log(home, commons)
    daemon = Daemon(home, tmp_path / "a.log")
    try:
        arrived: list[Entry] = []
        for wave in range(4):
            batch = joins(commons, commons, 1, f"f{wave}-")
            deliver(home, batch)
            arrived += batch
            last = batch[0].id.raw
            wait_for(lambda last=last: last in admissions_by(home, commons, me), 60, f"the admission of join {wave}")
    finally:
        daemon.stop()  # a graceful stop lets the state worker finish its pass
    counts = admissions_by(home, commons, me)
    assert counts == Counter({j.id.raw: 1 for j in arrived}), counts


def test_auto_admit_is_idempotent_for_a_forked_member(tmp_path: Path) -> None:
    """The same rule without a daemon: ``auto_admit`` twice writes each admission once."""
    home, commons, _ = founder(tmp_path)
    me = fork_own_log(home, commons)
    batch = joins(commons, commons, 3, "u")
    with Store(Home(home).store_file) as store:
        assert not Ingestor(store).add_batch([e.raw for e in batch]).rejected
        signer = load_identity(Home(home)).signer
        first = auto_admit(store, signer, commons)
        assert len(first) == 3
        state = current_state(store, commons)
        assert len(state.pending_joins()) == 3  # rejected: the member is forked
        assert auto_admit(store, signer, commons) == []
    assert set(admissions_by(home, commons, me).values()) == {1}
    forget()


def test_append_joins_an_outer_transaction(tmp_path: Path) -> None:
    """append inside an outer transaction joins it (one commit) and still chains."""
    home, commons, me = founder(tmp_path)
    signer = load_identity(Home(home)).signer
    with Store(Home(home).store_file) as store, store.transaction():
        a = append(store, signer, commons, "contribution", {"title": "x", "kind": "work", "value": 1})
        b = append(store, signer, commons, "contribution", {"title": "y", "kind": "work", "value": 1})
    assert (a.seq, b.seq, b.prev) == (2, 3, a.id)
    assert [s for s, _ in own_log(home, commons, me)] == [1, 2, 3]


# --- property: whatever the index says, local writes extend the real log ---------------------

_steps = st.lists(st.tuples(st.integers(0, 1), st.one_of(st.none(), st.integers(0, 40))), min_size=1, max_size=8)


@settings(max_examples=scaled(0.5))
@given(existing=st.integers(0, 5), steps=_steps)
def test_property_local_writes_extend_the_real_log(tmp_path_factory: pytest.TempPathFactory, existing: int,
                                                   steps: list[tuple[int, int | None]]) -> None:
    """Two connections to one store take turns appending for one author; before any
    turn, ``logs.max_seq`` may be overwritten with any value (stale, zero, far ahead).
    Every append lands at the real tip + 1, linked to the real tip: no fork, no gap."""
    directory = tmp_path_factory.mktemp("prop")
    signer = SIGNERS[0]
    first = new_store(directory)
    second = Store(first.path)
    try:
        genesis = create_commons(first, signer, {"name": "prop"}, timestamp=0)
        commons = genesis.id
        tip = genesis
        for n in range(existing):
            tip = append(first, signer, commons, "contribution", {"title": f"old {n}", "kind": "work", "value": 1})
        for turn, (which, bogus) in enumerate(steps):
            if bogus is not None:
                first._db.execute("UPDATE logs SET max_seq = ? WHERE author = ?", (bogus, signer.public_key))
            store = (first, second)[which]
            entry = append(store, signer, commons, "contribution", {"title": f"t{turn}", "kind": "work", "value": 1})
            assert (entry.seq, entry.prev) == (tip.seq + 1, tip.id)
            tip = entry
        assert first.forks(commons) == []
        assert first.max_seq(commons, signer.public_key) == tip.seq == 1 + existing + len(steps)
    finally:
        second.close()
        first.close()
