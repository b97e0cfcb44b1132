"""One function-calling format, tried the way a task runs: a probe tool through AgentRun.

The model gets a built-in ``get_weather(city)`` tool and a question that needs
it; :class:`~qasdk_server.agent.AgentRun` (with the real qwen-agent shim, the
LLM client of :func:`~qasdk_server.agent.build_llm` and the tools of
:func:`~qasdk_server.agent.qwen_tools`) drives the conversation. Only the
executor is replaced: the probe's result is made here, in process. The trace
says whether the call came tagged or was recovered from text, with which
arguments, and whether the model then answered.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from typing import Any, Literal

import msgspec

from qasdk.config import ModelConfig
from qasdk.models import ExecutionResult, MethodConfig, MethodParameter, TraceStep
from qasdk_server.agent import AgentFailure, AgentRun, Cancelled, build_llm, qwen_tools

__all__ = ["CITY", "PROBE_TOOL", "QUESTION", "FormatResult", "probe"]

CITY = "Paris"
QUESTION = f"What is the weather in {CITY} right now?"
PROBE_TOOL = MethodConfig(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters=(MethodParameter(name="city", type="str", description="The city's name."),),
    return_type="dict",
    module_path="qasdk_server.check.probe",
    function_name="get_weather",
)
#: Turns and calls the probe allows: a call, its answer, and room for one retry.
MAX_TURNS = 4

Call = Literal["tagged", "recovered", "none"]


class FormatResult(msgspec.Struct, kw_only=True):
    """What one format did: the call, its arguments, the answer, and why not."""

    function_calling: Literal["nous", "native"]
    #: The probe tool ran with the right city and the task would complete: with the
    #: model's answer, or (``model.on_tool_loop: answer``) the loop guard's.
    works: bool
    #: The model answered after the result (the loop guard did not have to).
    answered: bool = False
    call: Call = "none"
    #: The first probe call's arguments, as the model gave them.
    arguments: Any = None
    right_arguments: bool = False
    answer: str | None = None
    #: The model asked for the same call until the loop guard stopped it.
    loop_stopped: bool = False
    turns: int = 0
    seconds: float = 0.0
    #: What the model wrote when it did not call the tool (cut to 200 characters).
    wrote: str | None = None
    error: str | None = None


class _ProbeContext:
    """The AgentContext of the probe: the tool answers in process, steps stay in memory."""

    attempt = 1

    def __init__(self) -> None:
        self.steps: list[TraceStep] = []
        self._seq = itertools.count(1)

    def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> concurrent.futures.Future[ExecutionResult]:
        future: concurrent.futures.Future[ExecutionResult] = concurrent.futures.Future()
        city = str(arguments.get("city", ""))
        if name != PROBE_TOOL.name or not city:
            future.set_result(
                ExecutionResult(success=False, error="city is required", error_type="ValueError")
            )
        else:
            weather = {"city": city, "forecast": "sunny", "temperature_c": 21}
            future.set_result(ExecutionResult(success=True, result=weather))
        return future

    def record(self, step: TraceStep) -> None:
        self.steps.append(step)

    def next_seq(self) -> int:
        return next(self._seq)

    def observe_model(self, outcome: str, seconds: float) -> None:
        pass

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        pass


def right_city(arguments: Any, city: str) -> bool:
    """Whether ``arguments`` name ``city`` (any case; ``"Paris, France"`` counts)."""
    given = arguments.get("city") if isinstance(arguments, dict) else None
    if not isinstance(given, str):
        return False
    return given.split(",")[0].strip().casefold() == city.casefold()


def probe(model: ModelConfig, function_calling: Literal["nous", "native"]) -> FormatResult:
    """Ask the probe question with ``function_calling``; bounded by the turns and model.timeout."""
    settings = msgspec.structs.replace(
        model,
        function_calling=function_calling,
        recover_tool_calls=True,
        max_turns=min(model.max_turns, MAX_TURNS),
        max_tool_calls=min(model.max_tool_calls, MAX_TURNS),
    )
    context = _ProbeContext()
    outcome: dict[str, Any] = {}
    started = time.perf_counter()

    def run() -> None:
        try:
            agent = AgentRun(
                model=settings,
                llm=build_llm(settings),
                tools=qwen_tools({PROBE_TOOL.name: PROBE_TOOL}),
                methods={PROBE_TOOL.name: PROBE_TOOL},
                context=context,
            )
            outcome["agent"] = agent
            outcome["answer"] = agent.run(QUESTION).answer
        except AgentFailure as failure:
            outcome["error"] = f"{failure.error.type}: {failure.error.message}"
        except Cancelled:
            pass
        except Exception as exc:  # qwen-agent's own failure is a result of the check
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    # A daemon thread: a model that hangs past every timeout cannot keep the command alive.
    thread = threading.Thread(target=run, name=f"model-check-{function_calling}", daemon=True)
    thread.start()
    # Each model request is bounded by model.timeout; the turns are bounded too.
    limit = settings.timeout * (settings.max_turns + 1) + 5
    thread.join(limit)
    if thread.is_alive():
        agent = outcome.get("agent")
        if agent is not None:
            agent.cancel()
        outcome["error"] = f"no answer within {limit:.0f} s"
    return _result(function_calling, context.steps, outcome, time.perf_counter() - started)


def _result(
    function_calling: Literal["nous", "native"],
    steps: list[TraceStep],
    outcome: dict[str, Any],
    seconds: float,
) -> FormatResult:
    model_steps = [s for s in steps if s.kind == "model"]
    tool_steps = [s for s in steps if s.kind == "tool"]
    call: Call = "none"
    for step in model_steps:
        if isinstance(step.result, dict) and step.result.get("tool_calls"):
            call = "recovered" if "recovered_from" in step.result else "tagged"
            break
    probe_calls = [s for s in tool_steps if s.name == PROBE_TOOL.name]
    arguments = probe_calls[0].arguments if probe_calls else None
    right = any(right_city(s.arguments, CITY) for s in probe_calls)
    loop_stopped = any(s.error is not None and s.error.type == "ToolCallLoop" for s in tool_steps)
    answer = outcome.get("answer")
    works = call != "none" and right and bool(answer) and "error" not in outcome
    wrote = None
    if call == "none" and model_steps:
        wrote = (model_steps[-1].content or "").strip()[:200] or None
    return FormatResult(
        function_calling=function_calling,
        works=works,
        answered=works and not loop_stopped,
        call=call,
        arguments=arguments,
        right_arguments=right,
        answer=answer if isinstance(answer, str) else None,
        loop_stopped=loop_stopped,
        turns=len(model_steps),
        seconds=seconds,
        wrote=wrote,
        error=outcome.get("error"),
    )
