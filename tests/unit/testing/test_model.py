"""ScriptedModel over real HTTP: the openai client, httpx, and unmodified qwen-agent."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from qwen_agent.agents import FnCallAgent
from qwen_agent.tools.base import BaseTool

from qasdk.testing import NO_REPLY_MESSAGE, ScriptedModel, ToolCall, _protocol, policies, reply
from qasdk.testing.__main__ import load_script

WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
USER: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the weather in Paris?"}
]


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as started:
        yield started


@pytest.fixture
def client(model: ScriptedModel) -> Iterator[openai.OpenAI]:
    # No retries: each test decides exactly how many requests the server sees.
    with openai.OpenAI(base_url=model.base_url, api_key="EMPTY", max_retries=0) as oai:
        yield oai


def stream_text(
    client: openai.OpenAI, *, model: str = "qwen3:4b", **kwargs: Any
) -> tuple[str, str, list[Any]]:
    """(content, reasoning_content, chunks) of a streamed completion."""
    chunks = list(client.chat.completions.create(model=model, messages=USER, stream=True, **kwargs))
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks
    )
    return content, reasoning, chunks


# -- plain OpenAI traffic -----------------------------------------------------------


def test_text_reply_non_stream(model: ScriptedModel, client: openai.OpenAI) -> None:
    model.push(reply.text("It is sunny in Paris."))

    response = client.chat.completions.create(model="qwen3:4b", messages=USER)

    assert response.choices[0].message.content == "It is sunny in Paris."
    assert response.choices[0].message.tool_calls is None
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "qwen3:4b"
    assert response.id == "chatcmpl-scripted-1"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (6, 5)
    assert response.usage.total_tokens == 11


def test_text_reply_stream(model: ScriptedModel, client: openai.OpenAI) -> None:
    model.push(reply.text("It is sunny in Paris."))

    content, reasoning, chunks = stream_text(client)

    assert content == "It is sunny in Paris."
    assert reasoning == ""
    assert len(chunks) > 2, "content should arrive in several chunks"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_model_name_is_echoed(model: ScriptedModel, client: openai.OpenAI) -> None:
    model.push(reply.text("a"), reply.text("b"))

    plain = client.chat.completions.create(model="other:1b", messages=USER)
    _, _, chunks = stream_text(client, model="other:7b")

    assert plain.model == "other:1b"
    assert {chunk.model for chunk in chunks} == {"other:7b"}


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_in_tags(model: ScriptedModel, client: openai.OpenAI, stream: bool) -> None:
    model.push(reply.text("Sunny.", thinking="Paris is in France."))

    if stream:
        content, reasoning, _ = stream_text(client)
    else:
        message = client.chat.completions.create(model="qwen3:4b", messages=USER).choices[0].message
        content, reasoning = message.content or "", ""
        assert "reasoning_content" not in (message.model_extra or {})

    assert content == "<think>\nParis is in France.\n</think>\n\nSunny."
    assert reasoning == ""


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_in_field(model: ScriptedModel, client: openai.OpenAI, stream: bool) -> None:
    model.push(reply.text("Sunny.", thinking="Paris is in France.", thinking_style="field"))

    if stream:
        content, reasoning, _ = stream_text(client)
    else:
        message = client.chat.completions.create(model="qwen3:4b", messages=USER).choices[0].message
        content = message.content or ""
        reasoning = (message.model_extra or {})["reasoning_content"]

    assert content == "Sunny."
    assert reasoning == "Paris is in France."


def test_native_tool_calls_non_stream(model: ScriptedModel, client: openai.OpenAI) -> None:
    model.push(
        reply.tool_calls(
            [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})],
            text="Checking both.",
        )
    )

    response = client.chat.completions.create(
        model="qwen3:4b",
        messages=USER,
        tools=[WEATHER_TOOL],
    )

    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking both."
    calls = [call.model_dump() for call in choice.message.tool_calls or []]
    assert calls == [
        {
            "id": f"call_{number}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": f'{{"city":"{city}"}}'},
        }
        for number, city in ((1, "Paris"), (2, "Rome"))
    ]


def test_native_tool_calls_stream(model: ScriptedModel, client: openai.OpenAI) -> None:
    model.push(
        reply.tool_calls([("get_weather", {"city": "Paris"}), ToolCall(name="now", arguments={})])
    )

    _, _, chunks = stream_text(client, tools=[WEATHER_TOOL])

    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.id is not None:
                # The opening delta of a call carries its id, type and name, as OpenAI's do.
                assert delta.index not in calls
                assert delta.type == "function"
                assert delta.function is not None
                calls[delta.index] = {"id": delta.id, "name": delta.function.name or "", "args": ""}
            else:
                assert delta.function is not None
                assert delta.function.name is None
            calls[delta.index]["args"] += delta.function.arguments or ""
    assert calls == {
        0: {"id": "call_1", "name": "get_weather", "args": '{"city":"Paris"}'},
        1: {"id": "call_2", "name": "now", "args": "{}"},
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
def test_nous_tool_call_is_text(model: ScriptedModel, client: openai.OpenAI, stream: bool) -> None:
    # Without a ``tools`` list the model can only answer with text, as qwen3 does.
    model.push(
        reply.tool_calls(
            [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Zürich"})],
            thinking="Two cities.",
            text="Let me check.",
        )
    )

    if stream:
        content, _, _ = stream_text(client)
    else:
        response = client.chat.completions.create(model="qwen3:4b", messages=USER)
        assert response.choices[0].finish_reason == "stop"
        assert response.choices[0].message.tool_calls is None
        content = response.choices[0].message.content or ""

    assert content == (
        "<think>\nTwo cities.\n</think>\n\n"
        "Let me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call>'
    )


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
        (429, openai.RateLimitError),
        (400, openai.BadRequestError),
    ],
)
def test_error_reply(
    model: ScriptedModel,
    client: openai.OpenAI,
    status: int,
    error_class: type[openai.APIStatusError],
) -> None:
    model.push(reply.error(status, "overloaded"), reply.text("recovered"))

    with pytest.raises(error_class) as raised:
        client.chat.completions.create(model="qwen3:4b", messages=USER)

    assert raised.value.status_code == status
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["message"] == "overloaded"
    reply_after = client.chat.completions.create(model="qwen3:4b", messages=USER)
    assert reply_after.choices[0].message.content == "recovered"


def test_error_reply_retry_headers_steer_the_openai_client(
    model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the headers the client would back off for 20 s and more: the contrast is
    # large enough that a busy machine cannot blur it.
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 20.0)
    monkeypatch.setattr("openai._base_client.MAX_RETRY_DELAY", 20.0)
    model.push(
        reply.error(503, retry_after=0.001),
        reply.error(503, should_retry=True, retry_after=0.001),
        reply.text("third time lucky"),
        reply.error(503, should_retry=False),
    )

    with openai.OpenAI(base_url=model.base_url, api_key="EMPTY", max_retries=2) as oai:
        started = time.perf_counter()
        response = oai.chat.completions.create(model="qwen3:4b", messages=USER)
        assert time.perf_counter() - started < 10, "retry-after-ms should beat the backoff"
        assert response.choices[0].message.content == "third time lucky"
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="qwen3:4b", messages=USER)

    assert len(model.requests) == 4


def test_requests_records_bodies(model: ScriptedModel, client: openai.OpenAI) -> None:
    model.push(reply.text("one"), reply.text("two"))

    client.chat.completions.create(
        model="qwen3:4b", messages=USER, temperature=0.3, max_tokens=128, seed=7
    )
    stream_text(client, tools=[WEATHER_TOOL])

    first, second = model.requests
    assert first["model"] == "qwen3:4b"
    assert first["temperature"] == 0.3
    assert first["max_tokens"] == 128
    assert first["seed"] == 7
    assert first["messages"] == USER
    assert "stream" not in first
    assert second["stream"] is True
    assert second["tools"] == [WEATHER_TOOL]
    # A copy: callers can't corrupt the record.
    model.requests.clear()
    assert len(model.requests) == 2


def test_exhausted_script_fails_clearly(model: ScriptedModel) -> None:
    model.push(reply.text("only one"))
    # Default retries on: the server must tell the client not to retry this 500.
    with openai.OpenAI(base_url=model.base_url, api_key="EMPTY") as oai:
        oai.chat.completions.create(model="qwen3:4b", messages=USER)
        with pytest.raises(openai.InternalServerError) as raised:
            oai.chat.completions.create(model="qwen3:4b", messages=USER)

    assert raised.value.status_code == 500
    assert raised.value.body == {
        "message": NO_REPLY_MESSAGE,
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert NO_REPLY_MESSAGE == "scripted model: no reply left for this request"
    assert len(model.requests) == 2
    assert model.remaining == 0


def test_hang_times_out_the_client_without_blocking_others(
    model: ScriptedModel, client: openai.OpenAI
) -> None:
    model.push(reply.hang(30), reply.text("fast"))
    outcome: list[BaseException] = []

    def slow_request() -> None:
        with openai.OpenAI(
            base_url=model.base_url, api_key="EMPTY", max_retries=0, timeout=0.2
        ) as oai:
            try:
                oai.chat.completions.create(model="qwen3:4b", messages=USER)
            except openai.APITimeoutError as exc:
                outcome.append(exc)

    started = time.perf_counter()
    worker = threading.Thread(target=slow_request)
    worker.start()
    while model.remaining == 2:  # wait until the hang has been taken
        time.sleep(0.001)
    fast = client.chat.completions.create(model="qwen3:4b", messages=USER)
    fast_elapsed = time.perf_counter() - started
    worker.join()

    assert fast.choices[0].message.content == "fast"
    assert fast_elapsed < 15, "a 30 s hang must not block other requests"
    assert len(outcome) == 1
    assert isinstance(outcome[0], openai.APITimeoutError)


def test_stop_interrupts_a_hang() -> None:
    model = ScriptedModel([reply.hang(30)]).start()
    outcome: list[BaseException] = []

    def hanging_request() -> None:
        try:
            httpx.post(model.base_url + "/chat/completions", json={"messages": USER}, timeout=10)
        except httpx.TransportError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=hanging_request)
    worker.start()
    while model.remaining:
        time.sleep(0.001)
    started = time.perf_counter()
    model.stop()
    worker.join()

    assert time.perf_counter() - started < 15  # the hang would last 30 s
    assert len(outcome) == 1, "the client should see the connection cut"


def test_delay_and_latency_add_up() -> None:
    with ScriptedModel([reply.text("late", delay=0.05)], latency=0.05) as model:
        started = time.perf_counter()
        response = httpx.post(model.base_url + "/chat/completions", json={"messages": USER})
        elapsed = time.perf_counter() - started

    assert response.json()["choices"][0]["message"]["content"] == "late"
    assert elapsed >= 0.1  # both waits, one after the other


def test_list_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["qwen3:4b"]


def test_ollama_endpoints_and_errors() -> None:
    with ScriptedModel(model_names=("qwen3:4b", "qwen3:8b")) as model, httpx.Client() as http:
        tags = http.get(model.url + "/api/tags").json()
        version = http.get(model.url + "/api/version").json()
        missing = http.get(model.url + "/v2/nothing")
        wrong_post = http.post(model.url + "/api/chat", json={})
        malformed = http.post(
            model.base_url + "/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        not_object = http.post(model.base_url + "/chat/completions", json=[1, 2])
        root = http.get(model.url + "/")

    assert [m["name"] for m in tags["models"]] == ["qwen3:4b", "qwen3:8b"]
    assert isinstance(version["version"], str)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert wrong_post.status_code == 404
    assert malformed.status_code == 400
    assert malformed.json()["error"]["message"].startswith("invalid JSON body")
    assert not_object.status_code == 400
    assert root.text == "Ollama is running"
    assert model.requests == []


def test_rule_answers_when_the_script_is_empty(model: ScriptedModel, client: openai.OpenAI) -> None:
    model.push(reply.text("scripted"))
    model.rule = policies.echo

    first = client.chat.completions.create(model="qwen3:4b", messages=USER)
    second = client.chat.completions.create(model="qwen3:4b", messages=USER)

    assert first.choices[0].message.content == "scripted"
    assert second.choices[0].message.content == "Echo: What is the weather in Paris?"


def test_a_failing_rule_is_a_clear_500(model: ScriptedModel, client: openai.OpenAI) -> None:
    def broken(body: dict[str, Any]) -> reply.Reply:
        raise KeyError("boom")

    model.rule = broken
    with pytest.raises(openai.InternalServerError, match="the rule failed: KeyError"):
        client.chat.completions.create(model="qwen3:4b", messages=USER)
    model.rule = lambda body: "not a reply"  # type: ignore[assignment,return-value]
    with pytest.raises(openai.InternalServerError, match="the rule failed: TypeError"):
        client.chat.completions.create(model="qwen3:4b", messages=USER)


def test_lifecycle() -> None:
    with pytest.raises(ValueError, match="latency"):
        ScriptedModel(latency=-1)
    model = ScriptedModel([reply.text("a")])
    with pytest.raises(TypeError, match="replies"):
        model.push("plain string")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not started"):
        _ = model.url
    assert model.start() is model.start()
    assert model.running
    assert model.base_url == model.url + "/v1"
    assert model.url.startswith("http://127.0.0.1:")
    model.push(reply.text("b"), reply.text("c"))
    assert model.remaining == 3
    assert "remaining=3" in repr(model)
    model.stop()
    model.stop()
    assert "stopped" in repr(model)


def test_connection_is_kept_alive() -> None:
    # One TCP connection for several requests: the Content-Length framing is right.
    with ScriptedModel([reply.text("a"), reply.text("b"), reply.text("c")]) as model:
        connection = http.client.HTTPConnection("127.0.0.1", model.port, timeout=5)
        sockets = []
        try:
            for stream in (True, False, True):
                body = json.dumps({"messages": USER, "stream": stream})
                connection.request("POST", "/v1/chat/completions", body)
                response = connection.getresponse()
                payload = response.read()
                assert response.status == 200
                assert not response.will_close
                sockets.append(connection.sock)
        finally:
            connection.close()

    assert payload.endswith(b"data: [DONE]\n\n")
    assert sockets[0] is sockets[1] is sockets[2]


def test_the_fixture_from_the_plugin(scripted_model: ScriptedModel) -> None:
    scripted_model.push(reply.text("from the fixture"))
    response = httpx.post(scripted_model.base_url + "/chat/completions", json={"messages": USER})
    assert response.json()["choices"][0]["message"]["content"] == "from the fixture"


# -- replies and script files --------------------------------------------------------


def test_reply_validation() -> None:
    with pytest.raises(ValueError, match="thinking_style"):
        reply.text("x", thinking="t", thinking_style="inline")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay"):
        reply.text("x", delay=-1)
    with pytest.raises(ValueError, match="at least one"):
        reply.tool_calls([])
    with pytest.raises(ValueError, match="JSON"):
        reply.tool_call("f", {"when": object()})
    with pytest.raises(ValueError, match="name"):
        reply.tool_call("", {})
    with pytest.raises(ValueError, match="status"):
        reply.error(200)


def test_replies_from_data() -> None:
    assert reply.from_data("hi") == reply.text("hi")
    assert reply.from_data({"type": "text", "content": "hi", "thinking": "t"}) == reply.text(
        "hi", thinking="t"
    )
    assert reply.from_data(
        {"type": "tool_call", "name": "f", "arguments": {"a": 1}}
    ) == reply.tool_call("f", {"a": 1})
    assert reply.from_data(
        {"type": "tool_calls", "calls": [{"name": "f"}, {"name": "g", "arguments": {"b": 2}}]}
    ) == reply.tool_calls([("f", {}), ("g", {"b": 2})])
    assert reply.from_data({"type": "error", "status": 429}) == reply.error(429)
    assert reply.from_data({"type": "hang", "seconds": 3}) == reply.hang(3)
    for bad in (
        1,
        {"type": "nope"},
        {"type": "text", "content": "x", "extra": 1},
        {"type": "text"},
    ):
        with pytest.raises((ValueError, TypeError)):
            reply.from_data(bad)


def test_load_script_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "script.yaml"
    yaml_file.write_text(
        "- type: tool_call\n  name: get_weather\n  arguments: {city: Paris}\n- It is sunny.\n",
        encoding="utf-8",
    )
    json_file = tmp_path / "script.json"
    json_file.write_text(json.dumps([{"type": "error", "status": 503}]), encoding="utf-8")
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("- type: text\n  content: 1\n", encoding="utf-8")

    assert load_script(yaml_file) == [
        reply.tool_call("get_weather", {"city": "Paris"}),
        reply.text("It is sunny."),
    ]
    assert load_script(json_file) == [reply.error(503)]
    with pytest.raises(ValueError, match="reply #1"):
        load_script(bad_file)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_cli_serves_until_interrupted(tmp_path: Path, stop_signal: signal.Signals) -> None:
    script = tmp_path / "script.yaml"
    script.write_text("- Hello from the CLI.\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "qasdk.testing", "--port", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split()[3]
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.post(url + "/v1/chat/completions", json={"messages": USER}).json()
        exhausted = httpx.post(url + "/v1/chat/completions", json={"messages": USER})
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert answer["choices"][0]["message"]["content"] == "Hello from the CLI."
    assert exhausted.status_code == 500
    assert process.returncode == 0, stderr


# -- wire format properties ----------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(st.text(), JSON_VALUES, max_size=4)


@settings(database=None, max_examples=150, deadline=None)
@given(arguments=ARGUMENTS, text=st.text(max_size=20), thinking=st.none() | st.text(max_size=20))
def test_qwen_agent_parses_any_nous_call_back(
    arguments: dict[str, Any], text: str, thinking: str | None
) -> None:
    """qwen-agent's own nous parser reads back exactly the scripted call."""
    from qwen_agent.llm.fncall_prompts.nous_fncall_prompt import NousFnCallPrompt
    from qwen_agent.llm.schema import ContentItem, Message

    blob = json.dumps([arguments, text, thinking], ensure_ascii=False)
    # Markup inside the data would confuse any Hermes-style parser, a real model's too.
    assume(all(tag not in blob for tag in ("<tool_call>", "</tool_call>", "</think>")))
    generated = _protocol.generate(
        reply.tool_call("f", arguments, text=text, thinking=thinking), native=False
    )
    assert generated.content is not None

    parsed = NousFnCallPrompt().postprocess_fncall_messages(
        [Message(role="assistant", content=[ContentItem(text=generated.content)])]
    )

    calls = [m.function_call for m in parsed if m.function_call]
    assert len(calls) == 1
    assert calls[0].name == "f"
    assert json.loads(calls[0].arguments) == arguments


