"""``@tool(...)`` as written in the source → its options, checked by the registration rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import griffe

from qasdk._documents import suggestion
from qasdk.registration import rules

__all__ = ["OPTIONS", "TOOL_PATHS", "option_line", "read_options", "tool_decorator"]

#: Where ``@tool`` lives; griffe resolves every import style to one of these.
TOOL_PATHS = frozenset({"qasdk.tool", "qasdk.decorator.tool"})
OPTIONS = (
    "name",
    "description",
    "timeout",
    "tags",
    "permissions",
    "cache_ttl",
    "retries",
    "retry_on",
    "max_concurrency",
    "rate",
    "redact",
    "requires_approval",
    "pool",
)
_RULES = {
    "name": rules.check_name,
    "description": rules.check_description,
    "timeout": rules.check_timeout,
    "tags": rules.check_tags,
    "permissions": rules.check_permissions,
    "cache_ttl": rules.check_cache_ttl,
    "retries": rules.check_retries,
    "retry_on": rules.check_retry_on,
    "max_concurrency": rules.check_max_concurrency,
    "rate": rules.check_rate,
    "redact": rules.check_redact,
    "requires_approval": rules.check_flag,
    "pool": rules.check_pool,
}

#: Reports a problem with an option: (field or None, reason).
Report = Callable[[str | None, str], None]


def tool_decorator(function: griffe.Function) -> griffe.Decorator | None:
    """The ``@tool`` decorator of ``function``, however ``tool`` was imported."""
    for decorator in function.decorators:
        try:
            if decorator.callable_path in TOOL_PATHS:
                return decorator
        except Exception:  # an unresolvable expression is simply not our decorator
            continue
    return None


def option_line(decorator: griffe.Decorator, lines: Sequence[str], key: str) -> int | None:
    """The line of ``key=`` in a ``@tool(...)`` written over several lines, if it is found."""
    first = decorator.lineno
    if first is None:
        return None
    last = decorator.endlineno or first
    written = re.compile(rf"\b{re.escape(key)}\s*=")
    for number in range(first, min(last, len(lines)) + 1):
        if written.search(lines[number - 1]):
            return number
    return None


def read_options(
    decorator: griffe.Decorator, literal: Callable[[Any], Any], report: Report
) -> dict[str, Any]:
    """The options of ``@tool(...)``; what cannot be read or breaks a rule is reported.

    ``literal`` evaluates an argument without running code (literals and module
    constants); it raises ``ValueError`` for anything else.
    """
    value = decorator.value
    if not isinstance(value, griffe.ExprCall):
        return {}
    options: dict[str, Any] = {}
    for argument in value.arguments:
        if not isinstance(argument, griffe.ExprKeyword):
            report(None, f"@tool takes keyword arguments only, got {argument}")
            continue
        key = argument.name
        if key not in OPTIONS:
            known = f"{', '.join(OPTIONS[:-1])} or {OPTIONS[-1]}"
            report(None, f"@tool has no option {key!r}{suggestion(key, OPTIONS)}; use {known}")
            continue
        try:
            given = literal(argument.value)
        except ValueError:
            report(
                key,
                f"@tool({key}={argument.value}) must be a literal value: "
                "qasdk reads it without running your code",
            )
            continue
        reasons = list(_RULES[key](given))
        for reason in reasons:
            report(key, reason)
        if not reasons:
            options[key] = float(given) if key == "timeout" else given
    return options
