"""A declared graph, checked whole before anything is stored: one 400 lists every problem.

Each sub-task is checked as a task of its own would be (its tool exists and the
key may run it, its params fit the tool's signature), with two differences: a
``{"$ref": ...}`` stands in for a value it cannot know yet, so a problem at or
under a reference is not one; and every field is named from the body's root
(``subtasks[2].params.city``). And the graph's shape (``qasdk.graphs.plan``).
"""

from __future__ import annotations

from typing import Any

from qasdk.config import LimitsConfig
from qasdk.errors import ValidationError
from qasdk.graphs import RefError, Subtask, check_graph, find_refs
from qasdk.models import MethodConfig, Problem
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError
from qasdk_server.executor import prepare_params
from qasdk_server.graphs.body import MAX_SUBTASKS, SubtaskSpec
from qasdk_server.registry import MethodRegistry

__all__ = ["check_subtasks"]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _under(field: str, refs: set[str]) -> bool:
    return any(field == ref or field.startswith((ref + ".", ref + "[")) for ref in refs)


async def _direct(
    registry: MethodRegistry,
    spec: SubtaskSpec,
    where: str,
    principal: Principal,
    problems: list[Problem],
) -> dict[str, Any] | None:
    """The sub-task's params as they will be stored (references kept), or ``None``."""
    assert spec.method is not None
    method = await registry.find(spec.method)
    if method is None:
        hint = registry.suggest(spec.method) or ""
        reason = f"no registered tool named {spec.method[:100]!r}{hint}"
        problems.append(Problem(field=f"{where}.method", reason=reason))
        return None
    if principal.key is not None and not principal.key.may_run(method):
        reason = f"the API key {principal.key.name!r} may not run the tool {method.name!r}"
        problems.append(Problem(field=f"{where}.method", reason=reason))
        return None
    params = spec.params or {}
    try:
        refs = {path.removeprefix("params.") for path, _ in find_refs(params, "params")}
    except RefError:
        return params  # a malformed reference: the graph's check (check_graph) reports it
    top = {path.split(".")[0].split("[")[0] for path in refs}
    try:
        prepared = prepare_params(method, params, fill_defaults=False)
    except ValidationError as exc:
        found = [
            p
            for p in exc.problems
            if not (p.field and _under(p.field.removeprefix("params."), refs))
        ]
        for problem in found:
            problems.append(Problem(field=f"{where}.{problem.field}", reason=problem.reason))
        if found:
            return None
        prepared = _prepared_without(method, params, top)
    return {**prepared, **{k: params[k] for k in top}}


def _prepared_without(
    method: MethodConfig, params: dict[str, Any], top: set[str]
) -> dict[str, Any]:
    """The params that hold no reference, coerced (their problems were reported already)."""
    try:
        prepared = prepare_params(
            method, {k: v for k, v in params.items() if k not in top}, fill_defaults=False
        )
    except ValidationError:
        # Only "missing required" problems for the referenced keys remain: keep them as sent.
        return {k: v for k, v in params.items() if k not in top}
    return prepared


async def check_subtasks(
    registry: MethodRegistry,
    specs: list[SubtaskSpec],
    principal: Principal,
    *,
    priority: int,
    timeout: float | None,
    limits: LimitsConfig,
    max_subtasks: int = MAX_SUBTASKS,
) -> list[Subtask]:
    """The graph, validated; raises :class:`ApiError` 400 naming every problem.

    ``priority`` and ``timeout`` (the graph's) are each sub-task's unless it gives its own.
    """
    problems: list[Problem] = []
    if not specs:
        problems.append(Problem(field="subtasks", reason="must hold at least one sub-task"))
    if len(specs) > max_subtasks:
        reason = f"must hold at most {max_subtasks} sub-tasks, got {len(specs)}"
        problems.append(Problem(field="subtasks", reason=reason))
        specs = []
    nodes: list[Subtask] = []
    for index, spec in enumerate(specs):
        where = f"subtasks[{index}]"
        before = len(problems)
        if (spec.task_description is None) == (spec.method is None):
            reason = "give either task_description (run by the model) or method (run directly)"
            problems.append(Problem(field=where, reason=reason))
            continue
        if _has_nul(spec.task_description) or _has_nul(spec.params):
            reason = "must not contain NUL (\\u0000): the database cannot store it"
            problems.append(Problem(field=where, reason=reason))
            continue
        params: dict[str, Any] | None = None
        pool = "default"
        if spec.task_description is not None:
            if spec.params is not None:
                reason = "params go with method, not with task_description"
                problems.append(Problem(field=f"{where}.params", reason=reason))
            if not spec.task_description.strip():
                problems.append(Problem(field=f"{where}.task_description", reason="is empty"))
            elif len(spec.task_description) > limits.task_description:
                reason = (
                    f"must be at most {limits.task_description} characters "
                    f"(limits.task_description), got {len(spec.task_description)}"
                )
                problems.append(Problem(field=f"{where}.task_description", reason=reason))
        else:
            params = await _direct(registry, spec, where, principal, problems)
            found = await registry.find(spec.method) if spec.method else None
            pool = found.pool if found is not None else pool
        if len(problems) > before:
            continue
        nodes.append(
            Subtask(
                id=spec.id,
                kind="described" if spec.task_description is not None else "direct",
                method=spec.method,
                params=params,
                description=spec.task_description,
                depends_on=tuple(spec.depends_on),
                priority=spec.priority or priority,
                timeout=spec.timeout or timeout,
                pool=pool,
            )
        )
    # The shape is checked whatever else is wrong, on every sub-task as it was sent.
    problems += check_graph(
        [
            Subtask(
                id=spec.id,
                kind="described" if spec.task_description is not None else "direct",
                params=spec.params,
                description=spec.task_description,
                depends_on=tuple(spec.depends_on),
            )
            for spec in specs
        ]
    )
    if problems:
        raise ApiError(
            400,
            "invalid_graph",
            "; ".join(f"{p.field}: {p.reason}" for p in problems[:20]),
            problems,
        )
    return nodes
