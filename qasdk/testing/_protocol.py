"""Replies → OpenAI chat-completions wire format, and request inspection.

Pure functions, no I/O, so the exact bytes a model server would send are
easy to reason about. Formats follow what Ollama serves for qwen3 and what
qwen-agent 0.0.34 parses:

* nous mode (the request has no ``tools``): tool calls are text, the
  Hermes/qwen3 chat-template layout ``<tool_call>\\n{"name": …, "arguments":
  {…}}\\n</tool_call>``, one block per call joined by ``\\n``, which
  ``NousFnCallPrompt.postprocess_fncall_messages`` turns into function calls;
* native mode (the request has ``tools``): OpenAI ``tool_calls`` with ids
  ``call_1``, ``call_2``… (numbered per response) and JSON-string arguments.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from qasdk.testing.reply import ErrorReply, Reply, TextReply, ToolCallsReply

__all__ = [
    "CREATED",
    "NO_REPLY_MESSAGE",
    "Generation",
    "chat_completion",
    "content_text",
    "error_body",
    "generate",
    "nous_tool_call",
    "sse_stream",
    "usage",
    "uses_native_tools",
    "written_calls",
]

#: The error message when neither the script nor a rule has a reply.
NO_REPLY_MESSAGE = "scripted model: no reply left for this request"
#: ``created`` of every response: fixed so responses are byte-for-byte reproducible.
CREATED = 1_700_000_000
_FINGERPRINT = "fp_scripted"
_CONTENT_PIECES = 4
_REASONING_PIECES = 3
_ARGUMENT_PIECES = 3


class Generation(msgspec.Struct, frozen=True, kw_only=True):
    """What the model "generated" for one request, before framing."""

    content: str | None
    reasoning: str | None = None
    #: ``(id, name, arguments_json)`` for native tool calls.
    tool_calls: tuple[tuple[str, str, str], ...] = ()
    finish_reason: str = "stop"
    #: A streamed reply starts with a chunk of empty content.
    empty_chunk: bool = False


def uses_native_tools(body: Mapping[str, Any]) -> bool:
    """Whether the client asked for OpenAI function calling (a non-empty ``tools`` list)."""
    tools = body.get("tools")
    return isinstance(tools, list) and len(tools) > 0


def invalid_messages(body: Mapping[str, Any]) -> str | None:
    """What a validating server (the OpenAI API, llama-cpp-python, vLLM) refuses in
    ``messages``: a tool result that does not say which call it answers."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for index, message in enumerate(messages):
        if (
            isinstance(message, dict)
            and message.get("role") == "tool"
            and not message.get("tool_call_id")
        ):
            return (
                f"Missing parameter 'tool_call_id': messages[{index}] with role 'tool' "
                "must have a 'tool_call_id'."
            )
    return None


def nous_tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """One call the way qwen3's chat template (and qwen-agent's nous prompt) writes it."""
    payload = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{payload}\n</tool_call>"


def written_calls(reply: ToolCallsReply) -> str:
    """The calls of ``reply`` as text, in its ``written_as`` layout (not ``calls``)."""
    items = [
        {
            "name": call.name,
            reply.arguments_key: (
                json.dumps(call.arguments, ensure_ascii=False)
                if reply.string_arguments
                else call.arguments
            ),
        }
        for call in reply.calls
    ]
    if reply.written_as == "tags":
        return "\n".join(
            f"<tool_call>\n{json.dumps(item, ensure_ascii=False)}\n</tool_call>" for item in items
        )
    if reply.guessed_result is not None:
        lines = [*items, reply.guessed_result]
        return "\n".join(json.dumps(item, ensure_ascii=False) for item in lines)
    data: object = items[0] if len(items) == 1 else items
    if reply.written_as == "fenced":
        return f"```json\n{json.dumps(data, ensure_ascii=False, indent=2)}\n```"
    return json.dumps(data, ensure_ascii=False)


