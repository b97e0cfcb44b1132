"""The spans of a task, recorded by the SDK's in-memory exporter."""

from __future__ import annotations

import concurrent.futures
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from qasdk.config import ModelConfig, TelemetryConfig
from qasdk.models import ExecutionResult, MethodConfig, TaskError, TraceStep
from qasdk_server.agent import shim
from qasdk_server.agent.run import AgentFailure, AgentRun
from qasdk_server.telemetry import start
from qasdk_server.telemetry.provider import provider, traces_url
from qasdk_server.telemetry.spans import Tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
CONFIG = TelemetryConfig(otlp_endpoint="http://collector:4318", service_name="unit")
ADD = MethodConfig(
    name="add", description="Add.", return_type="int", module_path="m", function_name="add"
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    made = Tracing(provider(CONFIG, SimpleSpanProcessor(exporter)), CONFIG)
    yield made
    made.shutdown()


def finished(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_off_without_an_endpoint() -> None:
    assert start(TelemetryConfig()) is None


def test_on_with_an_endpoint() -> None:
    tracing = start(CONFIG)
    assert tracing is not None
    assert traces_url(CONFIG) == "http://collector:4318/v1/traces"
    assert tracing.provider.resource.attributes["service.name"] == "unit"
    tracing.shutdown()


def test_the_task_span_continues_the_request_trace(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    task_id = uuid.uuid4()
    span = tracing.task(task_id, "direct", 2, PARENT)
    span.end("failed", TaskError("ValueError", "bad"))
    span.end("interrupted")  # ending twice keeps the first outcome
    (done,) = finished(exporter, "qasdk.task")
    assert done.context is not None and done.parent is not None
    assert format(done.context.trace_id, "032x") == TRACE_ID
    assert format(done.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert done.kind is SpanKind.CONSUMER
    assert dict(done.attributes or {}) == {
        "qasdk.task.id": str(task_id),
        "qasdk.task.kind": "direct",
        "qasdk.task.attempt": 2,
        "qasdk.task.status": "failed",
        "error.type": "ValueError",
    }
    assert done.status.status_code is StatusCode.ERROR


def test_without_a_request_context_the_task_starts_a_trace(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    tracing.task(uuid.uuid4(), "described", 1, None).end("completed")
    (done,) = finished(exporter, "qasdk.task")
    assert done.parent is None
    assert done.status.status_code is StatusCode.UNSET


def test_a_tool_call_span_carries_its_context_for_the_tool_process(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    task = tracing.task(uuid.uuid4(), "direct", 1, PARENT)
    call = task.tool_call("add")
    assert call.traceparent is not None
    version, trace_id, span_id, flags = call.traceparent.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    call.end(ExecutionResult(success=True, result=3, execution_time=0.25), "success")
    failed = task.tool_call("add")
    failed.end(
        ExecutionResult(success=False, error="boom", error_type="ValueError", execution_time=0.1),
        "error",
    )
    task.tool_call("add").end(None, "cancelled")
    task.tool_call("add").fail(RuntimeError("the executor is not running"))
    task.end("failed")
    ok, bad, cancelled, raised = finished(exporter, "execute_tool add")
    assert ok.context is not None and format(ok.context.span_id, "016x") == span_id
    assert ok.parent is not None and task.span.get_span_context().span_id == ok.parent.span_id
    assert dict(ok.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "add",
        "gen_ai.tool.type": "function",
        "qasdk.tool.outcome": "success",
        "qasdk.tool.duration_ms": 250.0,
    }
    assert ok.status.status_code is StatusCode.UNSET
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.status.description == "ValueError: boom"
    assert (bad.attributes or {})["error.type"] == "ValueError"
    assert (cancelled.attributes or {})["error.type"] == "Cancelled"
    assert (cancelled.attributes or {})["qasdk.tool.outcome"] == "cancelled"
    assert (raised.attributes or {})["error.type"] == "RuntimeError"
    assert raised.status.description == "RuntimeError: the executor is not running"
    assert [e.name for e in raised.events] == ["exception"]


def test_the_requests_tracestate_reaches_the_tool_call(tracing: Tracing) -> None:
    task = tracing.task(uuid.uuid4(), "direct", 1, {**PARENT, "tracestate": "vendor=a"})
    call = task.tool_call("add")
    assert call.carrier["tracestate"] == "vendor=a"
    call.end(ExecutionResult(success=True, result=1), "success")
    task.end("completed")


def test_tool_processes_get_the_endpoint_but_not_the_headers(tracing: Tracing) -> None:
    secret = TelemetryConfig(
        otlp_endpoint="http://collector:4318", headers={"Authorization": "Bearer xyz"}
    )
    env = Tracing(tracing.provider, secret).tool_environment({})
    assert env == {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces",
        "OTEL_SERVICE_NAME": "qasdk",
    }
    assert "xyz" not in str(env)
    # What the worker's environment already says stays; a URL with a password is not passed.
    assert (
        tracing.tool_environment(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SERVICE_NAME": "s"}
        )
        == {}
    )
    with_password = TelemetryConfig(otlp_endpoint="https://user:pw@collector")
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" not in Tracing(
        tracing.provider, with_password
    ).tool_environment({})


class Context:
    """The agent's view of a worker (``AgentContext``), without a worker."""

    attempt = 1

    def __init__(self) -> None:
        self.steps: list[TraceStep] = []
        self.seq = itertools.count(1)

    def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> concurrent.futures.Future[ExecutionResult]:
        future: concurrent.futures.Future[ExecutionResult] = concurrent.futures.Future()
        future.set_result(ExecutionResult(success=True, result=sum(arguments.values())))
        return future

    def record(self, step: TraceStep) -> None:
        self.steps.append(step)

    def next_seq(self) -> int:
        return next(self.seq)

    def observe_model(self, outcome: str, seconds: float) -> None:
        pass

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        pass


class Usage:
    prompt_tokens = 12
    completion_tokens = 7


class Choice:
    finish_reason = "stop"


class Chunk:
    """What the OpenAI client's last stream chunk looks like, as far as qasdk reads it."""

    id = "chatcmpl-1"
    model = "qwen3:4b-q4"
    usage = Usage()
    choices = (Choice(),)


def test_model_turns_are_genai_chat_spans_under_the_task(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    task = tracing.task(uuid.uuid4(), "described", 1, PARENT)
    model = ModelConfig(api_base="http://models.local:11434")
    run = AgentRun(
        model=model, llm=None, tools=[], methods={"add": ADD}, context=Context(), span=task
    )

    def call() -> Iterator[list[Any]]:
        # What shim's reporting stream does with the chunks it passes on.
        for chunk in shim._reporting(iter([Chunk()])):
            assert chunk
        yield [{"role": "assistant", "content": "done"}]

    list(run.model_turn(call))

    def broken() -> Iterator[list[Any]]:
        raise ValueError("the endpoint said no")
        yield []

    with pytest.raises(AgentFailure):
        list(run.model_turn(broken))
    task.end("failed")
    ok, failed = finished(exporter, "chat qwen3:4b")
    assert ok.kind is SpanKind.CLIENT
    assert ok.parent is not None and ok.parent.span_id == task.span.get_span_context().span_id
    attributes = dict(ok.attributes or {})
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "qwen3:4b",
        "gen_ai.request.temperature": 0.7,
        "gen_ai.request.max_tokens": 2000,
        "server.address": "models.local",
        "server.port": 11434,
        "gen_ai.response.model": "qwen3:4b-q4",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ("stop",),
    }
    assert ok.start_time is not None and ok.end_time is not None
    assert ok.end_time >= ok.start_time
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "ValueError"
    assert "gen_ai.usage.input_tokens" not in (failed.attributes or {})


def test_the_sample_ratio_applies_to_tasks_without_a_sampled_parent(
    exporter: InMemorySpanExporter,
) -> None:
    none_kept = TelemetryConfig(otlp_endpoint="http://collector:4318", sample_ratio=0.0)
    tracing = Tracing(provider(none_kept, SimpleSpanProcessor(exporter)), none_kept)
    tracing.task(uuid.uuid4(), "direct", 1, None).end("completed")
    assert finished(exporter, "qasdk.task") == []
    # The caller decided to sample: its decision stands, and the tool call is traced too.
    task = tracing.task(uuid.uuid4(), "direct", 1, PARENT)
    call = task.tool_call("add")
    assert call.traceparent is not None and call.traceparent.endswith("-01")
    call.end(ExecutionResult(success=True, result=1), "success")
    task.end("completed")
    assert len(finished(exporter, "qasdk.task")) == 1
    # A caller that decided not to: nothing is kept, and the tool learns it (flags 00).
    unsampled = tracing.task(
        uuid.uuid4(), "direct", 1, {"traceparent": PARENT["traceparent"][:-2] + "00"}
    )
    quiet = unsampled.tool_call("add")
    assert quiet.traceparent is not None and quiet.traceparent.endswith("-00")
    quiet.end(ExecutionResult(success=True, result=1), "success")
    unsampled.end("completed")
    assert len(exporter.get_finished_spans()) == 2
    tracing.shutdown()
