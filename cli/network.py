"""Network commands: the node daemon, peers, invites, one-shot sync, joining by invite.

libp2p is imported only inside the commands that open connections (``node start``,
``sync``, ``join`` with a code); ``node status``/``stop``, ``peer`` and ``invite`` talk to
the daemon over its control socket or edit local files, so they start fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from p2pcommons.cli.app import (
    HomeOption,
    JsonOption,
    app,
    command,
    emit,
    emit_event,
    fail_with,
    home_of,
    identity_of,
    open_store,
    passphrase_for,
    progress_enabled,
    resolve_commons,
    short_id,
)

node_app = typer.Typer(help="Run and inspect this home's node daemon.", no_args_is_help=True)
peer_app = typer.Typer(help="The peers this node keeps connecting to.", no_args_is_help=True)
invite_app = typer.Typer(help="Invite codes for newcomers.", no_args_is_help=True)
app.add_typer(node_app, name="node")
app.add_typer(peer_app, name="peer")
app.add_typer(invite_app, name="invite")



# --- node ---------------------------------------------------------------------------------


@command("start", app=node_app)
def node_start(
    listen: Annotated[
        list[str] | None, typer.Option("--listen", metavar="MULTIADDR", help="Multiaddr to listen on (repeatable).")
    ] = None,
    bootstrap: Annotated[
        list[str] | None,
        typer.Option("--bootstrap", metavar="ADDR", help="Peer address to keep connected (repeatable)."),
    ] = None,
    mdns: Annotated[bool, typer.Option("--mdns/--no-mdns", help="Discover peers on the LAN with mDNS.")] = False,
    dht: Annotated[bool, typer.Option("--dht/--no-dht", help="Find members through a Kademlia DHT "
                                      "(commons ids as provider keys; [network] dht in config.toml).")] = False,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run in this process (logs on stderr).")] = False,
    ingest_process: Annotated[
        bool,
        typer.Option(
            "--ingest-process/--no-ingest-process",
            help="Store large sync transfers in a second process, on a second core "
            "(faster; about 35 MB more memory while one runs).",
        ),
    ] = True,
    sync_interval: Annotated[
        float, typer.Option("--sync-interval", help="Seconds between anti-entropy syncs with each peer.", min=0.2)
    ] = 30.0,
    stall_timeout: Annotated[
        float, typer.Option("--stall-timeout", help="Seconds a silent peer may stall a session.", min=0.5, hidden=True)
    ] = 20.0,
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True,
        help="-v: a line per sync session and peer event; -vv: debug detail; -vvv: libp2p's logs too.",
    )] = 0,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log as JSON Lines.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start the node daemon: sync, gossip and discovery for every commons this home holds."""
    from p2pcommons.node.launch import child_args, prepare, run_foreground

    target = home_of(home)
    secret = passphrase_for(home)  # asked once, here: a detached daemon has no terminal
    identity, listen_addrs = prepare(target, secret, listen or [])
    options: dict[str, Any] = {"bootstrap": bootstrap or [], "mdns": mdns, "dht": dht, "ingest_process": ingest_process,
                               "sync_interval": sync_interval, "stall_timeout": stall_timeout, "verbose": verbose,
                               "log_json": log_json}
    if foreground:
        run_foreground(target, identity, listen_addrs, **options)
        return
    # the background daemon runs its own small entry point (no typer, no pydantic: 18 MB less)
    args = child_args(target, listen_addrs, **options)
    log_path = target.path / "node.log"
    env = dict(os.environ)
    if secret:
        env["P2PC_PASSPHRASE"] = secret
    with open(log_path, "ab") as log_file:
        child = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    status = _status_json(_wait_for_daemon(target, child, log_path))
    emit(status, as_json, lambda: _print_status(status))


def _wait_for_daemon(target: Any, child: subprocess.Popen[bytes], log_path: Path) -> dict[str, Any]:
    from p2pcommons.errors import NetworkError
    from p2pcommons.node.notify import request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] if log_path.exists() else []
            if tail and tail[0].startswith("p2pc: "):
                raise NetworkError(tail[0].removeprefix("p2pc: "))  # the daemon's own sentence
            raise NetworkError(f"The node exited at start ({tail[0] if tail else 'see ' + str(log_path)}).")
        try:
            return request(target, {"cmd": "status"}, timeout=2)
        except NetworkError:
            time.sleep(0.1)
    raise NetworkError(f"The node did not come up within 20 s; see {log_path}.")


