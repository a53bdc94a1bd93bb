"""Commands that work on this node's files alone: identity, commons, contributions, the
log, bundles and verification.  None of them touch the network or import libp2p."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from .app import (
    MAX_AMOUNT,
    ForceOption,
    HomeOption,
    JsonOption,
    app,
    command,
    emit,
    fail,
    home_of,
    identity_of,
    open_store,
    progress_enabled,
    resolve_commons,
)
from .render import entry_json

commons_app = typer.Typer(help="Create and inspect commons.", no_args_is_help=True)
app.add_typer(commons_app, name="commons")


@command("init")
def init(
    home: HomeOption = None,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Encrypt the key with a passphrase (asked for, or P2PC_PASSPHRASE).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create this node's identity (an Ed25519 key) and its home directory."""
    import os

    from p2pcommons.home import PASSPHRASE_ENV
    from p2pcommons.identity import create_identity
    from p2pcommons.store import Store

    target = home_of(home)
    secret = None
    if passphrase:
        secret = os.environ.get(PASSPHRASE_ENV)
        if not secret:
            if not sys.stdin.isatty():
                raise fail(f"--passphrase needs a terminal to ask on, or {PASSPHRASE_ENV} set.", 2)
            secret = typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    identity = create_identity(target, secret)
    Store(target.store_file).close()
    data = {
        "home": str(target.path),
        "author_id": identity.author_id,
        "peer_id": identity.peer_id,
        "encrypted": bool(secret),
    }
    emit(data, as_json, f"Created identity {identity.author_id}\n  peer id: {identity.peer_id}\n"
                        f"  home:    {target.path}")


