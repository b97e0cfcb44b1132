"""Prometheus metrics, rendered in the text exposition format at ``/metrics``.

Counters and histograms are observed by this process (its embedded worker's
tasks, tool calls and model calls); gauges of tasks by status, queue depth and
live workers are read from PostgreSQL when scraped, so they cover every worker.
A small registry of our own: the one thing we need from a client library is
the text format, and it keeps import-time global state out of the process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Counter", "Histogram", "Metrics", "render_gauge", "tool_outcome"]

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Histogram:
    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts, totals = self._series.setdefault(labels, ([0] * len(self.buckets), [0.0, 0.0]))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            totals[0] += value
            totals[1] += 1

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return int(series[1][1]) if series else 0

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            items = sorted((k, (list(c), list(t))) for k, (c, t) in self._series.items())
        for labels, (counts, (total, count)) in items:
            for bound, n in zip(self.buckets, counts, strict=True):
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {n}"
            inf = 'le="+Inf"'
            yield f"{self.name}_bucket{_labels(self.label_names, labels, inf)} {_number(count)}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {_number(total)}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {_number(count)}"


def render_gauge(
    name: str, help_text: str, values: Mapping[Labels, float], label_names: Sequence[str] = ()
) -> Iterable[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} gauge"
    for labels, value in sorted(values.items()):
        yield f"{name}{_labels(label_names, labels)} {_number(value)}"


class Metrics:
    """What one server or worker process observes."""

    def __init__(self) -> None:
        self.tasks_finished = Counter(
            "qasdk_tasks_finished_total", "Tasks this process finished.", ("kind", "status")
        )
        self.task_duration = Histogram(
            "qasdk_task_duration_seconds",
            "Time from a task's start to its outcome, in this process.",
            ("kind", "status"),
        )
        self.tool_calls = Counter(
            "qasdk_tool_calls_total", "Tool calls by tool and outcome.", ("tool", "outcome")
        )
        self.tool_duration = Histogram(
            "qasdk_tool_call_duration_seconds", "Tool call durations by tool.", ("tool",)
        )
        self.model_calls = Counter(
            "qasdk_model_calls_total", "Model calls by outcome.", ("outcome",)
        )
        self.model_latency = Histogram(
            "qasdk_model_call_duration_seconds", "Model call latency (a whole turn).", ("outcome",)
        )

    def observe_tool(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.inc(tool, outcome)
        self.tool_duration.observe(seconds, tool)

    def observe_model(self, outcome: str, seconds: float) -> None:
        self.model_calls.inc(outcome)
        self.model_latency.observe(seconds, outcome)

    def observe_task(self, kind: str, status: str, seconds: float) -> None:
        self.tasks_finished.inc(kind, status)
        self.task_duration.observe(seconds, kind, status)

    def render(self) -> Iterable[str]:
        for metric in (
            self.tasks_finished,
            self.task_duration,
            self.tool_calls,
            self.tool_duration,
            self.model_calls,
            self.model_latency,
        ):
            yield from metric.render()


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
