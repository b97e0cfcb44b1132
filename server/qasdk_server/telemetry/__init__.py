"""OpenTelemetry traces of tasks: a span per task, model turn and tool call.

Off unless ``telemetry.otlp_endpoint`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT``) is
set; then :func:`start` builds a :class:`~.spans.Tracing` and everything that
traces holds it. Off, nothing holds one, and opentelemetry is never imported:
this package's own ``__init__`` and :mod:`.carrier` import none of it.

- :mod:`.carrier`: the W3C ``traceparent``/``tracestate`` a request brings, checked.
- :mod:`.provider`: the config → tracer provider, sampler and OTLP/HTTP exporter.
- :mod:`.spans`: the task, model-turn and tool-call spans.
- :mod:`.tool_process`: the tool process's side (loaded by path, without qasdk).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qasdk.config import TelemetryConfig

if TYPE_CHECKING:
    from qasdk_server.telemetry.spans import Tracing

__all__ = ["start"]


def start(config: TelemetryConfig) -> Tracing | None:
    """The tracing of a server or worker, or ``None`` when telemetry is off."""
    if not config.enabled:
        return None
    from qasdk_server.telemetry.provider import exporting_provider
    from qasdk_server.telemetry.spans import Tracing

    return Tracing(exporting_provider(config), config)
