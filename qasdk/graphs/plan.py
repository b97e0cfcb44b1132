"""A declared graph's shape, checked before anything is stored.

Every problem is reported at once, each with the field it is about
(``subtasks[2].depends_on[0]``): duplicate ids, dependencies on unknown ids or
on itself, cycles, and references to sub-tasks that are not dependencies
(their result would not exist yet when the reference is resolved).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from qasdk.graphs.refs import RefError, find_refs, parse_ref, template_refs
from qasdk.models import Problem

__all__ = ["Subtask", "check_graph"]


class Subtask(msgspec.Struct, frozen=True, kw_only=True):
    """One sub-task of a graph, its tool and params already validated."""

    id: str
    kind: Literal["described", "direct"]
    method: str | None = None
    params: dict[str, Any] | None = None
    description: str | None = None
    depends_on: tuple[str, ...] = ()
    priority: int = 5
    timeout: float | None = None
    #: The worker pool of its tool (a described sub-task runs in the default pool).
    pool: str = "default"


def _refs(index: int, node: Subtask) -> list[tuple[str, str]]:
    where = f"subtasks[{index}]"
    if node.description is not None:
        return [(f"{where}.task_description", ref) for ref in template_refs(node.description)]
    return find_refs(node.params or {}, f"{where}.params")


def check_graph(nodes: list[Subtask]) -> list[Problem]:
    """Every problem with the graph's shape (empty: it is a DAG whose references hold)."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if node.id in first:
            problems.append(
                Problem(
                    field=f"subtasks[{index}].id",
                    reason=f"duplicate id {node.id!r} (also subtasks[{first[node.id]}])",
                )
            )
        else:
            first[node.id] = index
    for index, node in enumerate(nodes):
        for position, dep in enumerate(node.depends_on):
            field = f"subtasks[{index}].depends_on[{position}]"
            if dep == node.id:
                problems.append(Problem(field=field, reason=f"{dep!r} cannot depend on itself"))
            elif dep not in first:
                known = ", ".join(repr(k) for k in first)
                problems.append(
                    Problem(field=field, reason=f"unknown sub-task id {dep!r}; ids: {known}")
                )
        try:
            refs = _refs(index, node)
        except RefError as exc:
            problems.append(Problem(field=exc.field, reason=exc.reason))
            continue
        for field, ref in refs:
            try:
                target, _ = parse_ref(ref, field)
            except RefError as exc:
                problems.append(Problem(field=exc.field, reason=exc.reason))
                continue
            if target not in node.depends_on:
                problems.append(
                    Problem(
                        field=field,
                        reason=f"reference {ref!r}: {target!r} must be in depends_on "
                        "(its result exists only once it has completed)",
                    )
                )
    if not problems:
        cycle = _cycle(nodes)
        if cycle:
            at = first[cycle[0]]
            problems.append(
                Problem(
                    field=f"subtasks[{at}].depends_on",
                    reason="dependency cycle: " + " -> ".join(repr(k) for k in cycle),
                )
            )
    return problems


def _cycle(nodes: list[Subtask]) -> list[str]:
    """One cycle of the graph, as ids from a node back to itself; empty if there is none."""
    deps = {node.id: node.depends_on for node in nodes}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(key: str) -> list[str]:
        state[key] = 1
        path.append(key)
        for dep in deps[key]:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        state[key] = 2
        path.pop()
        return []

    for node in nodes:
        if node.id not in state:
            found = visit(node.id)
            if found:
                return found
    return []
