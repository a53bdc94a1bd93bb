"""Devices: one member on several machines, each with its own key (protocols/commons.md §1.2).

``p2pc device add`` on the new machine prints its link code (its key; no private key ever
leaves a machine); ``p2pc device accept CODE`` on a machine that already is the member writes
the signed binding; ``p2pc device list`` and ``p2pc device revoke`` manage them.
``p2pc restore`` puts a backed-up key and bundles back, marked so that the home signs nothing
before it knows its own latest entries (``p2pcommons.ownlog``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import HomeOption, JsonOption, app, command, emit, home_of, identity_of, open_store, resolve_commons
from .governance import CommonsOption, _author_text, _state, _write

device_app = typer.Typer(help="One member, several devices: link, list and revoke device keys.",
                         no_args_is_help=True)
app.add_typer(device_app, name="device")

_CODE_PREFIX = "p2pc-device-"


def link_code(key: bytes) -> str:
    """A device's link code: its public key and a 2-byte checksum (typos are caught), base32."""
    raw = key + hashlib.sha256(b"p2pc device" + key).digest()[:2]
    return _CODE_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


def parse_code(text: str) -> bytes:
    """A link code (or a device's author id, z6Mk…) to the device's key."""
    from p2pcommons.errors import UsageError
    from p2pcommons.identity import parse_author_id

    text = text.strip()
    if text.startswith("z"):
        return parse_author_id(text)
    body = text.removeprefix(_CODE_PREFIX).upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raw = b""
    if len(raw) != 34 or link_code(raw[:32]) != _CODE_PREFIX + body.lower():
        raise UsageError(f"'{text}' is not a device link code (copy it again from `p2pc device add`).")
    return raw[:32]


@command("add", app=device_app)
def device_add(
    new_key: Annotated[bool, typer.Option("--new-key", help="Make this home a fresh device: a new key (the "
                                          "old key file is kept beside it, renamed).")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print this machine's link code, to accept on a machine that already is the member."""
    from p2pcommons import ownlog
    from p2pcommons.identity import create_identity

    target = home_of(home)
    retired = None
    if new_key:
        old = identity_of(home)
        retired = target.key_dir / f"identity-{old.public_key.hex()[:12]}.json"
        target.key_file.rename(retired)
        create_identity(target)
        ownlog.set_restored(target.path, False)  # the new key has no log to fork
    identity = identity_of(home)
    code = link_code(identity.public_key)
    data = {"code": code, "author": identity.author_id, "retired_key_file": str(retired) if retired else None}
    emit(data, as_json, f"Link code: {code}\n  on a machine that already is the member, run: "
                        f"p2pc device accept {code}\n  then sync this machine with it.")


@command("accept", app=device_app)
def device_accept(
    code: Annotated[str, typer.Argument(help="The link code `p2pc device add` printed on the new machine.")],
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bind the device with this link code to the member this home is (a signed entry)."""
    key = parse_code(code)
    _write(home, commons, "device", {"device": key, "action": "add"}, as_json)


@command("revoke", app=device_app)
def device_revoke(
    device: Annotated[str, typer.Argument(help="The device's link code or author id (see `p2pc device list`).")],
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke one of this member's keys (a lost or stolen device, or the member's own key):
    its entries outside this revocation's causal past have no effect, however backdated."""
    key = parse_code(device)
    _write(home, commons, "device", {"device": key, "action": "revoke"}, as_json)


@command("recover", app=device_app)
def device_recover(
    member: Annotated[str, typer.Argument(help="The member who lost every device (author id, prefix or name).")],
    code: Annotated[str, typer.Argument(help="The link code `p2pc device add` printed on their new machine.")],
    commons: CommonsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve binding a new key to a member who lost every device (by default a majority of
    the stewards must approve: the rules' `recovery` section)."""
    from .governance import _resolve_member

    key = parse_code(code)

    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], None]:
        return {"device": key, "action": "recover", "member": _resolve_member(state, member)}, None

    _write(home, commons, "device", {}, as_json, build=build)


@command("list", app=device_app)
def device_list(commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the keys of the member this home is: its own key and its devices, with status."""
    me = identity_of(home).public_key
    with open_store(home, reader=True) as store:
        cid = resolve_commons(store, commons)
        state = _state(store, cid)
    member = state.member_of(me)
    rows = [_key_json(row, me) for row in state.keys_of(member)]
    data = {"commons": str(cid), "member": _author_text(member), "keys": rows}

    def human() -> None:
        if not rows:
            print(f"{_author_text(me)} is not a member of this commons (nor a device of one).")
            return
        print(f"member {_author_text(member)}")
        for row in rows:
            what = "own key" if row["own"] else "device"
            this = "  (this machine)" if row["this"] else ""
            extra = f" at seq {row['forked_at']}" if row["status"] == "forked" else ""
            print(f"  {row['code']}  {what}  {row['status']}{extra}{this}")

    emit(data, as_json, human)


def _key_json(row: dict[str, Any], me: bytes) -> dict[str, Any]:
    return {"author": _author_text(row["key"]), "code": link_code(row["key"]), "own": row["own"],
            "status": row["status"], "forked_at": row["forked_at"], "this": row["key"] == me,
            "binding": str(row["binding"]) if row["binding"] else None,
            "revocation": str(row["revocation"]) if row["revocation"] else None}


@command("restore")
def restore_cmd(
    key_file: Annotated[Path, typer.Argument(help="The backed-up key file (identity.json).")],
    bundles: Annotated[list[Path] | None, typer.Argument(help="Backed-up bundles to import.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a home from a backup (its key file and bundles).  The home then signs nothing
    until `p2pc sync` has brought its own latest entries (so it cannot fork its log), or it
    becomes a fresh device (`p2pc device add --new-key`)."""
    import shutil

    from p2pcommons import ownlog
    from p2pcommons.bundle import import_bundle
    from p2pcommons.errors import IdentityExists, UsageError
    from p2pcommons.store import Store

    target = home_of(home)
    if target.key_file.exists():
        raise IdentityExists(f"An identity already exists in {target.path}; restore into a new home.")
    if not key_file.is_file():
        raise UsageError(f"No key file {key_file}.")
    target.create_dirs()
    ownlog.set_restored(target.path, True)  # first: a crash halfway leaves the home marked
    tmp = target.key_file.with_suffix(".restoring")
    shutil.copyfile(key_file, tmp)
    tmp.chmod(0o600)
    tmp.rename(target.key_file)
    identity = identity_of(home)  # checks the file (and its passphrase)
    Store(target.store_file).close()
    added = 0
    for bundle in bundles or []:
        try:
            source = open(bundle, "rb")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"Cannot open {bundle} ({exc.strerror}).") from None
        with source, open_store(home) as store:
            _, report = import_bundle(store, source)
            added += report.added_count
    data = {"home": str(target.path), "author": identity.author_id, "added_count": added, "restored": True}
    emit(data, as_json, f"Restored {identity.author_id} into {target.path} ({added} entries).\n"
                        "  It signs nothing until `p2pc sync` with a peer holding your latest entries has "
                        "succeeded\n  (or make it a fresh device: `p2pc device add --new-key`).")
