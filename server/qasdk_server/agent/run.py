"""One task's conversation with the model: the tool loop, bounded, retried, cancellable.

The real qwen-agent ``FnCallAgent`` runs the loop (see :mod:`.shim`); each
model turn is timed, recorded, bounded by ``model.max_turns`` and retried with
exponential backoff on transient faults; a stream qwen-agent cannot read
(``IndexError`` on an empty chunk) is asked again once without streaming. A
turn whose text is a tool call written without tags becomes that call
(:mod:`.recover`, ``model.recover_tool_calls``). Each tool call goes through
the task's :class:`AgentContext` to the executor, on the event loop; calls are
bounded by ``model.max_tool_calls``, and the same call asked for again after
its result was returned gets a nudge once, then ends the loop
(``model.on_tool_loop``).

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
from typing import TYPE_CHECKING, Any, Protocol

from qasdk.config import ModelConfig
from qasdk.models import ExecutionResult, MethodConfig, TaskError, TraceStep
from qasdk.redaction import mask_fields, mask_url
from qasdk_server.agent import model_errors, shim
from qasdk_server.agent.plan import PLAN_TOOL, Planned
from qasdk_server.agent.recover import recover_calls
from qasdk_server.agent.shim import SYSTEM_MESSAGE, agent_class
from qasdk_server.agent.thinking import split_thinking
from qasdk_server.middleware.base import AwaitingApproval

if TYPE_CHECKING:
    from qasdk_server.telemetry.spans import TaskSpan

__all__ = [
    "CANCELLED_CALL",
    "NUDGE",
    "AgentContext",
    "AgentFailure",
    "AgentOutcome",
    "AgentRun",
    "Cancelled",
    "Paused",
    "progress_text",
]

#: The error of a tool step whose task was cancelled while the tool ran.
CANCELLED_CALL = TaskError("Cancelled", "the task was cancelled while the tool ran")

#: What the model is told, after the result again, when it repeats a call.
NUDGE = (
    "You already called this tool with these arguments and the result is above. "
    "Do not call it again: answer the user now."
)

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

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        """Count a turn's tokens for the metrics."""
        ...


class Cancelled(Exception):
    """The task was cancelled or ran out of time while the agent was working."""


class AgentFailure(Exception):
    """The agent could not produce an answer; carries the error the task reports."""

    def __init__(self, error: TaskError) -> None:
        super().__init__(f"{error.type}: {error.message}")
        self.error = error


class _LoopStopped(Exception):
    """The model asked for the same call a third time; ``answer`` is its last result."""

    def __init__(self, name: str, answer: str | None) -> None:
        super().__init__(name)
        self.name = name
        self.answer = answer


def progress_text(progress: dict[str, object] | None) -> str | None:
    """A call's last progress report as its trace step says it: ``progress 100%: done``."""
    if not progress:
        return None
    fraction, message = progress.get("fraction"), progress.get("message")
    share = f" {round(fraction * 100)}%" if isinstance(fraction, (int, float)) else ""
    return f"progress{share}" + (f": {message}" if message else "")


class Paused(Exception):
    """A call waits for approval: the task parks, with where its conversation resumes."""

    def __init__(self, approval_id: Any, conversation: list[Any], pending: list[Any]) -> None:
        super().__init__(f"awaiting approval {approval_id}")
        self.approval_id = approval_id
        self.conversation = conversation
        self.pending = pending


