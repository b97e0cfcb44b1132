"""Built-in ``breaker``: a circuit breaker per tool, shared by every worker through PostgreSQL.

Closed, a call goes on; when ``failures`` of a tool's last ``window`` calls
failed, the breaker opens and calls fail at once with ``CircuitOpen: tool 'x'
is failing (5 of the last 10 calls); retry after 30 s`` (the model gets that
as the tool's result, a direct task fails with it). After ``cool_down``
seconds one call, on whichever worker comes first, goes through as the probe
(half-open): if it works the breaker closes, if not it opens again.

What counts as a failure is the tool's own: an exception, a crash, a timeout,
a limit. Bad arguments, unknown tools, refusals and cancellations do not.
Transitions are logged, counted (``qasdk_breaker_transitions_total``), told
to the task's SSE followers (``event: breaker``) and shown by
``GET /api/methods/{name}``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from qasdk.models import ExecutionResult
from qasdk.store import breakers as store
from qasdk.store.connection import Pool
from qasdk.store.notify import announce_event
from qasdk_server.metrics import Metrics
from qasdk_server.middleware.base import Middleware, ToolCall, ToolError, ToolRefused

__all__ = ["NOT_FAILURES", "Breaker"]

logger = logging.getLogger("qasdk.breaker")

#: Error types that say nothing about the tool's health.
NOT_FAILURES = frozenset(
    {
        "ValidationError",
        "MethodNotFoundError",
        "ToolRefused",
        "CircuitOpen",
        "Cancelled",
        "MiddlewareError",
    }
)


def _positive(name: str, value: object, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a whole number" if integer else "a number"
        raise ValueError(f"{name}: expected {what} > 0, got {value!r}")


class Breaker(Middleware):
    name = "breaker"

    def __init__(
        self,
        pool: Pool,
        metrics: Metrics,
        *,
        failures: int = 5,
        window: int = 10,
        cool_down: float = 30.0,
        probe_timeout: float = 60.0,
    ) -> None:
        _positive("failures", failures, integer=True)
        _positive("window", window, integer=True)
        _positive("cool_down", cool_down)
        _positive("probe_timeout", probe_timeout)
        if failures > window:
            raise ValueError(f"failures ({failures}) cannot be more than window ({window})")
        self._pool = pool
        self._metrics = metrics
        self.failures = failures
        self.window = window
        self.cool_down = float(cool_down)
        self.probe_timeout = float(probe_timeout)

    async def before(self, call: ToolCall) -> ExecutionResult | None:
        async with self._pool.connection() as conn:
            breaker = await store.admit(conn, call.tool, probe_timeout=self.probe_timeout)
        if breaker is not None and breaker.state != "closed" and not breaker.probing:
            raise ToolRefused(self._refusal(call.tool, breaker), error_type="CircuitOpen")
        # Nothing to write after a success when the breaker has seen no failure.
        quiet = breaker is None or (breaker.state == "closed" and breaker.failures == 0)
        call.state[self.name] = (quiet, breaker is not None and breaker.probing)
        return None

    def _refusal(self, tool: str, breaker: store.Breaker) -> str:
        wait = ""
        if breaker.retry_at is not None:
            seconds = (breaker.retry_at - datetime.now(timezone.utc)).total_seconds()
            wait = f"; retry after {max(1, round(seconds))} s"
        if breaker.state == "half_open":
            wait = "; a probe call is checking it now"
        return (
            f"tool {tool!r} is failing ({breaker.failures} of the last "
            f"{len(breaker.outcomes)} calls){wait}"
        )

    async def after(self, call: ToolCall, result: ExecutionResult) -> ExecutionResult:
        quiet, probing = call.state.get(self.name, (True, False))
        if not quiet or probing:
            await self._record(call, True, probing)
        return result

    async def on_error(self, call: ToolCall, error: ToolError) -> ExecutionResult | None:
        if error.error_type in NOT_FAILURES or self.name not in call.state:
            return None
        _, probing = call.state[self.name]
        await self._record(call, False, probing)
        return None

    async def _record(self, call: ToolCall, ok: bool, probing: bool) -> None:
        def decide(breaker: store.Breaker) -> tuple[store.State, float] | None:
            if probing and breaker.state == "half_open":
                return ("closed", 0.0) if ok else ("open", self.cool_down)
            if breaker.state == "closed" and breaker.failures >= self.failures:
                return "open", self.cool_down
            return None

        try:
            async with self._pool.connection() as conn:
                breaker, moved = await store.record(
                    conn, call.tool, ok, window=self.window, decide=decide
                )
                if moved is not None:
                    self._announce_transition(call, breaker, moved)
                    if call.task_id is not None:
                        await announce_event(
                            conn,
                            call.task_id,
                            "breaker",
                            {
                                "tool": call.tool,
                                "state": moved,
                                "failures": breaker.failures,
                                "calls": len(breaker.outcomes),
                                "retry_at": breaker.retry_at,
                            },
                        )
        except Exception:  # the call's outcome stands; its health is best effort
            logger.warning("could not record a call of %r in its breaker", call.tool, exc_info=True)

    def _announce_transition(
        self, call: ToolCall, breaker: store.Breaker, moved: store.State
    ) -> None:
        self._metrics.breaker_transitions.labels(call.tool, moved).inc()
        extra = {"method": call.tool, "breaker": moved}
        if moved == "open":
            logger.warning(
                "circuit breaker of %r opened: %d of its last %d calls failed; "
                "calls fail at once for %g s",
                call.tool,
                breaker.failures,
                len(breaker.outcomes),
                self.cool_down,
                extra=extra,
            )
        else:
            logger.info(
                "circuit breaker of %r closed: the probe call worked", call.tool, extra=extra
            )
