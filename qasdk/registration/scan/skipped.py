"""``@tool`` uses the scanner cannot register, found so they are reported, not dropped.

The scanner reads module-level functions decorated with ``@tool`` however it
was imported. Two other shapes look like tools to their author and would be
silently left out: a decorated function defined inside another function, and
a decorator that is an alias assigned at run time (``t = tool``, then ``@t``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

__all__ = ["skipped_tools"]

_NAMES = ("tool",)


def _tool_names(tree: ast.Module) -> tuple[set[str], set[str], dict[str, int]]:
    """Names bound to ``tool`` by imports, names bound to ``qasdk``, and aliases by line."""
    direct: set[str] = set()
    modules: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module in ("qasdk", "qasdk.decorator"):
            direct |= {a.asname or a.name for a in node.names if a.name in _NAMES}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "qasdk"}
    aliases: dict[str, int] = {}
    for found in ast.walk(tree):
        if isinstance(found, ast.Assign) and _is_tool(found.value, direct, modules):
            for target in found.targets:
                if isinstance(target, ast.Name):
                    aliases[target.id] = found.lineno
    return direct, modules, aliases


def _is_tool(expr: ast.expr, direct: set[str], modules: set[str]) -> bool:
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Name):
        return expr.id in direct
    return (
        isinstance(expr, ast.Attribute)
        and expr.attr in _NAMES
        and isinstance(expr.value, ast.Name)
        and expr.value.id in modules
    )


def skipped_tools(code: str) -> Iterator[tuple[int, str]]:
    """(line, why) for each ``@tool`` use in ``code`` that will not be registered."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return  # reported by the scanner
    direct, modules, aliases = _tool_names(tree)
    if not (direct or modules or aliases):
        return
    yield from _walk(tree.body, direct, modules, aliases, outer=None)


def _walk(
    body: list[ast.stmt],
    direct: set[str],
    modules: set[str],
    aliases: dict[str, int],
    outer: str | None,
) -> Iterator[tuple[int, str]]:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if outer is not None and _is_tool(decorator, direct, modules):
                    yield (
                        decorator.lineno,
                        f"@tool on {node.name!r}, defined inside {outer!r}, is not registered: "
                        "only module-level functions can be tools",
                    )
                elif isinstance(target, ast.Name) and target.id in aliases:
                    yield (
                        decorator.lineno,
                        f"@{target.id} on {node.name!r} is not registered: {target.id!r} is "
                        f"assigned tool at run time (line {aliases[target.id]}), which qasdk "
                        "does not run; import it instead (from qasdk import tool as "
                        f"{target.id})",
                    )
            yield from _walk(node.body, direct, modules, aliases, outer=node.name)
        elif isinstance(node, ast.ClassDef):
            continue  # methods are reported by the scanner
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for part in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, part, []):
                    children = child.body if isinstance(child, ast.ExceptHandler) else [child]
                    yield from _walk(children, direct, modules, aliases, outer)
