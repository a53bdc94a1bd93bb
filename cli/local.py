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
    ambiguous,
    app,
    command,
    emit,
    fail_with,
    home_of,
    human_time,
    id_matches,
    identity_of,
    open_store,
    progress_enabled,
    resolve_commons,
    short_id,
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
                from p2pcommons.errors import UsageError

                raise UsageError(f"--passphrase needs a terminal to ask on, or {PASSPHRASE_ENV} set.")
            secret = typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    identity = create_identity(target, secret)
    Store(target.store_file).close()
    data = {
        "home": str(target.path),
        "author": identity.author_id,
        "peer_id": identity.peer_id,
        "encrypted": bool(secret),
    }
    emit(data, as_json, f"Created identity {identity.author_id}\n  peer id: {identity.peer_id}\n"
                        f"  home:    {target.path}")


@command("id")
def show_id(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print this node's author id and the libp2p peer id derived from the same key."""
    identity = identity_of(home)
    data = {"author": identity.author_id, "peer_id": identity.peer_id, "home": str(home_of(home).path)}
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
        # The genesis' fold, persisted: the query tables then exist from the start, so the
        # hot commands (contribute, state, members, contributions) answer from them without
        # loading the fold's package, which is most of their start-up (issue 18).
        from p2pcommons.state.engine import current_state

        current_state(store, entry.id, persist=True)
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
            {"commons": str(c.id), "name": c.name, "entry_count": c.entries, "author_count": c.authors,
             "created": c.created}
            for c in store.commons_list()
        ]

    def human() -> None:
        if not rows:
            print("No commons yet. Create one with 'p2pc commons create NAME' or import a bundle.")
        for row in rows:
            print(f"{short_id(row['commons'])}  {row['name']}  ({row['entry_count']} entries, "
                  f"{row['author_count']} authors)")

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
            "entry_count": store.count(cid),
            "heads": [{"author": author_id_text(h.author), "seq": h.seq, "id": str(h.id)} for h in heads],
            "forks": [
                {"author": author_id_text(f.author), "seq": f.seq, "ids": [str(i) for i in f.ids]} for f in forks
            ],
        }

    def human() -> None:
        print(f"{data['name']}  ({short_id(data['commons'])})")
        if data["description"]:
            print(f"  {data['description']}")
        print(f"  license: {data['license'] or '-'}   founder: {short_id(data['founder'])}")
        print(f"  {data['entry_count']} entries from {len(heads)} authors")
        for fork in data["forks"]:
            print(f"  FORK: {short_id(fork['author'])} at seq {fork['seq']}")

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
    derives_from: Annotated[
        list[str] | None,
        typer.Option("--derives-from", "-d", metavar="CONTRIBUTION",
                     help="An earlier contribution this one derives from (id or prefix; repeatable): it gets a "
                          "share of this one's value as the rules' equation.reference_share says."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Record a contribution (no permission needed; reviewers accept it afterwards). Prints the entry id."""
    from .hot import contribute as run

    run(title=title, commons=commons, kind=kind, value=value, ref=ref, derives_from=derives_from, home=home,
        as_json=as_json, force=force)


@command("log")
def log(
    commons: Annotated[str | None, typer.Option("--commons", "-c", help="Only this commons.")] = None,
    author: Annotated[
        str | None, typer.Option("--author", "-a", help="Only this author (author id, unique prefix, or member name).")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only entries of this kind.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stored entries in arrival order, with their time and author (JSON Lines with --json)."""
    from p2pcommons.identity import author_id_text

    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons) if commons else None
        held = [cid] if cid is not None else [c.id for c in store.commons_list()]
        names = {} if as_json and author is None else _member_names(store, held)
        author_key = _resolve_author(store, held, names, author) if author else None
        for entry in store.iter_entries(cid, author=author_key, kind=kind):
            if as_json:
                emit(entry_json(entry), True)
                continue
            title = entry.body.get("title") or entry.body.get("name") or ""
            who = names.get(entry.author) or short_id(author_id_text(entry.author))
            print(f"{short_id(entry.id)}  {human_time(entry.time)}  {who:<12}  #{entry.seq:<4} "
                  f"{entry.kind:<14} {title}")


def _member_names(store: Any, commons_ids: list[Any]) -> dict[bytes, str]:
    """Author key → the name they gave when joining (or founding), over the given commons."""
    from p2pcommons.state.engine import current_state

    names: dict[bytes, str] = {}
    for commons in commons_ids:
        for hex_key, info in current_state(store, commons).members.items():
            if info.get("name"):
                names.setdefault(bytes.fromhex(hex_key), str(info["name"]))
    return names


def _resolve_author(store: Any, commons_ids: list[Any], names: dict[bytes, str], text: str) -> bytes:
    """An author of these commons by author id, unique prefix (of the id or its short form)
    or member name: ``--author`` takes what the listings show."""
    from p2pcommons.errors import NotFound
    from p2pcommons.identity import author_id_text

    authors = {head.author for commons in commons_ids for head in store.heads(commons)}
    exact = [a for a in authors if text in (author_id_text(a), names.get(a))]
    matches = exact or [a for a in authors if id_matches(author_id_text(a), text)]
    if len(matches) == 1:
        return bytes(matches[0])
    if not matches:
        raise NotFound(f"No author '{text}' in {'this commons' if len(commons_ids) == 1 else 'the commons held'}.")
    raise ambiguous(text, len(matches), "authors")


@command("export")
def export(
    file: Annotated[Path | None, typer.Argument(
        help="File to write: the same as -o FILE.",
        allow_dash=True, show_default=False)] = None,
    commons: Annotated[str | None, typer.Option("--commons", "-c", help="Commons id, prefix or name.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "--out", "-o", help="Bundle file to write ('-' for stdout); "
                                  "with --format csv, a directory.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="bundle (entries, for another node), valueflows "
                                     "(the books as ValueFlows JSON-LD) or csv (the books as CSV tables).")
                   ] = "bundle",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a commons to a self-verifying bundle file, to carry to another machine; or, with
    --format valueflows|csv, its books (pools, movements, distributions, contributions)."""
    import os

    if file is not None:
        if output is not None and output != file:
            from p2pcommons.errors import UsageError

            raise UsageError(f"Two places to write to ({file} and -o {output}): give one.")
        output = file
    if fmt != "bundle":
        from .books import export_books

        export_books(home, commons, fmt, output, as_json)
        return

    from p2pcommons.bundle import write_bundle

    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        if output is None:  # piped: the bundle itself goes to stdout, unless stdout is for --json
            output = Path("-") if not sys.stdout.isatty() and not as_json else Path(f"{str(cid)[-12:]}.p2pcbundle")
        if str(output) == "-" and as_json:
            from p2pcommons.errors import UsageError

            raise UsageError("With --json, stdout carries the result: write the bundle to a file with -o FILE.")
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
    data = {"commons": str(cid), "file": str(output), "entry_count": header.entries,
            "byte_count": output.stat().st_size}
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
        "entry_count": header.entries,
        "added_count": report.added_count,
        "duplicate_count": report.duplicates,
        "fork_count": len(report.forks),
        "deferred_count": report.deferred,
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
    data = {
        "passed": report.ok,
        "entry_count": report.entries,
        "commons_count": report.commons,
        "fork_count": report.forks,
        "problems": report.problems,
        "state_hashes": report.states,
    }
    if not report.ok:
        raise fail_with(StoreCorrupt(f"The store failed verification: {report.problems[0]}"), data, as_json,
                        report.summary())
    emit(data, as_json, report.summary())


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
    from .hot import after_local_write

    after_local_write(home)
