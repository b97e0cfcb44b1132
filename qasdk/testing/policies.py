"""Ready-made rules: replies computed from the request, for unscripted traffic.

A rule is any ``(request_body) -> Reply`` callable. These two understand both
of qwen-agent's function-calling modes, so they drive a real agent through a
full tool round trip without a script (demos, the CLI, benchmarks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from qasdk.testing import reply as _reply
from qasdk.testing._protocol import content_text, uses_native_tools
from qasdk.testing.reply import Reply

__all__ = ["auto", "echo", "example_arguments", "offered_tools"]

_TOOLS_BLOCK = re.compile(r"<tools>\n(.*?)\n</tools>", re.DOTALL)
_TOOL_RESPONSE = re.compile(r"<tool_response>\n?(.*?)\n?</tool_response>", re.DOTALL)
_EXAMPLES: dict[str, object] = {
    "string": "example",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "array": [],
    "object": {},
}


def echo(body: Mapping[str, Any]) -> Reply:
    """Answer ``Echo: <last user message>``."""
    return _reply.text(f"Echo: {_last_user_text(_messages(body))}")


def auto(body: Mapping[str, Any]) -> Reply:
    """Call one offered tool, then report its result; echo when no tools are offered.

    Since the last user message: without a tool result yet, call the tool
    named in that message (else the first one) with the JSON object found in
    it, or with :func:`example_arguments`. With a result (``tool``/``function``
    messages, or nous ``<tool_response>`` blocks) answer ``Result: <result>``.
    """
    messages = _messages(body)
    result = _last_tool_result(messages)
    if result is not None:
        return _reply.text(f"Result: {result}")
    tools = offered_tools(body)
    if not tools:
        return echo(body)
    question = _last_user_text(messages)
    tool = _named_tool(tools, question)
    arguments = _embedded_object(question)
    if arguments is None:
        arguments = example_arguments(tool.get("parameters"))
    return _reply.tool_call(str(tool["name"]), arguments)


def offered_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The function specs (``name``/``description``/``parameters``) a request offers.

    Native requests list them in ``tools``; qwen-agent's nous prompt writes them
    one JSON object per line inside ``<tools>…</tools>`` in the system message.
    """
    if uses_native_tools(body):
        specs = (tool.get("function") for tool in body["tools"] if isinstance(tool, dict))
        return [spec for spec in specs if isinstance(spec, dict) and spec.get("name")]
    found: list[dict[str, Any]] = []
    for message in _messages(body):
        if message.get("role") != "system":
            continue
        blocks = _TOOLS_BLOCK.findall(content_text(message.get("content")))
        if not blocks:
            continue
        found = []
        for line in blocks[-1].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            spec = entry.get("function", entry) if isinstance(entry, dict) else None
            if isinstance(spec, dict) and spec.get("name"):
                found.append(spec)
    return found


def example_arguments(schema: object) -> dict[str, Any]:
    """Values for the required parameters of a JSON Schema object.

    Per parameter: its ``default``, else its first ``enum`` value, else an
    example of its type (``"example"``, 1, 1.0, true, [], {}).
    """
    if not isinstance(schema, Mapping):
        return {}
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, Mapping) or not isinstance(required, Sequence):
        return {}
    return {
        str(name): _example_value(properties.get(name))
        for name in required
        if isinstance(name, str)
    }


def _example_value(schema: object) -> object:
    if not isinstance(schema, Mapping):
        return "example"
    if "default" in schema:
        return schema["default"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            usable = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            if usable:
                return _example_value(usable[0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    value = _EXAMPLES.get(kind, "example") if isinstance(kind, str) else "example"
    # Fresh containers, so callers can't share mutable defaults.
    return json.loads(json.dumps(value))


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [message for message in messages if isinstance(message, dict)]


def _is_tool_response(message: Mapping[str, Any]) -> bool:
    """A nous tool result: qwen-agent sends it as a user message of ``<tool_response>`` blocks."""
    return message.get("role") == "user" and content_text(
        message.get("content")
    ).lstrip().startswith("<tool_response>")


def _last_user_index(messages: Sequence[Mapping[str, Any]]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "user" and not _is_tool_response(message):
            return index
    return -1


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    index = _last_user_index(messages)
    return content_text(messages[index].get("content")) if index >= 0 else ""


def _last_tool_result(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The newest tool result after the last real user message, if any."""
    for message in reversed(messages[_last_user_index(messages) + 1 :]):
        role = message.get("role")
        text = content_text(message.get("content"))
        if role in ("tool", "function"):
            return text.strip()
        if role == "user":
            responses = _TOOL_RESPONSE.findall(text)
            if responses:
                return str(responses[-1]).strip()
    return None


def _named_tool(tools: Sequence[dict[str, Any]], question: str) -> dict[str, Any]:
    """The tool whose name appears first in ``question`` (as a whole word), else the first."""
    best: tuple[int, dict[str, Any]] | None = None
    for tool in tools:
        match = re.search(rf"(?<!\w){re.escape(str(tool['name']))}(?!\w)", question)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), tool)
    return best[1] if best else tools[0]


def _embedded_object(text: str) -> dict[str, Any] | None:
    """The first JSON object written inside ``text``."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start >= 0:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            pass
        else:
            if isinstance(value, dict):
                return value
        start = text.find("{", start + 1)
    return None
