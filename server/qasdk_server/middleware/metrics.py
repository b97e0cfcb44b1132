"""Built-in ``metrics``: each call's outcome and duration in ``/metrics``.

``qasdk_tool_calls_total{tool,outcome}`` and ``qasdk_tool_duration_seconds{tool}``
count what the caller got, after the middleware inside it (a cached or refused
call counts too, with its outcome). In the default chain; leave it out and
``/metrics`` counts no tool calls.
"""

from __future__ import annotations

import time

from qasdk.models import ExecutionResult
from qasdk_server.metrics import Metrics, tool_outcome
from qasdk_server.middleware.base import Middleware, ToolCall, ToolError

__all__ = ["MetricsMiddleware"]


class MetricsMiddleware(Middleware):
    name = "metrics"

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def _observe(self, call: ToolCall, result: ExecutionResult) -> None:
        seconds = result.execution_time or (time.perf_counter() - call.started)
        outcome = tool_outcome(result.success, result.error_type)
        self._metrics.observe_tool(call.tool, outcome, seconds)

    async def after(self, call: ToolCall, result: ExecutionResult) -> ExecutionResult:
        self._observe(call, result)
        return result

    async def on_error(self, call: ToolCall, error: ToolError) -> ExecutionResult | None:
        self._observe(call, error.result)
        return None
