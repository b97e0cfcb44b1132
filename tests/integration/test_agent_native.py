"""qwen-agent's native function calling (``model.function_calling: native``), end to end."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from qasdk.collect import collect
from qasdk.config import ModelConfig
from qasdk.models import TraceStep
from qasdk.testing import ScriptedModel, reply
from server.agent import AgentRun, build_llm, qwen_tools
from server.executor import Executor

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
TOOLS = Path(__file__).parent / "server_tools"


async def test_native_tool_calls_run_through_the_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(TOOLS, tmp_path / "tools")
    monkeypatch.chdir(tmp_path)
    methods = {c.name: c for c in collect(["tools"]).configs}
    steps: list[TraceStep] = []
    seq = itertools.count(1)
    async with Executor(methods, workers=1, cwd=tmp_path) as executor:
        loop = asyncio.get_running_loop()
        with ScriptedModel(
            [reply.tool_call("add", {"a": 20, "b": 22}), reply.text("42 it is")]
        ) as model:
            config = ModelConfig(api_base=model.url, function_calling="native")
            run = AgentRun(
                model=config,
                llm=build_llm(config),
                tools=qwen_tools(methods),
                methods=methods,
                execute=lambda name, args: asyncio.run_coroutine_threadsafe(
                    executor.execute(name, args), loop
                ),
                record=steps.append,
                next_seq=lambda: next(seq),
                attempt=1,
                retries=0,
                backoff=0,
                deadline=None,
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
