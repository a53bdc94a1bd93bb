"""Shared plumbing for the examples: three node homes, daemons, invites, convergence, printing.

Every example drives its nodes **only through the ``p2pc`` command line**, as a script or a
person would (``--json`` output parsed), so each one doubles as an end-to-end check of the CLI
and the daemon. This module keeps the plumbing in one place so the six scenarios read as
the commons story they tell:

* :class:`Cluster` makes a temporary directory with one home per person, runs ``p2pc init``
  in each and, on exit (also on error), stops every daemon it started and deletes the
  directory (set ``P2PC_EXAMPLE_KEEP=1`` to keep it for a look).
* :meth:`Node.start` runs ``p2pc node start`` listening on 127.0.0.1 only, on a port the OS
  picks; nothing ever listens on another interface and mDNS stays off.
* :meth:`Cluster.converge` polls ``p2pc state --json`` on every node until all report the same
  ``state_hash`` (and nothing waiting for dependencies), with a deadline; it never sleeps to
  paper over a race. When the deadline passes it raises :class:`ConvergenceError`.
* :meth:`Cluster.show` prints the resulting state as tables (members and roles, rules in
  force, proposals, contributions and their reviews, ledger and distributions, resources,
  sanctions), read from one node with the CLI's ``--json`` output.
* :func:`main` runs a scenario and turns failures into a non-zero exit and one clear line.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import base58
import tomli_w
from rich.console import Console
from rich.table import Table

LISTEN = "/ip4/127.0.0.1/tcp/0"  # loopback only; the OS picks the port
SYNC_INTERVAL = "1"  # seconds between anti-entropy rounds; gossip usually wins anyway
CONVERGE_TIMEOUT = 45.0

console = Console(width=None if sys.stdout.isatty() else 132, highlight=False)


class ExampleError(RuntimeError):
    """A step of the scenario failed (a command, or an outcome the story relies on)."""


class ConvergenceError(ExampleError):
    """The nodes did not reach the same state hash before the deadline."""


def _p2pc_command() -> list[str]:
    """The ``p2pc`` executable: the one installed beside this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("p2pc")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("p2pc")
    if found:
        return [found]
    # Installed package without the console script on PATH: same CLI, same process model.
    return [sys.executable, "-c", "from p2pcommons.cli.app import main; main()"]


P2PC = _p2pc_command()
ENV = {**os.environ, "P2PC_NO_PROGRESS": "1"}


def short(author: str) -> str:
    """A readable short form of an author id (``z6Mk…`` text)."""
    return f"{author[:8]}…{author[-4:]}" if len(author) > 14 else author