@settings(database=None, max_examples=150, deadline=None)
@given(
    content=st.text(),
    thinking=st.none() | st.text(),
    calls=st.lists(st.tuples(st.text(min_size=1), ARGUMENTS), max_size=3),
)
def test_stream_chunks_reassemble_exactly(
    content: str, thinking: str | None, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    made = (
        reply.tool_calls(calls, text=content, thinking=thinking, thinking_style="field")
        if calls
        else reply.text(content, thinking=thinking, thinking_style="field")
    )
    generation = _protocol.generate(made, native=True)
    body = {"messages": USER}

    stream = _protocol.sse_stream(body, generation, completion_id="c", model="m")
    plain = json.loads(_protocol.chat_completion(body, generation, completion_id="c", model="m"))

    events = stream.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert "".join(d.get("content", "") for d in deltas) == (
        plain["choices"][0]["message"]["content"] or ""
    )
    assert "".join(d.get("reasoning_content", "") for d in deltas) == (thinking or "")
    arguments: dict[int, str] = {}
    for delta in deltas:
        for call in delta.get("tool_calls", []):
            arguments[call["index"]] = (
                arguments.get(call["index"], "") + call["function"]["arguments"]
            )
    assert [json.loads(arguments[i]) for i in sorted(arguments)] == [args for _, args in calls]
    assert chunks[-1]["usage"] == plain["usage"]


# -- policies ------------------------------------------------------------------------


def test_auto_policy_native() -> None:
    tools = [
        WEATHER_TOOL,
        {
            "type": "function",
            "function": {
                "name": "convert",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "amount": {"type": "number"},
                        "count": {"type": "integer"},
                        "unit": {"type": "string", "enum": ["kg", "lb"]},
                        "exact": {"type": "boolean", "default": False},
                        "tags": {"type": "array"},
                        "extra": {"type": "object"},
                        "note": {"type": ["null", "string"]},
                        "optional": {"type": "string"},
                    },
                    "required": ["amount", "count", "unit", "exact", "tags", "extra", "note"],
                },
            },
        },
    ]

    first = policies.auto({"messages": USER, "tools": tools})
    named = policies.auto(
        {"messages": [{"role": "user", "content": "please convert 3 kg"}], "tools": tools}
    )
    embedded = policies.auto(
        {
            "messages": [{"role": "user", "content": 'use get_weather with {"city": "Oslo"} ok'}],
            "tools": tools,
        }
    )
    done = policies.auto(
        {
            "messages": [
                *USER,
                {"role": "assistant", "tool_calls": []},
                {"role": "tool", "content": "sunny, 21C"},
            ],
            "tools": tools,
        }
    )

    assert first == reply.tool_call("get_weather", {"city": "example"})
    assert named == reply.tool_call(
        "convert",
        {
            "amount": 1.0,
            "count": 1,
            "unit": "kg",
            "exact": False,
            "tags": [],
            "extra": {},
            "note": "example",
        },
    )
    assert embedded == reply.tool_call("get_weather", {"city": "Oslo"})
    assert done == reply.text("Result: sunny, 21C")


