"""AgentRun's guards without a model: repeated calls, the tool-call cap, unreadable streams."""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from qasdk.config import ModelConfig
from qasdk.models import ExecutionResult, MethodConfig, TraceStep
from qasdk_server.agent.run import NUDGE, AgentFailure, AgentRun, _LoopStopped

ADD = MethodConfig(
    name="add", description="Add.", return_type="int", module_path="m", function_name="add"
)


class Context:
    attempt = 1

    def __init__(self) -> None:
        self.steps: list[TraceStep] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.seq = itertools.count(1)

    def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> concurrent.futures.Future[ExecutionResult]:
        self.calls.append((name, arguments))
        future: concurrent.futures.Future[ExecutionResult] = concurrent.futures.Future()
        future.set_result(ExecutionResult(success=True, result=sum(arguments.values())))
        return future

    def record(self, step: TraceStep) -> None:
        self.steps.append(step)

    def next_seq(self) -> int:
        return next(self.seq)

    def observe_model(self, outcome: str, seconds: float) -> None:
        pass

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        pass


def agent(**settings: Any) -> tuple[AgentRun, Context]:
    context = Context()
    run = AgentRun(
        model=ModelConfig(**settings), llm=None, tools=[], methods={"add": ADD}, context=context
    )
    return run, context


def turn(run: AgentRun, output: list[Any] | None = None) -> None:
    for _ in run.model_turn(lambda: iter([output or [{"role": "assistant", "content": "x"}]])):
        pass


def test_a_repeat_in_a_later_turn_is_nudged_then_stopped_with_the_result() -> None:
    run, context = agent()
    turn(run)
    assert run.tool_call("add", '{"a": 1, "b": 2}') == "3"
    assert run.tool_call("add", {"b": 2, "a": 1}) == "3"  # same turn: not a repeat, runs again
    turn(run)
    assert run.tool_call("add", '{"b": 2, "a": 1}') == f"3\n\n{NUDGE}"
    assert run.tool_call("add", '{"a": 5, "b": 2}') == "7"  # other arguments run
    turn(run)
    with pytest.raises(_LoopStopped) as stopped:
        run.tool_call("add", '{"a": 1, "b": 2}')
    assert stopped.value.answer == "3"
    assert run._stopped(stopped.value).answer == "3"
    assert len(context.calls) == 3
    tool_steps = [s for s in context.steps if s.kind == "tool"]
    assert tool_steps[2].content == f"3\n\n{NUDGE}" and tool_steps[2].result == 3
    assert tool_steps[-1].error is not None and tool_steps[-1].error.type == "ToolCallLoop"


def test_on_tool_loop_fail() -> None:
    run, _ = agent(on_tool_loop="fail")
    with pytest.raises(AgentFailure) as failure:
        run._stopped(_LoopStopped("add", "3"))
    assert failure.value.error.type == "ToolCallLoop"


def test_more_tool_calls_than_allowed_fail_naming_the_setting() -> None:
    run, context = agent(max_tool_calls=2)
    turn(run)
    run.tool_call("add", '{"a": 1}')
    run.tool_call("add", '{"a": 2}')
    with pytest.raises(AgentFailure) as failure:
        run.tool_call("add", '{"a": 3}')
    assert failure.value.error.type == "TooManyToolCalls"
    assert "model.max_tool_calls" in failure.value.error.message
    assert len(context.calls) == 2


def broken() -> Iterator[list[Any]]:
    yield []
    raise IndexError("list index out of range")


def test_an_unreadable_stream_is_asked_again_once_without_streaming() -> None:
    run, context = agent()
    answer = [{"role": "assistant", "content": "fine"}]
    outputs = list(run.model_turn(broken, lambda: iter([answer])))
    assert outputs[-1] == answer
    assert [s.error.type if s.error else None for s in context.steps] == [
        "ModelProtocolError",
        None,
    ]


@pytest.mark.parametrize("unstreamed", [None, broken])
def test_an_unreadable_stream_otherwise_fails_clearly(unstreamed: Any) -> None:
    run, _ = agent()
    with pytest.raises(AgentFailure) as failure:
        list(run.model_turn(broken, unstreamed))
    assert failure.value.error.type == "ModelProtocolError"
    assert "IndexError" in failure.value.error.message


def test_recovery_turns_text_into_calls_only_when_on() -> None:
    text = '{"name": "add", "arguments": {"a": 1}}'
    for setting, expected in [(True, "add"), (False, None)]:
        run, context = agent(recover_tool_calls=setting)
        outputs = list(run.model_turn(lambda: iter([[{"role": "assistant", "content": text}]])))
        call = outputs[-1][-1].get("function_call")
        assert (call and call.name) == expected
        result = context.steps[-1].result
        assert (result or {}).get("recovered_from") == (text if setting else None)
