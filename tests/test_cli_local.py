"""The local CLI, driven as people and scripts drive it: through typer's CliRunner for
speed and detail, and through the installed ``p2pc`` executable in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from p2pcommons.cli.app import get_app
from tests.support.cli_json import envelope, error_of, stream, unwrap

runner = CliRunner()


def p2pc(*args: str, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(get_app(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    return result.stdout


def p2pc_json(*args: str, env: dict[str, str] | None = None) -> Any:
    return unwrap(p2pc(*args, "--json", env=env))


@pytest.fixture
def home(tmp_path: Path) -> str:
    path = tmp_path / "a"
    p2pc("init", "--home", str(path))
    return str(path)


def test_init_creates_private_identity(tmp_path: Path) -> None:
    path = tmp_path / "node"
    data = p2pc_json("init", "--home", str(path))
    assert data["author"].startswith("z6Mk") and data["peer_id"].startswith("12D3KooW")
    key_dir = path / "keys"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((key_dir / "identity.json").stat().st_mode) == 0o600
    again = p2pc_json("id", "--home", str(path))
    assert again["author"] == data["author"] and again["peer_id"] == data["peer_id"]


def test_init_refuses_to_overwrite(home: str) -> None:
    before = Path(home, "keys", "identity.json").read_bytes()
    result = runner.invoke(get_app(), ["init", "--home", home])
    assert result.exit_code == 4
    assert "will not be overwritten" in result.stderr
    assert Path(home, "keys", "identity.json").read_bytes() == before


def test_peer_id_matches_libp2p(home: str) -> None:
    from libp2p.crypto.ed25519 import Ed25519PrivateKey
    from libp2p.peer.id import ID

    seed = bytes.fromhex(json.loads(Path(home, "keys", "identity.json").read_text())["seed"])
    expected = ID.from_pubkey(Ed25519PrivateKey.from_bytes(seed).get_public_key()).pretty()
    assert p2pc_json("id", "--home", home)["peer_id"] == expected


def test_home_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "envhome"
    p2pc("init", env={"P2PC_HOME": str(path)})
    assert (path / "keys" / "identity.json").exists()


@pytest.mark.slow  # many p2pc processes, each deriving a key from a passphrase: out of the fast loop, run by CI
def test_passphrase_protected_identity(tmp_path: Path) -> None:
    path = str(tmp_path / "locked")
    created = p2pc_json("init", "--passphrase", "--home", path, env={"P2PC_PASSPHRASE": "correct horse"})
    document = json.loads(Path(path, "keys", "identity.json").read_text())
    assert "seed" not in document and document["encryption"] == "argon2id-xsalsa20poly1305"
    shown = unwrap(p2pc("id", "--json", "--home", path, env={"P2PC_PASSPHRASE": "correct horse"}))
    assert shown["author"] == created["author"]
    result = runner.invoke(get_app(), ["id", "--home", path], env={"P2PC_PASSPHRASE": "wrong"})
    assert result.exit_code == 4 and "passphrase" in result.stderr


def test_loose_key_permissions_are_refused(home: str) -> None:
    os.chmod(Path(home, "keys", "identity.json"), 0o644)
    result = runner.invoke(get_app(), ["id", "--home", home])
    assert result.exit_code == 4 and "chmod 600" in result.stderr


def test_create_contribute_log(home: str) -> None:
    commons = p2pc("commons", "create", "Forest", "--description", "A forest", "--license", "CC-BY-SA-4.0",
                   "--home", home).strip()
    assert commons.startswith("bafyrei")
    entry = p2pc("contribute", "--commons", commons, "--title", "Planted 40 oaks", "--kind", "fieldwork",
                 "--value", "5", "--ref", "https://example.org/oaks", "--home", home).strip()
    lines = stream(p2pc("log", "--json", "--home", home))
    assert [x["kind"] for x in lines] == ["genesis", "contribution"]
    assert lines[1]["id"] == entry and lines[1]["seq"] == 2 and lines[1]["prev"] == commons
    assert lines[1]["body"]["title"] == "Planted 40 oaks" and lines[1]["body"]["value"] == 5
    only = stream(p2pc("log", "--json", "--kind", "genesis", "--home", home))
    assert [x["id"] for x in only] == [commons]
    listed = p2pc_json("commons", "list", "--home", home)
    assert listed == [{"commons": commons, "name": "Forest", "entry_count": 2, "author_count": 1,
                       "created": listed[0]["created"]}]
    shown = p2pc_json("commons", "show", "Forest", "--home", home)
    assert shown["heads"][0]["id"] == entry


def test_export_import_roundtrip(home: str, tmp_path: Path) -> None:
    commons = p2pc("commons", "create", "Wiki", "--home", home).strip()
    for i in range(5):
        p2pc("contribute", "--title", f"page {i}", "--home", home)
    bundle = tmp_path / "wiki.bundle"
    exported = p2pc_json("export", "--commons", commons, "-o", str(bundle), "--home", home)
    assert exported["entry_count"] == 6
    other = str(tmp_path / "b")
    p2pc("init", "--home", other)
    first = p2pc_json("import", str(bundle), "--home", other)
    assert first["added_count"] == 6 and first["duplicate_count"] == 0
    second = p2pc_json("import", str(bundle), "--home", other)
    assert second["added_count"] == 0 and second["duplicate_count"] == 6
    assert p2pc("log", "--json", "--home", other) == p2pc("log", "--json", "--home", home)
    assert p2pc_json("verify", "--home", other)["passed"] is True


def test_export_takes_its_file_as_import_does(home: str, tmp_path: Path) -> None:
    """`p2pc export FILE` mirrors `p2pc import FILE`; it was refused ("Got unexpected extra
    argument") and only -o FILE worked.  Two different places to write are refused in one sentence."""
    commons = p2pc("commons", "create", "Wiki", "--home", home).strip()
    bundle = tmp_path / "wiki.bundle"
    exported = p2pc_json("export", str(bundle), "--home", home)
    assert exported == {"commons": commons, "file": str(bundle), "entry_count": 1,
                        "byte_count": bundle.stat().st_size}
    same = p2pc_json("export", str(bundle), "-o", str(bundle), "--home", home)
    assert same["file"] == str(bundle)
    result = runner.invoke(get_app(), ["export", str(bundle), "-o", str(tmp_path / "x"), "--home", home])
    assert result.exit_code == 2, result.stderr
    assert result.stderr == f"p2pc: Two places to write to ({bundle} and -o {tmp_path / 'x'}): give one.\n"
    assert not (tmp_path / "x").exists()


def test_damaged_bundles_change_nothing(home: str, tmp_path: Path) -> None:
    commons = p2pc("commons", "create", "Lib", "--home", home).strip()
    for i in range(3):
        p2pc("contribute", "--title", f"design {i}", "--home", home)
    bundle = tmp_path / "lib.bundle"
    p2pc("export", "--commons", commons, "-o", str(bundle), "--home", home)
    data = bundle.read_bytes()
    other = str(tmp_path / "b")
    p2pc("init", "--home", other)
    mine = p2pc("commons", "create", "Mine", "--home", other).strip()
    before = p2pc("log", "--json", "--home", other)
    cases = {
        "truncated": data[: len(data) // 2],
        "tampered": data[:-40] + bytes([data[-40] ^ 0x01]) + data[-39:],
        "not a bundle": b"hello world",
    }
    for name, damaged in cases.items():
        path = tmp_path / f"{name}.bundle"
        path.write_bytes(damaged)
        result = runner.invoke(get_app(), ["import", str(path), "--home", other])
        assert result.exit_code == 3, (name, result.stderr)
        assert result.stderr.startswith("p2pc: ") and result.stderr.count("\n") == 1, result.stderr
        assert p2pc("log", "--json", "--home", other) == before, name
    assert mine in before


def test_errors_are_one_sentence_with_exit_codes(tmp_path: Path, home: str) -> None:
    missing = str(tmp_path / "nobody")
    result = runner.invoke(get_app(), ["contribute", "--title", "x", "--home", missing])
    assert result.exit_code == 4 and "p2pc init" in result.stderr
    result = runner.invoke(get_app(), ["contribute", "--title", "x", "--home", home])
    assert result.exit_code == 2 and "no commons" in result.stderr
    result = runner.invoke(get_app(), ["commons", "show", "nope", "--home", home])
    assert result.exit_code == 2 and "No commons 'nope'" in result.stderr
    result = runner.invoke(get_app(), ["import", str(tmp_path / "absent.bundle"), "--home", home])
    assert result.exit_code == 2


def test_verify_detects_a_corrupted_entry(home: str) -> None:
    import sqlite3

    p2pc("commons", "create", "C", "--home", home)
    p2pc("contribute", "--title", "x", "--home", home)
    db = sqlite3.connect(Path(home, "store.sqlite"))
    raw = db.execute("SELECT raw FROM entries WHERE seq = 2").fetchone()[0]
    flipped = raw[:-3] + bytes([raw[-3] ^ 0x01]) + raw[-2:]
    db.execute("UPDATE entries SET raw = ? WHERE seq = 2", (flipped,))
    db.commit()
    db.close()
    result = runner.invoke(get_app(), ["verify", "--json", "--home", home])
    assert result.exit_code == 5
    assert error_of(result.stdout)["type"] == "StoreCorrupt"
    assert envelope(result.stdout)["data"]["passed"] is False


# --- the installed executable -------------------------------------------------------------


def installed_p2pc() -> str:
    found = shutil.which("p2pc", path=str(Path(sys.executable).parent)) or shutil.which("p2pc")
    if found is None:
        pytest.fail("the p2pc console script is not installed (pip install -e .)")
    return found


@pytest.mark.slow  # many p2pc processes: out of the fast loop, run by CI
def test_installed_executable_end_to_end(tmp_path: Path) -> None:
    exe = installed_p2pc()
    env = {**os.environ, "P2PC_HOME": str(tmp_path / "h")}

    def run(*args: str) -> str:
        done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    run("init")
    commons = run("commons", "create", "Hardware").strip()
    entry = run("contribute", "--title", "Seed drill v2", "--kind", "design").strip()
    bundle = tmp_path / "hw.bundle"
    run("export", "--commons", commons, "-o", str(bundle))
    env["P2PC_HOME"] = str(tmp_path / "h2")
    run("init")
    imported = unwrap(run("import", str(bundle), "--json"))
    assert imported["added_count"] == 2
    ids = [item["id"] for item in stream(run("log", "--json"))]
    assert ids == [commons, entry]
    help_text = run("--help")
    assert "Exit codes" in help_text and "contribute" in help_text


def test_local_commands_do_not_import_libp2p(tmp_path: Path) -> None:
    """Scripted commands must start fast: libp2p costs ~0.75 s to import."""
    home = str(tmp_path / "h")
    probe = (
        "import sys\n"
        "from p2pcommons.cli.app import get_app\n"
        "app = get_app()\n"
        "for args in (['init'], ['commons', 'create', 'X'], ['contribute', '--title', 't'], ['log'], ['verify']):\n"
        "    try:\n"
        "        app(args + ['--home', sys.argv[1]])\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), (args, e.code)\n"
        "print(sorted(m for m in sys.modules if m == 'libp2p' or m.startswith('libp2p.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, home], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_amounts_beyond_the_entry_bound_are_usage_errors(home: str) -> None:
    """An amount the codec would refuse (protocols/entry.md §3, bounded numbers) is refused by
    the option itself: exit 2, one sentence, nothing signed (it was exit 3 after signing)."""
    from p2pcommons.cli.app import MAX_AMOUNT
    from p2pcommons.entry import MAX_AMOUNT as CODEC_BOUND

    assert MAX_AMOUNT == CODEC_BOUND
    p2pc("commons", "create", "Bounded", "--home", home)
    before = p2pc_json("log", "--home", home)
    result = runner.invoke(get_app(), ["contribute", "--title", "x", "--value", str(2**53 + 1), "--home", home])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert p2pc_json("log", "--home", home) == before
    p2pc("contribute", "--title", "x", "--value", str(2**53), "--home", home)


def test_ingest_does_not_load_the_state_fold() -> None:
    """Storing received entries (sync's ingest child, bundle import) screens outsiders,
    which load the fold's rules only when an outsider's entry needs the policy: the fold's
    package is dozens of modules (issue 18: start-up counts). A local write does fold, on
    purpose: it is refused before it is committed when the rules would reject it."""
    probe = (
        "import sys\n"
        "import p2pcommons.ingest, p2pcommons.outsiders, p2pcommons.author\n"
        "print(sorted(m for m in sys.modules if m.startswith(('p2pcommons.state', 'libp2p'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
