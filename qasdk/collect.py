"""Paths → a validated registry: discover, scan, read declared, merge, validate.

This is the first half of ``qasdk sync`` and everything ``qasdk check`` does.
It never touches the database and never imports user code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from qasdk.declared import load_methods_file
from qasdk.errors import ValidationError
from qasdk.merge import merge
from qasdk.models import MethodConfig, Problem, Source, ToolEntry, ToolOverride
from qasdk.scan import Scanner, module_name_for, package_module_name
from qasdk.validate import validate_entries

__all__ = ["Registry", "collect", "discover"]

METHODS_FILES = ("methods.yaml", "methods.yml", "methods.json")
DECLARED_SUFFIXES = (".yaml", ".yml", ".json")
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
logger = logging.getLogger("qasdk.collect")


class Registry(msgspec.Struct, kw_only=True):
    """The tools a set of paths defines, valid and ready to sync."""

    entries: list[ToolEntry]
    python_files: int = 0
    declared_files: tuple[str, ...] = ()
    warnings: list[Problem] = []

    @property
    def configs(self) -> list[MethodConfig]:
        return [entry.config for entry in self.entries]


class Discovered(msgspec.Struct, kw_only=True):
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
    """Find the Python files and methods files that ``paths`` name."""
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


def collect(paths: Sequence[str | Path], *, module_root: str | Path | None = None) -> Registry:
    """Build the registry ``paths`` define, or raise :class:`ValidationError` with every problem.

    ``module_root`` is the folder ``qasdk serve`` will import from (default: the
    working directory): ``tools/geo.py`` under it becomes module ``tools.geo``.
    """
    root = Path(module_root) if module_root is not None else Path.cwd()
    found = discover(paths)
    logger.debug(
        "found %d Python files and %d methods files in %s",
        len(found.python),
        len(found.declared),
        ", ".join(str(p) for p in paths),
    )
    problems = list(found.problems)
    warnings: list[Problem] = []

    scanner = Scanner(root)
    for file in found.python:
        shown = display_path(file)
        module = module_name_for(file, root)
        if module is None:
            module = package_module_name(file)
            warnings.append(
                Problem(
                    source=Source(shown),
                    reason=f"outside the module root {display_path(root)!r}; recorded as "
                    f"module {module!r}, which must be importable when serving",
                )
            )
        scanner.add_file(file, module=module, display=shown)
    scanned = scanner.result()
    problems += scanned.problems
    for entry in scanned.entries:
        logger.debug("scanned tool %r at %s", entry.config.name, entry.source)

    declared_entries: list[ToolEntry] = []
    overrides: list[ToolOverride] = []
    for file in found.declared:
        declared = load_methods_file(file, display=display_path(file))
        logger.debug(
            "%s declares %d tools and %d overrides",
            display_path(file),
            len(declared.entries),
            len(declared.overrides),
        )
        problems += declared.problems
        declared_entries += declared.entries
        overrides += declared.overrides

    entries, merge_problems = merge([*scanned.entries, *declared_entries], overrides)
    problems += merge_problems
    problems += validate_entries(entries)
    if problems:
        raise ValidationError(problems=_ordered(problems))
    entries.sort(key=lambda e: e.config.name)
    logger.info("collected %d tools from %s", len(entries), ", ".join(str(p) for p in paths))
    return Registry(
        entries=entries,
        python_files=scanned.files,
        declared_files=tuple(display_path(f) for f in found.declared),
        warnings=warnings,
    )


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Problems by file and line, duplicates removed, so the report reads top to bottom."""
    unique = list(dict.fromkeys(problems))
    return sorted(
        unique,
        key=lambda p: (
            p.source.path if p.source else "",
            p.source.line or 0 if p.source else 0,
        ),
    )
