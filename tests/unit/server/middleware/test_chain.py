"""The chain's order and its answers: short-circuits, refusals, crashes, replacements."""

from __future__ import annotations

from pathlib import Path

import pytest

from qasdk.config import MiddlewareConfig
from qasdk.errors import ConfigurationError
from qasdk.models import ExecutionResult, MethodConfig
from qasdk_server.metrics import Metrics
from qasdk_server.middleware import Middleware, ToolCall, ToolError, ToolRefused
from qasdk_server.middleware.chain import Chain, Link
from qasdk_server.middleware.load import build_chain

pytestmark = pytest.mark.anyio

OK = ExecutionResult(success=True, result=1)
FAILED = ExecutionResult(success=False, error_type="ValueError", error="bad")


class Trace(Middleware):
    def __init__(self, tag: str, seen: list[str], **behaviour: object) -> None:
        self.tag, self.seen, self.behaviour = tag, seen, behaviour

    async def before(self, call: ToolCall) -> ExecutionResult | None:
        self.seen.append(f"{self.tag}.before")
        if self.behaviour.get("refuse"):
            raise ToolRefused("no", error_type="Nope")
        if self.behaviour.get("crash") == "before":
            raise RuntimeError("boom")
        answer = self.behaviour.get("answer")
        return answer if isinstance(answer, ExecutionResult) else None

    async def after(self, call: ToolCall, result: ExecutionResult) -> ExecutionResult:
        self.seen.append(f"{self.tag}.after")
        if self.behaviour.get("crash") == "after":
            raise RuntimeError("late boom")
        return result

    async def on_error(self, call: ToolCall, error: ToolError) -> ExecutionResult | None:
        self.seen.append(f"{self.tag}.on_error:{error.error_type}")
        return OK if self.behaviour.get("recover") else None


def run(chain: Chain, seen: list[str], outcome: ExecutionResult = OK, tags: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    async def execute(call: ToolCall) -> ExecutionResult:
        seen.append("tool")
        return outcome

    method = MethodConfig(
        name="t", description="d", return_type="int", module_path="m", function_name="f", tags=tags
    )
    return chain.run(ToolCall("t", {}, method=method), execute)


async def test_before_runs_outside_in_and_after_inside_out() -> None:
    seen: list[str] = []
    chain = Chain([Link("a", Trace("a", seen)), Link("b", Trace("b", seen))])
    assert await run(chain, seen) is OK
    assert seen == ["a.before", "b.before", "tool", "b.after", "a.after"]


async def test_an_answer_skips_the_tool_and_the_inner_links() -> None:
    seen: list[str] = []
    answer = ExecutionResult(success=True, result="cached")
    chain = Chain(
        [
            Link("a", Trace("a", seen)),
            Link("b", Trace("b", seen, answer=answer)),
            Link("c", Trace("c", seen)),
        ]
    )
    assert await run(chain, seen) is answer
    assert seen == ["a.before", "b.before", "a.after"]


async def test_a_refusal_is_a_failure_the_outer_links_see() -> None:
    seen: list[str] = []
    chain = Chain([Link("a", Trace("a", seen)), Link("b", Trace("b", seen, refuse=True))])
    result = await run(chain, seen)
    assert (result.success, result.error_type, result.error) == (False, "Nope", "no")
    assert seen == ["a.before", "b.before", "a.on_error:Nope"]


async def test_a_failure_goes_to_on_error_which_may_replace_it() -> None:
    seen: list[str] = []
    chain = Chain([Link("a", Trace("a", seen)), Link("b", Trace("b", seen, recover=True))])
    assert await run(chain, seen, FAILED) is OK
    assert seen == ["a.before", "b.before", "tool", "b.on_error:ValueError", "a.after"]


@pytest.mark.parametrize("where", ["before", "after"])
async def test_a_crashing_middleware_fails_the_call_with_its_name(where: str) -> None:
    seen: list[str] = []
    chain = Chain([Link("shaky", Trace("s", seen, crash=where))])
    result = await run(chain, seen)
    assert result.success is False and result.error_type == "MiddlewareError"
    assert f"middleware 'shaky' failed in {where}()" in (result.error or "")


async def test_links_apply_by_tool_name_or_tag() -> None:
    seen: list[str] = []
    chain = Chain(
        [
            Link("named", Trace("named", seen), tools=["other"]),
            Link("tagged", Trace("tagged", seen), tags=["math"]),
        ]
    )
    await run(chain, seen, tags=("math",))
    assert seen == ["tagged.before", "tool", "tagged.after"]


def problems(configs: list[MiddlewareConfig], root: Path) -> dict[str, str]:
    with pytest.raises(ConfigurationError) as caught:
        build_chain(configs, metrics=Metrics(), root=root)
    return {p.field or "": p.reason for p in caught.value.problems}


def test_every_bad_entry_is_named_at_once(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("class NotOne:\n    pass\n")
    found = problems(
        [
            MiddlewareConfig(name="slow_cals"),
            MiddlewareConfig(name="metrics", options={"x": 1}),
            MiddlewareConfig(name="mine:NotOne"),
            MiddlewareConfig(name="json:JSONDecoder"),
            MiddlewareConfig(name="mine:Missing"),
            MiddlewareConfig(name="slow_calls", options={"threshold_ms": -1}),
        ],
        tmp_path,
    )
    assert "did you mean 'slow_calls'" in found["middleware[0].name"]
    assert "takes no options" in found["middleware[1].options"]
    assert "not a subclass of qasdk_server.middleware.Middleware" in found["middleware[2].name"]
    assert "standard-library module" in found["middleware[3].name"]
    assert "has no 'Missing'" in found["middleware[4].name"]
    assert "threshold_ms" in found["middleware[5].options"]


def test_disabled_entries_are_left_out(tmp_path: Path) -> None:
    chain = build_chain(
        [MiddlewareConfig(name="metrics"), MiddlewareConfig(name="nonsense", enabled=False)],
        metrics=Metrics(),
        root=tmp_path,
    )
    assert chain.names == ["metrics"]


def test_an_installed_package_ships_middleware_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acme_mw.py").write_text(
        "from qasdk_server.middleware import Middleware\n"
        "class Audit(Middleware):\n"
        "    name = 'acme-audit'\n"
        "    def __init__(self, level=1):\n"
        "        self.level = level\n"
    )
    info = tmp_path / "acme_mw-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-mw\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[qasdk.middleware]\nacme = acme_mw:Audit\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    chain = build_chain(
        [MiddlewareConfig(name="acme", options={"level": 2})], metrics=Metrics(), root=tmp_path
    )
    assert chain.names == ["acme-audit"]
    assert chain.links[0].middleware.level == 2  # type: ignore[attr-defined]
