"""qwen-agent, adapted: one tool class per registered method, the LLM client, two hooks.

This is the only module that knows qwen-agent's internals (pinned to 0.0.34):
``FnCallAgent._call_llm`` and ``_call_tool`` are routed to the task's
:class:`~qasdk_server.agent.run.AgentRun` (the model turn with a non-streaming
variant of the same call, for a stream qwen-agent cannot read), and
``TextChatAtOAI`` gets one reusable OpenAI client without hidden retries and
keeps the model's raw text of the turn (:func:`raw_text`), before qwen-agent's
nous parser drops a ``<tool_call>`` block it cannot read. qwen-agent is
imported on first use, with its side effects (a workspace folder, a stderr
handler) kept in check.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from qasdk.config import ModelConfig
from qasdk.models import MethodConfig
from qasdk.registration.types import parameter_schema

__all__ = [
    "SYSTEM_MESSAGE",
    "AgentHooks",
    "agent_class",
    "build_llm",
    "function_call_message",
    "llm_config",
    "openai_message",
    "qwen_tools",
    "raw_text",
    "start_turn",
    "tool_schema",
    "turn_report",
]

SYSTEM_MESSAGE = (
    "You are a helpful assistant. Use the provided tools when they help answer the "
    "request, then answer the user directly."
)


class AgentHooks(Protocol):
    """What the adapted agent calls instead of its own model and tool calls."""

    def model_turn(
        self,
        call: Callable[[], Iterator[list[Any]]],
        unstreamed: Callable[[], Iterator[list[Any]]] | None = None,
    ) -> Iterator[list[Any]]: ...

    def tool_call(self, name: str, raw_args: Any, messages: Any = None) -> str: ...


def qwen_agent() -> Any:
    """Import qwen-agent on first use, keeping its side effects in qasdk's folder."""
    os.environ.setdefault(
        "QWEN_AGENT_DEFAULT_WORKSPACE", str(Path(".qasdk", "qwen-agent").resolve())
    )
    import qwen_agent.agents
    import qwen_agent.llm.oai
    import qwen_agent.llm.schema
    import qwen_agent.tools.base

    # qwen-agent adds its own stderr handler at INFO; its records go through qasdk's
    # logging instead, and its per-call INFO lines only when qasdk logs at DEBUG.
    qa_logger = logging.getLogger("qwen_agent_logger")
    for handler in list(qa_logger.handlers):
        qa_logger.removeHandler(handler)
    root_level = logging.getLogger().level
    qa_logger.setLevel(root_level if root_level <= logging.DEBUG else logging.WARNING)
    return qwen_agent


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
    base = qwen_agent().tools.base.BaseTool
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


def _never_called(self: Any, params: Any, **kwargs: Any) -> str:
    raise RuntimeError("qasdk runs tools through the executor, not BaseTool.call")


@functools.cache
def agent_class() -> type:
    """qwen-agent's ``FnCallAgent`` with qasdk's two hooks (built once, on first use)."""
    base = qwen_agent().agents.FnCallAgent

    class QasdkAgent(base):  # type: ignore[valid-type,misc]
        mem = None  # no Memory: it would add document tools and a workspace folder
        hooks: AgentHooks

        def _call_llm(self, *args: Any, **kwargs: Any) -> Iterator[list[Any]]:
            parent = super()._call_llm
            unstreamed = None
            if not getattr(self.llm, "use_raw_api", False):  # the raw API streams only

                def unstreamed() -> Iterator[list[Any]]:
                    yield parent(*args, **{**kwargs, "stream": False})

            return self.hooks.model_turn(lambda: parent(*args, **kwargs), unstreamed)

        def _call_tool(self, tool_name: str, tool_args: Any = "{}", **kwargs: Any) -> str:
            # ``messages``: the conversation so far, where a paused task resumes.
            return self.hooks.tool_call(tool_name, tool_args, kwargs.get("messages"))

    return QasdkAgent


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