def test_auto_policy_without_tools_echoes() -> None:
    assert policies.auto({"messages": USER}) == reply.text("Echo: What is the weather in Paris?")
    assert policies.echo({"messages": []}) == reply.text("Echo: ")


# -- real qwen-agent against the stand-in --------------------------------------------


class RecordingWeather(BaseTool):  # type: ignore[misc]  # qwen-agent is untyped
    """A real qwen-agent tool (dict parameters: exactly type/properties/required)."""

    name = "get_weather"
    description = "Get the current weather of a city."
    parameters = {  # noqa: RUF012  (qwen-agent's class-attribute API)
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    }

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def call(self, params: str | dict[str, Any], **kwargs: Any) -> str:
        arguments = self._verify_json_format_args(params)
        self.calls.append(arguments)
        return f"{arguments['city']}: sunny, 21C"


@pytest.fixture
def agent_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # FnCallAgent() builds a Memory whose doc_parser/simple_doc_parser tools mkdir
    # ``workspace/tools/...`` relative to the cwd (QWEN_AGENT_DEFAULT_WORKSPACE, read
    # once at import, defaults to "workspace"): construct agents inside tmp_path.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_agent(model: ScriptedModel, tool: BaseTool, **generate_cfg: Any) -> FnCallAgent:
    return FnCallAgent(
        function_list=[tool],
        llm={
            "model": "qwen3:4b",
            "model_server": model.base_url,
            "api_key": "EMPTY",
            "generate_cfg": generate_cfg,
        },
    )


