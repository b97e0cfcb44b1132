"""``@tool``: mark a function as a qasdk tool.

The decorator only records metadata on the function and returns the very same
object, so calling the function directly behaves exactly as before. The
scanner never runs it: ``qasdk sync`` reads the decorator statically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

import msgspec

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


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    tags: Iterable[str] = (),
) -> Callable[[F], F]: ...


def tool(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    tags: Iterable[str] = (),
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
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"@tool name must be a string, got {type(name).__name__}")
    if description is not None and not isinstance(description, str):
        raise TypeError(f"@tool description must be a string, got {type(description).__name__}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise TypeError(f"@tool timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(tags, str):
        raise TypeError("@tool tags must be a list of strings, not a single string")
    spec = ToolSpec(
        name=name,
        description=description,
        timeout=None if timeout is None else float(timeout),
        tags=tuple(tags),
    )

    def mark(f: F) -> F:
        if not callable(f):
            raise TypeError(f"@tool can only decorate a function, got {type(f).__name__}")
        setattr(f, TOOL_ATTRIBUTE, spec)
        return f

    if func is not None:
        return mark(func)
    return mark