def generate(reply: Reply, *, native: bool) -> Generation:
    """Lay out a text or tool-calls reply for a request in nous or native mode."""
    if isinstance(reply, ErrorReply):
        raise TypeError("error replies are not generated")
    if isinstance(reply, TextReply):
        body: str | None = reply.content
        calls: tuple[tuple[str, str, str], ...] = ()
        finish = "stop"
    elif reply.written_as != "calls":
        written = written_calls(reply)
        body = f"{reply.text}\n{written}" if reply.text else written
        calls = ()
        finish = "stop"
    elif native:
        body = reply.text or None
        calls = tuple(
            (
                f"call_{index}",
                call.name,
                json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":")),
            )
            for index, call in enumerate(reply.calls, start=1)
        )
        finish = "tool_calls"
    else:
        blocks = "\n".join(nous_tool_call(call.name, call.arguments) for call in reply.calls)
        # The qwen3 template puts a single newline between visible text and the calls.
        body = f"{reply.text}\n{blocks}" if reply.text else blocks
        calls = ()
        finish = "stop"
    reasoning = None
    if reply.thinking is not None:
        if reply.thinking_style == "field":
            reasoning = reply.thinking
        else:
            body = f"<think>\n{reply.thinking}\n</think>\n\n{body or ''}"
    return Generation(
        content=body,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=finish,
        empty_chunk=reply.empty_chunk,
    )


def content_text(content: object) -> str:
    """The text of a message ``content``: a string or a list of OpenAI content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


def usage(body: Mapping[str, Any], generation: Generation) -> dict[str, int]:
    """Deterministic token counts: words in, words out."""
    messages = body.get("messages")
    prompt = 0
    if isinstance(messages, list):
        prompt = sum(
            _words(content_text(message.get("content")))
            for message in messages
            if isinstance(message, dict)
        )
    completion = _words(generation.content) + _words(generation.reasoning)
    completion += sum(
        _words(name) + _words(arguments) for _, name, arguments in generation.tool_calls
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chat_completion(
    body: Mapping[str, Any], generation: Generation, *, completion_id: str, model: str
) -> bytes:
    """A non-streaming ``chat.completion`` response body."""
    message: dict[str, Any] = {"role": "assistant", "content": generation.content}
    if generation.reasoning is not None:
        message["reasoning_content"] = generation.reasoning
    if generation.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in generation.tool_calls
        ]
    return msgspec.json.encode(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": _FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": generation.finish_reason,
                }
            ],
            "usage": usage(body, generation),
        }
    )


def _split(text: str, pieces: int) -> list[str]:
    """Cut ``text`` into at most ``pieces`` consecutive parts, mid-word like a tokenizer may."""
    if not text:
        return []
    count = min(pieces, len(text))
    bounds = [len(text) * index // count for index in range(count + 1)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


def _deltas(generation: Generation) -> Iterator[dict[str, Any]]:
    for piece in _split(generation.reasoning or "", _REASONING_PIECES):
        yield {"reasoning_content": piece}
    for piece in _split(generation.content or "", _CONTENT_PIECES):
        yield {"content": piece}
    for index, (call_id, name, arguments) in enumerate(generation.tool_calls):
        yield {
            "tool_calls": [
                {
                    "index": index,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
            ]
        }
        for fragment in _split(arguments, _ARGUMENT_PIECES):
            yield {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}


def sse_stream(
    body: Mapping[str, Any], generation: Generation, *, completion_id: str, model: str
) -> bytes:
    """The whole ``text/event-stream`` body of a streamed response, ``[DONE]`` included.

    It is sent at once with a ``Content-Length``: scripted output has nothing
    to wait for, and a sized body keeps the connection reusable.
    """
    head = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": _FINGERPRINT,
    }
    deltas = list(_deltas(generation)) or [{"content": ""}]
    if generation.empty_chunk:
        deltas.insert(0, {"content": ""})
    deltas[0] = {"role": "assistant", **deltas[0]}
    events = [
        {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
        for delta in deltas
    ]
    events.append(
        {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": generation.finish_reason,
                }
            ],
            "usage": usage(body, generation),
        }
    )
    parts = [b"data: " + msgspec.json.encode(event) + b"\n\n" for event in events]
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def error_body(message: str, status: int) -> bytes:
    """An OpenAI-style ``{"error": {...}}`` body."""
    if status == 429:
        kind = "rate_limit_error"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    return msgspec.json.encode(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}
    )