class Node:
    """One person's node: a home directory (identity + store) and at most one daemon."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.home = root / name.lower().replace(" ", "-")
        self.pid: int | None = None
        self.may_run = False  # a daemon start was attempted (it may be up even if the start reported no PID)
        self.addr = ""
        self.author = str(self.json("init")["author"])

    def __repr__(self) -> str:
        return f"Node({self.name})"

    def argv(self, *args: str) -> list[str]:
        return [*P2PC, *args, "--home", str(self.home)]

    def run(self, *args: str, check: bool = True, timeout: float = 60, quiet: bool = False
            ) -> subprocess.CompletedProcess[str]:
        """Run ``p2pc ARGS --home HOME``; raise :class:`ExampleError` on a non-zero exit when ``check``."""
        if not quiet:
            shown = " ".join(shlex.quote(a if len(a) < 70 else a[:24] + "…") for a in args if a != "--json")
            console.print(f"  [dim]{self.name:>9} $ p2pc {shown}[/dim]")
        result = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, env=ENV,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise ExampleError(f"{self.name}: p2pc {' '.join(args)} exited {result.returncode}: "
                               f"{_why(result)}")
        return result

    def json(self, *args: str, quiet: bool = False, timeout: float = 60) -> Any:
        """Run a command with ``--json`` and return its result (the envelope's ``data``)."""
        return _data(self.run(*args, "--json", quiet=quiet, timeout=timeout).stdout)

    def json_lines(self, *args: str) -> list[Any]:
        """Run a command whose ``--json`` output is JSON Lines (``p2pc log``)."""
        out = self.run(*args, "--json", quiet=True).stdout
        return [_data(line) for line in out.splitlines() if line.strip()]

    def start(self, *bootstrap: str) -> str:
        """Start this node's daemon in the background on 127.0.0.1; return its address."""
        args = ["node", "start", "--listen", LISTEN, "--sync-interval", SYNC_INTERVAL]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        self.may_run = True
        status = self.json(*args)
        self.pid = int(status["pid"])
        self.addr = str(status["addrs"][0])
        return self.addr

    def stop(self) -> None:
        """Stop the daemon with ``p2pc node stop``; if that fails, signal the PID it reported."""
        if not self.may_run:
            return
        pid, self.pid, self.may_run = self.pid, None, False
        try:
            if self.run("node", "stop", check=False, quiet=True, timeout=30).returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        if pid is None:  # the start never reported a PID; `node stop` found nothing to stop
            return
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def write(self, *args: str) -> dict[str, Any]:
        """Run a command that writes one entry; return its JSON (``id``, ``outcome``…)."""
        data: dict[str, Any] = self.json(*args)
        outcome = data.get("outcome") or {}
        if outcome.get("status") == "rejected":
            console.print(f"  [yellow]{'':>9}   no effect: {outcome.get('reason')}[/yellow]")
        elif outcome.get("status") == "pending":
            console.print(f"  [cyan]{'':>9}   pending: {outcome.get('reason')}[/cyan]")
        return data

    def refused(self, *args: str) -> str:
        """Run a write the rules in force reject: p2pc refuses it before signing (exit code 7,
        nothing stored) and says why; return that reason."""
        result = self.run(*args, check=False)
        if result.returncode != 7:
            raise ExampleError(f"{self.name}: p2pc {' '.join(args)} was expected to be refused (exit 7), "
                               f"exited {result.returncode}: {result.stderr.strip()}")
        reason = result.stderr.strip()
        console.print(f"  [yellow]{'':>9}   {reason}[/yellow]")
        return reason

    def outcome(self, entry: str) -> dict[str, Any]:
        """What the fold on this node says an entry did (``p2pc status``)."""
        data: dict[str, Any] = self.json("status", entry, quiet=True)
        return data


def _parallel(calls: Iterable[Callable[[], Any]]) -> list[Any]:
    calls = list(calls)
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(calls)))) as pool:
        return list(pool.map(lambda call: call(), calls))


