"""Which task failures are worth another attempt, and how long to wait before it.

Retryable (the same task may well succeed later, unchanged):

- ``ModelUnavailable``: the model server could not be reached, timed out, or
  answered 429/5xx, after ``worker.model_retries`` retries within the attempt;
- of a direct task's tool: ``TimeoutError`` (the tool's own timeout), an error
  type in its policy's ``retry_on`` (after its ``retries`` within the attempt),
  and the pipeline's passing refusals ``ToolBusy`` (a limit's turn did not come),
  ``CircuitOpen`` (its breaker is open) and ``McpUnavailable`` (its MCP server is
  unreachable).

Everything else is final: invalid arguments, a tool raising an error it did
not declare, the task's own ``timeout`` (the client's budget for the task),
cancel, the token budget, too many turns, a refused or rejected call, a model
error that is not transient. A tool failing inside a model task does not fail
the task: the model gets the error as the tool's result. A worker lost mid-task
is not counted here: its job is queued again by the stalled-job recovery (each
claim increments ``attempts``, the advisory lock keeps it single).
"""

from __future__ import annotations

import random

from qasdk.models import TaskError, ToolPolicy

__all__ = ["TRANSIENT_TOOL_ERRORS", "backoff", "retryable_model", "retryable_tool"]

#: Tool-call errors of the pipeline itself that pass with time.
TRANSIENT_TOOL_ERRORS = frozenset({"TimeoutError", "ToolBusy", "CircuitOpen", "McpUnavailable"})


def retryable_tool(error: TaskError, policy: ToolPolicy | None) -> bool:
    """A direct task's tool failure that another attempt may get past."""
    if error.type in TRANSIENT_TOOL_ERRORS:
        return True
    return policy is not None and error.type in policy.retry_on


def retryable_model(error: TaskError) -> bool:
    """A model task's failure that another attempt may get past: the model was unavailable."""
    return error.type == "ModelUnavailable"


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds before the attempt after the ``failures``-th failure: ``base * 2**(n-1)``,
    jittered by ±50 % (so tasks failed together do not come back together), at most ``cap``."""
    delay: float = base * 2.0 ** max(0, failures - 1) * (0.5 + random.random())
    return min(cap, delay)