def build_llm(model: ModelConfig, *, report_usage: bool = False) -> Any:
    """qwen-agent's OpenAI-compatible model with one reusable client and no hidden retries.

    Stock ``TextChatAtOAI`` builds a new HTTP client for every call and lets the
    OpenAI SDK retry twice behind qwen-agent's back; this keeps its behaviour and
    fixes both, so every attempt is visible in the trace. ``report_usage`` asks
    for and keeps what the endpoint says about each turn (:func:`turn_report`),
    for telemetry.
    """
    import openai

    cfg = llm_config(model)
    llm = qwen_agent().llm.oai.TextChatAtOAI(cfg)
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
        if isinstance(kwargs.get("messages"), list):
            kwargs["messages"] = [openai_message(m) for m in kwargs["messages"]]
            _turn.prompt_chars = sum(len(str(m)) for m in kwargs["messages"])
        if not report_usage:
            return client.chat.completions.create(*args, **kwargs)
        if kwargs.get("stream"):
            # Streamed, the OpenAI API (and Ollama, vLLM) reports usage only when asked;
            # qwen-agent skips the last chunk that carries it (it has no choices).
            kwargs.setdefault("stream_options", {"include_usage": True})
            return _reporting(client.chat.completions.create(*args, **kwargs))
        response = client.chat.completions.create(*args, **kwargs)
        _note(response)
        return response

    postprocess = llm._postprocess_messages

    def keep_raw_text(messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        parsed = postprocess(messages, *args, **kwargs)
        text = "".join(_text(m.get("content")) for m in messages)
        _turn.raw = (text, any(m.get("function_call") for m in parsed))
        return parsed

    llm._chat_complete_create = create
    llm._postprocess_messages = keep_raw_text
    llm.client = client
    llm.timeout = model.timeout
    return llm


def openai_message(message: Any) -> Any:
    """A message of qwen-agent's native (raw API) conversation as the OpenAI API defines it.

    qwen-agent 0.0.34 sends a tool result with its call's id as ``id`` (and its own
    ``extra``), not ``tool_call_id``: Ollama lets it pass, servers that validate the
    request (llama-cpp-python, vLLM) answer HTTP 400/500 on the turn after every call.
    """
    if not isinstance(message, dict) or message.get("role") != "tool":
        return message
    fixed = {k: v for k, v in message.items() if k not in ("id", "extra")}
    if not fixed.get("tool_call_id"):
        extra = message.get("extra")
        function_id = extra.get("function_id") if isinstance(extra, dict) else None
        fixed["tool_call_id"] = message.get("id") or function_id or "1"
    return fixed


#: The model's text of the current turn, per agent thread (the LLM object is shared).
_turn = threading.local()


def start_turn() -> None:
    """Forget the raw text and report of the previous turn (call before a model turn)."""
    _turn.raw = None
    _turn.report = None
    _turn.prompt_chars = 0


def prompt_chars() -> int:
    """Characters of the messages this thread's latest turn sent (for a local token count)."""
    chars: int = getattr(_turn, "prompt_chars", 0)
    return chars


def turn_report() -> dict[str, Any] | None:
    """What the endpoint said about this thread's latest turn, as GenAI span attributes
    (``gen_ai.usage.input_tokens``, ``gen_ai.response.finish_reasons``...); ``None`` when
    it said nothing or the LLM was built without ``report_usage``."""
    report: dict[str, Any] | None = getattr(_turn, "report", None)
    return report


def _note(response: Any) -> None:
    """Keep the usage, finish reasons, model and id of a response or stream chunk."""
    report = getattr(_turn, "report", None)
    if report is None:
        report = _turn.report = {}
    usage = getattr(response, "usage", None)
    if usage is not None:
        for key, field in (
            ("gen_ai.usage.input_tokens", "prompt_tokens"),
            ("gen_ai.usage.output_tokens", "completion_tokens"),
        ):
            value = getattr(usage, field, None)
            if isinstance(value, int):
                report[key] = value
    for key, field in (("gen_ai.response.model", "model"), ("gen_ai.response.id", "id")):
        value = getattr(response, field, None)
        if isinstance(value, str) and value:
            report[key] = value
    for choice in getattr(response, "choices", None) or ():
        reason = getattr(choice, "finish_reason", None)
        if isinstance(reason, str) and reason:
            reasons = report.setdefault("gen_ai.response.finish_reasons", [])
            if reason not in reasons:
                reasons.append(reason)


def _reporting(stream: Any) -> Iterator[Any]:
    """The chunks of ``stream``, noting what they say about the turn as they pass."""
    for chunk in stream:
        _note(chunk)
        yield chunk


def raw_text() -> tuple[str, bool] | None:
    """The model's text of this thread's latest turn as it arrived, before qwen-agent parsed
    it, and whether qwen-agent found a call in it.

    The parsed output the agent last saw may be older than this: qwen-agent
    passes on only non-empty outputs, so a call it dropped at the end of the
    stream leaves a half-parsed one from an earlier chunk. ``None`` when
    qwen-agent did not post-process the turn (the native API).
    """
    raw: tuple[str, bool] | None = getattr(_turn, "raw", None)
    return raw


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(item.get("text") or "") if isinstance(item, dict) else str(item.text or "")
            for item in content
            if isinstance(item, dict) or hasattr(item, "text")
        )
    return ""


def function_call_message(name: str, arguments: str, function_id: str) -> Any:
    """An assistant message asking for one tool call, as qwen-agent's parsers make them."""
    schema = qwen_agent().llm.schema
    return schema.Message(
        role="assistant",
        content="",
        function_call=schema.FunctionCall(name=name, arguments=arguments),
        extra={"function_id": function_id},
    )
