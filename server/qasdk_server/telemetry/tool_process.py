"""The tool process's side of a traced call: the call's span context, for the tool.

Loaded by path by the tool process (``executor/child.py``) when a call brings
a ``traceparent``, so it imports nothing of qasdk, and opentelemetry only when
it is installed. For the length of the call:

- ``TRACEPARENT`` (and ``TRACESTATE``) are set in the environment, the carrier
  the OpenTelemetry spec defines for processes, for a tool that reads them or
  starts a program of its own;
- with opentelemetry installed, the call's context is the current one, so a span
  the tool starts is a child of the tool-call span. When the tool set no tracer
  provider of its own and the worker passed an endpoint
  (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), one exporting there is installed, on
  first use: the tool's spans reach the same collector as qasdk's.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["TracedCalls"]

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class TracedCalls:
    """Enters and leaves the trace context of each call."""

    def __init__(self) -> None:
        self._checked = False
        self._context: Any = None
        self._propagate: Any = None

    def _set_up(self) -> None:
        """Import opentelemetry (if it is there) and give the process a provider if needed."""
        self._checked = True
        try:
            from opentelemetry import context, propagate, trace
        except ImportError:
            return
        self._context, self._propagate = context, propagate
        if not any(os.environ.get(name) for name in _ENDPOINTS):
            return
        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            return  # the tool set its own
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            return
        # The SDK reads OTEL_SERVICE_NAME and the endpoint from the environment, and
        # exports what is left when the process exits (the worker closes its input).
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=500)
        )
        trace.set_tracer_provider(provider)

    def enter(self, traceparent: str, tracestate: str | None) -> Any:
        """Make the call's context current; returns what :meth:`leave` needs."""
        if not self._checked:
            try:
                self._set_up()
            except Exception:  # a broken opentelemetry install must not fail the call
                self._context = None
        os.environ["TRACEPARENT"] = traceparent
        if tracestate:
            os.environ["TRACESTATE"] = tracestate
        if self._context is None:
            return None
        carrier = {"traceparent": traceparent}
        if tracestate:
            carrier["tracestate"] = tracestate
        try:
            return self._context.attach(self._propagate.extract(carrier))
        except Exception:  # a broken opentelemetry install must not fail the call
            return None

    def leave(self, token: Any) -> None:
        os.environ.pop("TRACEPARENT", None)
        os.environ.pop("TRACESTATE", None)
        if token is not None:
            self._context.detach(token)
