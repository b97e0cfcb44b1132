"""Tool calls written as text: which shapes count, which stay the answer, bounded work."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qasdk.testing import reply
from qasdk.testing._protocol import written_calls
from qasdk_server.agent.recover import MAX_CALLS, MAX_TEXT, RecoveredCall, recover_calls

TOOLS = {"get_weather", "add"}
PARIS = RecoveredCall("get_weather", '{"city": "Paris"}')


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '  {"name": "get_weather", "parameters": {"city": "Paris"}}\n',
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
        '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '```JSON\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '```\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        '<tool_call>{"name": "get_weather", "parameters": {"city": "Paris"}}',  # cut short
        '<tool_call>\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\n'
        "</tool_call>",
        '```\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n```',
    ],
)
def test_each_shape_small_models_write_is_a_call(text: str) -> None:
    assert recover_calls(text, TOOLS) == [PARIS]


def test_no_arguments_is_an_empty_object() -> None:
    assert recover_calls('{"name": "add"}', TOOLS) == [RecoveredCall("add", "{}")]
    assert recover_calls('{"name": "add", "arguments": ""}', TOOLS) == [RecoveredCall("add", "{}")]


def test_lists_and_several_tags_keep_their_order() -> None:
    expected = [PARIS, RecoveredCall("add", '{"a": 1, "b": 2}')]
    listed = (
        '[{"name": "get_weather", "arguments": {"city": "Paris"}},'
        ' {"name": "add", "arguments": {"a": 1, "b": 2}}]'
    )
    assert recover_calls(listed, TOOLS) == expected
    tagged = (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    )
    assert recover_calls(tagged, TOOLS) == expected
    assert recover_calls(f"```json\n{listed}\n```", TOOLS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "It is sunny in Paris.",
        '{"name": "Paris", "arguments": {}}',  # not an offered tool
        '{"name": "delete_everything", "arguments": {}}',
        '{"city": "Paris"}',
        '{"name": "get_weather", "arguments": {"city": "Paris"}, "extra": 1}',
        '{"name": "get_weather", "arguments": {}, "parameters": {}}',
        '{"name": "get_weather", "arguments": ["Paris"]}',
        '{"name": "get_weather", "arguments": "Paris"}',
        '{"name": ["get_weather"]}',
        '[{"name": "get_weather", "arguments": {}}, {"name": "nope", "arguments": {}}]',
        "[]",
        '"get_weather"',
        "42",
        'Call this: {"name": "get_weather", "arguments": {"city": "Paris"}}',
        '{"name": "get_weather", "arguments": {"city": "Paris"}} and that is it',
        '```python\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '```json\n{"name": "add"}\n```\n```json\n{"name": "add"}\n```',
        'Here:\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        "```json```",
        '<tool_call>{"name": "add"}</tool_call> and some text',
        '<tool_call>{"name": "add"}<tool_call>{"name": "add"}</tool_call>',  # first unclosed
        '<tool_call>{"name": "add"}</tool_call></tool_call>',
        "<tool_call></tool_call>",
        '{"name": "get_weather", "arguments": {"city": "Paris"}',  # truncated JSON
    ],
)
def test_anything_else_stays_the_answer(text: str) -> None:
    assert recover_calls(text, TOOLS) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The result the model expected, written after its call (Qwen2.5-Coder 0.5B).
        (
            '{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
            '{"forecast": "sunny", "temperature_c": 21}',
            [PARIS],
        ),
        (
            '{"name": "get_weather", "arguments": {"city": "Paris"}} {"forecast": "sunny"}\n'
            '{"name": "add", "arguments": {"a": 1}}',  # a call after a guessed result: not run
            [PARIS],
        ),
        # Calls one per line.
        (
            '{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
            '{"name": "add", "arguments": {"a": 1, "b": 2}}',
            [PARIS, RecoveredCall("add", '{"a": 1, "b": 2}')],
        ),
        (
            '[{"name": "get_weather", "arguments": {"city": "Paris"}}]\n[{"temperature_c": 21}]',
            [PARIS],
        ),
    ],
)
def test_calls_followed_by_json_are_the_calls(text: str, expected: list[RecoveredCall]) -> None:
    assert recover_calls(text, TOOLS) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"forecast": "sunny"}\n{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n{"forecast": "sunny"} ok',
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n{"forecast": ',
        '{"name": "get_weather", "arguments": {"city": "Paris"}} 21',
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\nIt is sunny in Paris.',
        '{"name": "nope", "arguments": {}}\n{"forecast": "sunny"}',
    ],
)
def test_json_after_a_call_must_be_all_json(text: str) -> None:
    assert recover_calls(text, TOOLS) is None


def test_only_names_offered_to_the_task_count() -> None:
    text = '{"name": "add", "arguments": {"a": 1}}'
    assert recover_calls(text, {"add"}) is not None
    assert recover_calls(text, set()) is None
    assert recover_calls(text, {"get_weather"}) is None


def test_too_long_or_too_many_is_not_examined() -> None:
    call = '{"name": "add", "arguments": {}}'
    padded = call + " " * (MAX_TEXT - len(call))
    assert recover_calls(padded, TOOLS) is not None
    assert recover_calls(padded + " ", TOOLS) is None
    assert recover_calls("[" + ",".join([call] * MAX_CALLS) + "]", TOOLS) is not None
    assert recover_calls("[" + ",".join([call] * (MAX_CALLS + 1)) + "]", TOOLS) is None
    assert recover_calls("<tool_call>" * (MAX_CALLS + 1), TOOLS) is None


@pytest.mark.parametrize(
    "hostile",
    [
        "[" * (MAX_TEXT - 1),
        "{" * (MAX_TEXT - 1),
        '{"name": "add", "arguments": ' + "[" * 60_000 + "]" * 60_000 + "}",
        '{"name": "add", "arguments": "' + "[" * 60_000 + '"}',
        "<tool_call>" * (MAX_TEXT // 11),
        "```\n" + "`" * (MAX_TEXT - 8) + "\n```",
        "```json\n" + "<tool_call>" * 5000 + "\n```",
        "<tool_call>```json\n" * 3000,
    ],
)
def test_hostile_text_is_refused_quickly(hostile: str) -> None:
    started = time.perf_counter()
    assert recover_calls(hostile, TOOLS) is None
    assert time.perf_counter() - started < 5  # linear work; generous for a busy machine


def test_deep_but_valid_arguments_do_not_crash() -> None:
    deep = "[" * 5000 + "]" * 5000
    result = recover_calls('{"name": "add", "arguments": {"x": ' + deep + "}}", TOOLS)
    assert result is None or result[0].name == "add"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
arguments = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
calls = st.lists(st.tuples(st.sampled_from(sorted(TOOLS)), arguments), min_size=1, max_size=4)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    calls,
    st.sampled_from(["json", "fenced", "tags"]),
    st.sampled_from(["arguments", "parameters"]),
    st.booleans(),
)
def test_what_the_scripted_model_writes_is_recovered_exactly(
    pairs: list[tuple[str, dict[str, Any]]], written_as: Any, key: Any, as_string: bool
) -> None:
    written = reply.tool_calls(
        pairs, written_as=written_as, arguments_key=key, string_arguments=as_string
    )
    recovered = recover_calls(written_calls(written), TOOLS)
    assert recovered is not None
    assert [(c.name, json.loads(c.arguments)) for c in recovered] == [
        (c.name, c.arguments) for c in written.calls
    ]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_and_only_names_offered_tools(text: str) -> None:
    result = recover_calls(text, TOOLS)
    assert result is None or all(c.name in TOOLS for c in result)
    assert result is None or all(isinstance(json.loads(c.arguments), dict) for c in result)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(min_size=1, max_size=40).filter(lambda t: t.strip()))
def test_prose_around_a_call_keeps_it_an_answer(before: str, after: str) -> None:
    call = '{"name": "add", "arguments": {}}'
    if not after.lstrip().startswith(("{", "[")):  # JSON after a call: see below
        assert recover_calls(f"{call} {after}", TOOLS) is None
    if before.strip():
        assert recover_calls(f"{before} {call}", TOOLS) is None or before.strip().startswith(
            ("[", "{", "<tool_call>", "```")
        )
