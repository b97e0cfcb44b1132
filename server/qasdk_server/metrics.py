"""Prometheus metrics (``prometheus_client``), one registry per process.

Counters and histograms are observed by this process (its embedded worker's
tasks, tool calls and model calls); gauges of tasks by status, queue depth and
live workers come from PostgreSQL when scraped (:class:`DatabaseCollector`),
so they cover every worker on the database. A registry of our own, not the
library's global one: two servers in one process (tests) never share counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from qasdk.store.queue import QueueSnapshot

__all__ = ["CONTENT_TYPE", "DatabaseCollector", "Metrics", "tool_outcome"]

#: The text exposition format every Prometheus version reads; Litestar adds the
#: ``charset`` of a ``text/`` type itself (given twice, some scrapers refuse it).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4.split("; charset=")[0]
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
STATUSES = (
    "pending",
    "running",
    "awaiting_approval",
    "blocked",
    "completed",
    "failed",
    "cancelled",
)


class DatabaseCollector(Collector):
    """Gauges read at scrape time: from the database, and from this process's state.

    The scrape handler reads the database (asynchronously) and hands the result
    over with :meth:`update` just before rendering; ``collect`` only formats it.
    """

    def __init__(self) -> None:
        self.snapshot: QueueSnapshot | None = None
        self.running_tasks = 0
        self.registry_tools = 0
        #: A ``qasdk worker`` (no API, its own metrics port) reads no database at scrape:
        #: its process gauges come from this (running tasks, tools), the database's from
        #: the API's ``/metrics``, so summing every scrape counts nothing twice.
        self.live: Callable[[], tuple[int, int]] | None = None
        self.reads_database = True

    def update(self, snapshot: QueueSnapshot | None, *, running: int, tools: int) -> None:
        self.snapshot, self.running_tasks, self.registry_tools = snapshot, running, tools

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        if self.live is not None and not self.reads_database:
            self.running_tasks, self.registry_tools = self.live()
        if self.reads_database:
            up = GaugeMetricFamily(
                "qasdk_database_up", "Whether the database answered this scrape."
            )
            up.add_metric([], 1 if snapshot is not None else 0)
            yield up
        if snapshot is not None and self.reads_database:
            tasks = GaugeMetricFamily("qasdk_tasks", "Tasks by status.", labels=["status"])
            for status in STATUSES:
                tasks.add_metric([status], snapshot.tasks.get(status, 0))
            yield tasks
            yield GaugeMetricFamily(
                "qasdk_tasks_blocked",
                "Tasks blocked after their retries: dead letters waiting for an operator.",
                value=snapshot.tasks.get("blocked", 0),
            )
            yield GaugeMetricFamily(
                "qasdk_queue_depth", "Tasks waiting for a worker.", value=snapshot.queued
            )
            yield GaugeMetricFamily(
                "qasdk_workers", "Workers with a recent heartbeat.", value=snapshot.workers
            )
            by_pool = GaugeMetricFamily(
                "qasdk_pool_workers",
                "Registered workers by pool and state (alive, dead); one serving two pools "
                "counts in each.",
                labels=["pool", "state"],
            )
            for (pool, state), count in sorted(snapshot.pool_workers.items()):
                by_pool.add_metric([pool, state], count)
            yield by_pool
            waiting = GaugeMetricFamily(
                "qasdk_pool_queue_depth", "Tasks waiting for a worker, by pool.", labels=["pool"]
            )
            for pool, count in sorted(snapshot.queued_by_pool.items()):
                waiting.add_metric([pool], count)
            yield waiting
        yield GaugeMetricFamily(
            "qasdk_running_tasks", "Tasks running in this process.", value=self.running_tasks
        )
        yield GaugeMetricFamily(
            "qasdk_registry_tools", "Tools in this process's registry.", value=self.registry_tools
        )


class Metrics:
    """What one server or worker process observes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.database = DatabaseCollector()
        self.registry.register(self.database)
        self.tasks_finished = Counter(
            "qasdk_tasks_finished",
            "Tasks this process finished.",
            ["kind", "status"],
            registry=self.registry,
        )
        self.task_retries = Counter(
            "qasdk_task_retries",
            "Failed attempts this process queued again (worker.max_attempts), by task kind.",
            ["kind"],
            registry=self.registry,
        )
        self.tasks_deleted = Counter(
            "qasdk_tasks_deleted",
            "Finished tasks deleted by retention (retention.days), by this process.",
            registry=self.registry,
        )
        self.task_duration = Histogram(
            "qasdk_task_duration_seconds",
            "Time from a task's start to its outcome, in this process.",
            ["kind", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.tool_calls = Counter(
            "qasdk_tool_calls",
            "Tool calls by tool and outcome.",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.tool_duration = Histogram(
            "qasdk_tool_call_duration_seconds",
            "Tool call durations by tool.",
            ["tool"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "qasdk_breaker_transitions",
            "Circuit breaker transitions this process made, by tool and new state.",
            ["tool", "state"],
            registry=self.registry,
        )
        self.model_tokens = Counter(
            "qasdk_model_tokens",
            "Tokens of model turns, by model and kind (prompt, completion).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.model_calls = Counter(
            "qasdk_model_calls", "Model calls by outcome.", ["outcome"], registry=self.registry
        )
        self.model_latency = Histogram(
            "qasdk_model_call_duration_seconds",
            "Model call latency (a whole turn).",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

        self.webhook_deliveries = Counter(
            "qasdk_webhook_deliveries",
            "Webhook delivery attempts this process made, by outcome (delivered, retried, "
            "failed: given up).",
            ["outcome"],
            registry=self.registry,
        )

    def observe_tool(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_duration.labels(tool).observe(seconds)

    def observe_model(self, outcome: str, seconds: float) -> None:
        self.model_calls.labels(outcome).inc()
        self.model_latency.labels(outcome).observe(seconds)

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        self.model_tokens.labels(model, "prompt").inc(prompt)
        self.model_tokens.labels(model, "completion").inc(completion)

    def observe_task(self, kind: str, status: str, seconds: float) -> None:
        self.tasks_finished.labels(kind, status).inc()
        self.task_duration.labels(kind, status).observe(seconds)

    def render(self) -> bytes:
        """The exposition text of everything above."""
        return generate_latest(self.registry)


TOOL_OUTCOMES = {
    "TimeoutError": "timeout",
    "ToolProcessExited": "crashed",
    "ValidationError": "rejected",
    "MethodNotFoundError": "rejected",
}


def tool_outcome(success: bool, error_type: str | None) -> str:
    """A small, fixed set of label values (error types would explode cardinality)."""
    if success:
        return "success"
    return TOOL_OUTCOMES.get(error_type or "", "error")
