"""Where a node keeps its files.

One *home* holds one identity, one store and (later) one daemon, so several nodes can run
on one machine by giving each its own home (``--home`` or ``P2PC_HOME``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError, InsecureKeyFile

# platformdirs (with tempfile, shutil...), tomllib and the settings table are imported where
# they are used: a command given --home on a home without config.toml (``p2pc contribute``
# in a script) needs none of them (issue 18: its start-up budget).

HOME_ENV = "P2PC_HOME"
PASSPHRASE_ENV = "P2PC_PASSPHRASE"


def default_home() -> Path:
    """The per-user data directory (e.g. ``~/.local/share/p2pcommons`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("p2pcommons", appauthor=False))


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--home`` wins, then ``P2PC_HOME``, then the platform default."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return default_home()


class Home(NamedTuple):
    """A node's home directory and the files in it.  (A NamedTuple, not a dataclass:
    ``dataclasses`` imports ``inspect``, about 10 ms of every command's start-up, issue 18.)"""

    path: Path

    @property
    def key_dir(self) -> Path:
        return self.path / "keys"

    @property
    def key_file(self) -> Path:
        return self.key_dir / "identity.json"

    @property
    def store_file(self) -> Path:
        return self.path / "store.sqlite"

    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def lock_file(self) -> Path:
        return self.path / "node.lock"

    @property
    def control_socket(self) -> Path:
        return self.path / "node.sock"

    def exists(self) -> bool:
        return self.key_file.exists()

    def create_dirs(self) -> None:
        """Create the home and key directory, private to this user (0700)."""
        for directory in (self.path, self.key_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)

    def config(self) -> dict[str, Any]:
        """The parsed ``config.toml`` (empty if there is none), its known settings checked.

        A setting of the wrong type is refused here, with its name (the table of settings is
        :data:`p2pcommons.settings.SETTINGS`), rather than failing later wherever the daemon
        or a command first uses it (as a traceback)."""
        try:
            text = self.config_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError:
            raise ConfigError(f"The config file {self.config_file} is not UTF-8 text.") from None
        import tomllib

        from .settings import check_config

        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"The config file {self.config_file} is not valid TOML ({exc}).") from None
        check_config(config, self.config_file)
        return config


def check_private(path: Path, *, directory: bool) -> None:
    """Refuse key material that other users could read: a key is the member's identity."""
    mode = stat.S_IMODE(path.stat().st_mode)
    allowed = 0o700 if directory else 0o600
    if mode & ~allowed & 0o077:
        raise InsecureKeyFile(
            f"{path} has mode {mode:o}; it must not be accessible to other users "
            f"(run: chmod {allowed:o} {path})."
        )