def _status_json(reply: dict[str, Any]) -> dict[str, Any]:
    """The daemon's status reply as the CLI prints it: keys as everywhere else (docs/json.md):
    ``connected`` is a peer's boolean, so the list of connected peers is
    ``connected_peers``, and a commons' entry count is ``entry_count``."""
    status = {k: v for k, v in reply.items() if k != "ok"}
    status["connected_peers"] = status.pop("connected", [])
    status["commons"] = [_count_entries(c) for c in status.get("commons", [])]
    if isinstance(status.get("ingest_process"), dict):
        status["ingest_process"] = _count_entries(status["ingest_process"])
    return status


def _count_entries(part: dict[str, Any]) -> dict[str, Any]:
    """``entries`` as a count becomes ``entry_count`` (``entries`` is always a list)."""
    renamed = {k: v for k, v in part.items() if k != "entries"}
    if "entries" in part:
        renamed["entry_count"] = part["entries"]
    return renamed


def _print_status(status: dict[str, Any]) -> None:
    print(f"node      {status['peer_id']}  (PID {status['pid']})")
    for addr in status["addrs"]:
        print(f"listening {addr}")
    reach = status.get("reach") or {}
    if reach:
        print(f"reach     {reach['summary']}")
        if reach.get("reservation"):
            res = reach["reservation"]
            print(f"relay     slot on {res['relay']} for {res['expires_in']:.0f} s more")
        service = reach.get("relay_service", {})
        if service.get("enabled"):
            print(f"relaying  for the commons' peers: {service['reservations']} of {service['max_reservations']} slots")
    peers = status.get("peers", [])
    print(f"peers     {len(status['connected_peers'])} connected")
    for peer in peers:
        mark = "connected" if peer["connected"] else ("banned" if peer["banned"] else "known")
        if peer.get("connection"):
            mark += f" ({peer['connection']})"
        lag = ", ".join(
            f"{short_id(c)} they lack {b['they_lack']}, we lack {b['we_lack']}" for c, b in peer["behind"].items()
        )
        who = peer.get("name") or peer.get("short_id") or peer["peer_id"]
        seen = peer.get("last_seen_ago")
        when = "" if peer["connected"] or seen is None else f"  last seen {_ago(seen)} ago"
        print(f"  {who}  {mark}  score {peer['score']}{when}" + (f"  ({lag})" if lag else ""))
    if status.get("ui"):
        print(f"dashboard {status['ui']['url']}  (p2pc ui prints it with the access token)")
    for addr in status.get("maintained", []):
        print(f"keeps     {addr}  (reconnects when it drops)")
    for commons in status.get("commons", []):
        print(
            f"commons   {short_id(commons['id'])}  {commons['name']}  {commons['entry_count']} entries, "
            f"{len(commons['heads'])} authors"
        )


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@command("status", app=node_app)
def node_status(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Peer id, listen addresses, peers (and how far behind each is), per-commons heads."""
    from p2pcommons.node.notify import request

    status = _status_json(request(home_of(home), {"cmd": "status"}))
    emit(status, as_json, lambda: _print_status(status))


@command("stop", app=node_app)
def node_stop(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Stop the daemon cleanly and wait until it has exited."""
    from p2pcommons.errors import NetworkError
    from p2pcommons.node.lock import running_pid
    from p2pcommons.node.notify import request

    target = home_of(home)
    pid = request(target, {"cmd": "ping"}).get("pid")
    request(target, {"cmd": "stop"})
    deadline = time.monotonic() + 15
    while running_pid(target) is not None:
        if time.monotonic() > deadline:
            raise NetworkError(f"The node (PID {pid}) did not stop within 15 s.")
        time.sleep(0.05)
    emit({"pid": pid, "stopped": True}, as_json, f"Stopped node (PID {pid}).")


# --- peers --------------------------------------------------------------------------------


@command("add", app=peer_app)
def peer_add(
    addr: Annotated[str, typer.Argument(help="Multiaddr with a peer id: /ip4/…/tcp/…/p2p/12D3KooW…")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remember a peer (and connect to it now if the daemon runs)."""
    from p2pcommons.errors import NetworkError
    from p2pcommons.node import peers
    from p2pcommons.node.notify import daemon_running, request

    target = home_of(home)
    added = peers.add(target, addr)
    connected = False
    if daemon_running(target):
        try:
            connected = request(target, {"cmd": "connect", "addr": addr}, timeout=15).get("peer_id") is not None
        except NetworkError:
            connected = False
    emit(
        {"addr": addr, "added": added, "connected": connected, "peer_id": peers.peer_id_of(addr)},
        as_json,
        ("Added " if added else "Already known: ") + addr + (" (connected)" if connected else ""),
    )


@command("list", app=peer_app)
def peer_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """The peer book (addresses added by hand and from config.toml) and the peers this
    node's daemon has banned for misbehaving (kept across restarts until the ban ends)."""
    from p2pcommons.node import peers

    target = home_of(home)
    book = peers.load(target)
    network = target.config().get("network", {})
    configured = [str(a) for k in ("bootstrap", "peers") for a in network.get(k, [])]
    bans = sorted(peers.load_bans(target).values(), key=lambda b: b.peer_id)
    data = {
        "peers": book,
        "config": configured,
        "bans": [{"peer_id": b.peer_id, "until": b.until, "score": b.score, "reason": b.reason} for b in bans],
    }
    lines = book + [f"{a}  (config.toml)" for a in configured]
    lines += [
        f"{b.peer_id}  banned until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(b.until))}"
        + (f"  ({b.reason})" if b.reason else "")
        for b in bans
    ]
    emit(data, as_json, "\n".join(lines) or "No peers.")


@command("remove", app=peer_app)
def peer_remove(
    addr: Annotated[str, typer.Argument(help="The address, or just its peer id.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Forget a peer: remove it from the peer book and, if the daemon runs, stop
    reconnecting to it and drop the live connection (kept only if another address this
    node maintains still reaches that peer)."""
    from p2pcommons.errors import NetworkError, NotFound
    from p2pcommons.node import peers
    from p2pcommons.node.notify import daemon_running, request

    target = home_of(home)
    removed = peers.remove(target, addr)
    live: dict[str, Any] | None = None
    if daemon_running(target):
        try:
            live = request(target, {"cmd": "forget", "target": addr.strip()}, timeout=15)
        except NetworkError as exc:
            if not removed:
                raise
            print(f"warning: the running node was not told ({exc})", file=sys.stderr)
    stopped = [str(a) for a in live.get("stopped", [])] if live else []
    kept_by = [str(a) for a in live.get("kept_by", [])] if live else []
    dropped = bool(live and live.get("dropped"))
    if not removed and not stopped:
        raise NotFound(f"No peer '{addr}' in the peer book or kept connected by the node.")
    data = {
        "removed_count": len(removed),
        "addrs": removed,
        "daemon": live is not None,
        "stopped": stopped,
        "dropped": dropped,
        "kept_by": kept_by,
    }
    text = f"Removed {len(removed)} address(es)."
    if live is not None:
        if dropped:
            text += " The node dropped its connection."
        elif kept_by:
            text += " The node stays connected through " + ", ".join(kept_by) + "."
        else:
            text += " The node was not connected to it."
    emit(data, as_json, text)


@command("unban", app=peer_app)
def peer_unban(
    peer_id: Annotated[str, typer.Argument(help="The banned peer's id (as `p2pc peer list` shows it).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift a ban before it ends: the peer may connect and sync again, with a fresh score.
    Works with or without a running daemon (the ban list is a file in the home)."""
    from p2pcommons.errors import NetworkError, NotFound
    from p2pcommons.node import peers
    from p2pcommons.node.notify import daemon_running, request

    target = home_of(home)
    peer_id = peer_id.strip()
    if peer_id.startswith("/"):
        peer_id = peers.peer_id_of(peer_id)
    live: dict[str, Any] | None = None
    if daemon_running(target):
        try:
            live = request(target, {"cmd": "unban", "peer_id": peer_id}, timeout=15)
        except NetworkError as exc:
            print(f"warning: the running node was not told ({exc})", file=sys.stderr)
    in_file = peers.lift_ban(target, peer_id)
    lifted = in_file or bool(live and live.get("lifted"))
    if not lifted:
        raise NotFound(f"Peer {peer_id} is not banned.")
    emit({"peer_id": peer_id, "lifted": True, "daemon": live is not None},
         as_json, f"Lifted the ban on {peer_id}." + (" The running node was told." if live is not None else ""))


# --- invites ------------------------------------------------------------------------------


@command("create", app=invite_app)
def invite_create(
    commons: Annotated[str | None, typer.Option("--commons", "-c", help="Commons id, prefix or name.")] = None,
    uses: Annotated[int, typer.Option(
        "--uses", help="How many people may join with it (0: unlimited); enforced for invite-only commons.", min=0
    )] = 1,
    expires: Annotated[str | None, typer.Option("--expires", help="Valid for this long (30m, 12h, 7d).")] = "7d",
    addr: Annotated[
        list[str] | None,
        typer.Option("--addr", metavar="ADDR", help="Address to put in the code (default: the daemon's)."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print one pasteable invite code: the commons, this node's addresses and, for
    invite-only commons, a token signed by you that your node honours when admitting."""
    from p2pcommons.errors import DaemonNotRunning
    from p2pcommons.node.invite import Invite, encode_invite, make_token, parse_duration
    from p2pcommons.node.notify import daemon_running, request

    target = home_of(home)
    identity = identity_of(home)
    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        policy = _membership_policy(store, cid)
    addrs = list(addr or [])
    if not addrs:
        if not daemon_running(target):
            raise DaemonNotRunning(
                "Start the node first ('p2pc node start') so the invite carries its address, or pass --addr."
            )
        addrs = [str(a) for a in request(target, {"cmd": "status"})["addrs"]]
    from p2pcommons.node.addressing import dialable

    # never a wildcard; loopback only if there is nothing else (then the code works on this
    # machine only, and we say so)
    given = addrs
    addrs = dialable(addrs)
    if not addrs:
        from p2pcommons.errors import NetworkError

        raise NetworkError(f"None of the node's addresses can be dialled ({', '.join(given)}); "
                           "listen on a real interface address.")
    if all(reach_is_loopback(a) for a in addrs):
        print("warning: this invite carries only a loopback address; it works on this machine only.",
              file=sys.stderr)
    expires_at = int((time.time() + parse_duration(expires)) * 1000) if expires else 0
    token = None
    if policy in ("invite", "approval"):
        token = make_token(identity.signer, cid, uses=uses, expires=expires_at)
    code = encode_invite(Invite(cid, tuple(addrs), expires_at, uses, token))
    emit(
        {
            "code": code,
            "commons": str(cid),
            "addrs": addrs,
            "uses": uses,
            "expires": expires_at,
            "policy": policy,
            "token": token is not None,
        },
        as_json,
        code,
    )


def reach_is_loopback(addr: str) -> bool:
    from p2pcommons.node.addressing import is_loopback

    return is_loopback(addr)


def _membership_policy(store: Any, cid: Any) -> str:
    from p2pcommons.node.derived import current_state_fn

    current_state = current_state_fn()
    if current_state is None:
        return "open"
    try:
        return str(current_state(store, cid).rules.get("membership", {}).get("policy", "open"))
    except Exception:
        return "open"


# --- sync ---------------------------------------------------------------------------------


@command("sync")
def sync_cmd(
    action: Annotated[
        str | None,
        typer.Argument(metavar="[status]", help="'status': am I in sync? (asks the running node, no transfer "
                       "beyond refreshing figures older than --max-age)"),
    ] = None,
    max_age: Annotated[float, typer.Option("--max-age", help="With 'status': refresh figures older than this "
                                           "many seconds.", min=0.0)] = 5.0,
    peer: Annotated[
        list[str] | None, typer.Option("--peer", metavar="ADDR", help="Sync with this address (repeatable).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Keep trying until caught up or the timeout.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.", min=0.1)] = 60.0,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sync now with a peer (or the daemon's / the configured peers); exits 0 only when caught up.
    `p2pc sync status`: whether this node is in sync, per commons and per peer (exit 0 when it is)."""
    from p2pcommons.errors import SyncIncomplete, UsageError

    if action is not None:
        if action != "status":
            raise UsageError(f"Unknown sync action {action!r} (the only one is 'status').")
        sync_status_cmd(home, max_age, timeout, as_json)
        return

    result = run_sync(home, peer or [], want=[], wait=wait, timeout=timeout)
    ok = bool(result["peers"]) and all(r and r["caught_up"] for r in result["peers"].values())
    result["caught_up"] = ok
    if ok:  # a restored home now holds what its peers hold of its own log: it may sign again
        from p2pcommons import ownlog

        ownlog.set_restored(home_of(home).path, False)

    def human() -> None:
        for peer_id, r in result["peers"].items():
            if r is None:
                print(f"{peer_id}: not synced")
            else:
                print(
                    f"{peer_id}: received {r['received']} ({r['added']} new), sent {r['sent']}"
                    + ("" if r["caught_up"] else " — not caught up")
                )
        for addr in result.get("unreachable", []):
            print(f"{addr}: unreachable")

    if not ok:
        raise fail_with(
            SyncIncomplete(
                "This node did not catch up with its peers"
                + (" (no peer could be reached)." if not result["peers"] else ".")
            ),
            result, as_json, human,
        )
    emit(result, as_json, human)


def sync_status_cmd(home: Path | None, max_age: float, timeout: float, as_json: bool) -> None:
    """``p2pc sync status``: live figures from the daemon (refreshed when older than
    ``max_age`` seconds); exit 0 when in sync with every connected peer, else 6."""
    from p2pcommons.errors import SyncIncomplete
    from p2pcommons.node.notify import request

    timeout = min(timeout, 30.0)
    reply = request(home_of(home), {"cmd": "sync_status", "max_age": max_age, "timeout": timeout},
                    timeout=timeout + 10)
    status = {k: v for k, v in reply.items() if k != "ok"}
    status["connected_count"] = status.pop("connected", 0)  # "connected" is a peer's boolean everywhere

    def human() -> None:
        if not status["connected_count"]:
            print("Not connected to any peer: cannot tell whether this node is in sync.")
        for commons, info in status["commons"].items():
            verdict = {True: "in sync", False: "NOT in sync", None: "no connected peer holds it"}[info["in_sync"]]
            print(f"commons {short_id(commons)}: {verdict}")
            for peer_id, figure in info["peers"].items():
                name = next((p["name"] or p["short_id"] for p in status["peers"] if p["peer_id"] == peer_id), peer_id)
                age = "not measured" if figure["age"] is None else f"{figure['age']} s ago"
                print(f"  {name}: they lack {figure['they_lack']}, we lack {figure['we_lack']} ({age})")

    if not status["in_sync"]:
        raise fail_with(
            SyncIncomplete("This node is not in sync with its connected peers"
                           + (" (none is connected)." if not status["connected_count"] else ".")),
            status, as_json, human,
        )
    emit(status, as_json, human)


def run_sync(home: Path | None, addrs: list[str], *, want: list[Any], wait: bool, timeout: float,
             say: Any = None) -> dict[str, Any]:
    """Sync through the running daemon if there is one, else with a temporary node
    (``say(what, sentence)``: told what a waiting sync still waits for, every few seconds)."""
    from p2pcommons.node.notify import daemon_running, request

    target = home_of(home)
    deadline = time.monotonic() + timeout
    want_text = [str(c) for c in want]
    if daemon_running(target):
        next_note = time.monotonic() + 5
        while True:
            results: dict[str, Any] = {}
            unreachable = []
            targets: list[str] | list[None] = addrs if addrs else [None]
            for addr in targets:
                message: dict[str, Any] = {
                    "cmd": "sync",
                    "timeout": max(0.1, deadline - time.monotonic()),
                    "want": want_text,
                }
                if addr:
                    message["addr"] = addr
                try:
                    reply = request(target, message, timeout=max(1.0, deadline - time.monotonic()) + 5)
                    results.update(reply.get("peers", {}))
                except Exception:
                    if addr:
                        unreachable.append(addr)
            done = bool(results) and all(r and r["caught_up"] for r in results.values())
            if done or not wait or time.monotonic() >= deadline:
                return {"peers": results, "unreachable": unreachable, "via": "daemon"}
            if say is not None and time.monotonic() >= next_note:
                left = max(0, int(deadline - time.monotonic()))
                what = ", ".join(unreachable) if unreachable else "the peers to finish sending"
                say("peer", f"Still waiting for {what} ({left} s left)…")
                next_note = time.monotonic() + 5
            time.sleep(0.2)
    import trio

    from p2pcommons.node.daemon import configured_peers
    from p2pcommons.node.oneshot import oneshot_sync

    for name in ("libp2p", "multiaddr", "async_service"):  # their errors are ours to report
        logging.getLogger(name).setLevel(logging.CRITICAL)
    identity = identity_of(home)
    targets = addrs or configured_peers(target)
    if not targets:
        from p2pcommons.errors import UsageError

        raise UsageError("No peer to sync with: pass --peer ADDR, 'p2pc peer add ADDR', or start the node.")
    progress = _Progress() if progress_enabled() else None
    try:
        result = trio.run(
            oneshot_sync, target, identity, targets, want, wait, timeout, progress.update if progress else None
        )
    finally:
        if progress:
            progress.close()
    result["via"] = "oneshot"
    return result


class _Progress:
    """A rich progress bar on stderr (terminals only)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("syncing"),
            BarColumn(),
            TextColumn("{task.fields[entries]}"),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("sync", total=None, entries="")
        self._progress.start()

    def update(self, got: int, total: int, got_bytes: int, total_bytes: int) -> None:
        self._progress.update(
            self._task, completed=got_bytes, total=max(total_bytes, 1), entries=f"{got}/{total} entries"
        )

    def close(self) -> None:
        self._progress.stop()


# --- join by invite -------------------------------------------------------------------------


def join_via_invite(code: str, home: Path | None, as_json: bool, name: str = "") -> None:
    """``p2pc join p2pc1…``: check the code, connect to the inviter, sync the commons,
    write the join entry and push it back, so the inviter's node can admit it."""
    from p2pcommons.author import append
    from p2pcommons.errors import InviteUsedUp, NetworkError
    from p2pcommons.node.invite import decode_invite
    from p2pcommons.node.notify import daemon_running, notify_daemon

    invite = decode_invite(code)
    invite.check_expiry()
    if not invite.addrs:
        from p2pcommons.errors import InvalidInvite

        raise InvalidInvite("The invite carries no address to reach the inviter.")
    identity = identity_of(home)
    say = _waiting_reporter(as_json)
    say("inviter", f"Waiting for the inviter's node at {', '.join(invite.addrs)} to send the commons "
        "(it must be running; up to 30 s)…")
    result = run_sync(home, list(invite.addrs), want=[invite.commons], wait=True, timeout=30, say=say)
    with open_store(home) as store:
        if not store.has_commons(invite.commons):
            raise NetworkError(
                f"Could not fetch the commons from the inviter at {', '.join(invite.addrs)}; is their node running?"
            )
        if invite.nonce is not None and invite.uses:
            used = _uses_of(store, invite.commons, invite.nonce, identity.public_key)
            if used >= invite.uses:
                raise InviteUsedUp(f"This invite was already used {used} time(s) (it allows {invite.uses}).")
        body: dict[str, Any] = {"name": name} if name else {}
        if invite.token is not None:
            body["invite"] = invite.token
        entry = append(store, identity.signer, invite.commons, "join", body)
    from p2pcommons.errors import UsageError
    from p2pcommons.node import peers

    for addr in invite.addrs:  # so this node reconnects to the inviter from now on
        with contextlib.suppress(UsageError):
            peers.add(home_of(home), addr)
    say("push", "Sending your join entry to the inviter so a member's node can admit you…")
    if daemon_running(home_of(home)):
        notify_daemon(home_of(home))
    else:
        run_sync(home, list(invite.addrs), want=[], wait=False, timeout=15)
    data = {"commons": str(invite.commons), "join": str(entry.id), "synced": result["peers"]}
    emit(
        data,
        as_json,
        f"Joined commons {invite.commons} (join entry {entry.id}); you are a member once a member's node admits you.",
    )


def _waiting_reporter(as_json: bool) -> Any:
    """What ``join`` is waiting for, on stderr while it waits (stdout keeps the result):
    a sentence, or with --json one event envelope per line,
    ``{"v": 1, "event": {"waiting_for": …, "message": …}}``."""

    def say(what: str, message: str) -> None:
        emit_event({"waiting_for": what, "message": message}, as_json, message)

    return say


def _uses_of(store: Any, commons: Any, nonce: bytes, me: bytes) -> int:
    count = 0
    for entry in store.iter_entries(commons, kind="join"):
        token = entry.body.get("invite")
        if entry.author != me and isinstance(token, dict) and token.get("nonce") == nonce:
            count += 1
    return count


@command("ui")
def ui_cmd(
    open_browser: Annotated[bool, typer.Option("--open", help="Open the dashboard in a web browser.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the address of this node's dashboard, with its access token (keep it private)."""
    from p2pcommons.errors import NetworkError
    from p2pcommons.node.notify import request
    from p2pcommons.web.auth import read_token

    target = home_of(home)
    status = request(target, {"cmd": "status"})
    token = read_token(target)
    if not status.get("ui") or token is None:
        raise NetworkError("The node serves no dashboard; set [ui] enabled = true in config.toml and restart it.")
    url = f"{status['ui']['url']}?token={token}"
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    emit({"url": url}, as_json, url)