def _plain(message: Any) -> Any:
    """A qwen-agent message as JSON-ready data (they are pydantic models)."""
    dump = getattr(message, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else dict(message)


def _calls_left(messages: list[Any]) -> list[dict[str, Any]]:
    """The calls of the latest model turn that have no result yet, in order.

    qwen-agent appends a turn's messages, then each call's result: so the
    results at the end answer the first calls of the turn before them.
    """
    done = 0
    index = len(messages)
    while index and messages[index - 1].get("role") == "function":
        done += 1
        index -= 1
    turn: list[dict[str, Any]] = []
    while index and messages[index - 1].get("role") == "assistant":
        turn.insert(0, messages[index - 1])
        index -= 1
    calls = [m for m in turn if m.get("function_call")]
    return [
        {
            "name": m["function_call"].get("name"),
            "arguments": m["function_call"].get("arguments"),
            "function_id": (m.get("extra") or {}).get("function_id", "1"),
        }
        for m in calls[done:]
    ]


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
        span: TaskSpan | None = None,
        token_budget: int | None = None,
        plan: Callable[[Any], concurrent.futures.Future[Any]] | None = None,
    ) -> None:
        self.model = model
        #: Of a split task's planning: checks a plan on the loop (its nodes, or a
        #: ``str`` naming its problems, which the model gets back to correct them).
        self.plan = plan
        #: The task's span, when traced: each model call is a span under it.
        self.span = span
        self.llm = llm
        self.tools = tools
        self.methods = methods
        self.context = context
        self.retries = retries
        self.backoff = backoff
        self.turns = 0
        self.tool_calls = 0
        #: Tokens of this attempt's model turns so far, and how many it may use
        #: (``model.max_tokens_per_task``, or lower for the task's key).
        self.tokens = 0
        self.token_budget = model.max_tokens_per_task if token_budget is None else token_budget
        #: (name, canonical arguments) → (turn it first ran in, its result, text the model
        #: got, whether it failed)
        self._returned: dict[tuple[str, str], tuple[int, Any, str, bool]] = {}
        self._repeats: dict[tuple[str, str], int] = {}
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

    def run(self, description: str, resume: Any = None) -> AgentOutcome:
        """Run the tool loop to a final answer (blocking; call from a worker thread).

        ``resume`` (a ``ResumePoint``): go on from the conversation recorded when the
        task paused for an approval: the calls of that turn left run first, then the
        model gets the next turn; no earlier turn is asked again.
        """
        agent = agent_class()(function_list=self.tools, llm=self.llm, system_message=SYSTEM_MESSAGE)
        agent.hooks = self
        responses: list[Any] = []
        messages: list[Any] = [{"role": "user", "content": description}]
        if resume is not None:
            messages = self._resume(list(resume.conversation), list(resume.pending))
        try:
            for latest in agent.run(messages):
                responses = latest
                self._check()
        except _LoopStopped as stop:
            return self._stopped(stop)
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

    def _resume(self, messages: list[Any], pending: list[Any]) -> list[Any]:
        """Run the paused turn's calls left (the approved one first) onto ``messages``."""
        for index, call in enumerate(pending):
            text = self.tool_call(
                call["name"], call["arguments"], messages, pending_after=pending[index + 1 :]
            )
            messages.append(
                {
                    "role": "function",
                    "name": call["name"],
                    "content": text,
                    "extra": {"function_id": call.get("function_id", "1")},
                }
            )
        return messages

    def _stopped(self, stop: _LoopStopped) -> AgentOutcome:
        if stop.answer is None or self.model.on_tool_loop == "fail":
            raise AgentFailure(
                TaskError(
                    "ToolCallLoop",
                    f"the model kept asking for {stop.name!r} with the same arguments "
                    "after its result was returned (model.on_tool_loop)",
                )
            )
        return AgentOutcome(stop.answer, None)

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    def model_turn(
        self,
        call: Callable[[], Iterator[list[Any]]],
        unstreamed: Callable[[], Iterator[list[Any]]] | None = None,
    ) -> Iterator[list[Any]]:
        """One model turn: bounded, timed, recorded, retried when the fault is transient.

        ``unstreamed`` is the same call without streaming, tried once when
        qwen-agent fails to read the stream (``IndexError`` on an empty chunk).
        """
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
        attempt, streamed = 0, True
        while True:
            started, clock = _now(), time.perf_counter()
            output: list[Any] = []
            shim.start_turn()
            try:
                for output in call():
                    self._check()
                    yield output
            except (Cancelled, AgentFailure):
                raise
            except IndexError as exc:
                elapsed = (time.perf_counter() - clock) * 1000
                self.context.observe_model("error", elapsed / 1000)
                reading = "streamed reply" if streamed else "reply (asked without streaming)"
                message = f"qwen-agent could not read the model's {reading} ({exc!r})"
                self._record_model_step(
                    started, elapsed, error=TaskError("ModelProtocolError", message)
                )
                if unstreamed is None:
                    why = (
                        "the native tools API cannot be asked without streaming"
                        if streamed
                        else "the streamed reply failed the same way"
                    )
                    raise AgentFailure(
                        TaskError(
                            "ModelProtocolError",
                            f"{message}; {why} ({mask_url(self.model.model_server)})",
                        )
                    ) from exc
                logger.warning("%s; asking again without streaming", message)
                call, unstreamed, streamed = unstreamed, None, False
                continue
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
                attempt += 1
                continue
            recovered = self._recover(output)
            if recovered is not None:
                output, source, thought = recovered
                yield output
                self._record_turn(
                    output, started, clock, recovered_from=source, recovered_thinking=thought
                )
            else:
                self._record_turn(output, started, clock)
            return

    def _recover(self, output: list[Any]) -> tuple[list[Any], str, str | None] | None:
        """The turn with the calls its text holds, and that text; ``None`` if it holds none."""
        if not self.model.recover_tool_calls:
            return None
        seen = shim.raw_text()
        if seen is not None:
            raw, parsed = seen
        else:
            raw = "".join(m.get("content") for m in output if isinstance(m.get("content"), str))
            parsed = any(m.get("function_call") for m in output)
        if parsed:
            return None
        text, thought = split_thinking(raw)
        calls = recover_calls(text, self.methods)
        if not calls:
            return None
        kept = [m for m in output if m.get("reasoning_content") and not m.get("content")]
        made = [
            shim.function_call_message(call.name, call.arguments, f"recovered_{self.turns}_{i}")
            for i, call in enumerate(calls, start=1)
        ]
        logger.info(
            "recovered %d tool call(s) the model wrote as text: %s",
            len(calls),
            ", ".join(call.name for call in calls),
        )
        return [*kept, *made], text, thought

    def _record_turn(
        self,
        output: list[Any],
        started: datetime,
        clock: float,
        *,
        recovered_from: str | None = None,
        recovered_thinking: str | None = None,
    ) -> None:
        elapsed = (time.perf_counter() - clock) * 1000
        self.context.observe_model("success", elapsed / 1000)
        texts, calls = [], []
        thinking = [recovered_thinking] if recovered_thinking else []
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
                name = call.get("name")
                arguments = mask_fields(call.get("arguments"), self._hidden(name))
                calls.append({"name": name, "arguments": arguments})
        result: dict[str, Any] | None = {"tool_calls": calls} if calls else None
        if result is not None and recovered_from is not None:
            result["recovered_from"] = recovered_from
        usage = self._usage(texts, thinking, calls)
        self._record_model_step(
            started,
            elapsed,
            content="\n".join(texts) or recovered_from,
            thinking="\n\n".join(thinking) or None,
            result=result,
            usage=usage,
        )
        self._spend(usage)

    def _usage(
        self, texts: list[str], thinking: list[str], calls: list[dict[str, Any]]
    ) -> dict[str, int]:
        """The turn's tokens as the endpoint reported them, else counted locally.

        A local count is an estimate (a token is about four characters) and says
        so (``estimated: 1``).
        """
        report = shim.turn_report() or {}
        prompt = report.get("gen_ai.usage.input_tokens")
        completion = report.get("gen_ai.usage.output_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            return {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        written = sum(map(len, texts)) + sum(map(len, thinking)) + len(json.dumps(calls))
        prompt, completion = -(-shim.prompt_chars() // 4), -(-written // 4)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "estimated": 1,
        }

    def _spend(self, usage: dict[str, int]) -> None:
        """Count the turn's tokens; past ``model.max_tokens_per_task`` the task stops."""
        self.tokens += usage["total_tokens"]
        self.context.observe_tokens(
            self.model.name, usage["prompt_tokens"], usage["completion_tokens"]
        )
        budget = self.token_budget
        if budget is not None and self.tokens > budget:
            whose = (
                "model.max_tokens_per_task"
                if budget == self.model.max_tokens_per_task
                else "its key's max_tokens_per_task"
            )
            raise AgentFailure(
                TaskError(
                    "TokenBudgetExceeded",
                    f"the task used {self.tokens} tokens in {self.turns} model turns, over its "
                    f"budget of {budget} ({whose})",
                )
            )

    def _record_model_step(self, started: datetime, elapsed_ms: float, **details: Any) -> None:
        if self.span is not None:
            result = details.get("result")
            calls = result.get("tool_calls", ()) if isinstance(result, dict) else ()
            self.span.model_turn(self.model, started, elapsed_ms).end(
                usage=shim.turn_report(), error=details.get("error"), tool_calls=len(calls)
            )
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
        content: str | None = None,
        cached: bool = False,
        retries: int = 0,
    ) -> None:
        hidden = self._hidden(name)
        arguments, result = mask_fields(arguments, hidden), mask_fields(result, hidden)
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
                content=content,
                cached=cached,
                retries=retries,
            )
        )

    def _hidden(self, name: object) -> tuple[str, ...]:
        """The fields a tool's ``redact`` keeps out of the trace."""
        method = self.methods.get(name) if isinstance(name, str) else None
        return () if method is None or method.policy is None else method.policy.redact

    def tool_call(
        self,
        name: str,
        raw_args: Any,
        messages: Any = None,
        *,
        pending_after: list[Any] | None = None,
    ) -> str:
        """Run a tool the model asked for; the model sees the result or the error.

        ``messages`` is the conversation so far (qwen-agent's), kept when the call
        must wait for approval; ``pending_after``: when resuming, the calls of the
        turn after this one (qwen-agent's own turn says them itself).
        """
        self._check()
        self.tool_calls += 1
        if name == PLAN_TOOL and self.plan is not None:
            return self._plan_call(raw_args, messages)
        if self.tool_calls > self.model.max_tool_calls:
            raise AgentFailure(
                TaskError(
                    "TooManyToolCalls",
                    f"the model asked for more than {self.model.max_tool_calls} tool calls "
                    "(model.max_tool_calls)",
                )
            )
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
        key = (name, json.dumps(arguments, sort_keys=True, default=str))
        if error is None and key in self._returned and self._returned[key][0] < self.turns:
            return self._repeated(key, arguments, started, clock)
        if error is None:
            future = self.context.call_tool(name, arguments)
            self._pending_tool = future
            try:
                outcome = future.result()
            except concurrent.futures.CancelledError:
                self._record_tool_step(name, arguments, started, clock, error=CANCELLED_CALL)
                raise Cancelled() from None
            except AwaitingApproval as waiting:
                waits = TaskError("AwaitingApproval", f"waits for approval {waiting.approval_id}")
                self._record_tool_step(name, arguments, started, clock, error=waits)
                plain = [_plain(m) for m in (messages or [])]
                left = _calls_left(plain) if pending_after is None else []
                if pending_after is not None:  # resuming: this call, then the rest of its turn
                    left = [
                        {"name": name, "arguments": raw_args, "function_id": "1"},
                        *pending_after,
                    ]
                raise Paused(waiting.approval_id, plain, left) from None
            finally:
                self._pending_tool = None
            if outcome.success:
                result = outcome.result
            else:
                error = TaskError(outcome.error_type or "Error", outcome.error or "")
            code_version, cached, retries = outcome.code_version, outcome.cached, outcome.retries
            progress = progress_text(outcome.progress)
        else:
            code_version, cached, retries, progress = None, False, 0, None
        self._record_tool_step(
            name,
            arguments,
            started,
            clock,
            result=result,
            error=error,
            code_version=code_version,
            cached=cached,
            retries=retries,
            content=progress,
        )
        self._check()
        if error is not None:
            text = f"Error: {error.type}: {error.message}"
        else:
            text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        self._returned.setdefault(key, (self.turns, result, text, error is not None))
        return text

    def _plan_call(self, raw_args: Any, messages: Any) -> str:
        """The plan of a split task: checked, then stored (``Planned``), or sent back."""
        assert self.plan is not None
        started, clock = _now(), time.perf_counter()
        try:
            arguments = json.loads(raw_args) if isinstance(raw_args, str) else dict(raw_args)
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            error = TaskError("InvalidPlan", f"the plan is not a JSON object: {exc}")
            self._record_tool_step(PLAN_TOOL, raw_args, started, clock, error=error)
            return f"Error: {error.type}: {error.message}"
        checked = self.plan(arguments).result()
        if isinstance(checked, str):
            error = TaskError("InvalidPlan", checked)
            self._record_tool_step(PLAN_TOOL, arguments, started, clock, error=error)
            return f"Error: {error.type}: {error.message}"
        ids = [node.id for node in checked]
        self._record_tool_step(
            PLAN_TOOL,
            arguments,
            started,
            clock,
            result={"subtasks": ids},
            content=f"SPLITTING -> READY: {len(ids)} sub-tasks ({', '.join(ids)[:500]})",
        )
        raise Planned(checked, [_plain(m) for m in (messages or [])])

    def _repeated(
        self, key: tuple[str, str], arguments: Any, started: datetime, clock: float
    ) -> str:
        """The same call after its result was returned: a nudge once, then the loop ends."""
        name = key[0]
        _, result, text, failed = self._returned[key]
        repeats = self._repeats[key] = self._repeats.get(key, 0) + 1
        if repeats == 1:
            nudge = f"{text}\n\n{NUDGE}"
            self._record_tool_step(name, arguments, started, clock, result=result, content=nudge)
            return nudge
        answer = None if failed else text
        stopped = (
            "the loop was stopped: the task answers with the last result"
            if answer is not None and self.model.on_tool_loop == "answer"
            else "the loop was stopped: the task fails (model.on_tool_loop)"
        )
        self._record_tool_step(
            name,
            arguments,
            started,
            clock,
            error=TaskError(
                "ToolCallLoop",
                f"asked again with the same arguments after a nudge; {stopped}",
            ),
        )
        raise _LoopStopped(name, answer)
