"""``p2pc config show|get|set|unset`` (issue 19, deliverable 4) and the one table of known
settings behind it and behind ``Home.config()``.  The commands run as the installed
``p2pc`` in a subprocess (exit codes and one-sentence errors are process-level promises);
the round trip of every setting is a hypothesis property over the settings module."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcommons.errors import ConfigError
from p2pcommons.home import Home
from p2pcommons.settings import BY_KEY, SETTINGS, Setting, find, parse_value, read_raw, write_atomically
from tests.support.cli_json import unwrap

from .support.cli import EXE, subprocess_env


def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([EXE, *args], env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    if code:
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("p2pc: "), done.stderr
    return done


def test_show_marks_defaults_and_unknown_keys(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('[network]\nmdns = true\nlisen = ["x"]\n', encoding="utf-8")
    shown = unwrap(run("config", "show", "--home", str(home), "--json").stdout)
    rows = {row["key"]: row for row in shown["settings"]}
    assert list(rows) == [s.key for s in SETTINGS]
    assert rows["network.mdns"] == {**rows["network.mdns"], "value": True, "default": False}
    assert rows["network.listen"]["default"] is True
    assert rows["network.listen"]["value"] == []  # every interface on the kept port
    assert shown["unknown"] == ["network.lisen"]
    human = run("--home", str(home), "config", "show").stdout
    assert "network.mdns" in human and "(default)" in human and "network.lisen" in human


@pytest.mark.slow  # many p2pc processes: out of the fast loop, run by CI
def test_set_get_unset_round_trip(tmp_path: Path) -> None:
    home = str(tmp_path / "h")  # no identity needed: settings may come first
    run("--home", home, "config", "set", "network.listen", "/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001")
    run("--home", home, "config", "set", "mdns", "yes")
    run("--home", home, "config", "set", "outsiders.expire_after", "86400")
    run("--home", home, "config", "set", "network.bootstrap", "[]")
    got = unwrap(run("--home", home, "--json", "config", "get", "network.listen").stdout)
    assert got == {"key": "network.listen", "value": ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"], "default": False}
    assert run("--home", home, "config", "get", "network.mdns").stdout == "true\n"
    config = Home(Path(home)).config()
    assert config == {
        "network": {"listen": ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"], "mdns": True, "bootstrap": []},
        "outsiders": {"expire_after": 86400},
    }
    assert oct((Path(home) / "config.toml").stat().st_mode & 0o777) == oct(0o600)
    run("--home", home, "config", "unset", "outsiders.expire_after")
    assert "outsiders" not in Home(Path(home)).config()
    got = unwrap(run("--home", home, "--json", "config", "get", "outsiders.expire_after").stdout)
    assert got == {"key": "outsiders.expire_after", "value": 7 * 24 * 3600, "default": True}
    assert [p.name for p in Path(home).iterdir()] == ["config.toml"]  # no temporary file left


def test_set_keeps_other_keys_and_replaces_the_file(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    path = home / "config.toml"
    path.write_text('[network]\nmdns = true\nfuture_key = "kept"\n[elsewhere]\nx = 1\n', encoding="utf-8")
    before = path.stat().st_ino
    run("--home", str(home), "config", "set", "network.ingest_process", "false")
    assert path.stat().st_ino != before  # a new file renamed into place, not rewritten in place
    assert tomllib.loads(path.read_text(encoding="utf-8")) == {
        "network": {"mdns": True, "future_key": "kept", "ingest_process": False},
        "elsewhere": {"x": 1},
    }


@pytest.mark.parametrize("args, words", [
    (["network.lisen", "/ip4/0.0.0.0/tcp/1"], ["Unknown setting 'network.lisen'", "network.listen"]),
    (["outsider.max_totl", "5"], ["outsiders.max_total"]),
    (["nonsense", "5"], ["known settings:", "network.listen", "outsiders.expire_after"]),
    (["network.listen", "i"], ["network.listen", "'i'"]),
    (["network.listen", "/ip4/0.0.0.0/tcp/70000"], ["network.listen", "70000"]),
    (["network.listen", "/ip4/0.0.0.0/tcp/1, /ip4/0.0.0.0/tcp/2"], ["network.listen"]),
    (["network.relays", "/ip4/192.0.2.1/tcp/4001"], ["network.relays", "/p2p/"]),
    (["network.mdns", "maybe"], ["network.mdns", "true or false"]),
    (["network.mdns", "true", "false"], ["network.mdns", "one value"]),
    (["network.bootstrap"], ["network.bootstrap", "'[]'"]),
    (["network.relay_max_reservations", "0"], ["network.relay_max_reservations", "from 1"]),
    (["outsiders.max_total", "lots"], ["outsiders.max_total", "whole number"]),
    (["network.bootstrap", "[1, 2]"], ["network.bootstrap"]),
])
def test_bad_keys_and_values_are_refused(tmp_path: Path, args: list[str], words: list[str]) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text("[network]\nmdns = true\n", encoding="utf-8")
    done = run("--home", str(home), "config", "set", *args, code=2)
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    assert (home / "config.toml").read_text(encoding="utf-8") == "[network]\nmdns = true\n"


def test_misspelt_key_refused_by_get(tmp_path: Path) -> None:
    done = run("--home", str(tmp_path), "config", "get", "network.mnds", code=2)
    assert "did you mean network.mdns?" in done.stderr


def test_misspelt_key_suggests_each_setting_once(tmp_path: Path) -> None:
    """'ui.prot' used to say 'did you mean ui.port or ui.port?' (two sections have a 'port')."""
    done = run("--home", str(tmp_path), "config", "get", "ui.prot", code=2)
    assert done.stderr.strip() == "p2pc: Unknown setting 'ui.prot'; did you mean ui.port?", done.stderr
    done = run("--home", str(tmp_path), "config", "set", "prot", "5", code=2)
    assert done.stderr.strip() == ("p2pc: Unknown setting 'prot'; did you mean network.port or ui.port?"), done.stderr


def test_bad_listen_address_in_the_file_is_named_before_the_daemon_runs(tmp_path: Path) -> None:
    """``listen = ["i"]`` used to pass the type check and fail inside the daemon as
    ``Invalid MultiAddr 'i'``: now the setting is named, exit 2, nothing started."""
    home = tmp_path / "h"
    run("init", "--home", str(home))
    (home / "config.toml").write_text('[network]\nlisten = ["i"]\n', encoding="utf-8")
    for args in (["config", "show"], ["node", "start", "--foreground"]):
        done = run(*args, "--home", str(home), code=2)
        assert "network.listen" in done.stderr and "config.toml" in done.stderr, done.stderr
    assert not (home / "node.sock").exists()


def test_defaults_agree_with_the_code_that_reads_them() -> None:
    from p2pcommons.node import addressing
    from p2pcommons.node.reach import RelaySettings
    from p2pcommons.outsiders import Limits

    relay = RelaySettings.from_config({})
    limits = Limits.from_config({})
    # no listen setting: every interface on the kept port, which is chosen at the first start
    assert BY_KEY["network.listen"].default == [] and BY_KEY["network.port"].default is None
    assert addressing.resolve_listen([], {}, 4001) == ["/ip4/0.0.0.0/tcp/4001"]
    assert addressing.needs_kept_port([], {})
    assert BY_KEY["network.relay_max_reservations"].default == relay.max_reservations
    assert BY_KEY["network.relay_reservation_seconds"].default == relay.reservation_ttl
    assert BY_KEY["network.relay_circuit_seconds"].default == relay.circuit_seconds
    assert BY_KEY["network.relay_circuit_bytes"].default == relay.circuit_bytes
    assert BY_KEY["network.relay_circuits_per_peer"].default == relay.circuits_per_peer
    assert BY_KEY["network.relay_service"].default == relay.relay_service
    assert BY_KEY["outsiders.max_total"].default == limits.max_total
    assert BY_KEY["outsiders.max_waiting"].default == limits.max_waiting
    assert BY_KEY["outsiders.expire_after"].default == limits.expire_after


# --- property: every setting round-trips, and nothing invalid reaches the file -------------

_ADDRS = st.lists(
    st.builds("/ip4/{}.{}.{}.{}/tcp/{}".format, *[st.integers(0, 255)] * 4, st.integers(0, 65535)), max_size=3
)
_PEER = "/p2p/12D3KooWDVyDAe7Ma7ssXHrWU3SYzVnBWVL9yET8Ay14yupWcBep"


def _valid(setting: Setting) -> st.SearchStrategy[Any]:
    if setting.kind == "addrs":
        return _ADDRS
    if setting.kind == "relay_addrs":
        return _ADDRS.map(lambda addrs: [a + _PEER for a in addrs])
    if setting.kind == "bool":
        return st.booleans()
    if setting.kind == "port":
        return st.integers(1, 65535)
    if setting.kind == "ui_port":
        return st.integers(0, 65535)
    return st.integers(1 if setting.kind == "positive" else 0, 2**53)


def _words(setting: Setting, value: Any) -> list[str]:
    if isinstance(value, list):
        return list(value) if value else ["[]"]
    return [str(value).lower() if isinstance(value, bool) else str(value)]


@given(data=st.data(), setting=st.sampled_from(SETTINGS))
def test_every_setting_round_trips_through_the_file(tmp_path_factory: pytest.TempPathFactory,
                                                    data: st.DataObject, setting: Setting) -> None:
    value = data.draw(_valid(setting))
    path = tmp_path_factory.mktemp("cfg", numbered=True) / "config.toml"
    config = read_raw(path)
    config.setdefault(setting.section, {})[setting.name] = parse_value(setting, _words(setting, value))
    write_atomically(path, config)
    assert Home(path.parent).config()[setting.section][setting.name] == value
    unique = sum(s.name == setting.name for s in SETTINGS) == 1  # a bare name finds it when no other section has it
    assert find(setting.name if unique and setting.name != "listen" else setting.key) is setting


@given(setting=st.sampled_from(SETTINGS), word=st.text(max_size=30))
def test_invalid_words_never_become_values(setting: Setting, word: str) -> None:
    """Any typed word is either a valid value for the setting or refused (ConfigError)."""
    try:
        value = parse_value(setting, [word])
    except ConfigError:
        return
    from p2pcommons.settings import problem

    assert problem(setting, value) is None


@pytest.mark.network  # starts a real daemon (on 127.0.0.1, any free ports)
def test_node_start_names_unknown_keys_in_the_file(tmp_path: Path) -> None:
    """A misspelt key in config.toml ('mnds = true') used to be ignored without a word by
    node start; now it warns, naming the key and what it may have meant, and still starts
    (a newer version's setting must not stop an older node)."""
    home = tmp_path / "h"
    run("init", "--home", str(home))
    (home / "config.toml").write_text('[network]\nmnds = true\n[ui]\nport = 0\ncolour = "green"\n', encoding="utf-8")
    done = run("node", "start", "--listen", "/ip4/127.0.0.1/tcp/0", "--home", str(home))
    try:
        warning = [line for line in done.stderr.splitlines() if line.startswith("p2pc: warning: ")]
        assert len(warning) == 1, done.stderr
        assert "network.mnds (did you mean network.mdns?)" in warning[0] and "ui.colour" in warning[0]
    finally:
        run("node", "stop", "--home", str(home))
