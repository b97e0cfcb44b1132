"""Which task failures are retried, and the backoff between attempts (``tasks/retry.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qasdk.models import TaskError, ToolPolicy
from qasdk_server.tasks.retry import backoff, retryable_model, retryable_tool

POLICY = ToolPolicy(retries=2, retry_on=("ConnectionError",))


@pytest.mark.parametrize(
    ("kind", "policy", "retryable"),
    [
        ("TimeoutError", None, True),
        ("ToolBusy", None, True),
        ("CircuitOpen", None, True),
        ("McpUnavailable", None, True),
        ("ConnectionError", POLICY, True),
        ("ConnectionError", None, False),  # not declared by the tool
        ("ValueError", POLICY, False),
        ("InvalidArguments", POLICY, False),
        ("Cancelled", None, False),
    ],
)
def test_tool_failures(kind: str, policy: ToolPolicy | None, retryable: bool) -> None:
    assert retryable_tool(TaskError(kind, "x"), policy) is retryable


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        ("ModelUnavailable", True),
        ("ModelError", False),
        ("TokenBudgetExceeded", False),
        ("TooManyTurns", False),
        ("ToolCallLoop", False),
    ],
)
def test_model_failures(kind: str, retryable: bool) -> None:
    assert retryable_model(TaskError(kind, "x")) is retryable


@given(
    failures=st.integers(min_value=1, max_value=100),
    base=st.floats(min_value=0, max_value=60),
    cap=st.floats(min_value=0, max_value=3600),
)
def test_backoff_doubles_with_jitter_and_is_capped(failures: int, base: float, cap: float) -> None:
    delay = backoff(failures, base, cap)
    assert 0 <= delay <= cap
    expected = base * 2.0 ** (failures - 1)
    assert delay == cap or 0.5 * expected <= delay <= 1.5 * expected
