"""Built-in ``slow_calls``: a warning for each call slower than ``threshold_ms`` (1000).

In the default chain. The warning names the tool, the task and how long it
took, failed calls included.
"""

from __future__ import annotations

import logging
import time

from qasdk.models import ExecutionResult
from qasdk_server.middleware.base import Middleware, ToolCall, ToolError

__all__ = ["SlowCalls"]

logger = logging.getLogger("qasdk.slow")


class SlowCalls(Middleware):
    name = "slow_calls"

    def __init__(self, threshold_ms: float = 1000.0) -> None:
        if not isinstance(threshold_ms, (int, float)) or threshold_ms < 0:
            raise ValueError(
                f"threshold_ms: expected a number of milliseconds >= 0, got {threshold_ms!r}"
            )
        self._threshold = float(threshold_ms)

    def _check(self, call: ToolCall, result: ExecutionResult) -> None:
        ms = (time.perf_counter() - call.started) * 1000
        if ms >= self._threshold:
            logger.warning(
                "slow tool call: %r took %.0f ms (slow_calls.threshold_ms = %g)",
                call.tool,
                ms,
                self._threshold,
                extra={
                    "method": call.tool,
                    "task_id": None if call.task_id is None else str(call.task_id),
                    "duration_ms": round(ms, 3),
                    "outcome": "success" if result.success else result.error_type,
                },
            )

    async def after(self, call: ToolCall, result: ExecutionResult) -> ExecutionResult:
        self._check(call, result)
        return result

    async def on_error(self, call: ToolCall, error: ToolError) -> ExecutionResult | None:
        self._check(call, error.result)
        return None
