"""What a running tool may know about its call: :class:`ToolContext`.

A tool asks for it by annotating one parameter with ``qasdk.ToolContext``::

    @tool
    def crawl(url: str, ctx: ToolContext) -> int:
        for i, page in enumerate(pages(url)):
            if ctx.cancelled:
                break
            ctx.report_progress(i / total, f"page {i}")

The scanner leaves that parameter out of the tool's schema (the model never
sees it, a client cannot send it) and the tool process passes the context in.
Called directly, outside a task, the function gets whatever its caller passes:
:meth:`ToolContext.detached` makes one that goes nowhere, for tests.

Imported by tool processes: it needs nothing but the standard library.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["CONTEXT_PATHS", "ToolContext"]

#: Where the scanner (and the tool process) recognise the annotation of a context parameter.
CONTEXT_PATHS = frozenset({"qasdk.ToolContext", "qasdk.context.ToolContext"})

#: Characters of a progress message that travel (longer ones are cut).
MESSAGE_LIMIT = 500


class ToolContext:
    """The task a tool call belongs to, and its channel back to the worker."""

    __slots__ = ("_cancelled", "_emit", "attempt", "deadline", "logger", "task_id", "tool")

    def __init__(
        self,
        *,
        tool: str,
        task_id: str | None = None,
        attempt: int = 1,
        deadline: float | None = None,
        emit: Callable[[float | None, str | None], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        #: The registered name of the tool being called.
        self.tool = tool
        #: The task this call is part of (``None`` outside a task).
        self.task_id = task_id
        #: Which attempt of the task this is (1 unless it was retried).
        self.attempt = attempt
        #: When the call must be done, as a Unix timestamp (``None``: no deadline).
        self.deadline = deadline
        self._emit = emit
        self._cancelled = cancelled
        base = logging.getLogger(f"qasdk.tool.{tool}")
        #: A logger whose records name the task; they reach the worker's log.
        self.logger: logging.LoggerAdapter[logging.Logger] = logging.LoggerAdapter(
            base, {"task_id": task_id, "tool": tool}
        )

    @classmethod
    def detached(cls, tool: str = "tool") -> ToolContext:
        """A context for calling a tool by hand: progress goes nowhere, never cancelled."""
        return cls(tool=tool)

    @property
    def cancelled(self) -> bool:
        """True once the task was cancelled: stop soon (the process is killed shortly after)."""
        return self._cancelled is not None and self._cancelled()

    @property
    def deadline_at(self) -> datetime | None:
        """:attr:`deadline` as an aware datetime."""
        if self.deadline is None:
            return None
        return datetime.fromtimestamp(self.deadline, tz=timezone.utc)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative; ``None``: no deadline)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.time())

    def report_progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Tell the task's followers how far the call is (``fraction`` in 0..1).

        Cheap to call often: the worker passes on at most a few reports a
        second, always the latest. Out-of-range fractions are clamped; a
        fraction that is not a number is dropped.
        """
        if self._emit is None:
            return
        value: float | None = None
        if fraction is not None:
            try:
                value = float(fraction)
            except (TypeError, ValueError):
                value = None
            else:
                value = None if math.isnan(value) else min(1.0, max(0.0, value))
        text = None if message is None else str(message)[:MESSAGE_LIMIT]
        self._emit(value, text)

    def __repr__(self) -> str:
        return f"ToolContext(tool={self.tool!r}, task_id={self.task_id!r}, attempt={self.attempt})"
