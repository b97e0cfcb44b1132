"""``qasdk model check`` against the scripted model, through real qwen-agent (issue 15)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qasdk.cli import cli
from qasdk.config import ModelConfig
from qasdk.testing import ScriptedModel, reply
from qasdk_server.check.probe import FormatResult, right_city
from qasdk_server.check.report import EXIT_NO_TOOL_CALLS, EXIT_UNUSABLE, recommend

pytestmark = [pytest.mark.integration]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("QASDK_CONFIG", "QASDK_LOGGING_LEVEL", "QASDK_LOGGING_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def check(model: ScriptedModel, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    model.strict = True  # as llama-cpp-python and vLLM
    monkeypatch.setenv("QASDK_MODEL_API_BASE", model.url)
    monkeypatch.setenv("QASDK_MODEL_TIMEOUT", "10")
    return CliRunner().invoke(cli, ["model", "check", *args])


def test_a_model_that_calls_the_tool_passes_and_gets_settings(
    project: Path, monkeypatch: pytest.MonkeyPatch, scripted_model: ScriptedModel
) -> None:
    scripted_model.push(
        reply.text("ready"),
        # nous: the call written as bare JSON, recovered; native: a proper tool call.
        reply.tool_call("get_weather", {"city": "Paris"}, written_as="json"),
        reply.text("It is sunny in Paris, 21 °C."),
        reply.tool_call("get_weather", {"city": "Paris"}),
        reply.text("Sunny and 21 °C in Paris."),
    )
    result = check(scripted_model, monkeypatch)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"model 'qwen3:4b' at {scripted_model.base_url}"
    table = {
        line.split()[0] + (line.split()[1] if line.startswith("tools") else ""): line
        for line in lines[1:7]
    }
    assert " ok " in table["endpoint"]
    assert "'qwen3:4b' in /v1/models" in table["listed"]
    assert " ok " in table["prompt"]
    assert "get_weather(city='Paris') recovered from text, then answered" in table["tools(nous)"]
    assert "get_weather(city='Paris') tagged, then answered" in table["tools(native)"]
    # A tagged call needs no recovery: that format is recommended.
    assert "    function_calling: native" in lines
    assert "    recover_tool_calls: true" in lines
    assert "ok: tool calling works; set model.function_calling: native" in result.stdout


def test_json_output_for_scripts(
    project: Path, monkeypatch: pytest.MonkeyPatch, scripted_model: ScriptedModel
) -> None:
    scripted_model.push(
        reply.text("ready"),
        reply.tool_call("get_weather", {"city": "Paris"}, written_as="fenced"),
        reply.text("Sunny."),
        reply.text("I do not know the weather."),
    )
    result = check(scripted_model, monkeypatch, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == 0
    assert report["recommended"] == {"function_calling": "nous", "recover_tool_calls": True}
    nous, native = report["formats"]
    assert nous["works"] and nous["call"] == "recovered"
    assert nous["arguments"] == {"city": "Paris"}
    assert not native["works"] and native["call"] == "none"
    assert native["wrote"] == "I do not know the weather."


def test_a_model_that_never_calls_fails_with_a_clear_message(
    project: Path, monkeypatch: pytest.MonkeyPatch, scripted_model: ScriptedModel
) -> None:
    scripted_model.rule = lambda body: reply.text("I cannot look up the weather.")
    result = check(scripted_model, monkeypatch)
    assert result.exit_code == EXIT_NO_TOOL_CALLS, result.output
    assert "no tool call; the model wrote: 'I cannot look up the weather.'" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the model never called the probe tool, in either format: it answered in "
        "text; try a larger or tool-trained model"
    )
    assert "recommended" not in result.stdout


def test_a_model_that_repeats_the_call_works_as_tasks_would(
    project: Path, monkeypatch: pytest.MonkeyPatch, scripted_model: ScriptedModel
) -> None:
    # model.on_tool_loop: answer (the default): tasks end with the tool's result.
    scripted_model.push(reply.text("ready"))
    scripted_model.rule = lambda body: reply.tool_call("get_weather", {"city": "Paris"})
    result = check(scripted_model, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "tools (nous)    partial  get_weather(city='Paris') tagged, then repeated it" in (
        result.stdout
    )
    assert "tasks end with that result as their answer" in result.stdout


def test_a_model_that_repeats_the_call_fails_when_loops_fail_tasks(
    project: Path, monkeypatch: pytest.MonkeyPatch, scripted_model: ScriptedModel
) -> None:
    monkeypatch.setenv("QASDK_MODEL_ON_TOOL_LOOP", "fail")
    scripted_model.push(reply.text("ready"))
    scripted_model.rule = lambda body: reply.tool_call("get_weather", {"city": "Paris"})
    result = check(scripted_model, monkeypatch, "--json")
    assert result.exit_code == EXIT_NO_TOOL_CALLS, result.output
    report = json.loads(result.stdout)
    assert all(f["loop_stopped"] and not f["works"] for f in report["formats"])
    assert "gives no answer after its result" in report["message"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_endpoint_names_the_url_without_its_password(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "QASDK_MODEL_API_BASE": f"http://user:s3cret@127.0.0.1:{port}",
        "QASDK_MODEL_TIMEOUT": "5",
    }
    run = subprocess.run(
        [sys.executable, "-m", "qasdk", "model", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == EXIT_UNUSABLE == 6, run.stdout + run.stderr
    assert "s3cret" not in run.stdout + run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: the model server is unreachable: cannot connect to "
        f"http://user:****@127.0.0.1:{port}/v1/models: [Errno 111] Connection refused "
        "(model.api_base)"
    )
    assert "endpoint  FAIL" in run.stdout


def test_right_city() -> None:
    assert right_city({"city": "paris"}, "Paris")
    assert right_city({"city": "Paris, France"}, "Paris")
    assert not right_city({"city": "Lyon"}, "Paris")
    assert not right_city({"town": "Paris"}, "Paris")
    assert not right_city("Paris", "Paris")


def test_recommend_prefers_tagged_then_the_configured_format() -> None:
    def result(fmt: Any, call: Any) -> FormatResult:
        return FormatResult(
            function_calling=fmt, works=True, answered=True, call=call, right_arguments=True
        )

    both_recovered = [result("nous", "recovered"), result("native", "recovered")]
    chosen = recommend(ModelConfig(function_calling="native"), both_recovered)
    assert chosen is not None
    assert (chosen.function_calling, chosen.recover_tool_calls) == ("native", True)
    chosen = recommend(ModelConfig(), [result("nous", "recovered"), result("native", "tagged")])
    assert chosen is not None and chosen.function_calling == "native"
    chosen = recommend(ModelConfig(recover_tool_calls=False), [result("nous", "tagged")])
    assert chosen is not None and chosen.recover_tool_calls is False
    guarded = FormatResult(function_calling="nous", works=True, call="tagged", right_arguments=True)
    chosen = recommend(ModelConfig(), [guarded, result("native", "recovered")])
    assert chosen is not None and chosen.function_calling == "native"  # it answered
    assert recommend(ModelConfig(), []) is None


def test_a_call_followed_by_the_result_the_model_guessed_is_run(
    project: Path, monkeypatch: pytest.MonkeyPatch, scripted_model: ScriptedModel
) -> None:
    guessed = {"city": "Paris", "forecast": "rain"}
    scripted_model.push(
        reply.text("ready"),
        reply.tool_call(
            "get_weather", {"city": "Paris"}, written_as="json", guessed_result=guessed
        ),
        reply.text("Sunny in Paris."),
        reply.tool_call(
            "get_weather", {"city": "Paris"}, written_as="json", guessed_result=guessed
        ),
        reply.text("Sunny in Paris."),
    )
    result = check(scripted_model, monkeypatch, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(f["works"], f["call"]) for f in report["formats"]] == [(True, "recovered")] * 2
    assert all(f["answer"] == "Sunny in Paris." for f in report["formats"])


def test_guessed_results_go_with_calls_written_as_json() -> None:
    from qasdk.testing._protocol import written_calls

    call = reply.tool_call("get_weather", {"city": "Paris"}, written_as="json", guessed_result={})
    assert written_calls(call) == '{"name": "get_weather", "arguments": {"city": "Paris"}}\n{}'
    with pytest.raises(ValueError, match="guessed_result"):
        reply.tool_call("get_weather", {"city": "Paris"}, guessed_result={})
