"""The settings a node reads from ``config.toml``: one declared table (name, type, default,
help) that checks the file when it is read (:func:`check_config`, via ``Home.config()``),
and that ``p2pc config show|get|set|unset`` lists, parses and validates against.

Why one table: a setting misspelt or of the wrong type used to be ignored, or to fail
much later where the daemon first used it (``listen = "/ip4/…"`` as a string failed as
``Invalid MultiAddr 'i'``); here it is refused with its name, before anything runs.
Unknown sections and keys in the file are left alone, so a newer config still starts an
older node; only ``p2pc config set`` refuses a key it does not know.

The defaults are those of the code that reads each setting (``cli/network.py``,
``node/reach.py``, ``outsiders.py``; tests/test_cli_config.py checks they agree); they are
written here, not imported, so reading a config never imports libp2p.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

MAX_INT = 2**53

# kind -> how it is described in messages
KINDS = {
    "addrs": "a list of multiaddrs (e.g. [\"/ip4/0.0.0.0/tcp/4001\"])",
    "relay_addrs": "a list of multiaddrs ending in /p2p/<peer id>",
    "bool": "true or false",
    "count": "a whole number from 0",
    "positive": "a whole number from 1",
    "seconds": "a whole number of seconds from 0",
    "port": "a TCP port number from 1 to 65535",
    "ui_port": "a TCP port number from 0 to 65535 (0: any free port)",
}


@dataclass(frozen=True)
class Setting:
    section: str
    name: str
    kind: str
    default: Any
    help: str

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def is_list(self) -> bool:
        return self.kind in ("addrs", "relay_addrs")


SETTINGS: tuple[Setting, ...] = (
    Setting("network", "listen", "addrs", [],
            "Addresses the daemon listens on (--listen overrides; none: every interface on the kept port; "
            "tcp/0 here means the kept port)."),
    Setting("network", "port", "port", None,
            "The kept TCP port (none yet: chosen at the first start, 4001 if free, and written here)."),
    Setting("network", "dht", "bool", False,
            "Announce and find the commons' members in a Kademlia DHT of the nodes it connects to."),
    Setting("network", "bootstrap", "addrs", [], "Peers the daemon keeps connected."),
    Setting("network", "peers", "addrs", [], "More peers the daemon keeps connected (same as bootstrap)."),
    Setting("network", "mdns", "bool", False, "Discover peers on the LAN with mDNS."),
    Setting("network", "ingest_process", "bool", True,
            "Store large sync transfers in a second process, on a second core."),
    Setting("network", "relay_service", "bool", False,
            "Offer circuit relay v2 to the peers of this node's commons."),
    Setting("network", "relays", "relay_addrs", [], "Relays to reserve a slot on first."),
    Setting("network", "relay_max_reservations", "positive", 32, "Peers holding a slot on this relay at once."),
    Setting("network", "relay_reservation_seconds", "positive", 3600, "How long a relay slot lasts."),
    Setting("network", "relay_circuit_seconds", "positive", 3600, "Longest life of one relayed connection."),
    Setting("network", "relay_circuit_bytes", "positive", 256 * 1024 * 1024,
            "Most bytes one relayed connection carries, both ways together."),
    Setting("network", "relay_circuits_per_peer", "positive", 8, "Relayed connections to one slot holder at once."),
    Setting("ui", "enabled", "bool", True,
            "Serve the local dashboard (p2pc ui) from the daemon, on 127.0.0.1 only."),
    Setting("ui", "port", "ui_port", 4080,
            "The dashboard's port on 127.0.0.1 (0: any free port; a busy port falls back to a free one)."),
    Setting("outsiders", "max_total", "count", 1024, "Strangers' entries on probation kept per commons."),
    Setting("outsiders", "max_waiting", "count", 16, "Per stranger: entries naming parents this node lacks."),
    Setting("outsiders", "expire_after", "seconds", 7 * 24 * 3600,
            "Seconds after which entries still on probation are deleted."),
)
BY_KEY = {s.key: s for s in SETTINGS}


def find(key: str) -> Setting:
    """The setting named ``section.name`` (or a bare name that only one section has);
    an unknown key is refused with the close matches."""
    if key in BY_KEY:
        return BY_KEY[key]
    bare = [s for s in SETTINGS if s.name == key]
    if len(bare) == 1:
        return bare[0]
    names = close_keys(key)
    if names:
        raise ConfigError(f"Unknown setting '{key}'; did you mean {' or '.join(names)}?")
    raise ConfigError(f"Unknown setting '{key}'; known settings: {', '.join(BY_KEY)}.")


def close_keys(key: str) -> list[str]:
    """The known settings an unknown ``key`` may be a misspelling of."""
    # The name part decides (every key of a section shares its prefix, which would make
    # 'network.lisen' look close to 'network.mdns'); a wrong section still finds the key.
    section, _, name = key.rpartition(".")
    # (each name once: 'port' is in two sections, and each section's key must show once)
    import difflib  # only for a misspelt setting

    close = difflib.get_close_matches(name, list(dict.fromkeys(s.name for s in SETTINGS)), n=3, cutoff=0.75)
    names = [s.key for c in close for s in SETTINGS if s.name == c and (not section or s.section == section)]
    return names or [s.key for c in close for s in SETTINGS if s.name == c]


def unknown_warning(config: dict[str, Any], path: Path) -> str | None:
    """One sentence naming the file's keys this version does not know (a misspelling, or a
    newer version's setting), with what each may have meant; None when there are none.
    Not an error — a newer version's file must still start an older node — but never
    silent: ``node start`` prints it."""
    keys = unknown_keys(config)
    if not keys:
        return None
    parts = []
    for key in keys:
        close = close_keys(key)
        parts.append(f"{key} (did you mean {' or '.join(close)}?)" if close else key)
    return f"{path} has settings this version does not know, ignored: {', '.join(parts)}."


def problem(setting: Setting, value: Any) -> str | None:
    """Why ``value`` is not valid for ``setting`` (None when it is)."""
    if setting.is_list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"must be {KINDS[setting.kind]}, not {value!r}"
        for addr in value:
            reason = _addr_problem(addr, relay=setting.kind == "relay_addrs")
            if reason:
                return f"has an invalid address {addr!r} ({reason})"
        return None
    if setting.kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if setting.kind in ("port", "ui_port"):
        ok = type(value) is int and (1 if setting.kind == "port" else 0) <= value <= 65535
        return None if ok else f"must be {KINDS[setting.kind]}, not {value!r}"
    low = 1 if setting.kind == "positive" else 0
    if type(value) is not int or not low <= value <= MAX_INT:
        return f"must be {KINDS[setting.kind]}, not {value!r}"
    return None


def _addr_problem(addr: str, *, relay: bool) -> str | None:
    from multiaddr import Multiaddr  # small and libp2p-free; only when an address is set

    try:
        Multiaddr(addr)
    except Exception as exc:  # multiaddr raises several unrelated types
        return str(exc).split(" (string:")[0]
    if relay and "/p2p/" not in addr:
        return "a relay address must end in /p2p/<peer id>"
    return None


def check_config(config: dict[str, Any], path: Path) -> None:
    """Raise ConfigError naming the first known setting whose value is not valid."""
    for section in sorted({s.section for s in SETTINGS}):
        table = config.get(section)
        if table is not None and not isinstance(table, dict):
            raise ConfigError(f"In {path}, '{section}' must be a table ([{section}]), not {type(table).__name__}.")
    for setting in SETTINGS:
        table = config.get(setting.section) or {}
        if setting.name in table:
            reason = problem(setting, table[setting.name])
            if reason:
                raise ConfigError(f"In {path}, {setting.key} {reason}.")


def parse_value(setting: Setting, words: list[str]) -> Any:
    """A value typed on the command line: list settings take one word per item (or one
    TOML array such as ``[]``); the others exactly one word."""
    if setting.is_list:
        if not words:
            raise ConfigError(f"{setting.key} takes one or more addresses, or '[]' for none.")
        if len(words) == 1 and words[0].lstrip().startswith("["):
            try:
                value = tomllib.loads(f"v = {words[0]}")["v"]
            except tomllib.TOMLDecodeError:
                raise ConfigError(f"{setting.key}: '{words[0]}' is not a TOML array.") from None
        else:
            value = list(words)
    else:
        if len(words) != 1:
            raise ConfigError(f"{setting.key} takes one value ({KINDS[setting.kind]}).")
        value = _scalar(setting, words[0])
    reason = problem(setting, value)
    if reason:
        raise ConfigError(f"{setting.key} {reason}.")
    return value


def _scalar(setting: Setting, word: str) -> Any:
    if setting.kind == "bool":
        text = word.strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{setting.key} must be true or false, not '{word}'.")
    try:
        return int(word.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{setting.key} must be {KINDS[setting.kind]}, not '{word}'.") from None


def read_raw(path: Path) -> dict[str, Any]:
    """The file's tables as they are (no checks), to edit one key and keep the others."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise ConfigError(f"The config file {path} is not UTF-8 text.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The config file {path} is not valid TOML ({exc}); fix it by hand.") from None


def write_atomically(path: Path, config: dict[str, Any]) -> None:
    """Replace ``path`` in one rename: a daemon or command reading it meanwhile sees the
    old file or the new one, never half of one, and a crash leaves the old file."""
    import tomli_w

    text = tomli_w.dumps(config)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def effective(config: dict[str, Any]) -> list[tuple[Setting, Any, bool]]:
    """Every known setting with its value in force and whether that is the default."""
    rows = []
    for setting in SETTINGS:
        table = config.get(setting.section) or {}
        if setting.name in table:
            rows.append((setting, table[setting.name], False))
        else:
            rows.append((setting, setting.default, True))
    return rows


def unknown_keys(config: dict[str, Any]) -> list[str]:
    """Keys of the file no setting declares (they are ignored by this version)."""
    found = []
    for section, table in config.items():
        if isinstance(table, dict):
            found += [f"{section}.{k}" for k in table if f"{section}.{k}" not in BY_KEY]
        else:
            found.append(section)
    return sorted(found)


__all__ = ["BY_KEY", "KINDS", "SETTINGS", "Setting", "check_config", "effective", "find", "parse_value",
           "problem", "read_raw", "unknown_keys", "unknown_warning", "write_atomically"]
