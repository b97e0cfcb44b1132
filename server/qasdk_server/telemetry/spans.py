"""The spans of a task: the task, its model turns (GenAI conventions) and its tool calls.

A task span starts under the trace context stored with the task (the
submitting request's ``traceparent``), in whichever process runs it. Model turns
are recorded from the agent's thread once they are over, with their own start
and end times; tool calls are live spans on the event loop whose context goes
to the tool process, so a tool's own spans nest under its call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from qasdk.config import ModelConfig, TelemetryConfig
from qasdk.models import ExecutionResult, TaskError
from qasdk.redaction import url_password
from qasdk_server.telemetry.provider import traces_url

__all__ = ["ModelTurn", "TaskSpan", "ToolSpan", "Tracing"]

_PROPAGATOR = TraceContextTextMapPropagator()
_SCOPE = "qasdk"


class Tracing:
    """The tracer of one server or worker; :meth:`shutdown` exports what is left."""

    def __init__(self, provider: TracerProvider, config: TelemetryConfig) -> None:
        self.provider = provider
        self.config = config
        self.tracer = provider.get_tracer(_SCOPE)

    def task(
        self, task_id: Any, kind: str, attempt: int, carrier: Mapping[str, str] | None
    ) -> TaskSpan:
        """Start the span of one attempt at a task, under the request that submitted it."""
        parent = _PROPAGATOR.extract(dict(carrier)) if carrier else None
        span = self.tracer.start_span(
            "qasdk.task",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "qasdk.task.id": str(task_id),
                "qasdk.task.kind": kind,
                "qasdk.task.attempt": attempt,
            },
        )
        return TaskSpan(self, span)

    def tool_environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """What tool processes need to export their own spans where qasdk's go.

        Variables the worker's environment already sets stay as they are; the
        endpoint is not passed when it carries a password (tools get no secrets),
        nor are the export headers.
        """
        extra: dict[str, str] = {}
        endpoint = self.config.otlp_endpoint
        traces = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        own = environ.get(traces) or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint and not url_password(endpoint) and not own:
            extra[traces] = traces_url(self.config)
        if not environ.get("OTEL_SERVICE_NAME"):
            extra["OTEL_SERVICE_NAME"] = self.config.service_name
        return extra

    def shutdown(self) -> None:
        """Export the spans still queued and stop (blocking: call from a thread)."""
        self.provider.shutdown()


class TaskSpan:
    """One attempt at a task; its model turns and tool calls are its children."""

    def __init__(self, tracing: Tracing, span: Span) -> None:
        self._tracer = tracing.tracer
        self.span = span
        self.context = trace.set_span_in_context(span)
        self._ended = False

    def model_turn(self, model: ModelConfig, started: datetime, elapsed_ms: float) -> ModelTurn:
        """The span of one model call that started at ``started`` and took ``elapsed_ms``."""
        return ModelTurn(self._tracer, self.context, model, started, elapsed_ms)

    def tool_call(self, name: str) -> ToolSpan:
        """Start the span of one tool call (end it with :meth:`ToolSpan.end`)."""
        span = self._tracer.start_span(
            f"execute_tool {name}",
            context=self.context,
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.type": "function",
            },
        )
        return ToolSpan(span)

    def end(self, status: str, error: TaskError | None = None) -> None:
        """End the span with the task's status (``handed_back``: another worker takes it)."""
        if self._ended:
            return
        self._ended = True
        self.span.set_attribute("qasdk.task.status", status)
        if error is not None:
            self.span.set_attribute("error.type", error.type)
            if status == "failed":
                self.span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))
        self.span.end()


class ModelTurn:
    """The GenAI ``chat`` span of one model call, written once the call is over."""

    def __init__(
        self,
        tracer: trace.Tracer,
        parent: Any,
        model: ModelConfig,
        started: datetime,
        elapsed_ms: float,
    ) -> None:
        self._start = int(started.timestamp() * 1e9)
        self._end = self._start + int(elapsed_ms * 1e6)
        address = urlsplit(model.model_server)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model.name,
            "gen_ai.request.temperature": model.temperature,
            "gen_ai.request.max_tokens": model.max_tokens,
        }
        if address.hostname:
            attributes["server.address"] = address.hostname
        if address.port:
            attributes["server.port"] = address.port
        self.span = tracer.start_span(
            f"chat {model.name}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=self._start,
        )

    def end(
        self,
        *,
        usage: Mapping[str, Any] | None = None,
        error: TaskError | None = None,
        tool_calls: int = 0,
    ) -> None:
        """End with what the endpoint reported: token counts, finish reasons, the error."""
        span = self.span
        if usage:
            for key in (
                "gen_ai.response.model",
                "gen_ai.response.id",
                "gen_ai.usage.input_tokens",
                "gen_ai.usage.output_tokens",
            ):
                if usage.get(key) is not None:
                    span.set_attribute(key, usage[key])
            reasons = usage.get("gen_ai.response.finish_reasons")
            if reasons:
                span.set_attribute("gen_ai.response.finish_reasons", list(reasons))
        if tool_calls:
            span.set_attribute("qasdk.model.tool_calls", tool_calls)
        if error is not None:
            span.set_attribute("error.type", error.type)
            span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))
        span.end(end_time=max(self._end, self._start))


class ToolSpan:
    """A running tool call; its context goes to the tool process as ``traceparent``."""

    def __init__(self, span: Span) -> None:
        self.span = span
        #: This span's W3C ``traceparent`` (and ``tracestate``), for the tool process.
        self.carrier: dict[str, str] = {}
        _PROPAGATOR.inject(self.carrier, context=trace.set_span_in_context(span))
        self._started = time.perf_counter()

    @property
    def traceparent(self) -> str | None:
        return self.carrier.get("traceparent")

    def progress(self, fraction: float | None, message: str | None) -> None:
        """A ``ToolContext.report_progress`` the worker passed on, as a span event."""
        attributes: dict[str, str | float] = {}
        if fraction is not None:
            attributes["qasdk.progress.fraction"] = fraction
        if message is not None:
            attributes["qasdk.progress.message"] = message
        self.span.add_event("qasdk.progress", attributes)

    def end(self, outcome: ExecutionResult | None, outcome_label: str) -> None:
        """End with the call's outcome (``None``: cancelled while it ran)."""
        span = self.span
        span.set_attribute("qasdk.tool.outcome", outcome_label)
        if outcome is None:
            span.set_attribute("error.type", "Cancelled")
            span.set_attribute(
                "qasdk.tool.duration_ms", (time.perf_counter() - self._started) * 1000
            )
        else:
            span.set_attribute("qasdk.tool.duration_ms", outcome.execution_time * 1000)
            if not outcome.success:
                kind = outcome.error_type or "Error"
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR, f"{kind}: {outcome.error or ''}"))
        span.end()

    def fail(self, exc: BaseException) -> None:
        """End a call that raised instead of returning an outcome (the executor stopped)."""
        self.span.set_attribute("qasdk.tool.outcome", "error")
        self.span.set_attribute("error.type", type(exc).__name__)
        self.span.record_exception(exc)
        self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.span.end()