@pytest.mark.parametrize("native", [False, True], ids=["nous", "native"])
def test_qwen_agent_tool_round_trip(model: ScriptedModel, agent_dir: Path, native: bool) -> None:
    model.push(reply.tool_call("get_weather", {"city": "Paris"}), reply.text("It is sunny."))
    tool = RecordingWeather()
    agent = make_agent(model, tool, **({"use_raw_api": True} if native else {}))

    # Agent.run always streams (and use_raw_api insists on it).
    *_, messages = agent.run([{"role": "user", "content": "Weather in Paris?"}])

    assert (agent_dir / "workspace" / "tools").is_dir()
    assert tool.calls == [{"city": "Paris"}]
    assert messages[-1]["role"] == "assistant"
    assert messages[-1]["content"] == "It is sunny."
    assert [m["role"] for m in messages] == ["assistant", "function", "assistant"]
    assert messages[1]["content"] == "Paris: sunny, 21C"
    first, second = model.requests
    assert first["stream"] is True
    if native:
        assert first["tools"][0]["function"]["name"] == "get_weather"
        assert messages[0]["extra"] == {"function_id": "call_1"}
        # qwen-agent sends the result as role "tool" keyed by "id" (not "tool_call_id").
        assert second["messages"][-1] == {
            "role": "tool",
            "content": "Paris: sunny, 21C",
            "name": "get_weather",
            "extra": {"function_id": "call_1"},
            "id": "call_1",
        }
    else:
        assert "tools" not in first
        assert "<tools>" in first["messages"][0]["content"]
        assert second["messages"][-2:] == [
            {
                "role": "assistant",
                "content": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
                "\n</tool_call>",
            },
            {"role": "user", "content": "<tool_response>\nParis: sunny, 21C\n</tool_response>"},
        ]


