"""``@tool``: mark a function as a qasdk tool.

The decorator only records metadata on the function and returns the very same
object, so calling the function directly behaves exactly as before. The
scanner never runs it: ``qasdk sync`` reads the decorator statically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, overload

import msgspec

from qasdk.registration import rules

__all__ = ["ToolSpec", "tool"]

F = TypeVar("F", bound=Callable[..., Any])

#: The attribute ``@tool`` sets on the functions it marks.
TOOL_ATTRIBUTE = "__qasdk_tool__"


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What ``@tool(...)`` was given, kept on the function for introspection."""

    name: str | None = None
    description: str | None = None
    timeout: float | None = None
    tags: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    cache_ttl: float | None = None
    retries: int = 0
    retry_on: tuple[str, ...] = ()
    max_concurrency: int | None = None
    rate: str | None = None
    redact: tuple[str, ...] = ()
    requires_approval: bool = False
    pool: str | None = None


def _listed(values: Iterable[str]) -> Any:
    """A tuple of what was given as a list; a string (or a non-list) as is, for the rules."""
    if isinstance(values, Iterable) and not isinstance(values, str):
        return tuple(values)
    return values


def _check(option: str, reasons: Iterator[str]) -> None:
    """The same rules ``qasdk sync`` applies, at import time: fail where the mistake is."""
    for reason in reasons:
        raise TypeError(f"@tool {option} {reason}")


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    tags: Iterable[str] = (),
    permissions: Iterable[str] = (),
    cache_ttl: float | None = None,
    retries: int = 0,
    retry_on: Iterable[str] = (),
    max_concurrency: int | None = None,
    rate: str | None = None,
    redact: Iterable[str] = (),
    requires_approval: bool = False,
    pool: str | None = None,
) -> Callable[[F], F]: ...


def tool(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    tags: Iterable[str] = (),
    permissions: Iterable[str] = (),
    cache_ttl: float | None = None,
    retries: int = 0,
    retry_on: Iterable[str] = (),
    max_concurrency: int | None = None,
    rate: str | None = None,
    redact: Iterable[str] = (),
    requires_approval: bool = False,
    pool: str | None = None,
) -> F | Callable[[F], F]:
    """Register ``func`` as a tool when its folder is synced.

    Use it bare (``@tool``) or with options::

        @tool(name="weather", description="Current weather", timeout=5, tags=["geo"])
        def get_weather(city: str) -> dict: ...

    Args:
        func: The function, when used bare.
        name: The tool name the model sees; defaults to the function name.
        description: Overrides the docstring summary.
        timeout: Seconds the tool may run before it is stopped (default 30).
        tags: Free-form labels, listed by ``qasdk methods``.
        permissions: What the tool needs (``network``, ``fs:read``, ``fs:write``,
            ``subprocess``, ``env``, ``gpu`` or a custom name): keys may be limited
            by it. A declaration, not a sandbox.
        cache_ttl: Seconds a result is reused for the same arguments, by every
            worker (the tool must be deterministic: same arguments, same result).
        retries: Further attempts after a timeout or an error named in
            ``retry_on`` (0-10), with exponential backoff: only for tools that
            are safe to repeat.
        retry_on: Error type names (``ConnectionError``) that are worth a retry.
        max_concurrency: Calls running at once, across every worker; more wait.
        rate: Calls started per period (``"10/s"``, ``"100/m"``), across every
            worker; more wait their turn (within the task's deadline).
        redact: Argument and result fields (``["password"]``) masked in logs and
            traces, wherever they appear in the values.
        requires_approval: Each call waits for a person to approve it
            (``POST /api/tasks/{id}/approvals/{approval_id}``) before it runs.
        pool: The worker pool its direct tasks run in (``"gpu"``: only workers
            started with ``--pool gpu`` take them); default ``"default"``.
    """
    if name is not None:
        _check("name", rules.check_name(name))
    if description is not None:
        _check("description", rules.check_description(description))
    _check("timeout", rules.check_timeout(timeout))
    labels = _listed(tags)
    _check("tags", rules.check_tags(labels))
    needs = _listed(permissions)
    _check("permissions", rules.check_permissions(needs))
    _check("cache_ttl", rules.check_cache_ttl(cache_ttl))
    _check("retries", rules.check_retries(retries))
    retry_types = _listed(retry_on)
    _check("retry_on", rules.check_retry_on(retry_types))
    _check("max_concurrency", rules.check_max_concurrency(max_concurrency))
    _check("rate", rules.check_rate(rate))
    masked = _listed(redact)
    _check("redact", rules.check_redact(masked))
    _check("requires_approval", rules.check_flag(requires_approval))
    _check("pool", rules.check_pool(pool))
    spec = ToolSpec(
        name=name,
        description=description,
        timeout=None if timeout is None else float(timeout),
        tags=tuple(labels),
        permissions=tuple(sorted(needs)),
        cache_ttl=None if cache_ttl is None else float(cache_ttl),
        retries=retries,
        retry_on=tuple(retry_types),
        max_concurrency=max_concurrency,
        rate=rate,
        redact=tuple(masked),
        requires_approval=requires_approval,
        pool=pool,
    )

    def mark(f: F) -> F:
        if not callable(f):
            raise TypeError(f"@tool can only decorate a function, got {type(f).__name__}")
        setattr(f, TOOL_ATTRIBUTE, spec)
        return f

    if func is not None:
        return mark(func)
    return mark
