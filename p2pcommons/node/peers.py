"""The peer book: addresses added by hand (``p2pc peer add``), kept in ``peers.json``.

A separate file rather than config.toml, so the CLI never rewrites a file people edit.
"""

from __future__ import annotations

import json
import os

from p2pcommons.errors import UsageError
from p2pcommons.home import Home

FILE = "peers.json"


def _path(home: Home) -> os.PathLike[str]:
    return home.path / FILE


def load(home: Home) -> list[str]:
    try:
        with open(_path(home), encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return []
    except ValueError:
        raise UsageError(f"The peer book {_path(home)} is not valid JSON.") from None
    peers = data.get("peers", []) if isinstance(data, dict) else []
    return [str(p) for p in peers if isinstance(p, str)]


def save(home: Home, peers: list[str]) -> None:
    home.path.mkdir(parents=True, exist_ok=True)
    tmp = home.path / (FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"peers": peers}, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, _path(home))


def validate(addr: str) -> str:
    """Check the shape of a peer address without importing libp2p."""
    parts = addr.strip().split("/")
    if not addr.startswith("/") or "p2p" not in parts or parts[-2] != "p2p" or not parts[-1]:
        raise UsageError(f"'{addr}' is not a peer address (it needs /ip4/…/tcp/…/p2p/<peer id>).")
    return addr.strip()


def add(home: Home, addr: str) -> bool:
    addr = validate(addr)
    peers = load(home)
    if addr in peers:
        return False
    save(home, [*peers, addr])
    return True


def remove(home: Home, addr_or_id: str) -> int:
    peers = load(home)
    kept = [p for p in peers if p != addr_or_id and not p.endswith("/p2p/" + addr_or_id)]
    if len(kept) != len(peers):
        save(home, kept)
    return len(peers) - len(kept)
