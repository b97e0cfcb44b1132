"""Check and convert a tool's arguments against its registered parameters.

Used when a direct task is submitted (a bad argument is a 400 naming the
field) and again by the executor right before the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qasdk.errors import ValidationError
from qasdk.models import MethodConfig, Problem
from qasdk.registration.types import CoercionError, coerce, parameter_schema

__all__ = ["prepare_params", "registered_defaults"]


def prepare_params(
    config: MethodConfig, params: Mapping[str, Any], *, fill_defaults: bool = True
) -> dict[str, Any]:
    """The arguments to call the tool with: coerced, defaults applied; or every problem.

    With ``fill_defaults=False`` a parameter the caller left out stays out, so
    the function's own default object applies when it runs (what a task stores).
    """
    name = config.name
    problems: list[Problem] = []
    accepted = {p.name for p in config.parameters}
    for key in params:
        if key not in accepted:
            names = ", ".join(p.name for p in config.parameters)
            reason = (
                f"unexpected parameter; accepted parameters: {names}"
                if names
                else "unexpected parameter; this tool takes no parameters"
            )
            problems.append(Problem(tool=name, field=f"params.{key}", reason=reason))
    prepared: dict[str, Any] = {}
    for param in config.parameters:
        field = f"params.{param.name}"
        if param.name in params:
            value = params[param.name]
            if value is None and param.has_default and param.default is None:
                prepared[param.name] = None  # ``x: int = None`` accepts an explicit null
                continue
            try:
                prepared[param.name] = coerce(value, parameter_schema(param), field)
            except CoercionError as exc:
                problems.append(Problem(tool=name, field=exc.path or field, reason=exc.reason))
        elif param.has_default:
            if fill_defaults:
                prepared[param.name] = param.default
        elif param.required:
            reason = f"missing required parameter (type {param.type})"
            problems.append(Problem(tool=name, field=field, reason=reason))
    if problems:
        raise ValidationError(problems=problems)
    return prepared


def registered_defaults(config: MethodConfig, given: Mapping[str, Any]) -> dict[str, Any]:
    """Registered defaults of the parameters not in ``given``.

    The tool process uses one only where the function has no default of its
    own (a tool declared in methods.yaml may give one its code does not).
    """
    return {p.name: p.default for p in config.parameters if p.has_default and p.name not in given}
