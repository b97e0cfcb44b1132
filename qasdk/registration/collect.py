"""Paths → a validated catalog: discover, scan, read declared, merge, validate.

This is the first half of ``qasdk sync`` and everything ``qasdk check`` does.
It never touches the database and never imports user code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import msgspec

from qasdk.errors import ValidationError
from qasdk.models import McpServer, MethodConfig, Problem, Source, ToolEntry, ToolOverride
from qasdk.registration.declared import load_methods_file
from qasdk.registration.discover import discover, display_path
from qasdk.registration.merge import merge
from qasdk.registration.remote import remote_entries
from qasdk.registration.resolve import resolve_declared
from qasdk.registration.scan import Scanner, module_name_for, package_module_name
from qasdk.registration.validate import validate_entries

__all__ = ["Catalog", "collect"]

logger = logging.getLogger("qasdk.registration")


class Catalog(msgspec.Struct, kw_only=True):
    """The tools a set of paths defines, valid and ready to sync into the registry."""

    entries: list[ToolEntry]
    python_files: int = 0
    declared_files: tuple[str, ...] = ()
    #: The MCP servers the methods files declare (their tools are among ``entries``).
    servers: list[McpServer] = []
    warnings: list[Problem] = []

    @property
    def configs(self) -> list[MethodConfig]:
        return [entry.config for entry in self.entries]


def collect(
    paths: Sequence[str | Path],
    *,
    module_root: str | Path | None = None,
    allowed_packages: tuple[str, ...] = (),
) -> Catalog:
    """Build the catalog ``paths`` define, or raise :class:`ValidationError` with every problem.

    The MCP servers methods files declare are asked for their tools (the only
    step that needs the network); one that cannot be reached is a problem.

    ``module_root`` is the folder ``qasdk serve`` will import from (default: the
    working directory): ``tools/geo.py`` under it becomes module ``tools.geo``.
    A declared tool's module must be there or in ``allowed_packages``
    (``registry.allowed_packages``).
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
    outside: dict[Path, list[str]] = {}
    for file in found.python:
        shown = display_path(file)
        module = module_name_for(file, root)
        if module is None:
            module = package_module_name(file)
            outside.setdefault(file.parent, []).append(module)
        scanner.add_file(file, module=module, display=shown)
    for folder, modules in outside.items():
        # One warning per folder, with the fix, however many files it holds.
        more = f" and {len(modules) - 1} more" if len(modules) > 1 else ""
        example = f"module {modules[0]!r}{more}"
        warnings.append(
            Problem(
                source=Source(display_path(folder)),
                reason=f"outside the module root {display_path(root)!r}: recorded as {example}, "
                "which qasdk serve must be able to import; run qasdk from the folder above "
                "it, or pass --module-root",
            )
        )
    scanned = scanner.result()
    problems += scanned.problems
    warnings += scanned.warnings
    for entry in scanned.entries:
        logger.debug("scanned tool %r at %s", entry.config.name, entry.source)

    declared_entries: list[ToolEntry] = []
    overrides: list[ToolOverride] = []
    servers: dict[str, McpServer] = {}
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
        for server in declared.servers:
            first = servers.setdefault(server.name, server)
            if first is not server:
                problems.append(
                    Problem(
                        source=server.source_of("name"),
                        field=f"mcp_servers.{server.name}.name",
                        reason=f"duplicate MCP server name, also declared at "
                        f"{first.source_of('name')}",
                    )
                )
    remote, unlisted = remote_entries(list(servers.values()))
    problems += unlisted
    declared_entries += remote

    entries, merge_problems = merge([*scanned.entries, *declared_entries], overrides)
    problems += merge_problems
    unresolved, unchecked = resolve_declared(entries, scanner, allowed_packages)
    problems += unresolved
    warnings += unchecked
    problems += validate_entries(entries)
    if problems:
        raise ValidationError(problems=_ordered(problems))
    entries.sort(key=lambda e: e.config.name)
    logger.info("collected %d tools from %s", len(entries), ", ".join(str(p) for p in paths))
    return Catalog(
        entries=entries,
        python_files=scanned.files,
        declared_files=tuple(display_path(f) for f in found.declared),
        servers=list(servers.values()),
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
