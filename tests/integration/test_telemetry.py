"""OpenTelemetry traces of a real `qasdk serve`, received by a local OTLP/HTTP collector.

The collector is a plain HTTP server that keeps the ``ExportTraceServiceRequest``
bodies posted to ``/v1/traces``, decoded with ``opentelemetry-proto``.
"""

from __future__ import annotations

import gzip
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Process, Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"

TRACED_TOOL = '''
from opentelemetry import trace

from qasdk import tool

tracer = trace.get_tracer("tests.traced_tool")


@tool
def traced_add(a: int, b: int) -> int:
    """Add two integers inside a span of the tool's own.

    Args:
        a: First.
        b: Second.
    """
    with tracer.start_as_current_span("traced_add.inner") as span:
        span.set_attribute("tool.sum", a + b)
        return a + b


@tool
def traced_fail(reason: str) -> int:
    """Fail, as a tool may.

    Args:
        reason: Why.
    """
    raise ValueError(reason)
'''


class Collector(http.server.ThreadingHTTPServer):
    """Keeps every span posted to ``/v1/traces``, with its service's name."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[str, Any]] = []
        #: The ``X-Token`` header of each export, with the names of the spans it held.
        self.tokens: list[tuple[str | None, set[str]]] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def named(self, name: str) -> list[Any]:
        with self.lock:
            return [span for _, span in self.spans if span.name == name]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            names = {
                span.name
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
            }
            self.server.tokens.append((self.headers.get("X-Token"), names))
            for resource in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope in resource.scope_spans:
                    self.server.spans.extend((service, span) for span in scope.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def attributes(span: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in span.attributes:
        value = item.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            values[item.key] = [v.string_value for v in value.array_value.values]
        else:
            values[item.key] = getattr(value, kind)
    return values


def traced_project(root: Path, model_url: str, url: str, telemetry: dict[str, Any]) -> Path:
    """A synced project with the traced tools and ``telemetry`` as its config section."""
    project = make_project(root, model_url)
    (project / "tools" / "traced.py").write_text(TRACED_TOOL)
    config = yaml.safe_load((project / "model_config.yaml").read_text())
    if telemetry:
        config["telemetry"] = telemetry
    (project / "model_config.yaml").write_text(yaml.safe_dump(config))
    synced = qasdk(project, url, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    return project


def test_a_task_is_one_trace_from_the_request_to_the_tools_own_span(
    tmp_path: Path, session_model: ScriptedModel, fresh_database: str, collector: Collector
) -> None:
    model = session_model
    model.reset()
    telemetry = {
        "otlp_endpoint": collector.endpoint,
        "service_name": "qasdk-test",
        "headers": {"X-Token": "s3cret-otlp-token"},
    }
    project = traced_project(tmp_path / "project", model.url, fresh_database, telemetry)

    model.push(reply.tool_call("traced_add", {"a": 2, "b": 3}), reply.text("The sum is 5."))
    server = Server(project, fresh_database)
    try:
        response = server.http.post(
            "/api/tasks",
            json={"task_description": "add 2 and 3"},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert response.status_code == 201, response.text
        shown = server.http.get("/api/config").json()["config"]["telemetry"]
        assert shown["headers"] == {"X-Token": "****"}
        task = server.finished(response.json()["task_id"])
        assert task["status"] == "completed", task
        # A direct task, submitted with an invalid traceparent: a trace of its own.
        response = server.http.post(
            "/api/tasks",
            json={"method": "traced_fail", "params": {"reason": "no"}},
            headers={"traceparent": "00-not-a-trace-01"},
        )
        assert response.status_code == 201, response.text
        failed = server.finished(response.json()["task_id"])
        assert failed["status"] == "failed", failed
    finally:
        code = server.stop()
    assert code == 0, server.output

    # Stopping flushed the server's spans; the tool process exported its own on exit.
    until(lambda: collector.named("traced_add.inner"), "the tool's own span never arrived")
    until(lambda: len(collector.named("qasdk.task")) == 2, "the task spans never arrived")
    by_task = {attributes(s)["qasdk.task.id"]: s for s in collector.named("qasdk.task")}
    task_span = by_task[task["task_id"]]
    turns = collector.named("chat qwen3:4b")
    (tool_span,) = collector.named("execute_tool traced_add")
    (inner,) = collector.named("traced_add.inner")

    # One trace: the request's.
    for span in (task_span, *turns, tool_span, inner):
        assert span.trace_id.hex() == TRACE_ID
    assert task_span.parent_span_id.hex() == PARENT_ID
    assert attributes(task_span)["qasdk.task.id"] == task["task_id"]
    assert attributes(task_span)["qasdk.task.kind"] == "described"
    assert attributes(task_span)["qasdk.task.status"] == "completed"

    # Model turns under the task, with GenAI attributes from the endpoint's usage (asked
    # for in the stream).
    described = [r for r in model.requests if r.get("stream")]
    assert described and all(r["stream_options"] == {"include_usage": True} for r in described)
    assert len(turns) == 2
    for turn in turns:
        assert turn.parent_span_id == task_span.span_id
        found = attributes(turn)
        assert found["gen_ai.operation.name"] == "chat"
        assert found["gen_ai.request.model"] == "qwen3:4b"
        assert found["gen_ai.usage.input_tokens"] > 0
        assert found["gen_ai.usage.output_tokens"] > 0
        # Nous function calling: the call is text, so the endpoint says "stop" both times.
        assert found["gen_ai.response.finish_reasons"] == ["stop"]
    turns.sort(key=lambda t: t.start_time_unix_nano)
    assert attributes(turns[0])["qasdk.model.tool_calls"] == 1
    assert "qasdk.model.tool_calls" not in attributes(turns[1])

    # The tool call under the task, and the tool's own span under the call.
    assert tool_span.parent_span_id == task_span.span_id
    found = attributes(tool_span)
    assert found["gen_ai.tool.name"] == "traced_add"
    assert found["qasdk.tool.outcome"] == "success"
    assert found["qasdk.tool.duration_ms"] >= 0
    assert inner.parent_span_id == tool_span.span_id
    assert attributes(inner)["tool.sum"] == 5
    services = {service for service, span in collector.spans if span.name == "traced_add.inner"}
    assert services == {"qasdk-test"}
    # The export headers are the server's: the tool process never had them.
    for token, names in collector.tokens:
        if "qasdk.task" in names:
            assert token == "s3cret-otlp-token"
        if "traced_add.inner" in names:
            assert token is None

    # The failed direct task: a root span, its failure on it and on its tool call.
    failed_span = by_task[failed["task_id"]]
    assert failed_span.trace_id.hex() != TRACE_ID
    assert failed_span.parent_span_id == b""
    found = attributes(failed_span)
    assert (found["qasdk.task.kind"], found["qasdk.task.status"]) == ("direct", "failed")
    assert found["error.type"] == "ValueError"
    assert failed_span.status.code == 2  # STATUS_CODE_ERROR
    (fail_call,) = collector.named("execute_tool traced_fail")
    assert fail_call.parent_span_id == failed_span.span_id
    assert attributes(fail_call)["error.type"] == "ValueError"
    assert fail_call.status.code == 2
    model.reset()


def test_a_worker_in_another_process_continues_the_submitting_request_trace(
    tmp_path: Path,
    session_model: ScriptedModel,
    fresh_database: str,
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API stores the context; a `qasdk worker`, traced through the standard
    OTEL_EXPORTER_OTLP_ENDPOINT alone, starts the task span under it."""
    project = traced_project(tmp_path / "project", session_model.url, fresh_database, {})
    api = Server(project, fresh_database, "--no-worker")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    worker = Process(project, fresh_database, "worker")
    try:
        response = api.http.post(
            "/api/tasks",
            json={"method": "traced_add", "params": {"a": 20, "b": 22}},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert response.status_code == 201, response.text
        task = api.finished(response.json()["task_id"], within=60)
        assert (task["status"], task["result"]) == ("completed", 42)
    finally:
        assert worker.stop() == 0, worker.output
        assert api.stop() == 0, api.output
    until(lambda: collector.named("traced_add.inner"), "the tool's own span never arrived")
    until(lambda: collector.named("qasdk.task"), "the task span never arrived")
    (task_span,) = collector.named("qasdk.task")
    (tool_span,) = collector.named("execute_tool traced_add")
    (inner,) = collector.named("traced_add.inner")
    assert {s.trace_id.hex() for s in (task_span, tool_span, inner)} == {TRACE_ID}
    assert task_span.parent_span_id.hex() == PARENT_ID
    assert tool_span.parent_span_id == task_span.span_id
    assert inner.parent_span_id == tool_span.span_id
    assert attributes(inner)["tool.sum"] == 42
    assert {service for service, _ in collector.spans} == {"qasdk"}
    assert "telemetry: sending traces to" in worker.output


PROBE = '''
import os, sys

from opentelemetry import trace


def probe():
    """What the tool process holds of tracing while a call runs."""
    current = trace.get_current_span().get_span_context()
    return {
        "traceparent": os.environ.get("TRACEPARENT"),
        "tracestate": os.environ.get("TRACESTATE"),
        "trace_id": format(current.trace_id, "032x") if current.is_valid else None,
        "span_id": format(current.span_id, "016x") if current.is_valid else None,
    }


def loaded():
    """The opentelemetry modules the tool process imported."""
    return sorted(m for m in sys.modules if m.startswith("opentelemetry"))
'''


def _method(name: str) -> Any:
    from qasdk.models import MethodConfig

    return MethodConfig(
        name=name,
        description=name,
        return_type="dict" if name == "probe" else "list",
        module_path="probe",
        function_name=name,
    )


@pytest.mark.anyio
async def test_the_tool_process_stays_light_untraced_and_nests_traced_calls(
    tmp_path: Path,
) -> None:
    from qasdk_server.executor.pool import Executor

    (tmp_path / "probe.py").write_text(PROBE.replace("from opentelemetry import trace\n", ""))
    methods = {"loaded": _method("loaded")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    async with Executor(methods, processes=1, cwd=tmp_path, base_env=env) as executor:
        untraced = await executor.execute("loaded", {})
        assert untraced.success, untraced.error
        assert untraced.result == []  # no traceparent: nothing of opentelemetry is imported

    (tmp_path / "probe2.py").write_text(PROBE)
    methods = {
        name: msgspec.structs.replace(_method(name), module_path="probe2")
        for name in ("probe", "loaded")
    }
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    async with Executor(methods, processes=1, cwd=tmp_path, base_env=env) as executor:
        carrier = {"traceparent": traceparent, "tracestate": "vendor=a"}
        traced = await executor.execute("probe", {}, trace_context=carrier)
        assert traced.success, traced.error
        assert traced.result == {
            "traceparent": traceparent,
            "tracestate": "vendor=a",
            "trace_id": TRACE_ID,
            "span_id": PARENT_ID,
        }
        after = await executor.execute("probe", {})  # the next call runs outside that context
        assert after.result == dict.fromkeys(("traceparent", "tracestate", "trace_id", "span_id"))
