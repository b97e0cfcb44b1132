"""Scanned and declared tools → one list, each name defined once.

A name may appear once. The only way to define it twice is on purpose: a
declared entry with ``override: true`` replaces the fields it gives of the
scanned ``@tool`` of the same name (parameters are matched by name).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from qasdk.models import MethodParameter, Problem, ToolEntry, ToolOverride

__all__ = ["merge"]


def merge(
    entries: Iterable[ToolEntry], overrides: Iterable[ToolOverride] = ()
) -> tuple[list[ToolEntry], list[Problem]]:
    """Merge entries (scanned first, then declared) and apply overrides."""
    problems: list[Problem] = []
    by_name: dict[str, ToolEntry] = {}
    for entry in entries:
        name = entry.config.name
        if not name or "name" in entry.missing:
            by_name[f"\0{id(entry)}"] = entry  # nameless: validation will report it
            continue
        first = by_name.get(name)
        if first is None:
            by_name[name] = entry
            continue
        hint = ""
        remote = [e for e in (first, entry) if e.config.endpoint is not None]
        if remote:
            ends = [e.config.endpoint for e in remote if e.config.endpoint is not None]
            names = " and ".join(f"tool {e.tool!r} of mcp server {e.server!r}" for e in ends)
            hint = f" ({names}); set 'prefix:' on the server, or list the 'tools:' to take"
        elif {first.origin, entry.origin} == {"scanned", "declared"}:
            hint = (
                "; to change the scanned tool from a methods file, mark that entry 'override: true'"
            )
        problems.append(
            Problem(
                source=entry.source_of("name"),
                tool=name,
                field="name",
                reason=f"duplicate tool name, also defined at {first.source_of('name')}{hint}",
            )
        )

    applied: dict[str, ToolOverride] = {}
    for override in overrides:
        target = by_name.get(override.name)
        if override.name in applied:
            problems.append(
                Problem(
                    source=override.source,
                    tool=override.name,
                    field="override",
                    reason=f"tool is overridden twice, also at {applied[override.name].source}",
                )
            )
            continue
        if target is None or target.origin != "scanned":
            where = f"it is declared at {target.source}" if target else "no @tool has that name"
            problems.append(
                Problem(
                    source=override.source,
                    tool=override.name,
                    field="override",
                    reason=f"nothing to override: {where}; "
                    "override only applies to scanned @tool functions",
                )
            )
            continue
        applied[override.name] = override
        by_name[override.name] = _apply(target, override, problems)
    return list(by_name.values()), problems


def _apply(target: ToolEntry, override: ToolOverride, problems: list[Problem]) -> ToolEntry:
    config = target.config
    locations = dict(target.locations)
    locations.update(override.locations)
    hints = {k: v for k, v in target.hints.items() if k not in override.locations}
    parameters = config.parameters
    if override.parameters is not None:
        by_param = {p.name: p for p in config.parameters}
        for given in override.parameters:
            name = str(given.get("name"))
            current = by_param.get(name)
            if current is None:
                problems.append(
                    Problem(
                        source=override.locations.get("parameters", override.source),
                        tool=override.name,
                        field=f"parameters.{name}",
                        reason=f"{target.config.function_name}() has no parameter {name!r} "
                        f"(it has {', '.join(by_param) or 'none'})",
                    )
                )
                continue
            changes = {k: v for k, v in given.items() if k != "name"}
            if "default" in changes and "required" not in changes:
                changes["required"] = False
            by_param[name] = msgspec.convert(
                {**msgspec.to_builtins(current), **changes}, MethodParameter
            )
        parameters = tuple(by_param.values())
    config = msgspec.structs.replace(config, **override.fields, parameters=parameters)
    return msgspec.structs.replace(target, config=config, locations=locations, hints=hints)
