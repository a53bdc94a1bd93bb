"""``p2pc config show|get|set|unset``: read and change this home's ``config.toml`` through
the one table of known settings (:mod:`p2pcommons.settings`), so a misspelt key or a value
of the wrong type is refused when it is typed (exit 2), not when the daemon next starts."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from .app import HomeOption, JsonOption, app, command, emit, home_of

config_app = typer.Typer(
    help="Show and change this node's settings (config.toml); changes apply at the next node start.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")

KeyArgument = Annotated[
    str, typer.Argument(help="A setting, e.g. network.listen (see 'p2pc config show').")
]


def _text(value: Any) -> str:
    """A value as it is written in TOML (lists, booleans and numbers read the same in JSON)."""
    return json.dumps(value)


@command("show", app=config_app)
def config_show(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List every known setting with the value in force; defaults are marked."""
    from p2pcommons.settings import effective, unknown_keys

    target = home_of(home)
    config = target.config()  # checked: a malformed file is refused with the setting's name
    rows = effective(config)
    unknown = unknown_keys(config)
    data = {
        "file": str(target.config_file),
        "settings": [
            {"key": s.key, "value": value, "default": is_default, "type": s.kind, "help": s.help}
            for s, value, is_default in rows
        ],
        "unknown": unknown,
    }

    def human() -> None:
        width = max(len(s.key) for s, _, _ in rows)
        for setting, value, is_default in rows:
            print(f"{setting.key:<{width}}  {_text(value)}" + ("  (default)" if is_default else ""))
        for key in unknown:
            print(f"{key:<{width}}  (unknown to this version: ignored)")

    emit(data, as_json, human)


@command("get", app=config_app)
def config_get(key: KeyArgument, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print one setting's value in force."""
    from p2pcommons.settings import find

    setting = find(key)
    table = home_of(home).config().get(setting.section) or {}
    is_default = setting.name not in table
    value = setting.default if is_default else table[setting.name]
    emit({"key": setting.key, "value": value, "default": is_default}, as_json, _text(value))


@command("set", app=config_app)
def config_set(
    key: KeyArgument,
    values: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="VALUE",
            help="The value; a list setting takes one or more items, or a TOML array such as '[]'.",
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a setting in config.toml, checked first (the file is replaced atomically)."""
    from p2pcommons.settings import find, parse_value, read_raw, write_atomically

    setting = find(key)
    value = parse_value(setting, list(values or []))
    target = home_of(home)
    config = read_raw(target.config_file)
    table = config.setdefault(setting.section, {})
    if not isinstance(table, dict):
        from p2pcommons.errors import ConfigError

        raise ConfigError(f"In {target.config_file}, '{setting.section}' is not a table; fix it by hand.")
    table[setting.name] = value
    target.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(target.config_file, config)
    emit({"key": setting.key, "value": value, "default": False}, as_json,
         f"{setting.key} = {_text(value)}  (applies at the next node start)")


@command("unset", app=config_app)
def config_unset(key: KeyArgument, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Remove a setting from config.toml: its default applies again."""
    from p2pcommons.settings import find, read_raw, write_atomically

    setting = find(key)
    target = home_of(home)
    config = read_raw(target.config_file)
    table = config.get(setting.section)
    if isinstance(table, dict) and setting.name in table:
        del table[setting.name]
        if not table:
            del config[setting.section]
        write_atomically(target.config_file, config)
    emit({"key": setting.key, "value": setting.default, "default": True}, as_json,
         f"{setting.key} = {_text(setting.default)}  (default)")