class Cluster:
    """Three (or more) nodes in one temporary directory; a context manager that cleans up."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.nodes: list[Node] = []
        self.commons = ""
        self.root = Path(tempfile.mkdtemp(prefix="p2pc-example-"))

    def __enter__(self) -> Cluster:
        try:
            self.nodes = _parallel([lambda n=n: Node(self.root, n) for n in self.names])  # type: ignore[misc]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop every daemon this cluster started, then remove the homes (unless asked to keep them)."""
        for node in self.nodes:
            try:
                node.stop()
            except Exception as exc:  # keep stopping the others
                console.print(f"[red]could not stop {node.name}: {exc}[/red]")
        if os.environ.get("P2PC_EXAMPLE_KEEP"):
            console.print(f"[dim]homes kept in {self.root}[/dim]")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def names_by_author(self) -> dict[str, str]:
        return {n.author: n.name for n in self.nodes}

    def path(self, name: str) -> Path:
        return self.root / name

    # --- founding and joining -------------------------------------------------------------

    def found(self, founder: Node, name: str, *, description: str = "", license: str = "",
              rules: dict[str, Any] | None = None, membership: str | None = None) -> str:
        """``p2pc commons create`` with the rules written to a TOML charter file."""
        args = ["commons", "create", name]
        if description:
            args += ["--description", description]
        if license:
            args += ["--license", license]
        if rules is not None:
            charter = self.root / "charter.toml"
            charter.write_text(tomli_w.dumps(rules), encoding="utf-8")
            console.print(f"  charter ({charter.name}; each table on one line):", style="dim")
            for line in _compact_toml(rules):
                console.print(f"      {line}", style="dim", markup=False)
            args += ["--rules", str(charter)]
        if membership:
            args += ["--membership", membership]
        self.commons = str(founder.json(*args)["commons"])
        return self.commons

    def invite(self, inviter: Node, *newcomers: Node) -> list[dict[str, Any]]:
        """The inviter's daemon prints one single-use invite code per newcomer; they join with
        them (at the same time, as people would)."""
        codes = [str(inviter.json("invite", "create", "--uses", "1", "--expires", "1h")["code"]) for _ in newcomers]
        return _parallel([lambda n=n, c=c: n.json("join", c, "--name", n.name)  # type: ignore[misc]
                          for n, c in zip(newcomers, codes, strict=True)])

    def start(self, *nodes: Node, bootstrap: Node | None = None) -> None:
        """Start several daemons at once, each connecting to ``bootstrap``'s (if given)."""
        via = [bootstrap.addr] if bootstrap is not None else []
        _parallel([lambda n=n: n.start(*via) for n in nodes])  # type: ignore[misc]

    # --- convergence ----------------------------------------------------------------------

    def converge(self, nodes: Sequence[Node] | None = None, *, timeout: float = CONVERGE_TIMEOUT,
                 what: str = "") -> str:
        """Poll ``p2pc state --json`` on every node until all state hashes are equal.

        Equal hashes over the same commons mean equal entry sets folded to equal states (the
        state includes the count of ready entries). Two more conditions rule out a moment of
        equality that is about to end: no node still lacks a dependency (``waiting``), and no
        join is pending (in every scenario here, a member node is about to admit it).
        Bounded by ``timeout`` seconds and a poll count.
        """
        group = list(nodes or self.nodes)
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        started = time.monotonic()
        for _ in range(int(timeout / 0.2) + 2):
            states = _parallel([lambda n=n: n.json("state", "--commons", self.commons, quiet=True)  # type: ignore[misc]
                                for n in group])
            last = {n.name: (s["state_hash"], s["entry_count"], s["waiting_count"] + s["pending_join_count"])
                    for n, s in zip(group, states, strict=True)}
            hashes = {h for h, _, _ in last.values()}
            if len(hashes) == 1 and all(w == 0 for _, _, w in last.values()):
                state_hash = hashes.pop()
                console.print(f"  [green]converged: {len(group)} nodes, state_hash {state_hash[:16]}… "
                              f"({states[0]['entry_count']} entries, {time.monotonic() - started:.1f} s)"
                              + (f" — {what}" if what else "") + "[/green]")
                return str(state_hash)
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        detail = ", ".join(f"{name}: {h[:12]}… ({e} entries, {w} waiting or pending joins)"
                           for name, (h, e, w) in last.items())
        raise ConvergenceError(f"no convergence within {timeout:.0f} s{' (' + what + ')' if what else ''}: {detail}")

    # --- printing -------------------------------------------------------------------------

    def show(self, node: Node, title: str) -> None:
        """Print the commons state as ``node`` folds it, in tables."""
        show_state(node, self.commons, self.names_by_author(), title)

    def counts(self, node: Node) -> dict[str, int]:
        """Contributions accepted / pending / rejected, as ``node`` folds them."""
        counts: dict[str, int] = node.json("state", "--commons", self.commons, quiet=True)["contribution_counts"]
        return counts


