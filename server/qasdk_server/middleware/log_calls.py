"""Built-in ``logging``: one log line per tool call, with its task, outcome and duration.

Options: ``level`` (``INFO``), ``arguments`` (``false``: log them too; secrets
are masked by the log formatter like every other field).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from qasdk.models import ExecutionResult
from qasdk.redaction import mask_fields
from qasdk_server.middleware.base import Middleware, ToolCall, ToolError

__all__ = ["LogCalls"]

logger = logging.getLogger("qasdk.calls")


class LogCalls(Middleware):
    name = "logging"

    def __init__(self, level: str = "INFO", arguments: bool = False) -> None:
        number = logging.getLevelName(str(level).upper())
        if not isinstance(number, int):
            raise ValueError(f"level: {level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
        self._level = number
        self._arguments = bool(arguments)

    def _log(self, call: ToolCall, result: ExecutionResult) -> None:
        if not logger.isEnabledFor(self._level):
            return
        ms = (time.perf_counter() - call.started) * 1000
        extra: dict[str, Any] = {
            "method": call.tool,
            "task_id": None if call.task_id is None else str(call.task_id),
            "duration_ms": round(ms, 3),
            "outcome": "success" if result.success else result.error_type,
        }
        if self._arguments:
            hidden = (
                ()
                if call.method is None or call.method.policy is None
                else call.method.policy.redact
            )
            extra["arguments"] = mask_fields(call.arguments, hidden)
        if result.success:
            logger.log(self._level, "tool %r: success in %.1f ms", call.tool, ms, extra=extra)
        else:
            logger.log(
                self._level,
                "tool %r: %s in %.1f ms: %s",
                call.tool,
                result.error_type,
                ms,
                result.error,
                extra=extra,
            )

    async def after(self, call: ToolCall, result: ExecutionResult) -> ExecutionResult:
        self._log(call, result)
        return result

    async def on_error(self, call: ToolCall, error: ToolError) -> ExecutionResult | None:
        self._log(call, error.result)
        return None
