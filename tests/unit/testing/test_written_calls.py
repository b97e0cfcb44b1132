"""The scripted model's small-model behaviours: calls written as text, empty chunks."""

from __future__ import annotations

import json

import msgspec
import pytest

from qasdk.testing import reply
from qasdk.testing._protocol import generate, sse_stream, written_calls

PARIS = {"city": "Paris"}


@pytest.mark.parametrize("native", [False, True])
def test_written_calls_are_text_content_in_both_modes(native: bool) -> None:
    generation = generate(reply.tool_call("get_weather", PARIS, written_as="json"), native=native)
    assert generation.content == '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert (generation.tool_calls, generation.finish_reason) == ((), "stop")


def test_each_layout() -> None:
    one = reply.tool_call("get_weather", PARIS, written_as="fenced")
    assert written_calls(one) == (
        '```json\n{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Paris"\n  }\n}\n```'
    )
    tags = reply.tool_calls([("a", {}), ("b", {"x": 1})], written_as="tags")
    assert written_calls(tags) == (
        '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b", "arguments": {"x": 1}}\n</tool_call>'
    )
    listed = reply.tool_calls([("a", {}), ("b", {})], written_as="json")
    assert json.loads(written_calls(listed)) == [
        {"name": "a", "arguments": {}},
        {"name": "b", "arguments": {}},
    ]
    keyed = reply.tool_call(
        "a", {"x": 1}, written_as="json", arguments_key="parameters", string_arguments=True
    )
    assert json.loads(written_calls(keyed)) == {"name": "a", "parameters": '{"x": 1}'}


def test_text_before_a_written_call_and_thinking() -> None:
    generation = generate(
        reply.tool_call("a", written_as="json", text="Sure:", thinking="hm"), native=True
    )
    assert generation.content == '<think>\nhm\n</think>\n\nSure:\n{"name": "a", "arguments": {}}'


def test_calls_written_as_calls_are_unchanged() -> None:
    assert generate(reply.tool_call("a"), native=True).tool_calls == (("call_1", "a", "{}"),)


@pytest.mark.parametrize(
    "made", [reply.text("hi", empty_chunk=True), reply.tool_call("a", empty_chunk=True)]
)
def test_an_empty_chunk_opens_the_stream(made: reply.Reply) -> None:
    body = sse_stream({}, generate(made, native=True), completion_id="c", model="m")
    events = [
        msgspec.json.decode(line[6:])
        for line in body.decode().split("\n\n")
        if line.startswith("data: {")
    ]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[1]["choices"][0]["delta"] != {"content": ""}
    twin = msgspec.structs.replace(made, empty_chunk=False)
    plain = sse_stream({}, generate(twin, native=True), completion_id="c", model="m")
    assert plain.count(b"data: {") == body.count(b"data: {") - 1


def test_scripts_can_say_it() -> None:
    made = reply.from_data(
        {
            "type": "tool_call",
            "name": "a",
            "written_as": "fenced",
            "arguments_key": "parameters",
            "string_arguments": True,
            "empty_chunk": True,
        }
    )
    assert isinstance(made, reply.ToolCallsReply)
    assert (made.written_as, made.arguments_key, made.string_arguments, made.empty_chunk) == (
        "fenced",
        "parameters",
        True,
        True,
    )
    assert reply.from_data({"type": "text", "content": "x", "empty_chunk": True}).empty_chunk  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="written_as"):
        reply.tool_call("a", written_as="yaml")  # type: ignore[arg-type]
