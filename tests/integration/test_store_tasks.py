"""The tasks tables' housekeeping against the real PostgreSQL: orphans settle, old tasks go."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from qasdk.models import TraceStep
from qasdk.store import tasks as store

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def _task(conn: Any) -> uuid.UUID:
    task = await store.insert_task(conn, kind="direct", method="add", params={"a": 1, "b": 2})
    await conn.commit()
    return task.task_id


async def test_a_task_whose_job_ended_without_an_outcome_is_settled(conn: Any) -> None:
    orphan, healthy = await _task(conn), await _task(conn)
    # Its job vanished (deleted by hand, or ended by a bug) while the task was running.
    await conn.execute("UPDATE tasks SET status = 'running', attempts = 1 WHERE id = %s", (orphan,))
    await conn.execute(
        "DELETE FROM procrastinate_jobs WHERE id = (SELECT job_id FROM tasks WHERE id = %s)",
        (orphan,),
    )
    await conn.commit()
    settled = await store.settle_orphans(conn, grace=0)
    await conn.commit()
    assert orphan in settled and healthy not in settled
    task = await store.get_task(conn, orphan)
    assert task is not None and task.status == "failed"
    assert task.error is not None and task.error.type == "InternalError"
    still = await store.get_task(conn, healthy)
    # A worker of the session's server may have taken it meanwhile; it was not settled.
    assert still is not None and still.error is None
    await conn.commit()


async def test_retention_deletes_old_finished_tasks_and_their_traces(conn: Any) -> None:
    old, recent, running = await _task(conn), await _task(conn), await _task(conn)
    for task_id in (old, recent):
        await conn.execute(
            "UPDATE tasks SET status = 'running', attempts = 1 WHERE id = %s", (task_id,)
        )
        assert await store.finish_task(conn, task_id, 1, status="completed", result=3)
        await store.insert_step(
            conn,
            task_id,
            TraceStep(seq=1, kind="tool", name="add", started_at=datetime.now(timezone.utc)),
        )
    await conn.execute(
        "UPDATE tasks SET completed_at = now() - interval '40 days' WHERE id = %s", (old,)
    )
    await conn.commit()
    deleted, _ = await store.delete_expired_tasks(conn, days=30)
    await conn.commit()
    assert deleted >= 1
    assert await store.get_task(conn, old) is None
    assert await store.list_steps(conn, old) == []
    assert await store.get_task(conn, recent) is not None
    assert len(await store.list_steps(conn, recent)) == 1
    assert await store.get_task(conn, running) is not None
    await conn.commit()
