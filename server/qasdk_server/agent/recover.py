"""Tool calls a model wrote as text instead of in the format its client parses.

Small models (Qwen2.5-Coder 0.5B/1.5B, quantised) write the right call but
without the ``<tool_call>`` special token, or the server hands a tagged call
back as plain content. :func:`recover_calls` reads the shapes seen in practice:

* a JSON object ``{"name": …, "arguments": {…}}`` (``"parameters"`` instead
  of ``"arguments"``; arguments given as a JSON string; left out = no arguments);
* a JSON list of such objects;
* such calls followed only by other JSON values: small models that miss the
  end of a call go on to write the result they expect (``{"forecast": …}``)
  or their next calls; the leading calls are the calls, the guessed results
  after them are dropped (the trace keeps the whole text);
* either of those as the only content of one fenced block (```` ```json ```` or
  ```` ``` ````);
* one or more ``<tool_call>…</tool_call>`` blocks (the last may be unclosed),
  each holding one of the above, alone or in one fenced block.

The whole text (thinking already removed) must be the call: prose around it,
an unknown tool name or any malformed item leaves the text as the answer.
Pure and bounded: no regular expressions, ``json`` only (linear), texts over
:data:`MAX_TEXT` characters are not examined.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import msgspec

__all__ = ["MAX_TEXT", "RecoveredCall", "recover_calls"]

#: Longest text examined (characters); a longer one is never taken for a call.
MAX_TEXT = 64 * 1024
#: Calls one text may hold.
MAX_CALLS = 32

_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_FENCE = "```"
_FENCE_LANGUAGES = ("", "json")
_ARGUMENT_KEYS = ("arguments", "parameters")


class RecoveredCall(msgspec.Struct, frozen=True):
    """A call found in text: the tool's name and its arguments as a JSON object string."""

    name: str
    arguments: str


def recover_calls(text: str | None, tools: Collection[str]) -> list[RecoveredCall] | None:
    """The tool calls ``text`` consists of, or ``None`` when it is not (only) calls."""
    if not text or len(text) > MAX_TEXT:
        return None
    body = text.strip()
    if body.startswith(_OPEN):
        return _tagged(body, tools)
    fenced = _unfence(body)
    if fenced is not None:
        if fenced.startswith(_OPEN):
            return _tagged(fenced, tools)
        body = fenced
    return _calls(_load(body), tools) or _leading_calls(body, tools)


def _leading_calls(body: str, tools: Collection[str]) -> list[RecoveredCall] | None:
    """The calls a sequence of JSON objects (or arrays) starts with, when the text is only
    that sequence."""
    if not body or body[0] not in "{[":
        return None
    decoder = json.JSONDecoder()
    found: list[RecoveredCall] = []
    leading, position, values = True, 0, 0
    while position < len(body):
        if body[position] not in "{[":
            return None  # prose, or a bare number or string: the text is an answer
        try:
            value, end = decoder.raw_decode(body, position)
        except (ValueError, RecursionError):
            return None  # broken JSON: the text is an answer
        values += 1
        if values > MAX_CALLS * 2:
            return None
        calls = _calls(value, tools) if leading else None
        if calls is None:
            leading = False
        else:
            found.extend(calls)
        position = end
        while position < len(body) and body[position].isspace():
            position += 1
    return found if values > 1 and 0 < len(found) <= MAX_CALLS else None


def _unfence(body: str) -> str | None:
    """The content of ``body`` when it is exactly one fenced block."""
    if not (body.startswith(_FENCE) and body.endswith(_FENCE)) or len(body) < 2 * len(_FENCE):
        return None
    newline = body.find("\n")
    if newline < 0:
        return None
    language = body[len(_FENCE) : newline].strip().lower()
    inner = body[newline + 1 : -len(_FENCE)]
    if language not in _FENCE_LANGUAGES:
        return None
    # A fence inside is fine where it is part of the JSON (a string holding ```); two
    # blocks in a row leave text between them that no JSON parse accepts.
    return inner.strip()


def _tagged(body: str, tools: Collection[str]) -> list[RecoveredCall] | None:
    parts = body.split(_OPEN)
    if parts[0].strip() or len(parts) - 1 > MAX_CALLS:
        return None
    found: list[RecoveredCall] = []
    blocks = parts[1:]
    for index, block in enumerate(blocks):
        inner, closed, rest = block.partition(_CLOSE)
        if rest.strip() or _CLOSE in rest:
            return None  # text after a call, or two closing tags
        if not closed and index != len(blocks) - 1:
            return None  # only the last call may be cut short
        inner = inner.strip()
        calls = _calls(_load(_unfence(inner) or inner), tools)
        if calls is None:
            return None
        found.extend(calls)
    return found or None


def _load(body: str) -> Any:
    if not body or body[0] not in "{[":
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _calls(data: Any, tools: Collection[str]) -> list[RecoveredCall] | None:
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > MAX_CALLS:
        return None
    calls = [_call(item, tools) for item in items]
    if any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def _call(item: Any, tools: Collection[str]) -> RecoveredCall | None:
    if not isinstance(item, dict):
        return None
    name = item.get("name")
    keys = [key for key in _ARGUMENT_KEYS if key in item]
    if not isinstance(name, str) or name not in tools or len(keys) > 1:
        return None
    if set(item) - {"name", *_ARGUMENT_KEYS}:
        return None
    arguments = item[keys[0]] if keys else {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return None
    if not isinstance(arguments, dict):
        return None
    try:
        return RecoveredCall(name, json.dumps(arguments, ensure_ascii=False))
    except RecursionError:
        return None
