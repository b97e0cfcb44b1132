"""qwen-agent's native function calling (``model.function_calling: native``), end to end."""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from qasdk.config import ModelConfig
from qasdk.models import ExecutionResult, TraceStep
from qasdk.registration.collect import collect
from qasdk.testing import ScriptedModel, reply
from qasdk_server.agent import AgentRun, build_llm, qwen_tools
from qasdk_server.executor import Executor

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
TOOLS = Path(__file__).parent / "server_tools"


class _Context:
    """The agent's view of a worker, as the task runner gives it (``AgentContext``)."""

    attempt = 1

    def __init__(
        self, executor: Executor, loop: asyncio.AbstractEventLoop, steps: list[TraceStep]
    ) -> None:
        self.executor, self.loop, self.steps = executor, loop, steps
        self.seq = itertools.count(1)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Future[ExecutionResult]:
        return asyncio.run_coroutine_threadsafe(self.executor.execute(name, arguments), self.loop)

    def record(self, step: TraceStep) -> None:
        self.steps.append(step)

    def next_seq(self) -> int:
        return next(self.seq)

    def observe_model(self, outcome: str, seconds: float) -> None:
        pass

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        pass


async def test_native_tool_calls_run_through_the_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(TOOLS, tmp_path / "tools")
    monkeypatch.chdir(tmp_path)
    methods = {c.name: c for c in collect(["tools"]).configs}
    steps: list[TraceStep] = []
    async with Executor(methods, processes=1, cwd=tmp_path) as executor:
        loop = asyncio.get_running_loop()
        # strict: the tool result must name its call, as llama-cpp-python and vLLM demand.
        with ScriptedModel(
            [reply.tool_call("add", {"a": 20, "b": 22}), reply.text("42 it is")], strict=True
        ) as model:
            config = ModelConfig(api_base=model.url, function_calling="native")
            run = AgentRun(
                model=config,
                llm=build_llm(config),
                tools=qwen_tools(methods),
                methods=methods,
                context=_Context(executor, loop, steps),
            )
            outcome = await loop.run_in_executor(None, run.run, "add 20 and 22")
            first, second = model.requests
    assert outcome.answer == "42 it is"
    assert {t["function"]["name"] for t in first["tools"]} == set(methods)  # the OpenAI tools API
    assert [(s.kind, s.name) for s in steps] == [
        ("model", "qwen3:4b"),
        ("tool", "add"),
        ("model", "qwen3:4b"),
    ]
    assert steps[1].result == 42
    assert any(
        m.get("role") == "tool" and "42" in str(m.get("content")) for m in second["messages"]
    )
    assert not (tmp_path / "workspace").exists()  # qwen-agent's Memory is not created
