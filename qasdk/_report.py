"""Human-readable output of the CLI (the ``--json`` forms are built in cli.py)."""

from __future__ import annotations

from collections.abc import Sequence

from qasdk.collect import Registry
from qasdk.models import MethodMetadata
from qasdk.store.methods import SyncReport

__all__ = ["describe_methods", "describe_sync"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe_sync(registry: Registry, report: SyncReport, database: str) -> str:
    plan = report.plan
    sources = [_plural(registry.python_files, "Python file")]
    if registry.declared_files:
        sources.append(_plural(len(registry.declared_files), "methods file"))
    lines = [f"Scanned {' and '.join(sources)}: {_plural(len(registry.entries), 'tool')}."]
    width = max((len(e.config.name) for e in registry.entries), default=0)
    width = max([width, *(len(n) for n in plan.deleted + plan.stale)])
    for name in plan.created:
        lines.append(f"  + {name:<{width}}  created")
    for name, fields in plan.updated.items():
        lines.append(f"  ~ {name:<{width}}  updated: {', '.join(fields)}")
    for name in plan.unchanged:
        lines.append(f"  = {name:<{width}}  unchanged")
    for name in plan.deleted:
        lines.append(f"  - {name:<{width}}  deleted")
    for name in plan.stale:
        lines.append(f"  ! {name:<{width}}  no longer defined (kept; --prune deletes it)")
    counts = (
        f"{len(plan.created)} created, {len(plan.updated)} updated, "
        f"{len(plan.unchanged)} unchanged, {len(plan.deleted)} deleted"
    )
    if report.dry_run:
        lines.append(f"Dry run against {database}: {counts}. Nothing was written.")
    else:
        lines.append(
            f"Synced to {database}: {counts} ({_plural(report.rows_written, 'row')} written)."
        )
    return "\n".join(lines)


def describe_methods(methods: Sequence[MethodMetadata]) -> str:
    if not methods:
        return "No tools registered yet. Run `qasdk sync PATH` first."
    rows = []
    for method in methods:
        params = ", ".join(
            f"{p.name}: {p.type}" + ("" if p.required else "?") for p in method.parameters
        )
        rows.append(
            (
                method.name,
                f"({params}) -> {method.return_type}",
                f"{method.module_path}:{method.function_name}",
                method.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    header = ("NAME", "SIGNATURE", "FUNCTION", "UPDATED (UTC)")
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *rows]
    ]
    lines.append(f"{_plural(len(methods), 'tool')} registered.")
    return "\n".join(lines)
