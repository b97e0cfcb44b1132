"""What the scripted model answers: one :data:`Reply` per chat-completions request.

Replies say *what* the model does (answer, call tools, fail, stall); *how* it
looks on the wire is decided per request by the server, so the same script
works for qwen-agent's default "nous" prompt and for native OpenAI tools.

The constructors validate eagerly so a bad script fails where it is written,
not as a confusing HTTP 500 in the middle of a test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

import msgspec

__all__ = [
    "ErrorReply",
    "Reply",
    "TextReply",
    "ThinkingStyle",
    "ToolCall",
    "ToolCallsReply",
    "WrittenAs",
    "error",
    "from_data",
    "hang",
    "text",
    "tool_call",
    "tool_calls",
]

#: ``tags``: ``<think>…</think>`` in the content, as Ollama returns qwen3 output by
#: default; ``field``: a separate ``reasoning_content``, as vLLM/DashScope do.
ThinkingStyle: TypeAlias = Literal["tags", "field"]

#: How a tool call reaches the client. ``calls``: the way the request asked for
#: (``<tool_call>`` text in nous mode, OpenAI ``tool_calls`` in native mode); the rest
#: are text content in both modes, as small models write them: ``json`` a bare JSON
#: object (a list for several calls), ``fenced`` the same in a ```` ```json ```` block,
#: ``tags`` ``<tool_call>`` blocks as plain characters.
WrittenAs: TypeAlias = Literal["calls", "json", "fenced", "tags"]
ArgumentsKey: TypeAlias = Literal["arguments", "parameters"]

_T = TypeVar("_T")
_Delay = Annotated[float, msgspec.Meta(ge=0)]
_Status = Annotated[int, msgspec.Meta(ge=400, le=599)]
_Name = Annotated[str, msgspec.Meta(min_length=1)]


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """One function call: a tool name and its (JSON object) arguments."""

    name: _Name
    arguments: dict[str, Any] = {}


class TextReply(msgspec.Struct, frozen=True, kw_only=True, tag="text", tag_field="type"):
    """A final answer, optionally preceded by qwen3-style reasoning."""

    content: str
    thinking: str | None = None
    thinking_style: ThinkingStyle = "tags"
    delay: _Delay = 0.0
    #: Streamed replies start with a chunk whose content is empty.
    empty_chunk: bool = False


class ToolCallsReply(msgspec.Struct, frozen=True, kw_only=True, tag="tool_calls", tag_field="type"):
    """One or more (parallel) tool calls, with optional text and reasoning before them."""

    calls: tuple[ToolCall, ...]
    text: str = ""
    thinking: str | None = None
    thinking_style: ThinkingStyle = "tags"
    delay: _Delay = 0.0
    written_as: WrittenAs = "calls"
    #: The key of the arguments in a call written as text.
    arguments_key: ArgumentsKey = "arguments"
    #: Arguments in a call written as text are a JSON string, not an object.
    string_arguments: bool = False
    empty_chunk: bool = False
    #: Written after calls written as ``json``, one call per line: the result the model
    #: expected, as small models that miss the end of a call go on to write it.
    guessed_result: dict[str, Any] | None = None


class ErrorReply(msgspec.Struct, frozen=True, kw_only=True, tag="error", tag_field="type"):
    """An HTTP error with an OpenAI-style body, for fault-injection tests.

    ``retry_after`` (seconds) becomes a ``retry-after-ms`` header and
    ``should_retry`` an ``x-should-retry`` header: the ``openai`` client (and
    so qwen-agent, which keeps its default of 2 retries) obeys both, which
    keeps retry tests fast and their request count predictable.
    """

    status: _Status = 500
    message: str = "scripted model error"
    retry_after: _Delay | None = None
    should_retry: bool | None = None
    delay: _Delay = 0.0


Reply: TypeAlias = TextReply | ToolCallsReply | ErrorReply


def text(
    content: str,
    *,
    thinking: str | None = None,
    thinking_style: ThinkingStyle = "tags",
    delay: float = 0.0,
    empty_chunk: bool = False,
) -> TextReply:
    """A final answer.

    Args:
        content: The answer text.
        thinking: Reasoning to emit before the answer, like qwen3 does.
        thinking_style: ``tags`` puts ``<think>\\n…\\n</think>\\n\\n`` before the
            content; ``field`` sends it as ``reasoning_content``.
        delay: Seconds to wait before answering.
        empty_chunk: Start a streamed reply with a chunk of empty content, as some
            servers do (qwen-agent's ``qwen`` prompt fails on it).
    """
    return _convert(
        {
            "type": "text",
            "content": content,
            "thinking": thinking,
            "thinking_style": thinking_style,
            "delay": delay,
            "empty_chunk": empty_chunk,
        },
        TextReply,
    )


def tool_call(
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    thinking: str | None = None,
    thinking_style: ThinkingStyle = "tags",
    text: str = "",
    delay: float = 0.0,
    written_as: WrittenAs = "calls",
    arguments_key: ArgumentsKey = "arguments",
    string_arguments: bool = False,
    empty_chunk: bool = False,
    guessed_result: Mapping[str, Any] | None = None,
) -> ToolCallsReply:
    """A single tool call (see :func:`tool_calls`)."""
    return tool_calls(
        [(name, arguments or {})],
        thinking=thinking,
        thinking_style=thinking_style,
        text=text,
        delay=delay,
        written_as=written_as,
        arguments_key=arguments_key,
        string_arguments=string_arguments,
        empty_chunk=empty_chunk,
        guessed_result=guessed_result,
    )


def tool_calls(
    calls: Iterable[tuple[str, Mapping[str, Any]] | ToolCall],
    *,
    thinking: str | None = None,
    thinking_style: ThinkingStyle = "tags",
    text: str = "",
    delay: float = 0.0,
    written_as: WrittenAs = "calls",
    arguments_key: ArgumentsKey = "arguments",
    string_arguments: bool = False,
    empty_chunk: bool = False,
    guessed_result: Mapping[str, Any] | None = None,
) -> ToolCallsReply:
    """Parallel tool calls, in order.

    Args:
        calls: ``(name, arguments)`` pairs or :class:`ToolCall` objects.
        thinking: Reasoning to emit first (see :func:`text`).
        thinking_style: ``tags`` or ``field`` (see :func:`text`).
        text: Visible text before the calls.
        delay: Seconds to wait before answering.
        written_as: ``calls`` (the client's format) or text the way small models
            write calls: ``json``, ``fenced`` or ``tags`` (see :data:`WrittenAs`).
        arguments_key: ``arguments`` or ``parameters``, for calls written as text.
        string_arguments: Write the arguments as a JSON string (calls written as text).
        empty_chunk: Start a streamed reply with a chunk of empty content.
        guessed_result: With ``written_as="json"``: the calls one per line, then this
            object, the result a small model expects and writes after its call.

    Raises:
        ValueError: No calls, an empty name, arguments that are not a JSON object, or
            a ``guessed_result`` without ``written_as="json"``.
    """
    items: list[dict[str, Any]] = []
    for call in calls:
        arguments: Mapping[str, Any]
        if isinstance(call, ToolCall):
            name, arguments = call.name, call.arguments
        else:
            name, arguments = call
        if not isinstance(arguments, Mapping):
            raise ValueError(f"arguments of {name!r} must be a mapping, got {type(arguments)!r}")
        try:
            # Round-trip so the reply holds plain JSON and fails here, not in the server.
            plain = msgspec.json.decode(msgspec.json.encode(dict(arguments)))
        except (TypeError, msgspec.EncodeError) as exc:
            raise ValueError(f"arguments of {name!r} are not JSON-serialisable: {exc}") from exc
        items.append({"name": name, "arguments": plain})
    if not items:
        raise ValueError("tool_calls needs at least one call")
    if guessed_result is not None and written_as != "json":
        raise ValueError('guessed_result goes with written_as="json"')
    return _convert(
        {
            "type": "tool_calls",
            "calls": items,
            "text": text,
            "thinking": thinking,
            "thinking_style": thinking_style,
            "delay": delay,
            "written_as": written_as,
            "arguments_key": arguments_key,
            "string_arguments": string_arguments,
            "empty_chunk": empty_chunk,
            "guessed_result": None if guessed_result is None else dict(guessed_result),
        },
        ToolCallsReply,
    )


def error(
    status: int = 500,
    message: str = "scripted model error",
    *,
    retry_after: float | None = None,
    should_retry: bool | None = None,
    delay: float = 0.0,
) -> ErrorReply:
    """An HTTP error (500/502/503/429…) with an OpenAI-style error body.

    Args:
        status: HTTP status, 400-599.
        message: ``error.message`` in the body.
        retry_after: Seconds the client should wait before retrying (> 0 to be obeyed).
        should_retry: Force the ``openai`` client's retry decision either way.
        delay: Seconds to wait before answering.
    """
    return _convert(
        {
            "type": "error",
            "status": status,
            "message": message,
            "retry_after": retry_after,
            "should_retry": should_retry,
            "delay": delay,
        },
        ErrorReply,
    )


def hang(seconds: float, content: str = "(late reply)") -> TextReply:
    """Stall ``seconds`` before answering with ``content``, to exercise client timeouts.

    Only the request being answered waits; the server keeps serving others.
    """
    return text(content, delay=seconds)


def from_data(data: object) -> Reply:
    """One script entry from plain data (a parsed YAML/JSON script file).

    A bare string is a text reply. A mapping has a ``type`` of ``text``,
    ``tool_call`` (``name``/``arguments``), ``tool_calls`` (``calls``: a list
    of ``{name, arguments}``), ``error`` or ``hang`` (``seconds``/``content``);
    its other keys are the matching constructor's arguments.

    Raises:
        ValueError: The entry does not describe a reply.
    """
    if isinstance(data, str):
        return text(data)
    if not isinstance(data, Mapping):
        raise ValueError(f"a reply must be a string or a mapping, got {type(data).__name__}")
    fields = {str(key): value for key, value in data.items()}
    kind = fields.pop("type", None)
    if kind == "hang":
        return hang(**_checked(fields, {"seconds", "content"}, kind))
    if kind == "tool_call":
        allowed = {"name", "arguments", "thinking", "thinking_style", "text", "delay", *_AS_TEXT}
        return tool_call(**_checked(fields, allowed, kind))
    if kind == "tool_calls":
        raw_calls = fields.pop("calls", None)
        if not isinstance(raw_calls, Sequence) or isinstance(raw_calls, str):
            raise ValueError("a tool_calls reply needs a list of {name, arguments} as 'calls'")
        calls = [_convert(call, ToolCall) for call in raw_calls]
        allowed = {"thinking", "thinking_style", "text", "delay", *_AS_TEXT}
        return tool_calls(calls, **_checked(fields, allowed, kind))
    if kind == "text":
        allowed = {"content", "thinking", "thinking_style", "delay", "empty_chunk"}
        return text(**_checked(fields, allowed, kind))
    if kind == "error":
        allowed = {"status", "message", "retry_after", "should_retry", "delay"}
        return error(**_checked(fields, allowed, kind))
    raise ValueError(
        f"unknown reply type {kind!r}; expected text, tool_call, tool_calls, error or hang"
    )


_AS_TEXT = ("written_as", "arguments_key", "string_arguments", "empty_chunk")


def _checked(fields: dict[str, Any], allowed: set[str], kind: str) -> dict[str, Any]:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s) for a {kind} reply: {', '.join(unknown)}")
    return fields


def _convert(data: object, into: type[_T]) -> _T:
    try:
        return msgspec.convert(data, into)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid {into.__name__}: {exc}") from exc
