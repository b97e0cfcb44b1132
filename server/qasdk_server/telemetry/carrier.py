"""The trace context a request brings (W3C Trace Context), checked without opentelemetry.

The API stores it on the task whether or not its own process traces: the worker
that runs the task may be another process, with telemetry on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["TRACE_HEADERS", "trace_carrier"]

#: The headers that carry a trace context, as stored on a task.
TRACE_HEADERS = ("traceparent", "tracestate")

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
#: Printable ASCII, at most 512 characters (W3C: 32 members of at most 256 are
#: allowed, but a value this long is already more than any tracer sends).
_TRACESTATE = re.compile(r"^[\x20-\x7e]{1,512}$")


def trace_carrier(headers: Mapping[str, str]) -> dict[str, str] | None:
    """``traceparent`` (and ``tracestate``) from ``headers`` when valid; else ``None``.

    An invalid ``traceparent`` is ignored, as the W3C recommendation says: the
    task then starts a trace of its own.
    """
    parent = headers.get("traceparent", "").strip().lower()
    match = _TRACEPARENT.match(parent)
    if match is None:
        return None
    version, trace_id, span_id, _ = match.groups()
    if version == "ff" or set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    carrier = {"traceparent": parent}
    state = headers.get("tracestate", "").strip()
    if state and _TRACESTATE.match(state):
        carrier["tracestate"] = state
    return carrier
