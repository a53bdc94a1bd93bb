"""Real nodes as separate processes on 127.0.0.1: real libp2p, real SQLite, real files.

Every wait polls a condition with a deadline (no sleeps papering over races); every
process a test starts is killed in the fixture's teardown.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pcommons.dagcbor import CID
from p2pcommons.entry import sign_entry
from p2pcommons.errors import NetworkError
from p2pcommons.home import Home
from p2pcommons.identity import load_identity
from p2pcommons.ingest import Ingestor
from p2pcommons.node.notify import request
from p2pcommons.store import Store
from tests.support.cli_json import unwrap
from tests.support.localnode import wait_for  # one polling helper (re-exported for other tests)

pytestmark = pytest.mark.network

P2PC = [sys.executable, "-c", "from p2pcommons.cli.app import main; main()"]


class NodeProc:
    """One home and (at most) one daemon process for it."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.home = root / name
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / f"{name}.log"
        self.addr = ""
        self.p2pc("init")

    def p2pc(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*P2PC, *args, "--home", str(self.home)], capture_output=True, text=True,
                                timeout=timeout, env={**os.environ, "P2PC_NO_PROGRESS": "1"})
        if check and result.returncode != 0:
            raise AssertionError(f"p2pc {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def p2pc_json(self, *args: str) -> Any:
        return unwrap(self.p2pc(*args, "--json").stdout)

    def start(self, *bootstrap: str, sync_interval: float = 2.0, wait: bool = True, stall: float = 20,
              listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",), extra: tuple[str, ...] = ()) -> None:
        args = [*P2PC, "node", "start", "--foreground", "--home", str(self.home),
                "--sync-interval", str(sync_interval), "--stall-timeout", str(stall), "-v", *extra]
        for addr in listen:
            args += ["--listen", addr]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
        if wait:
            status = wait_for(self._status_or_none, 30, f"{self.name} to start")
            self.addr = status["addrs"][0]

    def _status_or_none(self) -> dict[str, Any] | None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
        try:
            return self.status()
        except NetworkError:
            return None

    def status(self) -> dict[str, Any]:
        return request(Home(self.home), {"cmd": "status"}, timeout=10)

    def heads(self) -> dict[str, dict[str, int]]:
        """commons -> author -> seq, from the running daemon."""
        return {c["id"]: {h["author"]: h["seq"] for h in c["heads"]} for c in self.status()["commons"]}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def state_hash(self, commons: str) -> str:
        return str(self.p2pc_json("state", "--commons", commons)["state_hash"])

    def stored_heads(self, commons: str) -> dict[bytes, int]:
        with Store(Home(self.home).store_file) as store:
            return {h.author: h.seq for h in store.heads(CID.parse(commons))}

    def count(self, commons: str | None = None) -> int:
        with Store(Home(self.home).store_file) as store:
            return store.count(None if commons is None else CID.parse(commons))


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Callable[[str], NodeProc]]:
    made: list[NodeProc] = []

    def make(name: str) -> NodeProc:
        node = NodeProc(tmp_path, name)
        made.append(node)
        return node

    yield make
    for node in made:
        try:
            node.stop()
        finally:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()


def copy_genesis(source: NodeProc, commons: str, *targets: NodeProc) -> None:
    with Store(Home(source.home).store_file) as store:
        raw = store.get_raw(CID.parse(commons))
    assert raw is not None
    for target in targets:
        with Store(Home(target.home).store_file) as store:
            assert not Ingestor(store).add_batch([raw]).rejected


def converged(group: list[NodeProc], commons: str) -> Callable[[], bool]:
    def check() -> bool:
        heads = [n.heads().get(commons) for n in group]
        return heads[0] is not None and all(h == heads[0] for h in heads)

    return check


def same_state(group: list[NodeProc], commons: str) -> None:
    hashes = {n.name: n.state_hash(commons) for n in group}
    assert len(set(hashes.values())) == 1, hashes


# --- tests ----------------------------------------------------------------------------------


def test_three_nodes_invite_join_contribute_converge(nodes: Callable[[str], NodeProc]) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    commons = a.p2pc_json("commons", "create", "garden", "--membership", "open")["commons"]
    a.start(sync_interval=60)  # long interval: what arrives quickly came by gossip
    for newcomer in (b, c):
        code = a.p2pc_json("invite", "create", "--uses", "1")["code"]
        joined = newcomer.p2pc_json("join", code)
        assert joined["commons"] == commons
    b.start(a.addr, sync_interval=60)
    c.start(a.addr, sync_interval=60)
    wait_for(lambda: len(a.status()["connected"]) == 2, 20, "b and c to connect to a")
    wait_for(converged([a, b, c], commons), 20, "the joins and admissions to spread")
    for node, title in ((a, "paths"), (b, "compost"), (c, "seeds")):
        node.p2pc("contribute", "--title", title, "--commons", commons)
    wait_for(converged([a, b, c], commons), 20, "contributions to reach every node by gossip")
    same_state([a, b, c], commons)
    members = a.p2pc_json("state", "--commons", commons)["member_count"]
    assert members == 3


def test_five_nodes_in_a_line_converge(nodes: Callable[[str], NodeProc]) -> None:
    line = [nodes(f"n{i}") for i in range(5)]
    commons = line[0].p2pc_json("commons", "create", "river")["commons"]
    copy_genesis(line[0], commons, *line[1:])
    line[0].start(sync_interval=2)
    for prev, node in itertools.pairwise(line):
        node.start(prev.addr, sync_interval=2)
    for i, node in enumerate(line):
        node.p2pc("contribute", "--title", f"stretch {i}", "--commons", commons)
    wait_for(converged(line, commons), 40, "five nodes in a line to converge")
    assert all(len(n.stored_heads(commons)) == 5 for n in line)
    same_state(line, commons)


def test_partition_with_writes_on_both_sides_heals(nodes: Callable[[str], NodeProc]) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    commons = a.p2pc_json("commons", "create", "forest")["commons"]
    copy_genesis(a, commons, b, c)
    a.start(sync_interval=1)
    b.start(a.addr, sync_interval=1)
    c.start(a.addr, sync_interval=1)
    a.p2pc("contribute", "--title", "before", "--commons", commons)
    wait_for(converged([a, b, c], commons), 20, "the first write to spread")
    c.stop()  # partition: c is cut off
    a.p2pc("contribute", "--title", "while c was away (a)", "--commons", commons)
    b.p2pc("contribute", "--title", "while c was away (b)", "--commons", commons)
    c.p2pc("contribute", "--title", "c offline 1", "--commons", commons)
    c.p2pc("contribute", "--title", "c offline 2", "--commons", commons)
    wait_for(converged([a, b], commons), 20, "a and b to converge during the partition")
    c.start(a.addr, sync_interval=1)
    wait_for(converged([a, b, c], commons), 30, "the partition to heal")
    heads = a.stored_heads(commons)
    assert sum(heads.values()) == 1 + 1 + 1 + 1 + 2  # genesis, before, a, b, c×2
    same_state([a, b, c], commons)


def _bulk_history(node: NodeProc, commons: str, n: int) -> None:
    """``n`` entries by ``node``'s author, written straight into its store (fast)."""
    identity = load_identity(Home(node.home))
    cid = CID.parse(commons)
    with Store(Home(node.home).store_file) as store:
        seq = store.max_seq(cid, identity.public_key)
        prev = store.ids_at(cid, identity.public_key, seq)[0] if seq else None
        batch = []
        for i in range(n):
            entry = sign_entry(identity.signer, commons=cid, seq=seq + 1, prev=prev, kind="contribution",
                               body={"title": f"bulk {i}", "kind": "work", "value": 1}, timestamp=i)
            batch.append(entry.raw)
            seq, prev = entry.seq, entry.id
            if len(batch) == 5000:
                assert not Ingestor(store, commons=cid, verify="segment").add_batch(batch).rejected
                batch = []
        if batch:
            assert not Ingestor(store, commons=cid).add_batch(batch).rejected


def progress(node: NodeProc) -> int:
    """Entries ``node`` holds, from the logs' max_seq (no fork here: equal to the count),
    read without scanning the entries table: counting 100,000 rows took longer than the
    poll interval and let transfers finish between polls."""
    path = Home(node.home).store_file
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        row = db.execute("SELECT coalesce(sum(max_seq), 0) FROM logs").fetchone()
    return int(row[0])


def test_kill_9_mid_sync_restarts_and_loses_nothing(nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "archive")["commons"]
    _bulk_history(a, commons, 30_000)
    total = a.count(commons)
    copy_genesis(a, commons, b)
    a.start(sync_interval=1)
    b.start(a.addr, sync_interval=1, wait=False)
    # kill b as soon as part (not all) of the history has been stored
    midway = wait_for(lambda: 1 < (held := progress(b)) < total and held, 60, "b to be mid-sync", interval=0.02)
    b.kill9()
    after_kill = b.count(commons)
    assert after_kill >= midway
    assert after_kill < total, "the sync finished before the kill; use a larger history"
    b.p2pc("verify")  # what was stored before the kill is intact
    b.start(a.addr, sync_interval=1)
    wait_for(lambda: b.count(commons) == total, 90, "b to catch up after the restart", interval=0.2)
    assert b.stored_heads(commons) == a.stored_heads(commons)
    b.p2pc("verify")


def test_large_sync_runs_in_the_ingest_process_unless_switched_off(nodes: Callable[[str], NodeProc]) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    commons = a.p2pc_json("commons", "create", "big")["commons"]
    _bulk_history(a, commons, 4_000)
    total = a.count(commons)
    copy_genesis(a, commons, b, c)
    a.start(sync_interval=60)
    b.start(a.addr, sync_interval=60)
    c.start(a.addr, sync_interval=60, extra=("--no-ingest-process",))
    wait_for(lambda: b.count(commons) == total and c.count(commons) == total, 90, "b and c to catch up")
    with_child, without = b.status()["ingest_process"], c.status()["ingest_process"]
    assert with_child["enabled"] and with_child["starts"] >= 1 and with_child["groups"] >= 1
    assert 0 < with_child["entries"] <= total
    assert not without["enabled"] and without["starts"] == without["groups"] == 0 and not without["running"]
    assert b.stored_heads(commons) == a.stored_heads(commons) == c.stored_heads(commons)
    pid = with_child["pid"]
    b.stop()  # the daemon closes the child's stdin and reaps it before it exits
    assert pid is None or not Path(f"/proc/{pid}").exists()
    b.p2pc("verify")
    c.p2pc("verify")


def test_crossed_sessions_run_once(nodes: Callable[[str], NodeProc], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes that each open a session to the other before seeing the other's keep one:
    the receiver stores every entry once, and both requests report a sync.  Here they cross
    for certain: both are asked to sync with the other at once, and each waits 1.5 s between
    taking the slot and opening the stream.  The node whose peer id sorts second stops its
    own session on receiving the other's (nothing inbound is refused), and nobody is scored.
    Before: both sessions ran and B's ingest process validated and stored entries twice
    (10,000 and 5,896 for 5,000).  Found as 188,000 entries handed to the ingest process for
    a 100,000-entry bench/sync.py run on a loaded machine."""
    monkeypatch.setenv("P2PC_TEST_SESSION_OPEN_DELAY", "1.5")
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "crossed")["commons"]
    _bulk_history(a, commons, 5_000)
    total = a.count(commons)
    copy_genesis(a, commons, b)
    a.start(sync_interval=600)
    b.start(sync_interval=600)
    replies: dict[str, Any] = {}

    def ask(node: NodeProc, other: NodeProc) -> None:
        replies[node.name] = request(Home(node.home), {"cmd": "sync", "addr": other.addr, "timeout": 60}, timeout=90)

    threads = [threading.Thread(target=ask, args=pair) for pair in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert b.count(commons) == total
    assert sorted(replies) == ["a", "b"], replies
    for reply in replies.values():
        assert all(r is not None and r["complete"] for r in reply["peers"].values()), replies
    child = b.status()["ingest_process"]
    assert child["entries"] == total - 1, child  # every entry B lacked, once
    for node in (a, b):
        assert all(p["score"] == 0 for p in node.status()["peers"]), node.status()["peers"]


def test_garbage_peer_is_cut_off_while_others_converge(nodes: Callable[[str], NodeProc], tmp_path: Path) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    commons = a.p2pc_json("commons", "create", "workshop")["commons"]
    copy_genesis(a, commons, b, c)
    a.start(sync_interval=1, stall=2)
    b.start(a.addr, sync_interval=1)
    c.start(b.addr, sync_interval=1)
    hostile = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("test_node_hostile_peer.py")), a.addr, commons],
        capture_output=True, text=True, timeout=120,
    )
    assert hostile.returncode == 0, hostile.stdout + hostile.stderr
    report = json.loads(hostile.stdout.strip().splitlines()[-1])
    print("hostile peer:", report)
    assert report["cut_off"], report
    status = a.status()
    bad = [p for p in status["peers"] if p["peer_id"] == report["peer_id"]]
    assert bad and bad[0]["score"] < 0 and not bad[0]["connected"], bad
    flooder = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("test_node_hostile_peer.py")), "flood", a.addr, commons],
        capture_output=True, text=True, timeout=120,
    )
    assert flooder.returncode == 0, flooder.stdout + flooder.stderr
    flood = json.loads(flooder.stdout.strip().splitlines()[-1])
    print("flooder:", flood)
    scored = [p for p in a.status()["peers"] if p["peer_id"] == flood["peer_id"]]
    assert scored and scored[0]["score"] <= -100 and scored[0]["banned"], scored
    for node, title in ((a, "bench"), (b, "lathe"), (c, "drill")):
        node.p2pc("contribute", "--title", title, "--commons", commons)
    wait_for(converged([a, b, c], commons), 30, "honest nodes to keep converging")
    same_state([a, b, c], commons)


def test_node_lock_names_the_running_pid_and_stop_works(nodes: Callable[[str], NodeProc]) -> None:
    a = nodes("a")
    a.start()
    assert a.proc is not None
    second = a.p2pc("node", "start", "--foreground", check=False, timeout=30)
    assert second.returncode == 6
    assert f"PID {a.proc.pid}" in second.stderr
    mode = os.stat(Home(a.home).control_socket).st_mode & 0o777
    assert mode == 0o600
    a.p2pc("node", "stop")
    assert a.proc.wait(timeout=10) == 0
    assert not Home(a.home).control_socket.exists()
    gone = a.p2pc("node", "status", check=False)
    assert gone.returncode == 6


def test_invite_only_commons_token_admission_and_used_up(nodes: Callable[[str], NodeProc]) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    commons = a.p2pc_json("commons", "create", "seed library", "--membership", "invite")["commons"]
    a.start(sync_interval=60)
    invite = a.p2pc_json("invite", "create", "--uses", "1", "--expires", "1h")
    assert invite["token"] and invite["code"].startswith("p2pc1")
    b.p2pc_json("join", invite["code"])
    # a's node checks the token it signed and admits b
    wait_for(lambda: a.p2pc_json("state", "--commons", commons)["member_count"] == 2, 20, "a to admit b")
    used = c.p2pc("join", invite["code"], check=False)
    assert used.returncode == 2 and "already used" in used.stderr, used.stderr
    bad = c.p2pc("join", invite["code"][:-4], check=False)
    assert bad.returncode == 2 and "damaged" in bad.stderr, bad.stderr


def test_background_start_sync_command_and_status(nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "toolshed")["commons"]
    copy_genesis(a, commons, b)
    for i in range(5):
        a.p2pc("contribute", "--title", f"tool {i}", "--commons", commons)
    started = a.p2pc_json("node", "start", "--listen", "/ip4/127.0.0.1/tcp/0")  # background: returns once it answers
    try:
        addr = started["addrs"][0]
        # one-shot sync (b runs no daemon): exits 0 only when caught up
        result = b.p2pc_json("sync", "--peer", addr, "--timeout", "30")
        assert result["caught_up"] and result["via"] == "oneshot"
        assert b.stored_heads(commons) == a.stored_heads(commons)
        status = a.p2pc_json("node", "status")
        assert status["peer_id"] == started["peer_id"] and status["addrs"]
        # an unreachable peer: exit 6, one sentence
        dead = addr.replace(addr.split("/")[4], "1")
        failed = b.p2pc("sync", "--peer", dead, "--timeout", "3", check=False)
        assert failed.returncode == 6 and failed.stderr.count("\n") == 1, failed.stderr
    finally:
        a.p2pc("node", "stop")


def test_join_through_a_running_daemon(nodes: Callable[[str], NodeProc]) -> None:
    a, b = nodes("a"), nodes("b")
    commons = a.p2pc_json("commons", "create", "repair cafe")["commons"]
    a.start(sync_interval=60)
    b.start(sync_interval=60)  # b's daemon runs and holds nothing yet
    code = a.p2pc_json("invite", "create")["code"]
    joined = b.p2pc_json("join", code)
    assert joined["commons"] == commons
    # a's daemon writes the admission after it has seen the join, so equal heads alone may
    # come a moment before the admission exists: wait for both.
    in_sync = converged([a, b], commons)
    wait_for(lambda: a.p2pc_json("state", "--commons", commons)["member_count"] == 2 and in_sync(), 20,
             "the join and its admission to reach both nodes")
    assert b.p2pc_json("peer", "list")["peers"] == [a.addr]
    b.p2pc("contribute", "--title", "fixed a toaster", "--commons", commons)
    wait_for(converged([a, b], commons), 20, "b's contribution to reach a by gossip")
    same_state([a, b], commons)