@command("id")
def show_id(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print this node's author id and the libp2p peer id derived from the same key."""
    identity = identity_of(home)
    data = {"author_id": identity.author_id, "peer_id": identity.peer_id, "home": str(home_of(home).path)}
    emit(data, as_json, f"author id: {identity.author_id}\npeer id:   {identity.peer_id}")




@command("create", app=commons_app)
def commons_create(
    name: Annotated[str, typer.Argument(help="The commons' name.")],
    description: Annotated[str, typer.Option("--description", "-d", help="What the commons is.")] = "",
    license: Annotated[str, typer.Option("--license", "-l", help="License of the shared resource.")] = "",
    rules: Annotated[
        Path | None, typer.Option("--rules", help="Initial rules as a TOML file (see docs/rules.md).", exists=True)
    ] = None,
    membership: Annotated[
        str | None, typer.Option("--membership", help="Membership policy: open, invite or approval.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Found a new commons; prints its id (the genesis entry's id)."""
    from p2pcommons.author import create_commons
    from p2pcommons.state import genesis_body

    rules_doc = _read_toml(rules) if rules else None
    identity = identity_of(home)
    body = genesis_body(
        name=name, description=description, license=license, rules=rules_doc, membership=membership,
        founders=[identity.public_key],
    )
    with open_store(home) as store:
        entry = create_commons(store, identity.signer, body)
    _after_local_write(home)
    emit({"commons": str(entry.id), "name": name}, as_json, str(entry.id))


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    from p2pcommons.errors import UsageError

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"Cannot read rules from {path} ({exc}).") from None


@command("list", app=commons_app)
def commons_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the commons this node holds."""
    with open_store(home, reader=True) as store:
        rows = [
            {"commons": str(c.id), "name": c.name, "entries": c.entries, "authors": c.authors, "created": c.created}
            for c in store.commons_list()
        ]

    def human() -> None:
        if not rows:
            print("No commons yet. Create one with 'p2pc commons create NAME' or import a bundle.")
        for row in rows:
            print(f"{row['commons']}  {row['name']}  ({row['entries']} entries, {row['authors']} authors)")

    emit(rows, as_json, human)


@command("show", app=commons_app)
def commons_show(
    commons: Annotated[str | None, typer.Argument(help="Commons id, id prefix or name.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a commons' founding details, authors and heads."""
    from p2pcommons.identity import author_id_text

    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        genesis = store.get(cid)
        assert genesis is not None
        heads = store.heads(cid)
        forks = store.forks(cid)
        data = {
            "commons": str(cid),
            "name": genesis.body.get("name", ""),
            "description": genesis.body.get("description", ""),
            "license": genesis.body.get("license", ""),
            "founder": author_id_text(genesis.author),
            "created": genesis.time,
            "entries": store.count(cid),
            "heads": [{"author": author_id_text(h.author), "seq": h.seq, "id": str(h.id)} for h in heads],
            "forks": [
                {"author": author_id_text(f.author), "seq": f.seq, "ids": [str(i) for i in f.ids]} for f in forks
            ],
        }

    def human() -> None:
        print(f"{data['name']}  ({data['commons']})")
        if data["description"]:
            print(f"  {data['description']}")
        print(f"  license: {data['license'] or '-'}   founder: {data['founder']}")
        print(f"  {data['entries']} entries from {len(heads)} authors")
        for fork in data["forks"]:
            print(f"  FORK: {fork['author']} at seq {fork['seq']}")

    emit(data, as_json, human)


@command("contribute")
def contribute(
    title: Annotated[str, typer.Option("--title", "-t", help="What you contributed.")],
    commons: Annotated[str | None, typer.Option("--commons", "-c", help="Commons id, prefix or name.")] = None,
    kind: Annotated[
        str, typer.Option("--kind", "-k", help="Kind of contribution (weights per kind are in the rules).")
    ] = "work",
    value: Annotated[
        int, typer.Option("--value", "-v", help="Claimed value, in whole units.", min=0, max=MAX_AMOUNT)
    ] = 1,
    ref: Annotated[str | None, typer.Option("--ref", help="A URI or hash referencing the work itself.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Record a contribution (no permission needed; reviewers accept it afterwards). Prints the entry id."""
    from p2pcommons.author import append

    identity = identity_of(home)
    body: dict[str, Any] = {"title": title, "kind": kind, "value": value}
    if ref:
        body["ref"] = ref
    with open_store(home) as store:
        cid = resolve_commons(store, commons)
        entry = append(store, identity.signer, cid, "contribution", body, force=force)
    _after_local_write(home)
    emit({"id": str(entry.id), "commons": str(cid), "seq": entry.seq}, as_json, str(entry.id))


@command("log")
def log(
    commons: Annotated[str | None, typer.Option("--commons", "-c", help="Only this commons.")] = None,
    author: Annotated[str | None, typer.Option("--author", "-a", help="Only this author (z6Mk… id).")] = None,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only entries of this kind.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stored entries in arrival order (JSON Lines with --json)."""
    from p2pcommons.identity import author_id_text, parse_author_id

    author_key = parse_author_id(author) if author else None
    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons) if commons else None
        for entry in store.iter_entries(cid, author=author_key, kind=kind):
            if as_json:
                emit(entry_json(entry), True)
            else:
                title = entry.body.get("title") or entry.body.get("name") or ""
                print(f"{entry.id}  {author_id_text(entry.author)[:14]}…  #{entry.seq:<4} {entry.kind:<14} {title}")


@command("export")
def export(
    commons: Annotated[str | None, typer.Option("--commons", "-c", help="Commons id, prefix or name.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Bundle file to write ('-' for stdout).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a commons to a self-verifying bundle file, to carry to another machine."""
    import os

    from p2pcommons.bundle import write_bundle

    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        if output is None:
            output = Path("-") if not sys.stdout.isatty() else Path(f"{str(cid)[-12:]}.p2pcbundle")
        now = int(time.time() * 1000)
        if str(output) == "-":
            header = write_bundle(store, cid, sys.stdout.buffer, created=now)
            sys.stdout.buffer.flush()
            return
        tmp = output.with_name(output.name + ".partial")
        with open(tmp, "wb") as out:
            header = write_bundle(store, cid, out, created=now)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, output)
    data = {"commons": str(cid), "file": str(output), "entries": header.entries, "bytes": output.stat().st_size}
    emit(data, as_json, f"Wrote {header.entries} entries to {output}")


@command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Bundle file ('-' for stdin).", allow_dash=True)],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a bundle: every entry is validated; a damaged bundle changes nothing."""
    from p2pcommons.bundle import import_bundle
    from p2pcommons.errors import UsageError

    try:
        source = _spooled_stdin(home) if str(file) == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"Cannot open {file} ({exc.strerror}).") from None
    with source, open_store(home) as store:
        if progress_enabled():
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("importing", total=None)

                def on_progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                header, report = import_bundle(store, source, on_progress=on_progress)
        else:
            header, report = import_bundle(store, source)
    _after_local_write(home, commons=header.commons)
    data = {
        "commons": str(header.commons),
        "entries": header.entries,
        "added": report.added_count,
        "duplicates": report.duplicates,
        "forks": len(report.forks),
        "deferred": report.deferred,
    }
    later = (f"; {report.deferred} dated more than five minutes ahead of this node's clock were not taken "
             "yet (import again later)") if report.deferred else ""
    emit(data, as_json, f"Imported {report.added_count} new entries ({report.duplicates} already held) "
                        f"into commons {header.commons}{later}")


@command("verify")
def verify(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Re-check every stored entry: encoding, signature, chain links; and the derived state."""
    from p2pcommons.errors import StoreCorrupt
    from p2pcommons.verify import verify_store

    with open_store(home, reader=True) as store:
        report = verify_store(store)
    data = report.as_dict()
    emit(data, as_json, report.summary())
    if not report.ok:
        raise fail(f"The store failed verification: {report.problems[0]}", StoreCorrupt.exit_code)


def _spooled_stdin(home: Path | None) -> BinaryIO:
    """Standard input copied to an unnamed temporary file in the home, then rewound.

    The import is one transaction (all or nothing), and it holds the store's write lock
    while it runs: reading a slow pipe inside it would keep the daemon and every other
    writer waiting (and failing after the busy timeout).  Reading the input first makes
    the locked part as fast as importing a file; memory stays bounded (the copy is on disk).
    """
    import shutil
    import tempfile

    target = home_of(home).path
    spool = tempfile.TemporaryFile(dir=target if target.is_dir() else None)  # noqa: SIM115
    try:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _after_local_write(home: Path | None, commons: Any = None) -> None:
    """Tell a running daemon (if any) that the store changed, so peers hear within a second."""
    try:
        from p2pcommons.node.notify import notify_daemon
    except ImportError:
        return
    notify_daemon(home_of(home))
