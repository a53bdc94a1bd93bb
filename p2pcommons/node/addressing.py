"""Addresses that work: a listen port chosen once, listen addresses checked before the
node claims to run, wildcard listens turned into addresses another machine can dial.

Sans-I/O except :func:`probe_listen` (binds a socket for a moment) and
:func:`keep_port` (appends one line to config.toml).  libp2p is not imported here.

Why each rule (issue 17):

* A node that picks a new random port at every start leaves its peers holding a dead
  address, so the port is chosen once — the first start — and written to config.toml as
  ``[network] port``; later starts reuse it.
* ``/ip4/0.0.0.0/…`` means "every interface" to the listener but is not an address anyone
  can dial, so a wildcard listen is announced as the machine's interface addresses (and
  whatever peers report seeing through identify, added by libp2p's observed-address
  manager).
* An invite may be pasted on another machine: it never carries a wildcard, and carries
  loopback (``127.0.0.1``/``::1``) only when the node has no other address at all (then the
  invite is usable on this machine only, which is better than no invite).
* A port already in use must fail the start with one sentence and exit code 6, not leave
  a node running with no address or sharing a port with another node.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import random
import re
import socket
from collections.abc import Iterable, Sequence

from p2pcommons.errors import NetworkError, UsageError
from p2pcommons.home import Home

DEFAULT_PORT = 4001           # libp2p's customary port: tried first when choosing one
DEFAULT_HOST = "0.0.0.0"
PORT_RANGE = (20_000, 60_999)  # where a port is picked when 4001 is taken
_TCP = re.compile(r"^/(ip4|ip6)/([^/]+)/tcp/(\d+)(/.*)?$")


# --- the listen addresses ------------------------------------------------------------------


def split_tcp(addr: str) -> tuple[str, str, int] | None:
    """``/ip4/1.2.3.4/tcp/4001`` → (``ip4``, ``1.2.3.4``, 4001); None for other shapes."""
    match = _TCP.match(addr.strip())
    if match is None:
        return None
    return match.group(1), match.group(2), int(match.group(3))


def configured_port(network: dict[str, object]) -> int | None:
    """``[network] port`` from config.toml (None if absent); a bad value is a usage error."""
    port = network.get("port")
    if port is None:
        return None
    if type(port) is not int or not 1 <= port <= 65535:
        raise UsageError(f"[network] port in config.toml must be a port number (1-65535), not {port!r}.")
    return port


def resolve_listen(flags: Sequence[str], network: dict[str, object], port: int) -> list[str]:
    """The addresses to listen on: ``--listen`` flags as given (``tcp/0`` there means "any
    port, this run only"); else ``[network] listen`` from config.toml, where ``tcp/0`` means
    the kept port; else every interface on the kept port."""
    if flags:
        return list(flags)
    configured = network.get("listen")
    if isinstance(configured, list) and configured:
        out = []
        for addr in (str(a) for a in configured):
            parts = split_tcp(addr)
            if parts is not None and parts[2] == 0:
                addr = addr.replace("/tcp/0", f"/tcp/{port}", 1)
            out.append(addr)
        return out
    return [f"/ip4/{DEFAULT_HOST}/tcp/{port}"]


def needs_kept_port(flags: Sequence[str], network: dict[str, object]) -> bool:
    """Whether the listen addresses use the kept port (so one must be chosen if none is)."""
    if flags:
        return False
    configured = network.get("listen")
    if isinstance(configured, list) and configured:
        return any((p := split_tcp(str(a))) is not None and p[2] == 0 for a in configured)
    return True


def port_free(port: int, host: str = DEFAULT_HOST) -> bool:
    try:
        probe_listen([f"/ip4/{host}/tcp/{port}"])
    except NetworkError:
        return False
    return True


def choose_port(rng: random.Random | None = None) -> int:
    """4001 if it is free, else a free port from :data:`PORT_RANGE` (bounded tries), else
    whatever port the system hands out."""
    rng = rng or random.Random()
    if port_free(DEFAULT_PORT):
        return DEFAULT_PORT
    for _ in range(32):
        port = rng.randint(*PORT_RANGE)
        if port_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def keep_port(home: Home, port: int) -> None:
    """Record the chosen port in config.toml as ``[network] port`` without rewriting the
    file (people edit it; comments and order stay): a line after an existing ``[network]``
    header, or a new table at the end."""
    path = home.config_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    lines = text.splitlines(keepends=True)
    line = f"port = {port}  # chosen at the first start; peers know this node by it\n"
    for i, current in enumerate(lines):
        if current.strip() == "[network]":
            lines.insert(i + 1, line)
            break
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += (["\n"] if lines else []) + ["[network]\n", line]
    home.path.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)


def listen_addresses(home: Home, flags: Sequence[str]) -> list[str]:
    """What ``p2pc node start`` listens on, choosing and keeping the port on first use."""
    raw = home.config().get("network", {})
    network: dict[str, object] = raw if isinstance(raw, dict) else {}
    port = configured_port(network)
    if port is None and needs_kept_port(flags, network):
        port = choose_port()
        keep_port(home, port)
    return resolve_listen(flags, network, port or 0)


def probe_listen(addrs: Iterable[str]) -> None:
    """Fail before starting if a TCP listen address cannot be bound: another program (or
    another node) holds the port, or the address is not this machine's.  One sentence,
    :class:`NetworkError` (exit code 6).  py-libp2p 0.8.1 would swallow the error and run
    with no address, or share the port (SO_REUSEPORT) with another node."""
    for addr in addrs:
        parts = split_tcp(addr)
        if parts is None:
            raise UsageError(f"'{addr}' is not a TCP listen address (e.g. /ip4/0.0.0.0/tcp/4001).")
        family, host, port = parts
        if port == 0:
            continue
        sock = socket.socket(socket.AF_INET6 if family == "ip6" else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener will
            if family == "ip6":
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            sock.listen(1)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise NetworkError(
                    f"Port {port} is already in use (another program or another node holds it); "
                    f"choose another with --listen or [network] port in config.toml."
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise NetworkError(f"Cannot listen on {addr}: {host} is not an address of this machine.") from None
            raise NetworkError(f"Cannot listen on {addr} ({exc.strerror or exc}).") from None
        finally:
            sock.close()


# --- which addresses to tell others ----------------------------------------------------------


def _ip(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    parts = split_tcp(addr)
    if parts is None:
        return None
    try:
        return ipaddress.ip_address(parts[1])
    except ValueError:
        return None


def is_wildcard(addr: str) -> bool:
    ip = _ip(addr)
    return ip is not None and ip.is_unspecified


def is_loopback(addr: str) -> bool:
    ip = _ip(addr)
    return ip is not None and ip.is_loopback


def rank(addr: str) -> int:
    """Public first, then private (LAN), then loopback; lower is better."""
    ip = _ip(addr)
    if ip is None:
        return 1  # not TCP/IP (a relay circuit, DNS): keep, after public addresses
    if ip.is_loopback:
        return 3
    return 0 if ip.is_global else 2


def expand_wildcards(addrs: Sequence[str], interface_ips: Sequence[str]) -> list[str]:
    """Replace each wildcard listen address with one address per interface IP of the same
    family (the port kept); other addresses pass through.  Order kept, duplicates removed."""
    out: list[str] = []
    for addr in addrs:
        parts = split_tcp(addr)
        if parts is not None and is_wildcard(addr):
            family, _host, port = parts
            tail = addr.split(f"/tcp/{port}", 1)[1]
            for ip in interface_ips:
                version = 6 if ":" in ip else 4
                if (family == "ip6") == (version == 6):
                    out.append(f"/{family}/{ip}/tcp/{port}{tail}")
        else:
            out.append(addr)
    seen: set[str] = set()
    return [a for a in out if not (a in seen or seen.add(a))]  # type: ignore[func-returns-value]


def dialable(addrs: Iterable[str]) -> list[str]:
    """The addresses worth giving to another machine, best first: never a wildcard, never
    link-local, loopback only when nothing else exists."""
    usable = []
    for addr in addrs:
        ip = _ip(addr)
        if ip is not None and (ip.is_unspecified or (ip.is_link_local and not ip.is_loopback)):
            continue
        usable.append(addr)
    if any(not is_loopback(a) for a in usable):
        usable = [a for a in usable if not is_loopback(a)]
    seen: set[str] = set()
    unique = [a for a in usable if not (a in seen or seen.add(a))]  # type: ignore[func-returns-value]
    return sorted(unique, key=rank)


def interface_ips() -> list[str]:
    """This machine's interface addresses (IPv4, then IPv6), through the helper py-libp2p
    ships (imported here only: the daemon has libp2p loaded already)."""
    from libp2p.utils.address_validation import get_available_interfaces

    ips = []
    for maddr in get_available_interfaces(0):
        parts = split_tcp(str(maddr))
        if parts is not None:
            ips.append(parts[1])
    return ips


__all__ = [
    "choose_port", "dialable", "expand_wildcards", "interface_ips", "is_loopback", "is_wildcard",
    "keep_port", "listen_addresses", "probe_listen", "rank", "resolve_listen",
]
