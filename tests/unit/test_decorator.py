from __future__ import annotations

import asyncio
import inspect

import pytest

from qasdk import tool
from qasdk.decorator import TOOL_ATTRIBUTE, ToolSpec


def test_bare_decorator_returns_the_same_function() -> None:
    def add(a: int, b: int = 2) -> int:
        return a + b

    decorated = tool(add)
    assert decorated is add
    assert decorated(1) == 3
    assert inspect.signature(decorated) == inspect.signature(add)
    assert getattr(add, TOOL_ATTRIBUTE) == ToolSpec()


def test_decorator_with_options_records_them() -> None:
    @tool(name="adder", description="Adds.", timeout=5, tags=["math"])
    def add(a: int) -> int:
        """Add one."""
        return a + 1

    assert add(1) == 2
    assert add.__name__ == "add"
    assert add.__doc__ == "Add one."
    assert getattr(add, TOOL_ATTRIBUTE) == ToolSpec(
        name="adder", description="Adds.", timeout=5.0, tags=("math",)
    )


def test_permissions_are_recorded_sorted() -> None:
    @tool(permissions=["network", "fs:write"])
    def fetch(url: str) -> str:
        return url

    assert fetch("u") == "u"
    assert getattr(fetch, TOOL_ATTRIBUTE).permissions == ("fs:write", "network")


def test_async_function_stays_a_coroutine_function() -> None:
    @tool
    async def fetch(x: int) -> int:
        return x * 2

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(21)) == 42


def test_exceptions_propagate_unchanged() -> None:
    @tool()
    def boom() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError, match="k"):
        boom()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": 3}, "name must be a string"),
        ({"description": ["x"]}, "description must be a string"),
        ({"timeout": 0}, "positive number"),
        ({"timeout": True}, "positive number"),
        ({"tags": "geo"}, "list of strings"),
        ({"permissions": "network"}, r"permissions must be a list .* \(write \['network'\]\)"),
        ({"permissions": ["netwrok"]}, r"did you mean 'network'\?"),
        ({"permissions": ["gpu", "gpu"]}, "'gpu' is listed twice"),
    ],
)
def test_bad_options_fail_at_decoration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        tool(**kwargs)  # type: ignore[arg-type]


def test_not_a_function() -> None:
    with pytest.raises(TypeError, match="only decorate a function"):
        tool()(42)  # type: ignore[type-var]
