"""qwen-agent, wired to the registry, the executor and the trace.

The real ``FnCallAgent`` runs the tool loop; qasdk only adds what production
needs around its two hooks: ``_call_llm`` is timed, recorded, bounded (max
turns), retried with exponential backoff on transient model faults, and
cancellable; ``_call_tool`` runs the registered tool through the executor
(in its own process, with a hard timeout) instead of in the agent's thread.

qwen-agent is synchronous, so each task's agent runs in a worker thread; tool
calls hop back to the event loop, where the executor lives.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qasdk.config import ModelConfig
from qasdk.models import ExecutionResult, MethodConfig, TaskError, TraceStep
from qasdk.types import parameter_schema

__all__ = [
    "AgentFailure",
    "AgentOutcome",
    "AgentRun",
    "Cancelled",
    "build_llm",
    "llm_config",
    "qwen_tools",
    "split_thinking",
    "tool_schema",
]

logger = logging.getLogger("qasdk.agent")

SYSTEM_MESSAGE = (
    "You are a helpful assistant. Use the provided tools when they help answer the "
    "request, then answer the user directly."
)

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


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


def _qwen_agent() -> Any:
    """Import qwen-agent on first use, keeping its side effects in qasdk's folder."""
    os.environ.setdefault(
        "QWEN_AGENT_DEFAULT_WORKSPACE", str(Path(".qasdk", "qwen-agent").resolve())
    )
    import qwen_agent.agents
    import qwen_agent.llm.oai
    import qwen_agent.tools.base

    # qwen-agent adds its own stderr handler at INFO; its records go through qasdk's
    # logging instead, and its per-call INFO lines only when qasdk logs at DEBUG.
    qa_logger = logging.getLogger("qwen_agent_logger")
    for handler in list(qa_logger.handlers):
        qa_logger.removeHandler(handler)
    root_level = logging.getLogger().level
    qa_logger.setLevel(root_level if root_level <= logging.DEBUG else logging.WARNING)
    return qwen_agent


def split_thinking(text: str | None) -> tuple[str, str | None]:
    """Split qwen3 output into (answer, thinking); ``<think>`` blocks never reach a result."""
    if not text:
        return "", None
    thoughts = [t.strip() for t in _THINK.findall(text)]
    answer = _THINK.sub("", text)
    if "</think>" in answer:  # an opening tag the template put in the prompt
        before, _, answer = answer.rpartition("</think>")
        thoughts.insert(0, before.replace("<think>", "").strip())
    thinking = "\n\n".join(t for t in thoughts if t) or None
    return answer.strip(), thinking


def tool_schema(config: MethodConfig) -> dict[str, Any]:
    """The ``parameters`` dict qwen-agent accepts: exactly type, properties, required."""
    properties: dict[str, Any] = {}
    for param in config.parameters:
        schema = {k: v for k, v in parameter_schema(param).items() if k not in ("title", "$defs")}
        schema["description"] = param.description
        if param.has_default and param.default is not None:
            schema.setdefault("default", param.default)
        properties[param.name] = schema
    required = [p.name for p in config.parameters if p.required]
    return {"type": "object", "properties": properties, "required": required}


def qwen_tools(methods: Mapping[str, MethodConfig]) -> list[Any]:
    """One qwen-agent tool per registered method (schema only: calls go to the executor)."""
    base = _qwen_agent().tools.base.BaseTool
    tools = []
    for config in methods.values():
        cls = type(
            f"QasdkTool_{config.name}",
            (base,),
            {
                "name": config.name,
                "description": config.description,
                "parameters": tool_schema(config),
                "call": _never_called,
            },
        )
        tools.append(cls())
    return tools


@functools.cache
def _agent_class() -> type:
    """qwen-agent's ``FnCallAgent`` with qasdk's two hooks (built once, on first use)."""
    base = _qwen_agent().agents.FnCallAgent

    class QasdkAgent(base):  # type: ignore[valid-type,misc]
        mem = None  # no Memory: it would add document tools and a workspace folder
        qasdk_run: AgentRun

        def _call_llm(self, *args: Any, **kwargs: Any) -> Iterator[list[Any]]:
            parent = super()._call_llm
            return self.qasdk_run._model_turn(lambda: parent(*args, **kwargs))

        def _call_tool(self, tool_name: str, tool_args: Any = "{}", **kwargs: Any) -> str:
            return self.qasdk_run._tool_call(tool_name, tool_args)

    return QasdkAgent


def _never_called(self: Any, params: Any, **kwargs: Any) -> str:
    raise RuntimeError("qasdk runs tools through the executor, not BaseTool.call")


def llm_config(model: ModelConfig) -> dict[str, Any]:
    """The qwen-agent LLM configuration for ``model`` (seed Property 2: values pass exactly)."""
    generate_cfg: dict[str, Any] = {
        "temperature": model.temperature,
        "max_tokens": model.max_tokens,
        "max_retries": 0,  # qasdk retries transient faults itself, with backoff and a trace
    }
    if model.function_calling == "native":
        generate_cfg["use_raw_api"] = True
    return {
        "model": model.name,
        "model_server": model.model_server,
        "api_key": model.api_key or "EMPTY",
        "generate_cfg": generate_cfg,
        "timeout": model.timeout,
    }


