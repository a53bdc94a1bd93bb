"""Strict mypy over the package as it is installed: ``p2pcommons/``, ``cli/`` and ``protocols/``.

``cli/`` and ``protocols/`` sit at the top of the repository but are installed as
``p2pcommons.cli`` and ``p2pcommons.protocols`` (the ``package-dir`` mapping in pyproject.toml).
mypy names a module after its path, so plain ``mypy p2pcommons`` neither checks those folders
nor resolves the core's imports of ``p2pcommons.protocols``. This runs mypy (its settings from
pyproject.toml) on the three folders, giving each file the module name it is installed under,
taken from the same mapping setuptools uses: no symlinks, no generated tree, and errors name the
real files. Exit status as mypy's: 0 clean, 1 type errors, 2 a blocking error.

Run it as ``.venv/bin/python .ci/typecheck.py`` (tests/test_lint.py does).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[Path, str]:
    """Source folder → the package installed from it, longest folder first."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = {(ROOT / folder).resolve(): package for package, folder in setuptools["package-dir"].items()}
    return dict(sorted(mapping.items(), key=lambda item: len(item[0].parts), reverse=True))


def installed_name(path: Path, dirs: dict[Path, str]) -> str:
    """``cli/app.py`` → ``p2pcommons.cli.app``; ``protocols/__init__.py`` → ``p2pcommons.protocols``."""
    path = path.resolve()
    for folder, package in dirs.items():
        if path.is_relative_to(folder):
            rest = list(path.relative_to(folder).with_suffix("").parts)
            if rest and rest[-1] == "__init__":
                rest.pop()
            return ".".join([package, *rest])
    raise SystemExit(f"{path} is in no package-dir folder of pyproject.toml")


def main() -> int:
    dirs = package_dirs()
    folders = [str(folder.relative_to(ROOT)) for folder in dirs]
    sources, options = process_options(["--config-file", str(ROOT / "pyproject.toml"), *folders])
    for source in sources:
        assert source.path is not None
        source.module = installed_name(ROOT / source.path, dirs)
        source.base_dir = str(ROOT)

    shown: list[str] = []

    def show(_file: str | None, messages: list[str], _serious: bool) -> None:
        shown.extend(messages)
        for message in messages:
            print(message)

    try:
        build.build(sources, options, flush_errors=show)
    except CompileError as error:
        for message in error.messages:
            print(message, file=sys.stderr)
        return 2
    files = {message.split(":", 1)[0] for message in shown if ": error:" in message}
    errors = sum(": error:" in message for message in shown)
    if errors:
        print(f"Found {errors} errors in {len(files)} files (checked {len(sources)} source files)")
        return 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
