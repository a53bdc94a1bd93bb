"""A broken home ends in one sentence and its documented exit code, never a traceback
(issue 11, item 11): a malformed ``config.toml`` (2), a damaged database page (5) and a
read-only home (5), each driven through the installed ``p2pc`` in a subprocess against a
real home.

The read-only home: the tests run as root, where ``chmod`` does not stop writes, so the
home is made read-only the way an administrator would: a read-only bind mount of it, in a
private mount namespace (``unshare --mount``) so nothing outside the test sees it.  Where
the kernel refuses a mount namespace, that test is skipped and says why.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from .support.cli import EXE, subprocess_env


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


def assert_one_sentence(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("p2pc: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def made_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with an identity, a commons and enough entries to span many database pages."""
    home = tmp_path_factory.mktemp("failures") / "home"
    assert run("init", "--home", str(home)).returncode == 0
    assert run("commons", "create", "Pages", "--home", str(home)).returncode == 0
    from p2pcommons.author import append
    from p2pcommons.home import Home
    from p2pcommons.identity import load_identity
    from p2pcommons.store import Store

    signer = load_identity(Home(home), None).signer
    with Store(home / "store.sqlite") as store:
        commons = store.commons_list()[0].id
        for i in range(120):
            append(store, signer, commons, "contribution", {"title": f"work {i} " + "x" * 600})
    return home


@pytest.fixture
def home(made_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(made_home, copy)
    return copy


@pytest.mark.parametrize("text, words", [
    ("x = [\n", ["not valid TOML"]),
    ('network = "everywhere"\n', ["'network' must be a table"]),
    ("[network]\nlisten = 5\n", ["network.listen"]),
    ("[network]\nmdns = \"yes\"\n", ["network.mdns"]),
    ("[outsiders]\nexpire_after = -1\n", ["outsiders.expire_after"]),
])
def test_malformed_config_is_one_sentence_exit_2(home: Path, text: str, words: list[str]) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")
    for args in (["peer", "list"], ["node", "start", "--foreground"]):
        assert_one_sentence(run(*args, "--home", str(home)), 2, "config.toml", *words)


def _damage(path: Path) -> None:
    """Overwrite the middle one of the entries table's pages in the SQLite file (found
    through SQLite's ``dbstat`` table: the middle of the file moves as tables are added)."""
    import sqlite3

    db = sqlite3.connect(path)
    size = int(db.execute("PRAGMA page_size").fetchone()[0])
    pages = [int(row[0]) for row in db.execute("SELECT pageno FROM dbstat WHERE name = 'entries' ORDER BY pageno")]
    db.close()
    assert len(pages) > 16, pages
    with open(path, "r+b") as f:
        f.seek((pages[len(pages) // 2] - 1) * size)
        f.write(b"\xa5" * size)


@pytest.mark.parametrize("args", [["state"], ["members"], ["log"], ["export", "-o", "-"], ["contributions"]])
def test_damaged_database_page_is_store_corrupt_exit_5(home: Path, args: list[str]) -> None:
    # the entries are in the main file (not only the WAL): checkpoint by opening and closing
    import sqlite3

    db = sqlite3.connect(home / "store.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    _damage(home / "store.sqlite")
    done = run(*args, "--home", str(home))
    assert_one_sentence(done, 5, "damaged")


def test_file_that_is_not_a_database_is_store_corrupt_exit_5(home: Path) -> None:
    for extra in ("store.sqlite-wal", "store.sqlite-shm"):
        (home / extra).unlink(missing_ok=True)
    (home / "store.sqlite").write_bytes(b"this is not a database" * 500)
    assert_one_sentence(run("state", "--home", str(home)), 5, "damaged", "not a database")


def _read_only_mounts() -> str | None:
    """Why a read-only bind mount in a private mount namespace is unavailable (None: it is)."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", "mount --bind / /mnt && mount -o remount,bind,ro /mnt"],
                           capture_output=True, text=True, timeout=30)
    return None if probe.returncode == 0 else f"no private read-only mounts here ({probe.stderr.strip()})"


def run_read_only(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``p2pc ARGS`` with ``home`` mounted read-only (for this process tree only)."""
    h = shlex.quote(str(home))
    command = " ".join(shlex.quote(a) for a in (EXE, *args, "--home", str(home)))
    script = f"mount --bind {h} {h} && mount -o remount,bind,ro {h} && exec {command}"
    return subprocess.run(["unshare", "--mount", "sh", "-c", script], env=subprocess_env(), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("args", [
    ["state"],
    ["contribute", "--title", "on a read-only disk"],
    ["node", "start", "--foreground"],
    ["node", "start"],
    ["peer", "add", "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWKnDyYtd1BFeW9r1gu3HSXt3bKhvXVbGhGt6EqLN47MHf"],
])
def test_read_only_home_is_one_sentence_exit_5(home: Path, args: list[str]) -> None:
    reason = _read_only_mounts()
    if reason is not None:
        pytest.skip(reason)
    done = run_read_only(home, *args)
    assert_one_sentence(done, 5)
    assert str(home) in done.stderr
