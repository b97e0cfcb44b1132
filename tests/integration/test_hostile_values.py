"""Values a tool or the model produces that PostgreSQL cannot store as they are (issue 9).

Each once wedged a task (``running`` forever) or broke reading it back; now the
task ends, the value is stored as it can be, and everything that reads it works.
"""

from __future__ import annotations

from typing import Any

import pytest

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def _readable(served: Server, task_id: str) -> None:
    """Every view of the task answers: the task, its trace, the list."""
    assert served.http.get(f"/api/tasks/{task_id}").status_code == 200
    assert served.http.get(f"/api/tasks/{task_id}/trace").status_code == 200
    assert served.http.get("/api/tasks", params={"limit": 50}).status_code == 200


async def test_a_nul_in_a_tool_result_ends_the_task(served: Server, conn: Any) -> None:
    task = served.run(method="hostile", params={"kind": "nul"})
    assert task["status"] == "completed", task
    assert task["result"] == {"text": "a\ufffdb", "a\ufffdkey": 1}
    _readable(served, task["task_id"])


async def test_a_nul_in_the_model_answer_ends_the_task(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.text("before\x00after", thinking="a\x00thought"))
    task = served.run(task_description="say something odd")
    assert task["status"] == "completed", task
    assert task["result"] == "before\ufffdafter"
    (step,) = served.trace(task["task_id"])
    assert step["thinking"] == "a\ufffdthought"
    _readable(served, task["task_id"])


async def test_a_deeply_nested_result_is_cut_at_the_depth_limit(served: Server, conn: Any) -> None:
    task = served.run(method="hostile", params={"kind": "deep", "size": 500})
    assert task["status"] == "completed", task
    depth, value = 0, task["result"]
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert depth == 64  # limits.json_depth levels, then a marker
    assert "nested deeper than 64 levels" in value
    _readable(served, task["task_id"])


async def test_a_result_over_its_limit_is_stored_as_a_marker(served: Server, conn: Any) -> None:
    size = 1_048_576 * 3
    task = served.run(method="hostile", params={"kind": "big", "size": size})
    assert task["status"] == "completed", task
    result = task["result"]
    assert result["truncated"] is True
    assert result["bytes"] == size + 2  # the JSON string's quotes
    assert result["limit"] == 1_048_576
    assert result["preview"].startswith('"xxxx')
    (step,) = served.trace(task["task_id"])
    assert step["result"]["truncated"] is True
    warned = [r for r in served.log_records() if "more than limits.result" in r.get("message", "")]
    assert warned, "the worker parsed a result over limits.result instead of cutting it"


async def test_tools_do_not_see_qasdk_secrets(served: Server, pg_url: str) -> None:
    """The database URL (with its password) and QASDK_* settings stay out of tool processes."""
    task = served.run(method="hostile", params={"kind": "env"})
    assert task["status"] == "completed", task
    environ: dict[str, str] = task["result"]
    assert "PATH" in environ  # the tool's own environment is there
    assert [n for n in environ if n.startswith("QASDK_")] == ["QASDK_TEST_RUNS"]  # worker.tool_env
    assert "APP_DATABASE_URL" not in environ  # holds the configured database URL
    assert not [n for n, v in environ.items() if pg_url in v]
