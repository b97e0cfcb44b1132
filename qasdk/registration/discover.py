"""Paths → the Python files and methods files they name (the first stage)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import msgspec

from qasdk.models import Problem, Source

__all__ = ["DECLARED_SUFFIXES", "METHODS_FILES", "Discovered", "discover", "display_path"]

METHODS_FILES = ("methods.yaml", "methods.yml", "methods.json")
DECLARED_SUFFIXES = (".yaml", ".yml", ".json")
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


class Discovered(msgspec.Struct, kw_only=True):
    """The files to read, in a stable order, and the paths that named nothing usable."""

    python: list[Path] = []
    declared: list[Path] = []
    problems: list[Problem] = []


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def discover(paths: Iterable[str | Path]) -> Discovered:
    """Find the Python files and methods files that ``paths`` name.

    A folder is searched recursively (hidden folders, ``__pycache__``,
    ``node_modules`` and virtualenvs skipped) for ``.py`` files and
    ``methods.yaml`` / ``methods.yml`` / ``methods.json``.
    """
    found = Discovered()
    seen: set[Path] = set()

    def add(target: list[Path], file: Path) -> None:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            target.append(file)

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            found.problems.append(Problem(source=Source(str(raw)), reason="no such file or folder"))
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not _skipped(Path(folder) / d))
                for name in sorted(files):
                    if name.endswith(".py"):
                        add(found.python, Path(folder) / name)
                    elif name in METHODS_FILES:
                        add(found.declared, Path(folder) / name)
        elif path.suffix == ".py":
            add(found.python, path)
        elif path.suffix.lower() in DECLARED_SUFFIXES:
            add(found.declared, path)
        else:
            found.problems.append(
                Problem(
                    source=Source(str(raw)),
                    reason="not a Python file, a folder, or a methods .yaml/.json file",
                )
            )
    return found


def _skipped(folder: Path) -> bool:
    name = folder.name
    return (
        name.startswith(".")
        or name in _SKIPPED_DIRS
        or (folder / "pyvenv.cfg").exists()  # a virtualenv
    )