def _why(result: subprocess.CompletedProcess[str]) -> str:
    """A failed command's sentence: on stderr, or with --json in the error envelope on stdout."""
    try:
        return str(json.loads(result.stdout)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return result.stderr.strip()


def _data(text: str) -> Any:
    """The ``data`` of a ``--json`` envelope (docs/json.md): ``{"v": 1, "ok": true, "data": …}``."""
    document = json.loads(text)
    if document.get("v") != 1 or document.get("ok") is not True:
        raise RuntimeError(f"unexpected --json output: {text[:300]}")
    return document["data"]


def _compact_toml(rules: dict[str, Any]) -> list[str]:
    """The charter as a reader would write it (one line per key), for display; the file itself
    is written by tomli_w."""
    lines = []
    for section, table in rules.items():
        values = ", ".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
                           for k, v in table.items())
        lines.append(f"[{section}] {values}")
    return lines


def step(text: str) -> None:
    """A narrative line: what the community does next, and why."""
    console.print(f"\n[bold]▸ {text}[/bold]")


def require(condition: bool, message: str) -> None:
    """Check an outcome the scenario relies on (e.g. 'the claim over quota was refused')."""
    if not condition:
        raise ExampleError(message)
    console.print(f"  [green]✓ {message}[/green]")


# --- state printing ---------------------------------------------------------------------------


