"""What real small models do, scripted, against real qwen-agent (issue 15).

Calls written as text are recovered, repeated calls are nudged then stopped,
tool calls per task are capped, and an empty streamed chunk crashes nothing.
The first tests go through a served project (``model.function_calling: nous``,
``max_turns: 4``); the ones that need other settings drive :class:`AgentRun`
with the real executor, as the worker does.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from qasdk.config import ModelConfig
from qasdk.models import TraceStep
from qasdk.registration.collect import collect
from qasdk.testing import ScriptedModel, reply
from qasdk.testing._protocol import written_calls
from qasdk_server.agent import AgentFailure, AgentRun, build_llm, qwen_tools
from qasdk_server.agent.run import NUDGE
from qasdk_server.executor import Executor
from tests.integration.harness import Server
from tests.integration.test_agent_native import TOOLS, _Context

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADD = {"a": 2, "b": 40}


# -- through a served project -----------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        reply.tool_call("add", ADD, written_as="json"),
        reply.tool_call("add", ADD, written_as="json", arguments_key="parameters"),
        reply.tool_call("add", ADD, written_as="json", string_arguments=True),
        reply.tool_call("add", ADD, written_as="fenced"),
        # qwen-agent's nous parser drops a tagged call keyed "parameters": read from the raw text
        reply.tool_call("add", ADD, written_as="tags", arguments_key="parameters"),
        reply.tool_call("add", ADD, written_as="json", thinking="Add them."),
    ],
    ids=["json", "parameters", "string-arguments", "fenced", "tags-parameters", "thinking"],
)
async def test_a_call_written_as_text_is_run_and_marked(
    served: Server, model: ScriptedModel, conn: Any, written: reply.ToolCallsReply
) -> None:
    model.push(written, reply.text("The sum is 42."))
    task = served.run(task_description="What is 2 + 40?")
    assert (task["status"], task["result"]) == ("completed", "The sum is 42."), task
    steps = served.trace(task["task_id"])
    assert [(s["kind"], s["name"]) for s in steps] == [
        ("model", "qwen3:4b"),
        ("tool", "add"),
        ("model", "qwen3:4b"),
    ]
    assert steps[0]["result"]["recovered_from"] == written_calls(written)
    assert steps[0]["result"]["tool_calls"] == [{"name": "add", "arguments": '{"a": 2, "b": 40}'}]
    assert steps[0].get("thinking") == written.thinking
    assert (steps[1]["arguments"], steps[1]["result"]) == (ADD, 42)
    # The model saw its call as a call, and the result after it.
    history = str(model.requests[1]["messages"])
    assert "<tool_call>" in history and "42" in history


async def test_a_list_of_calls_written_as_text_runs_each(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    written = reply.tool_calls([("add", ADD), ("echo", {"text": "hi"})], written_as="json")
    model.push(written, reply.text("Done."))
    task = served.run(task_description="Add, then echo")
    assert task["status"] == "completed", task
    steps = served.trace(task["task_id"])
    tools = [(s["name"], s["result"]) for s in steps if s["kind"] == "tool"]
    assert tools == [("add", 42), ("echo", "hi")]
    assert steps[0]["result"]["recovered_from"].startswith("[")


@pytest.mark.parametrize(
    "content",
    [
        '{"name": "not_a_tool", "arguments": {}}',
        'I would call {"name": "add", "arguments": {"a": 1, "b": 2}} for that.',
    ],
)
async def test_text_that_is_not_a_call_of_an_offered_tool_stays_the_answer(
    served: Server, model: ScriptedModel, conn: Any, content: str
) -> None:
    model.push(reply.text(content))
    task = served.run(task_description="hi")
    assert (task["status"], task["result"]) == ("completed", content)
    assert [s["kind"] for s in served.trace(task["task_id"])] == ["model"]


async def test_a_repeated_call_is_nudged_once_then_the_loop_ends_with_its_result(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.rule = lambda body: reply.tool_call("add", ADD)
    task = served.run(task_description="What is 2 + 40?")
    assert (task["status"], task["result"]) == ("completed", "42"), task
    steps = served.trace(task["task_id"])
    assert [(s["kind"], s.get("name")) for s in steps] == [
        ("model", "qwen3:4b"),
        ("tool", "add"),
        ("model", "qwen3:4b"),
        ("tool", "add"),
        ("model", "qwen3:4b"),
        ("tool", "add"),
    ]
    assert steps[1]["result"] == 42 and "content" not in steps[1]
    assert steps[3]["result"] == 42 and steps[3]["content"] == f"42\n\n{NUDGE}"
    assert steps[5]["error"]["type"] == "ToolCallLoop"
    assert "answers with the last result" in steps[5]["error"]["message"]
    assert len(model.requests) == 3  # within max_turns (4)
    assert NUDGE in str(model.requests[2]["messages"])


async def test_an_empty_streamed_chunk_crashes_nothing(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(
        reply.tool_call("add", ADD, empty_chunk=True),
        reply.text("The sum is 42.", empty_chunk=True),
    )
    task = served.run(task_description="What is 2 + 40?")
    assert (task["status"], task["result"]) == ("completed", "The sum is 42."), task


# -- other settings, through AgentRun and the real executor ------------------------------


Runner = Callable[..., Any]


@pytest.fixture
async def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runner]:
    """``agent(model, config_overrides, description, patch_llm=None)`` → (outcome, steps)."""
    shutil.copytree(TOOLS, tmp_path / "tools")
    monkeypatch.chdir(tmp_path)
    methods = {c.name: c for c in collect(["tools"]).configs}
    async with Executor(methods, processes=1, cwd=tmp_path) as executor:
        loop = asyncio.get_running_loop()

        async def run(
            model: ScriptedModel,
            description: str = "What is 2 + 40?",
            patch_llm: Callable[[Any], None] | None = None,
            **settings: Any,
        ) -> tuple[Any, list[TraceStep]]:
            config = ModelConfig(api_base=model.url, max_turns=4, **settings)
            llm = build_llm(config)
            if patch_llm is not None:
                patch_llm(llm)
            steps: list[TraceStep] = []
            agent_run = AgentRun(
                model=config,
                llm=llm,
                tools=qwen_tools(methods),
                methods=methods,
                context=_Context(executor, loop, steps),
            )
            try:
                outcome: Any = await loop.run_in_executor(None, agent_run.run, description)
            except AgentFailure as failure:
                outcome = failure.error
            return outcome, steps

        yield run


@pytest.mark.parametrize("written_as", ["json", "fenced", "tags"])
async def test_native_mode_recovers_calls_the_server_returned_as_text(
    agent: Runner, written_as: Any
) -> None:
    written = reply.tool_call("add", ADD, written_as=written_as)
    with ScriptedModel([written, reply.text("42 it is")]) as model:
        outcome, steps = await agent(model, function_calling="native")
        first, second = model.requests
    assert outcome.answer == "42 it is"
    assert first["tools"]  # the native tools API was used
    assert steps[0].result["recovered_from"] == written_calls(written)
    assert (steps[1].kind, steps[1].result) == ("tool", 42)
    assert any(m.get("tool_calls") for m in second["messages"])  # sent back as a real call


@pytest.mark.parametrize("function_calling", ["nous", "native"])
async def test_recovery_can_be_turned_off(agent: Runner, function_calling: str) -> None:
    written = reply.tool_call("add", ADD, written_as="json")
    with ScriptedModel([written]) as model:
        outcome, steps = await agent(
            model, function_calling=function_calling, recover_tool_calls=False
        )
    assert outcome.answer == written_calls(written)
    assert [s.kind for s in steps] == ["model"]


@pytest.mark.parametrize("function_calling", ["nous", "native"])
async def test_a_call_loop_can_fail_the_task(agent: Runner, function_calling: str) -> None:
    with ScriptedModel() as model:
        model.rule = lambda body: reply.tool_call("add", ADD, written_as="json")  # recovered too
        error, steps = await agent(model, function_calling=function_calling, on_tool_loop="fail")
        requests = len(model.requests)
    assert error.type == "ToolCallLoop"
    assert "'add'" in error.message and "model.on_tool_loop" in error.message
    assert [s.kind for s in steps].count("tool") == 3
    assert requests == 3


async def test_a_repeated_failing_call_fails_the_task_even_when_answering(agent: Runner) -> None:
    with ScriptedModel() as model:
        model.rule = lambda body: reply.tool_call("fail", {"message": "boom"})
        error, _ = await agent(model)
    assert error.type == "ToolCallLoop"


async def test_tool_calls_per_task_are_capped(agent: Runner) -> None:
    calls = [("add", {"a": n, "b": 1}) for n in range(3)]
    with ScriptedModel([reply.tool_calls(calls), reply.text("unused")]) as model:
        error, steps = await agent(model, max_tool_calls=2)
    assert error.type == "TooManyToolCalls"
    assert "more than 2 tool calls (model.max_tool_calls)" in error.message
    assert [s.result for s in steps if s.kind == "tool"] == [1, 2]


async def test_a_stream_qwen_agent_cannot_read_is_asked_again_without_streaming(
    agent: Runner,
) -> None:
    def qwen_prompt(llm: Any) -> None:  # the prompt that fails on an empty chunk (IndexError)
        from qwen_agent.llm.fncall_prompts.qwen_fncall_prompt import QwenFnCallPrompt

        llm.fncall_prompt = QwenFnCallPrompt()

    with ScriptedModel([reply.text("fine", empty_chunk=True), reply.text("fine")]) as model:
        outcome, steps = await agent(model, patch_llm=qwen_prompt)
        streamed = [r.get("stream") for r in model.requests]
    assert outcome.answer == "fine"
    assert streamed == [True, False]
    assert steps[0].error is not None and steps[0].error.type == "ModelProtocolError"
    assert "IndexError" in steps[0].error.message
    assert (steps[1].kind, steps[1].error, steps[1].content) == ("model", None, "fine")


async def test_an_unreadable_stream_fails_clearly_when_it_cannot_be_asked_again(
    agent: Runner,
) -> None:
    def break_stream(llm: Any) -> None:
        original = llm._chat_stream

        def chat_stream(*args: Any, **kwargs: Any) -> Any:
            for _ in original(*args, **kwargs):
                pass
            raise IndexError("list index out of range")

        llm._chat_stream = chat_stream

    with ScriptedModel([reply.text("fine")]) as model:
        error, steps = await agent(model, function_calling="native", patch_llm=break_stream)
    assert error.type == "ModelProtocolError"
    assert "IndexError" in error.message and "without streaming" in error.message
    assert [s.error.type for s in steps if s.error] == ["ModelProtocolError"]
