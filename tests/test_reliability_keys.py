"""Keys and local access: who can act as this node, and whose entries count.

Why: a member's key *is* their identity in the commons, and the daemon's control socket can
write entries with it.  So the key must be unreadable by other users (and every command,
the daemon included, must refuse a key that is not), a passphrase-protected key must work
unattended (``P2PC_PASSPHRASE``), the control socket must refuse other local users, and the
daemon must expose nothing but libp2p to the network.  And when keys do leak, the commons
must contain the damage: entries signed by a non-member's key have no effect, and a steward
removing a member whose key was stolen makes everything the thief signs afterwards void on
every node, whatever earlier dependencies the thief claims (strong removal).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from p2pcommons.home import Home

from .support.cli import fresh_live_state  # noqa: F401 (an autouse fixture)
from .support.polling import poll_for
from .test_cli_governance import _carry, _hash, _init, p2pc_json
from .test_node_integration import P2PC, NodeProc


def _run(home: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One real ``p2pc`` process (the daemon's key checks run in its own start-up path)."""
    full_env = {k: v for k, v in os.environ.items() if k != "P2PC_PASSPHRASE"}
    full_env.update({"P2PC_NO_PROGRESS": "1", **(env or {})})
    return subprocess.run([*P2PC, *args, "--home", str(home)], capture_output=True, text=True, timeout=timeout,
                          env=full_env, stdin=subprocess.DEVNULL)


# --- key files -------------------------------------------------------------------------------


@pytest.mark.slow  # many p2pc processes, one per key mode: out of the fast loop, run by CI
def test_key_file_modes_are_private_and_looser_ones_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert _run(home, "init").returncode == 0
    h = Home(home)
    assert os.stat(h.key_file).st_mode & 0o777 == 0o600
    assert os.stat(h.key_dir).st_mode & 0o777 == 0o700
    refused = 0
    for path, loose, good in ((h.key_file, 0o644, 0o600), (h.key_file, 0o640, 0o600), (h.key_dir, 0o755, 0o700),
                              (h.key_dir, 0o707, 0o700)):
        os.chmod(path, loose)
        for args in (("id",), ("commons", "create", "x")):
            result = _run(home, *args)
            assert result.returncode == 4, (args, oct(loose), result.stderr)
            assert "chmod" in result.stderr and result.stderr.count("\n") == 1, result.stderr
            refused += 1
        os.chmod(path, good)
    # the daemon refuses at start-up, before it listens (one looser mode suffices: same check)
    os.chmod(h.key_file, 0o604)
    daemon = _run(home, "node", "start", "--foreground", "--listen", "/ip4/127.0.0.1/tcp/0", timeout=90)
    assert daemon.returncode == 4 and "chmod 600" in daemon.stderr, daemon.stderr
    assert not h.control_socket.exists()
    refused += 1
    os.chmod(h.key_file, 0o600)
    assert _run(home, "id").returncode == 0
    print(f"\nkey modes: {refused} commands refused a looser key file or key directory (exit 4)")


def test_passphrase_key_refuses_a_wrong_or_missing_passphrase() -> None:
    """The daemon cannot start on an encrypted key without its passphrase (and says so)."""
    tmp = Path(tempfile.mkdtemp(prefix="p2pc-pass-"))
    try:
        home = tmp / "h"
        made = _run(home, "init", "--passphrase", "--json", env={"P2PC_PASSPHRASE": "correct horse battery staple"})
        assert made.returncode == 0, made.stderr
        document = json.loads(Home(home).key_file.read_text())
        assert "ciphertext" in document and "seed" not in document
        wrong = _run(home, "node", "start", "--foreground", "--listen", "/ip4/127.0.0.1/tcp/0",
                     env={"P2PC_PASSPHRASE": "wrong"}, timeout=90)
        assert wrong.returncode == 4 and "passphrase" in wrong.stderr.lower(), wrong.stderr
        missing = _run(home, "node", "start", "--foreground", "--listen", "/ip4/127.0.0.1/tcp/0", timeout=90)
        assert missing.returncode == 4 and "P2PC_PASSPHRASE" in missing.stderr, missing.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the running daemon: control socket and listening sockets --------------------------------


