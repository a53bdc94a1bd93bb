"""The peer book and the ban list, two small JSON files in the home.

``peers.json``: addresses added by hand (``p2pc peer add``).  A separate file rather than
config.toml, so the CLI never rewrites a file people edit.

``bans.json``: peers the daemon banned for misbehaving, with the wall-clock time each ban
ends, so a restart does not forgive a hostile peer.  Only bans are kept: a score above the
ban threshold is forgotten on restart (scores decay toward neutral anyway, see
:mod:`.scoring`).  Both files are written atomically (temporary file,
fsync, rename); the ban list is private to the user (0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from p2pcommons.errors import UsageError
from p2pcommons.home import Home

FILE = "peers.json"
BANS_FILE = "bans.json"
MAX_BANS = 10_000  # a flood of throwaway identities must not grow the file without bound


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


def _write_json(home: Home, name: str, data: dict[str, Any], *, private: bool = False) -> None:
    """Replace ``name`` in the home atomically (temporary file, fsync, rename); ``private``:
    mode 0600 from the start."""
    home.path.mkdir(parents=True, exist_ok=True)
    tmp = home.path / f"{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        if private:
            os.chmod(tmp, 0o600)  # an existing file keeps its mode through O_CREAT
        os.replace(tmp, home.path / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save(home: Home, peers: list[str]) -> None:
    _write_json(home, FILE, {"peers": peers})


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


def peer_id_of(addr: str) -> str:
    """The peer id at the end of ``/…/p2p/<peer id>`` (empty if there is none)."""
    head, sep, tail = addr.rstrip("/").rpartition("/p2p/")
    return tail if sep and head and "/" not in tail else ""


def matches(addr: str, target: str) -> bool:
    """``target`` names ``addr``: the same address, or the peer id it ends in."""
    return addr == target or (not target.startswith("/") and peer_id_of(addr) == target)


def remove(home: Home, addr_or_id: str) -> list[str]:
    """Drop the address, or every address of a peer id; returns what was removed."""
    peers = load(home)
    removed = [p for p in peers if matches(p, addr_or_id)]
    if removed:
        save(home, [p for p in peers if p not in removed])
    return removed


# --- bans -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ban:
    peer_id: str
    until: float        # wall-clock (time.time()) end of the ban
    score: int
    reason: str = ""


def _bans_path(home: Home) -> os.PathLike[str]:
    return home.path / BANS_FILE


def load_bans(home: Home, now: float | None = None) -> dict[str, Ban]:
    """Bans still in force (expired ones are dropped); a damaged file counts as none,
    since refusing to start over it would be worse than forgetting a ban."""
    now = time.time() if now is None else now
    try:
        with open(_bans_path(home), encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError, OSError):
        return {}
    items = data.get("bans", {}) if isinstance(data, dict) else {}
    bans: dict[str, Ban] = {}
    if not isinstance(items, dict):
        return bans
    for peer_id, item in items.items():
        if not isinstance(item, dict):
            continue
        until, score, reason = item.get("until"), item.get("score", 0), item.get("reason", "")
        if (isinstance(until, int | float) and not isinstance(until, bool) and until > now
                and isinstance(score, int) and not isinstance(score, bool)):
            bans[str(peer_id)] = Ban(str(peer_id), float(until), score, str(reason)[:200])
    return bans


def lift_ban(home: Home, peer_id: str) -> bool:
    """Remove one peer's ban from the file (``p2pc peer unban``); whether it had one."""
    bans = load_bans(home)
    if bans.pop(peer_id, None) is None:
        return False
    save_bans(home, bans)
    return True


def save_bans(home: Home, bans: dict[str, Ban], now: float | None = None) -> None:
    """Write the bans still in force (the newest ``MAX_BANS``), atomically, mode 0600."""
    now = time.time() if now is None else now
    live = sorted((b for b in bans.values() if b.until > now), key=lambda b: -b.until)[:MAX_BANS]
    data: dict[str, Any] = {"bans": {b.peer_id: {"until": round(b.until, 3), "score": b.score,
                                                 "reason": b.reason} for b in live}}
    _write_json(home, BANS_FILE, data, private=True)