def _flatten(rules: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in sorted(rules.items()):
        path = f"{prefix}{key}"
        if isinstance(value, dict) and set(value) == {"num", "den"}:
            rows.append((path, f"{value['num']}/{value['den']}"))
        elif isinstance(value, dict):
            rows.extend(_flatten(value, path + "."))
        elif isinstance(value, list):
            rows.append((path, ", ".join(str(v) for v in value)))
        else:
            rows.append((path, str(value).lower() if isinstance(value, bool) else str(value)))
    return rows


def show_state(node: Node, commons: str, names: dict[str, str], title: str) -> None:
    """Read the state with the CLI (``state``, ``members``, ``rules``, ``ledger``, ``resource
    list``, ``log``, ``status``) and print it as tables."""
    def who(author: str) -> str:
        return names.get(author, short(author))

    summary, members, ledger, resources, entries = _parallel([
        lambda: node.json("state", "--commons", commons, quiet=True),
        lambda: node.json("members", "--commons", commons, quiet=True),
        lambda: node.json("ledger", "--commons", commons, quiet=True),
        lambda: node.json("resource", "list", "--commons", commons, quiet=True),
        lambda: node.json_lines("log", "--commons", commons),
    ])
    entries_by_id = {e["id"]: e for e in entries}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_kind.setdefault(entry["kind"], []).append(entry)
    kinds = ("contribution", "review", "sanction", "resource_use", "resource_cancel")
    interesting = [e["id"] for k in kinds for e in by_kind.get(k, [])]
    outcomes = dict(zip(interesting, _parallel([lambda i=i: node.outcome(i) for i in interesting]),  # type: ignore[misc]
                        strict=True))

    console.rule(f"[bold]{title}[/bold] — as {node.name}'s node folds it")
    stable = summary["stable"]
    console.print(f"commons [bold]{summary['name']}[/bold]  {commons}")
    console.print(f"state_hash {summary['state_hash']}   entries {summary['entry_count']} "
                  f"({stable['stable_entry_count']} stable, {stable['tentative_entry_count']} tentative)")

    table = Table(title="Members and roles", title_justify="left", min_width=48)
    for col in ("name", "author", "roles", "status", "warnings"):
        table.add_column(col)
    for m in members["members"]:
        table.add_row(m["name"] or who(m["author"]), short(m["author"]), ", ".join(m["roles"]), m["status"],
                      str(m["warning_count"]))
    console.print(table)

    table = Table(title="Rules in force", title_justify="left", min_width=48)
    table.add_column("rule")
    table.add_column("value")
    for key, value in _flatten(summary["rules"]):
        table.add_row(key, value)
    console.print(table)

    if summary["proposals"]:
        table = Table(title="Proposals", title_justify="left", min_width=48)
        for col in ("title", "by", "decides", "yes", "no", "status"):
            table.add_column(col)
        for p in summary["proposals"].values():
            action = p.get("action")
            changes = ", ".join(f"{k} = {v}" for k, v in p["changes"].items()) if action is None else \
                " ".join(f"{k}={v}" for k, v in action.items() if k != "member")
            table.add_row(p["title"], who(p["author"]), changes, str(p["yes_count"]), str(p["no_count"]), p["status"])
        console.print(table)

    reviews: dict[str, list[str]] = {}
    for r in by_kind.get("review", []):
        status = outcomes[r["id"]]["status"]
        value = f" value {r['body']['value']}" if "value" in r["body"] else ""
        mark = "" if status == "applied" else f" ({status})"
        reviews.setdefault(r["body"]["contribution"], []).append(
            f"{r['body']['verdict']} by {who(r['author'])}{value}{mark}")
    if by_kind.get("contribution"):
        c = summary["contribution_counts"]
        table = Table(title=f"Contributions — {c['accepted']} accepted, {c['pending']} pending, "
                            f"{c['rejected']} rejected", title_justify="left", min_width=48)
        weights = summary["rules"].get("values", {})
        for col in ("title", "by", "kind", "weight", "claimed", "ref", "entry", "reviews (applied unless noted)"):
            table.add_column(col)
        for e in by_kind["contribution"]:
            body = e["body"]
            outcome = outcomes[e["id"]]
            # An outsider's contribution is pending until reviewed, then "Accepted/Rejected by review."
            outside = outcome["status"] == "pending" or outcome["reason"].endswith("by review.")
            by = who(e["author"]) + (" (outside)" if outside else "")
            ref = _describe_ref(body.get("ref", ""), entries_by_id, who)
            kind = body.get("kind", "work")
            weight = f"{weights.get(kind, weights.get('default', 100))} %"
            table.add_row(body.get("title", ""), by, kind, weight, str(body.get("value", 1)),
                          ref, e["id"][-8:],
                          "; ".join(reviews.get(e["id"], [])) or "—")
        console.print(table)

    if ledger["ledger"]:
        table = Table(title="Contribution ledger", title_justify="left", min_width=48)
        for col in ("contributor", "accepted", "value", "share"):
            table.add_column(col)
        for row in sorted(ledger["ledger"], key=lambda row: -row["value"]):
            table.add_row(row["name"] or who(row["author"]), str(row["accepted_count"]), str(row["value"]),
                          f"{row['share_percent']:.2f} %")
        console.print(table)
    for d in ledger["distributions"]:
        table = Table(title=f"Distribution of {d['amount']} {d['currency']}", title_justify="left", min_width=48)
        table.add_column("to")
        table.add_column("share")
        for author, amount in sorted(d["shares"].items(), key=lambda kv: -kv[1]):
            table.add_row(who(author), str(amount))
        console.print(table)

    if resources["resources"]:
        table = Table(title="Resources", title_justify="left", min_width=48)
        for col in ("name", "kind", "quota", "use so far"):
            table.add_column(col)
        for r in resources["resources"]:
            kind = "rivalrous" if r["rivalrous"] else "non-rivalrous"
            quota = (f"{r['quota']} {r['unit']} per member per {_period(r['period'])}" if r["rivalrous"] else "—")
            if r.get("capacity"):  # a capacity for the whole commons (a workshop's seats, a forest's cut)
                quota = (f"{r['quota']} {r['unit']} per member, " if r["quota"] else "") + \
                    f"{r['capacity']} {r['unit']} for the whole commons, per {_period(r['period'])}"
            table.add_row(r["name"], kind, quota, _use(r, who))
        console.print(table)

    if by_kind.get("resource_use"):
        names_of = {r["id"]: r["name"] for r in resources["resources"]}
        table = Table(title="Resource use claims", title_justify="left", min_width=48)
        for col in ("by", "resource", "amount", "note", "outcome"):
            table.add_column(col)
        cancelled = {e["body"]["use"] for e in by_kind.get("resource_cancel", [])
                     if outcomes[e["id"]]["status"] == "applied"}
        for e in by_kind["resource_use"]:
            outcome = dict(outcomes[e["id"]])
            if e["id"] in cancelled:
                outcome["status"] += ", then cancelled"
            unit = next((r["unit"] for r in resources["resources"] if r["id"] == e["body"]["resource"]), "")
            table.add_row(who(e["author"]), names_of.get(e["body"]["resource"], e["body"]["resource"][-8:]),
                          f"{e['body']['amount']} {unit}", e["body"].get("note", ""),
                          outcome["status"] + (f": {outcome['reason']}" if outcome["status"] == "rejected" else ""))
        console.print(table)

    if by_kind.get("sanction"):
        table = Table(title="Sanctions", title_justify="left", min_width=48)
        for col in ("member", "action", "reason", "by", "outcome"):
            table.add_column(col)
        for e in by_kind["sanction"]:
            target = e["body"]["member"]
            table.add_row(who(author_of_key(target)), e["body"]["action"], e["body"].get("reason", ""),
                          who(e["author"]), outcomes[e["id"]]["status"])
        console.print(table)


def _describe_ref(ref: str, entries_by_id: dict[str, dict[str, Any]], who: Callable[[str], str]) -> str:
    """A contribution's ``ref``: an entry of this commons is shown as what it is (a design
    resource, another contribution and its author); anything else (a URI) is shortened."""
    target = entries_by_id.get(ref)
    if target is None:
        return ref if len(ref) <= 28 else ref[:27] + "…"
    if target["kind"] == "resource_add":
        return f"resource: {target['body'].get('name', '')}"
    if target["kind"] == "contribution":
        return f"→ {target['body'].get('title', '')} ({who(target['author'])})"
    return f"{target['kind']} {ref[-8:]}"


def _period(seconds: int) -> str:
    if not seconds:
        return "lifetime"
    days = seconds / 86400
    return f"{days:g} days" if days >= 1 else f"{seconds} s"


def _use(resource: dict[str, Any], who: Callable[[str], str]) -> str:
    """``used`` is the current period's use per author (``p2pc resource list``)."""
    used = resource.get("used") or {}
    return "; ".join(f"{who(author)} {amount} {resource['unit']}" for author, amount in sorted(used.items())) or "—"


def author_of_key(key_hex: str) -> str:
    """Entry bodies name members by raw key (hex in ``p2pc log --json``); the CLI shows author
    ids as did:key text (``z`` + base58btc of the multicodec ed25519-pub prefix + key)."""
    return "z" + base58.b58encode(b"\xed\x01" + bytes.fromhex(key_hex)).decode()


# --- running a scenario ---------------------------------------------------------------------


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(title: str, names: Sequence[str], scenario: Callable[[Cluster], Node]) -> int:
    """Run ``scenario`` on a fresh :class:`Cluster`, wait for every node to converge, print the
    state as the node ``scenario`` returns folds it; return the exit code (0: converged)."""
    started = time.monotonic()
    console.rule(f"[bold]{title}[/bold]")
    # A polite kill (e.g. a CI timeout) unwinds through the cluster's cleanup like Ctrl-C does:
    # the daemons run in their own sessions and would outlive this process otherwise.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with Cluster(names) as cluster:
            reader = scenario(cluster)
            final = cluster.converge(what="final state")
            cluster.show(reader, title)
            console.print(f"\nconverged: {len(cluster.nodes)} nodes, state_hash {final} "
                          f"in {time.monotonic() - started:.1f} s")
    except ConvergenceError as exc:
        console.print(f"[red]NOT converged: {exc}[/red]")
        return 1
    except ExampleError as exc:
        console.print(f"[red]example failed: {exc}[/red]")
        return 1
    except Exception:
        console.print(f"[red]example crashed:\n{traceback.format_exc()}[/red]")
        return 1
    return 0
