"""``telemetry:`` → an SDK tracer provider exporting over OTLP/HTTP in batches.

The provider is qasdk's own, not installed as the global one: a library in the
worker's process (or a test) may have set that, and qasdk's spans go where its
config says either way.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from qasdk.config import TelemetryConfig

__all__ = ["exporting_provider", "provider", "traces_url"]

#: Seconds one export may take before it is given up (the SDK's default is 10).
_EXPORT_TIMEOUT = 10.0


def traces_url(config: TelemetryConfig) -> str:
    """Where spans are posted: the endpoint's ``/v1/traces`` (as for the standard variable)."""
    assert config.otlp_endpoint is not None
    base = config.otlp_endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def provider(config: TelemetryConfig, processor: SpanProcessor) -> TracerProvider:
    """A provider for ``config``'s service and sample ratio, sending spans to ``processor``."""
    made = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        shutdown_on_exit=False,  # the worker shuts it down itself, in order
    )
    made.add_span_processor(processor)
    return made


def exporting_provider(
    config: TelemetryConfig, exporter: SpanExporter | None = None
) -> TracerProvider:
    """The provider that batches spans to the OTLP/HTTP endpoint (or to ``exporter``)."""
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=traces_url(config), headers=dict(config.headers), timeout=_EXPORT_TIMEOUT
        )
    return provider(config, BatchSpanProcessor(exporter, schedule_delay_millis=500))