@pytest.fixture
def loose_root() -> Iterator[Path]:
    """A directory other users may traverse (0711), so only the socket's own mode protects it."""
    root = Path(tempfile.mkdtemp(prefix="p2pc-access-", dir="/tmp"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _connect_as_nobody(path: Path) -> str:
    """Fork a child that drops to uid/gid ``nobody`` and tries the control socket.

    (The venv's interpreter is not executable by ``nobody`` here, so the child is a fork of
    this process, not a new program.)  Returns "refused", "connected" or "error:<name>"."""
    nobody = pwd.getpwnam("nobody")
    codes = {0: "refused", 1: "connected", 2: "error:setuid", 3: "error:other"}
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, exit code only
        code = 3
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        except OSError:
            os._exit(2)
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(str(path))
            code = 1
        except PermissionError:
            code = 0
        except BaseException:
            code = 3
        os._exit(code)

    def reaped() -> str | None:
        done, status = os.waitpid(pid, os.WNOHANG)
        return codes.get(os.waitstatus_to_exitcode(status), "error:exit") if done else None

    outcome = poll_for(reaped, 30, interval=0.01)
    if outcome:
        return str(outcome)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "error:timeout"


@pytest.mark.network
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to the 'nobody' user")
def test_passphrase_daemon_control_socket_and_listeners(loose_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One daemon (passphrase key via P2PC_PASSPHRASE) checked for every local-access rule."""
    monkeypatch.setenv("P2PC_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("P2PC_NO_PROGRESS", "1")
    node = NodeProc.__new__(NodeProc)  # NodeProc.__init__ runs a plain init; we need --passphrase
    node.name, node.home, node.proc, node.addr = "pass", loose_root / "pass", None, ""
    node.log = loose_root / "pass.log"
    node.p2pc("init", "--passphrase")
    assert "ciphertext" in Home(node.home).key_file.read_text()
    os.chmod(node.home, 0o711)  # as if the user had loosened their home: the socket must hold on its own
    try:
        node.start()
        assert node.proc is not None
        status = node.status()
        assert status["peer_id"] == node.p2pc_json("id")["peer_id"]  # the decrypted key is the node's identity
        sock_path = Home(node.home).control_socket
        assert os.stat(sock_path).st_mode & 0o777 == 0o600
        assert _connect_as_nobody(sock_path) == "refused"
        # root (this user) is served on the same path, so the refusal is the socket's mode
        mine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mine.settimeout(10)
        mine.connect(str(sock_path))
        mine.close()

        # nothing listens for remote control: only libp2p's TCP listen address, the Unix socket and
        # the dashboard, on 127.0.0.1 only (it asks for the node's token, docs/api.md)
        proc = psutil.Process(node.proc.pid)
        conns = proc.net_connections(kind="all")
        listening_tcp = {(c.laddr.ip, c.laddr.port) for c in conns
                         if c.type == socket.SOCK_STREAM and c.family in (socket.AF_INET, socket.AF_INET6)
                         and c.status == psutil.CONN_LISTEN}
        announced = {(a.split("/")[2], int(a.split("/")[4])) for a in status["addrs"]}
        dashboard = set()
        if status.get("ui"):
            host, port = status["ui"]["url"].split("//")[1].split("/")[0].rsplit(":", 1)
            assert host == "127.0.0.1", status["ui"]
            dashboard = {(host, int(port))}
        assert listening_tcp == announced | dashboard, (listening_tcp, announced, dashboard)
        udp = [c for c in conns if c.type == socket.SOCK_DGRAM and c.family in (socket.AF_INET, socket.AF_INET6)]
        assert not udp, udp  # no mDNS unless asked for, no other datagram service
        named_unix = {c.laddr for c in conns if c.family == socket.AF_UNIX and c.laddr}
        assert named_unix <= {str(sock_path)}, named_unix
        print(f"\nlocal access: socket mode 600, 'nobody' refused; listening: tcp {sorted(listening_tcp)}, "
              f"unix {sorted(named_unix)}, udp none")
    finally:
        node.stop()


# --- keys that are not a member's, and stolen keys -------------------------------------------


def _outcome(home: str, entry: str) -> dict[str, Any]:
    return dict(p2pc_json("status", entry, "--home", home))


def _effects(home: str) -> dict[str, Any]:
    """What entries *do* (members, roles, rules, contributions, ledger, resources) without the
    bookkeeping of how many entries are held."""
    state = p2pc_json("state", "--home", home)
    members = p2pc_json("members", "--home", home)["members"]
    ledger = p2pc_json("ledger", "--home", home)
    return {"members": members, "rules": state["rules"], "contributions": state["contribution_counts"],
            "ledger": ledger, "resources": p2pc_json("resource", "list", "--home", home)["resources"]}


def test_entries_signed_by_a_non_member_have_no_effect(tmp_path: Path) -> None:
    steward, _ = _init(tmp_path / "steward")
    outsider, _ = _init(tmp_path / "outsider")
    commons = p2pc_json("commons", "create", "Orchard", "--membership", "invite", "--home", steward)["commons"]
    steward_id = p2pc_json("id", "--home", steward)["author"]
    _carry(steward, outsider, commons, tmp_path, "genesis")
    before = _effects(steward)
    # --force: the outsider's own node refuses them (they are not a member); recorded anyway,
    # as a hostile client would, they must have no effect on the steward's node either.
    written = [
        p2pc_json("sanction", steward_id, "remove", "--reason", "takeover", "--force", "--home", outsider)["id"],
        p2pc_json("rules", "propose", "--set", "membership.policy=open", "--title", "let me in",
                  "--force", "--home", outsider)["id"],
        p2pc_json("resource", "add", "pump", "--force", "--home", outsider)["id"],
        p2pc_json("distribute", "100", "--force", "--home", outsider)["id"],
    ]
    _carry(outsider, steward, commons, tmp_path, "outsider")
    for entry in written:
        outcome = _outcome(steward, entry)
        assert outcome["status"] == "rejected" and "not a member" in outcome["reason"], outcome
    assert _effects(steward) == before
    assert _hash(steward, commons) == _hash(outsider, commons)  # both nodes agree the entries are void
    print(f"\nnon-member: {len(written)} governance entries signed by an outsider's key, all rejected")


@pytest.mark.slow  # a long scripted history through many p2pc processes: out of the fast loop, run by CI
def test_stolen_key_is_contained_by_a_stewards_removal(tmp_path: Path) -> None:
    steward, _ = _init(tmp_path / "steward")
    victim, victim_id = _init(tmp_path / "victim")
    honest, _ = _init(tmp_path / "honest")
    commons = p2pc_json("commons", "create", "Meadow", "--home", steward)["commons"]
    for newcomer, name in ((victim, "vera"), (honest, "hal")):
        _carry(steward, newcomer, commons, tmp_path, f"to-{name}")
        p2pc_json("join", commons, "--name", name, "--home", newcomer)
        _carry(newcomer, steward, commons, tmp_path, f"from-{name}")
        p2pc_json("admit", "--home", steward)
    legit = p2pc_json("contribute", "--title", "mowing", "--value", "3", "--home", victim)["id"]
    _carry(victim, steward, commons, tmp_path, "legit")
    p2pc_json("review", legit, "accept", "--home", steward)

    # the theft: a copy of the victim's home (key and store) as it was before the removal
    thief = str(tmp_path / "thief")
    shutil.copytree(victim, thief)

    removal = p2pc_json("sanction", "vera", "remove", "--reason", "key stolen", "--home", steward)
    assert removal["outcome"]["status"] == "applied"
    for other in (victim, honest):
        _carry(steward, other, commons, tmp_path, f"removal-{Path(other).name}")
    before = {home: _effects(home) for home in (steward, victim, honest)}

    # the thief writes after the removal, from a store that never saw it: every entry claims
    # only pre-removal dependencies (the heads the stolen store knew); --force where the
    # thief's own node would refuse (a hostile client signs whatever it likes)
    written = [
        p2pc_json("contribute", "--title", "fake work", "--value", "1000", "--home", thief)["id"],
        p2pc_json("contribute", "--title", "more fake work", "--value", "1000", "--home", thief)["id"],
        p2pc_json("resource", "add", "tractor", "--force", "--home", thief)["id"],
        p2pc_json("distribute", "50", "--force", "--home", thief)["id"],
    ]
    assert p2pc_json("status", written[0], "--home", thief)["status"] != "rejected"  # looked fine to the thief
    _carry(thief, steward, commons, tmp_path, "stolen-to-steward")
    _carry(thief, honest, commons, tmp_path, "stolen-to-honest")
    _carry(thief, victim, commons, tmp_path, "stolen-to-victim")
    _carry(steward, thief, commons, tmp_path, "removal-to-thief")
    for home in (steward, victim, honest, thief):
        for entry in written:
            outcome = _outcome(home, entry)
            assert outcome["status"] == "rejected" and "remov" in outcome["reason"].lower(), (home, outcome)
    for home in (steward, victim, honest):
        assert _effects(home) == before[home], home
    assert len({_hash(home, commons) for home in (steward, victim, honest, thief)}) == 1
    ledger = p2pc_json("ledger", "--home", steward)["ledger"]
    assert all(row["value"] < 1000 for row in ledger), ledger
    statuses = {m["author"]: m["status"] for m in p2pc_json("members", "--home", honest)["members"]}
    assert statuses.get(victim_id, "removed") == "removed", statuses
    print(f"\nstolen key: {len(written)} entries written with the stolen key after the removal, "
          f"rejected on all 4 nodes; state hashes equal")
