"""Starting a node: the checks before it runs, and the background daemon's entry point.

Why a module of its own: ``p2pc node start`` runs the daemon as a child process, which used
to be the CLI again (``p2pc node start --foreground``), so every daemon carried typer and the
pydantic it validates options with (18 MB resident, about half a second of start-up) for
its whole life, to parse an argument list the CLI had just written itself.  The child now
runs ``python -m p2pcommons.node.launch`` with the same arguments: a small parser of its own
(:func:`parse_args`: argparse and the gettext it loads would stay resident for the daemon's
life, 0.3 MB, to read a command line :func:`child_args` wrote), the same
checks (:func:`prepare`) and the same run (:func:`run_foreground`) as the foreground command.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import SimpleNamespace
from typing import Any

from p2pcommons.errors import P2PCError, UsageError
from p2pcommons.home import Home


def prepare(target: Home, secret: str | None, listen: list[str]) -> tuple[Any, list[str]]:
    """What must hold before a node runs, each failing with its one sentence: the identity
    opens (with ``secret`` if the key is encrypted), no node runs for this home, the listen
    addresses (the port kept in config.toml) are free.  Returns the identity and addresses."""
    from p2pcommons.identity import load_identity
    from p2pcommons.node import addressing
    from p2pcommons.node.lock import running_pid

    identity = load_identity(target, secret)  # fails early (no identity, wrong passphrase)
    pid = running_pid(target)
    if pid is not None:
        from p2pcommons.errors import DaemonRunning

        raise DaemonRunning(f"A node is already running for {target.path} (PID {pid}).")
    from p2pcommons.settings import unknown_warning

    warning = unknown_warning(target.config(), target.config_file)
    if warning:  # on the terminal (and, from the detached daemon, in node.log)
        print(f"p2pc: warning: {warning}", file=sys.stderr)
    # the port is chosen at the first start and kept in config.toml ([network] port);
    # a port another program or node holds fails here: one sentence, exit code 6
    listen_addrs = addressing.listen_addresses(target, listen)
    addressing.probe_listen(listen_addrs)
    return identity, listen_addrs


def run_foreground(target: Home, identity: Any, listen_addrs: list[str], *, bootstrap: list[str], mdns: bool,
                   dht: bool, ingest_process: bool, sync_interval: float, stall_timeout: float, verbose: int,
                   log_json: bool) -> None:
    """Run the node in this process until it is stopped (flags and config.toml merged here)."""
    import trio

    from p2pcommons.node.daemon import NodeConfig, configured_peers, serve
    from p2pcommons.node.logsetup import setup_logging
    from p2pcommons.node.reach import RelaySettings

    config = target.config().get("network", {})
    ui_config = target.config().get("ui", {})
    setup_logging(verbose, log_json)
    node_config = NodeConfig(
        home=target,
        listen=listen_addrs,
        bootstrap=configured_peers(target, bootstrap),
        mdns=mdns or bool(config.get("mdns", False)),
        dht=dht or bool(config.get("dht", False)),
        ingest_process=ingest_process and bool(config.get("ingest_process", True)),
        sync_interval=sync_interval,
        stall_timeout=stall_timeout,
        relay=RelaySettings.from_config(config),
        ui=bool(ui_config.get("enabled", True)),
        ui_port=int(ui_config.get("port", 4080)),
    )
    trio.run(serve, node_config, identity)


def child_args(target: Home, listen_addrs: list[str], *, bootstrap: list[str], mdns: bool, dht: bool,
               ingest_process: bool, sync_interval: float, stall_timeout: float, verbose: int,
               log_json: bool) -> list[str]:
    """The command line of a background daemon (read back by :func:`main`)."""
    args = [sys.executable, "-m", "p2pcommons.node.launch", "--home", str(target.path),
            "--sync-interval", str(sync_interval), "--stall-timeout", str(stall_timeout)]
    for addr in listen_addrs:
        args += ["--listen", addr]
    for addr in bootstrap:
        args += ["--bootstrap", addr]
    args += ["--mdns"] if mdns else []
    args += ["--dht"] if dht else []
    args += [] if ingest_process else ["--no-ingest-process"]
    return args + ["-v"] * verbose + (["--log-json"] if log_json else [])


#: option -> (field, kind): "value" takes the next argument (or ``--opt=value``), "append"
#: collects every one, "flag" is a switch, "count" counts its repetitions (``-v``)
OPTIONS: dict[str, tuple[str, str]] = {
    "--home": ("home", "value"), "--sync-interval": ("sync_interval", "value"),
    "--stall-timeout": ("stall_timeout", "value"), "--listen": ("listen", "append"),
    "--bootstrap": ("bootstrap", "append"), "--mdns": ("mdns", "flag"), "--dht": ("dht", "flag"),
    "--no-ingest-process": ("no_ingest_process", "flag"), "-v": ("verbose", "count"),
    "--verbose": ("verbose", "count"), "--log-json": ("log_json", "flag"),
}
#: the float options and their defaults
FLOATS = {"sync_interval": 30.0, "stall_timeout": 20.0}


def parse_args(argv: list[str]) -> SimpleNamespace:
    """The options of :func:`child_args` (what argparse would read from them); anything else
    is a :class:`~p2pcommons.errors.UsageError`."""
    values: dict[str, Any] = {"home": None, "listen": [], "bootstrap": [], "mdns": False, "dht": False,
                              "no_ingest_process": False, "verbose": 0, "log_json": False, **FLOATS}
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 and set(arg[1:]) == {"v"}:
            values["verbose"] += len(arg) - 1  # -vv
            continue
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        field, kind = OPTIONS.get(name, ("", ""))
        if not field:
            raise UsageError(f"Unknown launcher argument {arg!r}.")
        if kind in ("flag", "count"):
            if eq:
                raise UsageError(f"{name} takes no value.")
            values[field] = True if kind == "flag" else values[field] + 1
            continue
        if not eq and not rest:
            raise UsageError(f"{name} needs a value.")
        value = inline if eq else rest.pop(0)
        if kind == "append":
            values[field].append(value)
        elif field in FLOATS:
            try:
                values[field] = float(value)
            except ValueError:
                raise UsageError(f"{name} needs a number, not {value!r}.") from None
        else:
            values[field] = value
    if values["home"] is None:
        raise UsageError("The launcher needs --home.")
    return SimpleNamespace(**values)


def main(argv: list[str] | None = None) -> int:
    """The background daemon: the arguments :func:`child_args` wrote; the passphrase, if
    any, in ``P2PC_PASSPHRASE``.  A refusal ends with ``p2pc: <sentence>`` on stderr (the
    node's log), which ``p2pc node start`` reports, and the documented exit code."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"p2pc: {exc}", file=sys.stderr)
        return exc.exit_code
    from p2pcommons.home import PASSPHRASE_ENV, resolve_home

    try:
        target = Home(resolve_home(args.home))
        identity, listen_addrs = prepare(target, os.environ.get(PASSPHRASE_ENV) or None, args.listen)
        run_foreground(target, identity, listen_addrs, bootstrap=args.bootstrap, mdns=args.mdns, dht=args.dht,
                       ingest_process=not args.no_ingest_process, sync_interval=args.sync_interval,
                       stall_timeout=args.stall_timeout, verbose=args.verbose, log_json=args.log_json)
    except KeyboardInterrupt:
        return 130
    except (Exception, BaseExceptionGroup) as exc:
        known = exc if isinstance(exc, P2PCError) else _known_failure(exc)
        if known is None:
            traceback.print_exc()  # a bug: the traceback in node.log, for the report
            print(f"p2pc: Unexpected error ({type(exc).__name__}); please report it.", file=sys.stderr)
            return 1
        print(f"p2pc: {known}", file=sys.stderr)
        return known.exit_code
    return 0


def _known_failure(exc: BaseException) -> P2PCError | None:
    """The CLI's reading of an OS, SQLite or task-group failure (loaded only on failure)."""
    from p2pcommons.cli.app import _known_failure as known_failure

    return known_failure(exc)


if __name__ == "__main__":
    sys.exit(main())
