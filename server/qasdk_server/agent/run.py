"""One task's conversation with the model: the tool loop, bounded, retried, cancellable.

The real qwen-agent ``FnCallAgent`` runs the loop (see :mod:`.shim`); each
model turn is timed, recorded, bounded by ``model.max_turns`` and retried with
exponential backoff on transient faults; each tool call goes through the
task's :class:`AgentContext` to the executor, on the event loop.

qwen-agent is synchronous, so a task's agent runs in a worker thread; the
context's methods are safe to call from it.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

from qasdk.config import ModelConfig
from qasdk.models import ExecutionResult, MethodConfig, TaskError, TraceStep
from qasdk.redaction import mask_url
from qasdk_server.agent import model_errors
from qasdk_server.agent.shim import SYSTEM_MESSAGE, agent_class
from qasdk_server.agent.thinking import split_thinking

__all__ = [
    "CANCELLED_CALL",
    "AgentContext",
    "AgentFailure",
    "AgentOutcome",
    "AgentRun",
    "Cancelled",
]

#: The error of a tool step whose task was cancelled while the tool ran.
CANCELLED_CALL = TaskError("Cancelled", "the task was cancelled while the tool ran")

logger = logging.getLogger("qasdk.agent")


class AgentContext(Protocol):
    """What one task's agent needs from its worker (called from the agent's thread)."""

    #: The task's attempt number, recorded on every trace step.
    attempt: int

    def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> concurrent.futures.Future[ExecutionResult]:
        """Run a registered tool on the event loop; cancelling the future stops it."""
        ...

    def record(self, step: TraceStep) -> None:
        """Store a trace step (in order)."""
        ...

    def next_seq(self) -> int:
        """The next trace step number."""
        ...

    def observe_model(self, outcome: str, seconds: float) -> None:
        """Count a model call for the metrics."""
        ...


class Cancelled(Exception):
    """The task was cancelled or ran out of time while the agent was working."""


class AgentFailure(Exception):
    """The agent could not produce an answer; carries the error the task reports."""

    def __init__(self, error: TaskError) -> None:
        super().__init__(f"{error.type}: {error.message}")
        self.error = error


class AgentOutcome:
    """The final answer (thinking removed) and the thinking that preceded it."""

    def __init__(self, answer: str, thinking: str | None) -> None:
        self.answer = answer
        self.thinking = thinking


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AgentRun:
    """Runs in a thread, talks to the loop through ``context``."""

    def __init__(
        self,
        *,
        model: ModelConfig,
        llm: Any,
        tools: list[Any],
        methods: Mapping[str, MethodConfig],
        context: AgentContext,
        retries: int = 0,
        backoff: float = 1.0,
    ) -> None:
        self.model = model
        self.llm = llm
        self.tools = tools
        self.methods = methods
        self.context = context
        self.retries = retries
        self.backoff = backoff
        self.turns = 0
        self.cancelled = threading.Event()
        self._pending_tool: concurrent.futures.Future[ExecutionResult] | None = None

    # -- the loop side ------------------------------------------------------

    def cancel(self) -> None:
        """Stop at the next chance; a running tool is interrupted at once."""
        self.cancelled.set()
        pending = self._pending_tool
        if pending is not None:
            pending.cancel()

    # -- the thread side ----------------------------------------------------

    def run(self, description: str) -> AgentOutcome:
        """Run the tool loop to a final answer (blocking; call from a worker thread)."""
        agent = agent_class()(function_list=self.tools, llm=self.llm, system_message=SYSTEM_MESSAGE)
        agent.hooks = self
        responses: list[Any] = []
        for latest in agent.run([{"role": "user", "content": description}]):
            responses = latest
            self._check()
        final = [
            m
            for m in responses
            if m.get("role") == "assistant" and not m.get("function_call") and m.get("content")
        ]
        if not final:
            raise AgentFailure(
                TaskError(
                    "NoAnswer", f"the model gave no answer within {self.model.max_turns} turns"
                )
            )
        text = final[-1]["content"]
        if not isinstance(text, str):
            text = "".join(item.get("text", "") for item in text if isinstance(item, dict))
        answer, thinking = split_thinking(text)
        reasoning = [m.get("reasoning_content") for m in responses if m.get("reasoning_content")]
        if reasoning:
            thinking = "\n\n".join([*reasoning, *([thinking] if thinking else [])])
        return AgentOutcome(answer, thinking)

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    def model_turn(self, call: Callable[[], Iterator[list[Any]]]) -> Iterator[list[Any]]:
        """One model turn: bounded, timed, recorded, retried when the fault is transient."""
        self._check()
        self.turns += 1
        if self.turns > self.model.max_turns:
            raise AgentFailure(
                TaskError(
                    "TooManyTurns",
                    f"the model did not finish within {self.model.max_turns} turns "
                    "(model.max_turns)",
                )
            )
        for attempt in range(self.retries + 1):
            started, clock = _now(), time.perf_counter()
            output: list[Any] = []
            try:
                for output in call():
                    self._check()
                    yield output
            except (Cancelled, AgentFailure):
                raise
            except Exception as exc:
                elapsed = (time.perf_counter() - clock) * 1000
                message = model_errors.describe(exc)
                transient = model_errors.is_transient(exc)
                self.context.observe_model(
                    "transient_error" if transient else "error", elapsed / 1000
                )
                self._record_model_step(
                    started,
                    elapsed,
                    error=TaskError(type(model_errors.cause(exc)).__name__, message),
                )
                if not transient or attempt == self.retries:
                    kind = "ModelUnavailable" if transient else "ModelError"
                    tries = f" after {attempt + 1} attempts" if transient and attempt else ""
                    raise AgentFailure(
                        TaskError(kind, f"{message}{tries} ({mask_url(self.model.model_server)})")
                    ) from exc
                delay = self.backoff * 2**attempt
                logger.warning(
                    "model call failed (%s); retry %d/%d in %.2f s",
                    message,
                    attempt + 1,
                    self.retries,
                    delay,
                    extra={
                        "model": self.model.name,
                        "model_server": mask_url(self.model.model_server),
                    },
                )
                if self.cancelled.wait(delay):
                    raise Cancelled() from None
                continue
            self._record_turn(output, started, clock)
            return

    def _record_turn(self, output: list[Any], started: datetime, clock: float) -> None:
        elapsed = (time.perf_counter() - clock) * 1000
        self.context.observe_model("success", elapsed / 1000)
        texts, thinking, calls = [], [], []
        for message in output:
            content = message.get("content")
            if isinstance(content, str) and content:
                answer, thought = split_thinking(content)
                if answer:
                    texts.append(answer)
                if thought:
                    thinking.append(thought)
            if message.get("reasoning_content"):
                thinking.append(message["reasoning_content"])
            call = message.get("function_call")
            if call:
                calls.append({"name": call.get("name"), "arguments": call.get("arguments")})
        self._record_model_step(
            started,
            elapsed,
            content="\n".join(texts) or None,
            thinking="\n\n".join(thinking) or None,
            result={"tool_calls": calls} if calls else None,
        )

    def _record_model_step(self, started: datetime, elapsed_ms: float, **details: Any) -> None:
        self.context.record(
            TraceStep(
                seq=self.context.next_seq(),
                kind="model",
                name=self.model.name,
                attempt=self.context.attempt,
                started_at=started,
                duration_ms=elapsed_ms,
                **details,
            )
        )

    def _record_tool_step(
        self,
        name: str,
        arguments: Any,
        started: datetime,
        clock: float,
        *,
        result: Any = None,
        error: TaskError | None = None,
        code_version: str | None = None,
    ) -> None:
        self.context.record(
            TraceStep(
                seq=self.context.next_seq(),
                kind="tool",
                name=name,
                attempt=self.context.attempt,
                arguments=arguments,
                result=result,
                error=error,
                started_at=started,
                duration_ms=(time.perf_counter() - clock) * 1000,
                code_version=code_version,
            )
        )

    def tool_call(self, name: str, raw_args: Any) -> str:
        """Run a tool the model asked for; the model sees the result or the error."""
        self._check()
        started, clock = _now(), time.perf_counter()
        arguments: Any = raw_args
        error: TaskError | None = None
        result: Any = None
        if name not in self.methods:
            error = TaskError("MethodNotFoundError", f"no registered tool named {name!r}")
        else:
            try:
                arguments = json.loads(raw_args) if isinstance(raw_args, str) else dict(raw_args)
                if not isinstance(arguments, dict):
                    raise ValueError("arguments must be a JSON object")
            except ValueError as exc:
                error = TaskError("InvalidArguments", f"arguments are not a JSON object: {exc}")
        if error is None:
            future = self.context.call_tool(name, arguments)
            self._pending_tool = future
            try:
                outcome = future.result()
            except concurrent.futures.CancelledError:
                self._record_tool_step(name, arguments, started, clock, error=CANCELLED_CALL)
                raise Cancelled() from None
            finally:
                self._pending_tool = None
            if outcome.success:
                result = outcome.result
            else:
                error = TaskError(outcome.error_type or "Error", outcome.error or "")
            code_version = outcome.code_version
        else:
            code_version = None
        self._record_tool_step(
            name, arguments, started, clock, result=result, error=error, code_version=code_version
        )
        self._check()
        if error is not None:
            return f"Error: {error.type}: {error.message}"
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