def build_llm(model: ModelConfig) -> Any:
    """qwen-agent's OpenAI-compatible model with one reusable client and no hidden retries.

    Stock ``TextChatAtOAI`` builds a new HTTP client for every call and lets the
    OpenAI SDK retry twice behind qwen-agent's back; this keeps its behaviour and
    fixes both, so every attempt is visible in the trace.
    """
    import openai

    qwen_agent = _qwen_agent()
    cfg = llm_config(model)
    llm = qwen_agent.llm.oai.TextChatAtOAI(cfg)
    client = openai.OpenAI(
        base_url=cfg["model_server"],
        api_key=cfg["api_key"],
        timeout=model.timeout,
        max_retries=0,
    )

    def create(*args: Any, **kwargs: Any) -> Any:
        extra = {k: kwargs.pop(k) for k in ("top_k", "repetition_penalty") if k in kwargs}
        if extra:
            kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **extra}
        if "request_timeout" in kwargs:
            kwargs["timeout"] = kwargs.pop("request_timeout")
        return client.chat.completions.create(*args, **kwargs)

    llm._chat_complete_create = create
    llm.client = client
    llm.timeout = model.timeout
    return llm


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _cause(exc: BaseException) -> BaseException:
    """The OpenAI error inside qwen-agent's ``ModelServiceError``."""
    return getattr(exc, "exception", None) or exc.__cause__ or exc


def _transient(exc: BaseException) -> bool:
    """Connection refused, timeouts, 429 and 5xx are worth retrying; the rest is not."""
    import openai

    cause = _cause(exc)
    if isinstance(cause, (openai.APIConnectionError, openai.APITimeoutError)):
        return True
    if isinstance(cause, openai.APIStatusError):
        return cause.status_code == 429 or cause.status_code >= 500
    return isinstance(cause, (ConnectionError, TimeoutError))


def _describe_model_error(exc: BaseException) -> str:
    import openai

    cause = _cause(exc)
    if isinstance(cause, openai.APIStatusError):
        detail = cause.message or ""
        return f"the model server answered HTTP {cause.status_code}: {detail}".strip()
    if isinstance(cause, openai.APITimeoutError):
        return "the model server did not answer in time"
    if isinstance(cause, openai.APIConnectionError):
        reason = cause.__cause__ or cause
        return f"cannot reach the model server: {reason}"
    return str(cause) or type(cause).__name__


class AgentRun:
    """One task's conversation with the model: runs in a thread, talks to the loop.

    ``record`` stores a trace step (called from the agent thread); ``execute`` runs a
    tool on the event loop and returns its result.
    """

    def __init__(
        self,
        *,
        model: ModelConfig,
        llm: Any,
        tools: list[Any],
        methods: Mapping[str, MethodConfig],
        execute: Callable[[str, dict[str, Any]], concurrent.futures.Future[ExecutionResult]],
        record: Callable[[TraceStep], None],
        next_seq: Callable[[], int],
        attempt: int,
        retries: int,
        backoff: float,
        deadline: float | None,
        observe_model: Callable[[str, float], None] | None = None,
    ) -> None:
        self.observe_model = observe_model or (lambda outcome, seconds: None)
        self.model = model
        self.llm = llm
        self.tools = tools
        self.methods = methods
        self.execute = execute
        self.record = record
        self.next_seq = next_seq
        self.attempt = attempt
        self.retries = retries
        self.backoff = backoff
        self.deadline = deadline
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
        agent = _agent_class()(
            function_list=self.tools, llm=self.llm, system_message=SYSTEM_MESSAGE
        )
        agent.qasdk_run = self
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

    def _model_turn(self, call: Callable[[], Iterator[list[Any]]]) -> Iterator[list[Any]]:
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
                message = _describe_model_error(exc)
                transient = _transient(exc)
                self.observe_model("transient_error" if transient else "error", elapsed / 1000)
                self._record_model_step(
                    started,
                    elapsed,
                    error=TaskError(type(_cause(exc)).__name__, message),
                )
                if not transient or attempt == self.retries:
                    kind = "ModelUnavailable" if transient else "ModelError"
                    tries = f" after {attempt + 1} attempts" if transient and attempt else ""
                    raise AgentFailure(
                        TaskError(kind, f"{message}{tries} ({self.model.model_server})")
                    ) from exc
                delay = self.backoff * 2**attempt
                logger.warning(
                    "model call failed (%s); retry %d/%d in %.2f s",
                    message,
                    attempt + 1,
                    self.retries,
                    delay,
                    extra={"model": self.model.name, "model_server": self.model.model_server},
                )
                if self.cancelled.wait(delay):
                    raise Cancelled() from None
                continue
            self._record_turn(output, started, clock)
            return

    def _record_turn(self, output: list[Any], started: datetime, clock: float) -> None:
        elapsed = (time.perf_counter() - clock) * 1000
        self.observe_model("success", elapsed / 1000)
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
        self.record(
            TraceStep(
                seq=self.next_seq(),
                kind="model",
                name=self.model.name,
                attempt=self.attempt,
                started_at=started,
                duration_ms=elapsed_ms,
                **details,
            )
        )

    def _tool_call(self, name: str, raw_args: Any) -> str:
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
            future = self.execute(name, arguments)
            self._pending_tool = future
            try:
                outcome = future.result()
            except concurrent.futures.CancelledError:
                raise Cancelled() from None
            finally:
                self._pending_tool = None
            if outcome.success:
                result = outcome.result
            else:
                error = TaskError(outcome.error_type or "Error", outcome.error or "")
        self.record(
            TraceStep(
                seq=self.next_seq(),
                kind="tool",
                name=name,
                attempt=self.attempt,
                arguments=arguments,
                result=result,
                error=error,
                started_at=started,
                duration_ms=(time.perf_counter() - clock) * 1000,
            )
        )
        self._check()
        if error is not None:
            return f"Error: {error.type}: {error.message}"
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
