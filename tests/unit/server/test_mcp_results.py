"""How a finished task becomes an MCP ``tools/call`` result."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import mcp_types as types
import pytest

from qasdk.models import Task, TaskError
from qasdk_server.mcp.tools import TASK_ID_META, _internal, _outcome, structured


def _task(status: Any, **fields: Any) -> Task:
    return Task(
        task_id=uuid.uuid4(),
        status=status,
        kind="direct",
        method="add",
        created_at=datetime.now(timezone.utc),
        **fields,
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        (5, {"result": 5}),
        ("text", {"result": "text"}),
        ([1, 2], {"result": [1, 2]}),
        (None, {"result": None}),
    ],
)
def test_structured_content_is_always_an_object(result: Any, expected: dict[str, Any]) -> None:
    assert structured(result) == expected


def test_a_completed_task_is_its_result_as_text_and_structured_content() -> None:
    task = _task("completed", result={"city": "Paris", "temp": 21})
    outcome = _outcome(task)
    assert not outcome.is_error
    assert outcome.structured_content == {"city": "Paris", "temp": 21}
    (content,) = outcome.content
    assert isinstance(content, types.TextContent)
    assert content.text == '{"city":"Paris","temp":21}'
    assert outcome.meta == {TASK_ID_META: str(task.task_id)}
    text = _outcome(_task("completed", result="plain words")).content[0]
    assert isinstance(text, types.TextContent) and text.text == "plain words"


def test_a_failed_or_cancelled_task_is_a_tool_error() -> None:
    failed = _outcome(_task("failed", error=TaskError("ValueError", "b must be positive")))
    assert failed.is_error and failed.structured_content is None
    assert isinstance(failed.content[0], types.TextContent)
    assert failed.content[0].text == "ValueError: b must be positive"
    cancelled = _task("cancelled")
    shown = _outcome(cancelled).content[0]
    assert isinstance(shown, types.TextContent)
    assert shown.text == f"task {cancelled.task_id} was cancelled"


def test_a_bug_reaches_the_client_as_an_error_id_not_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = _internal("tools/call", KeyError("postgresql://user:secret@db/qasdk"))
    assert error.code == types.INTERNAL_ERROR
    assert "secret" not in error.message and error.message.startswith("internal server error")
    (record,) = [r for r in caplog.records if r.name == "qasdk.mcp"]
    assert record.error_id in error.message  # type: ignore[attr-defined]