def test_qwen_agent_parallel_nous_calls(model: ScriptedModel, agent_dir: Path) -> None:
    model.push(
        reply.tool_calls([("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]),
        reply.text("Both sunny."),
    )
    tool = RecordingWeather()

    *_, messages = make_agent(model, tool).run([{"role": "user", "content": "Paris and Rome?"}])

    assert tool.calls == [{"city": "Paris"}, {"city": "Rome"}]
    assert messages[-1]["content"] == "Both sunny."


def test_qwen_agent_llm_non_stream_nous(model: ScriptedModel, agent_dir: Path) -> None:
    # Agents always stream; the chat model itself can also be used without streaming.
    model.push(reply.tool_call("get_weather", {"city": "Paris"}))
    agent = make_agent(model, RecordingWeather())

    output = agent.llm.chat(
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        functions=[RecordingWeather().function],
        stream=False,
    )

    assert model.requests[0].get("stream") is False
    assert output == [
        {
            "role": "assistant",
            "content": "",
            "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            "extra": {"function_id": "1"},
        }
    ]


@pytest.mark.parametrize("native", [False, True], ids=["nous", "native"])
def test_qwen_agent_with_the_auto_policy(
    model: ScriptedModel, agent_dir: Path, native: bool
) -> None:
    model.rule = policies.auto
    tool = RecordingWeather()
    agent = make_agent(model, tool, **({"use_raw_api": True} if native else {}))

    *_, messages = agent.run([{"role": "user", "content": 'get_weather {"city": "Lima"}'}])

    assert tool.calls == [{"city": "Lima"}]
    assert messages[-1]["content"] == "Result: Lima: sunny, 21C"
    assert len(model.requests) == 2


@pytest.mark.parametrize("native", [False, True], ids=["nous", "native"])
def test_qwen_agent_thinking_in_tags(model: ScriptedModel, agent_dir: Path, native: bool) -> None:
    """What qwen-agent 0.0.34 does with qwen3 ``<think>`` tags (Ollama's default output).

    Nothing strips them: the final answer's content still starts with
    ``<think>\\n…\\n</think>\\n\\n``. Before a tool call the thought is split
    into its own assistant message (nous: ``"<think>\\n…\\n</think>"``; native:
    the same plus the trailing ``"\\n\\n"``). In nous mode the next request
    sends it back merged with the call as ``"<think>…</think>\\n<tool_call>…"``
    (qwen-agent joins consecutive assistant messages with one newline).
    Callers must drop ``<think>…</think>`` from results themselves.
    """
    model.push(
        reply.tool_call("get_weather", {"city": "Paris"}, thinking="Need the tool."),
        reply.text("It is sunny.", thinking="Got it."),
    )
    tool = RecordingWeather()
    agent = make_agent(model, tool, **({"use_raw_api": True} if native else {}))

    *_, messages = agent.run([{"role": "user", "content": "Weather in Paris?"}])

    assert tool.calls == [{"city": "Paris"}]
    thought = "<think>\nNeed the tool.\n</think>" + ("\n\n" if native else "")
    assert [(m["role"], m["content"]) for m in messages] == [
        ("assistant", thought),
        ("assistant", ""),
        ("function", "Paris: sunny, 21C"),
        ("assistant", "<think>\nGot it.\n</think>\n\nIt is sunny."),
    ]
    assert messages[1]["function_call"]["name"] == "get_weather"
    if not native:
        assert model.requests[1]["messages"][-2]["content"].startswith(
            "<think>\nNeed the tool.\n</think>\n<tool_call>\n"
        )


def test_qwen_agent_thinking_in_field(model: ScriptedModel, agent_dir: Path) -> None:
    """``reasoning_content`` becomes a separate assistant message (content ``""``)
    before the answer, which keeps its clean content."""
    model.push(reply.text("It is sunny.", thinking="Easy.", thinking_style="field"))

    *_, messages = make_agent(model, RecordingWeather()).run(
        [{"role": "user", "content": "Weather?"}]
    )

    assert [(m["content"], m.get("reasoning_content")) for m in messages] == [
        ("", "Easy."),
        ("It is sunny.", None),
    ]


def test_qwen_agent_gives_up_on_an_exhausted_script(model: ScriptedModel, agent_dir: Path) -> None:
    from qwen_agent.llm.base import ModelServiceError

    model.push(reply.tool_call("get_weather", {"city": "Paris"}))
    with pytest.raises(ModelServiceError, match="no reply left"):
        list(make_agent(model, RecordingWeather()).run([{"role": "user", "content": "Paris?"}]))
    assert len(model.requests) == 2


def test_a_strict_model_refuses_a_tool_result_without_its_call_id() -> None:
    import httpx

    body = {
        "model": "qwen3:4b",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "content": "{}", "id": "call_1"},
        ],
    }
    with ScriptedModel([reply.text("ok")], strict=True) as strict:
        refused = httpx.post(strict.base_url + "/chat/completions", json=body)
        assert refused.status_code == 400
        assert "tool_call_id" in refused.json()["error"]["message"]
        body["messages"][1]["tool_call_id"] = "call_1"
        assert httpx.post(strict.base_url + "/chat/completions", json=body).status_code == 200
