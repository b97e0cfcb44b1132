"""Everything the CLI prints: the text a person reads and the ``--json`` a script reads.

Commands compute; this module words. Problems are one line each
(``path:line: tool 'name': field: reason``), all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timezone
from typing import TYPE_CHECKING, Any

import msgspec

from qasdk._excerpt import excerpt
from qasdk.audit import AuditEntry
from qasdk.errors import QasdkError
from qasdk.models import MethodMetadata, MethodParameter

if TYPE_CHECKING:  # types only: `qasdk serve` prints through here and never scans
    from qasdk.registration.collect import Catalog
    from qasdk.store.methods import SyncReport
    from qasdk.store.workers import WorkerRow

__all__ = [
    "audit_json",
    "check_json",
    "describe_audit",
    "describe_check",
    "describe_error",
    "describe_methods",
    "describe_sync",
    "describe_workers",
    "error_json",
    "methods_json",
    "sync_json",
    "workers_json",
]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _json(body: Any) -> str:
    return msgspec.json.encode(body).decode()


# -- errors -------------------------------------------------------------------


def describe_error(error: QasdkError, *, read_only: bool = False) -> Iterator[str]:
    """One line per problem and a count, or one ``error:`` line."""
    if error.problems:
        for problem in error.problems:
            yield str(problem)
        noun = "problem" if len(error.problems) == 1 else "problems"
        yield f"{len(error.problems)} {noun} found; nothing was written."
    else:
        suffix = "; nothing was written" if read_only else ""
        yield f"error: {error}{suffix}"


def error_json(error: QasdkError) -> str:
    return _json(
        {
            "ok": False,
            "error_type": type(error).__name__,
            "message": str(error),
            "problems": [msgspec.to_builtins(p) for p in error.problems],
        }
    )


# -- sync and check -------------------------------------------------------------


def describe_sync(catalog: Catalog, report: SyncReport, database: str) -> str:
    plan = report.plan
    sources = [_plural(catalog.python_files, "Python file")]
    if catalog.declared_files:
        sources.append(_plural(len(catalog.declared_files), "methods file"))
    if catalog.servers:
        sources.append(_plural(len(catalog.servers), "MCP server"))
    lines = [f"Scanned {' and '.join(sources)}: {_plural(len(catalog.entries), 'tool')}."]
    width = max((len(e.config.name) for e in catalog.entries), default=0)
    width = max([width, *(len(n) for n in plan.deleted + plan.stale)])

    def remote(name: str) -> str:
        server = plan.servers.get(name)
        return f" (mcp server {server!r})" if server else ""

    for name in plan.created:
        lines.append(f"  + {name:<{width}}  created{remote(name)}")
    for name, fields in plan.updated.items():
        lines.append(f"  ~ {name:<{width}}  updated: {', '.join(fields)}{remote(name)}")
    for name in plan.unchanged:
        lines.append(f"  = {name:<{width}}  unchanged{remote(name)}")
    for name in plan.deleted:
        lines.append(f"  - {name:<{width}}  deleted{remote(name)}")
    for name in plan.stale:
        gone = "no longer listed" if plan.servers.get(name) else "no longer defined"
        lines.append(f"  ! {name:<{width}}  {gone} (kept; --prune deletes it){remote(name)}")
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


def sync_json(catalog: Catalog, report: SyncReport, database: str) -> str:
    return _json(
        {
            "ok": True,
            "dry_run": report.dry_run,
            "database": database,
            "tools": len(catalog.entries),
            **msgspec.to_builtins(report.plan),
            "rows_written": report.rows_written,
            "migrations_applied": report.migrations_applied,
            "warnings": [str(w) for w in catalog.warnings],
        }
    )


def describe_check(catalog: Catalog) -> str:
    """The tools that passed, then what each declares it needs (what keys may be limited by)."""
    names = ", ".join(entry.config.name for entry in catalog.entries)
    lines = [f"{len(catalog.entries)} tools OK: {names}"]
    lines.extend(
        f"  {entry.config.name} needs {', '.join(entry.config.permissions)}"
        for entry in catalog.entries
        if entry.config.permissions
    )
    return "\n".join(lines)


def check_json(catalog: Catalog) -> str:
    return _json({"ok": True, "tools": [msgspec.to_builtins(c) for c in catalog.configs]})


# -- methods --------------------------------------------------------------------


def _type_text(param: MethodParameter) -> str:
    """``list[int]``, ``string`` or ``'a' | 'b'``: what the schema says, briefly."""
    schema = param.schema
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    items = schema.get("items")
    if param.type == "list" and isinstance(items, dict) and isinstance(items.get("type"), str):
        return f"list[{items['type']}]"
    extra = schema.get("additionalProperties")
    if param.type == "dict" and isinstance(extra, dict) and isinstance(extra.get("type"), str):
        return f"dict[str, {extra['type']}]"
    return param.type


def _signature(method: MethodMetadata) -> str:
    params = []
    for p in method.parameters:
        text = f"{p.name}: {_type_text(p)}"
        if p.has_default:
            text += f" = {p.default!r}"
        elif not p.required:
            text += "?"
        params.append(text)
    return f"({', '.join(params)}) -> {method.return_type}"


def describe_methods(methods: Sequence[MethodMetadata]) -> str:
    if not methods:
        return "No tools registered yet. Run `qasdk sync PATH` first."
    rows = []
    for method in methods:
        options = []
        if method.timeout is not None:
            options.append(f"timeout {method.timeout:g} s")
        if method.tags:
            options.append("tags " + ",".join(method.tags))
        if method.permissions:
            options.append("permissions " + ",".join(method.permissions))
        if method.pool != "default":
            options.append(f"pool {method.pool}")
        rows.append(
            (
                method.name,
                _signature(method),
                (
                    f"mcp:{method.endpoint.server}/{method.endpoint.tool}"
                    if method.endpoint is not None
                    else f"{method.module_path}:{method.function_name}"
                ),
                "; ".join(options),
                method.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    header = ("NAME", "SIGNATURE", "FUNCTION", "OPTIONS", "UPDATED (UTC)")
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *rows]
    ]
    lines.append(f"{_plural(len(methods), 'tool')} registered.")
    return "\n".join(lines)


def methods_json(methods: Sequence[MethodMetadata]) -> str:
    return _json(methods)


# -- audit ----------------------------------------------------------------------

#: Characters of an entry's detail shown on its line (``--json`` has all of it).
DETAIL_SHOWN = 120


def _sync_summary(detail: dict[str, Any]) -> str:
    """``+new ~changed(fields) -gone``, and the totals when the lists were cut."""
    parts = [f"+{name}" for name in detail.get("created", [])]
    for name, fields in (detail.get("updated") or {}).items():
        parts.append(f"~{name}({','.join(fields)})")
    parts += [f"-{name}" for name in detail.get("deleted", [])]
    counts = detail.get("counts") or {}
    shown = len(parts)
    total = sum(counts.get(k, 0) for k in ("created", "updated", "deleted"))
    if total > shown:
        parts.append(f"({total - shown} more)")
    return " ".join(parts)


def _detail_summary(entry: AuditEntry) -> str:
    detail = entry.detail
    if entry.action == "sync":
        text = _sync_summary(detail)
    elif entry.action == "denied":
        paths = ", ".join(detail.get("paths") or [])
        text = f"{detail.get('status', '')} {detail.get('reason', '')} {paths}".strip()
    else:
        text = " ".join(
            f"{key}={value if isinstance(value, (str, int, float)) else _json(value)}"
            for key, value in detail.items()
        )
    return excerpt(text, DETAIL_SHOWN)


def describe_audit(entries: Sequence[AuditEntry]) -> str:
    if not entries:
        return "No audit entries."
    rows = [
        (
            entry.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            entry.actor,
            entry.client or "-",
            entry.action,
            entry.target or "-",
            str(entry.count),
            _detail_summary(entry),
        )
        for entry in entries
    ]
    header = ("AT (UTC)", "ACTOR", "CLIENT", "ACTION", "TARGET", "COUNT", "DETAIL")
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *rows]
    ]
    noun = "entry" if len(entries) == 1 else "entries"
    lines.append(f"{len(entries)} {noun} shown, newest first.")
    return "\n".join(lines)


def audit_json(entries: Sequence[AuditEntry]) -> str:
    return _json(entries)


# -- workers ------------------------------------------------------------------


def _utc(moment: Any) -> str:
    return str(moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))


def describe_workers(workers: Sequence[WorkerRow]) -> str:
    if not workers:
        return "No workers registered. Start one with `qasdk worker` (or `qasdk serve`)."
    rows = [
        (
            worker.name,
            ",".join(worker.pools),
            "alive" if worker.alive else ("stopped" if worker.stopped_at else "dead"),
            f"{worker.running}/{worker.concurrency}",
            str(worker.done),
            _utc(worker.started_at),
            _utc(worker.last_heartbeat),
            worker.version,
        )
        for worker in workers
    ]
    header = (
        "WORKER",
        "POOLS",
        "STATE",
        "RUNNING",
        "DONE",
        "STARTED (UTC)",
        "HEARTBEAT",
        "VERSION",
    )
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *rows]
    ]
    alive = sum(worker.alive for worker in workers)
    lines.append(f"{_plural(len(workers), 'worker')} registered, {alive} alive.")
    return "\n".join(lines)


def workers_json(workers: Sequence[WorkerRow]) -> str:
    return _json({"workers": workers, "alive": sum(worker.alive for worker in workers)})
