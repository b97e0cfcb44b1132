"""The tasks tables' housekeeping against the real PostgreSQL: orphans settle, old tasks go.

On the database no worker reads: the session's server would otherwise take the tasks these
tests set by hand (and finish them, or write their steps) while the test runs.
"""

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


async def test_a_task_whose_job_ended_without_an_outcome_is_settled(quiet_conn: Any) -> None:
    orphan, healthy = await _task(quiet_conn), await _task(quiet_conn)
    # Its job vanished (deleted by hand, or ended by a bug) while the task was running.
    await quiet_conn.execute(
        "UPDATE tasks SET status = 'running', attempts = 1 WHERE id = %s", (orphan,)
    )
    await quiet_conn.execute(
        "DELETE FROM procrastinate_jobs WHERE id = (SELECT job_id FROM tasks WHERE id = %s)",
        (orphan,),
    )
    await quiet_conn.commit()
    settled = await store.settle_orphans(quiet_conn, grace=0)
    await quiet_conn.commit()
    assert orphan in settled and healthy not in settled
    task = await store.get_task(quiet_conn, orphan)
    assert task is not None and task.status == "failed"
    assert task.error is not None and task.error.type == "InternalError"
    still = await store.get_task(quiet_conn, healthy)
    assert still is not None and still.error is None
    await quiet_conn.commit()


async def test_retention_deletes_old_finished_tasks_and_their_traces(quiet_conn: Any) -> None:
    old, recent, running = await _task(quiet_conn), await _task(quiet_conn), await _task(quiet_conn)
    for task_id in (old, recent):
        await quiet_conn.execute(
            "UPDATE tasks SET status = 'running', attempts = 1 WHERE id = %s", (task_id,)
        )
        assert await store.finish_task(quiet_conn, task_id, 1, status="completed", result=3)
        await store.insert_step(
            quiet_conn,
            task_id,
            TraceStep(seq=1, kind="tool", name="add", started_at=datetime.now(timezone.utc)),
        )
    await quiet_conn.execute(
        "UPDATE tasks SET completed_at = now() - interval '40 days' WHERE id = %s", (old,)
    )
    await quiet_conn.commit()
    deleted, _ = await store.delete_expired_tasks(quiet_conn, days=30)
    await quiet_conn.commit()
    assert deleted >= 1
    assert await store.get_task(quiet_conn, old) is None
    assert await store.list_steps(quiet_conn, old) == []
    assert await store.get_task(quiet_conn, recent) is not None
    assert len(await store.list_steps(quiet_conn, recent)) == 1
    assert await store.get_task(quiet_conn, running) is not None
    await quiet_conn.commit()


async def test_the_outcome_ends_the_queue_job_in_the_same_statement(quiet_conn: Any) -> None:
    """``end_job``: the outcome and the job's end are one commit; a superseded attempt's
    outcome neither writes nor ends the job (the queue then ends it as it would)."""
    task_id = await _task(quiet_conn)
    row = await (
        await quiet_conn.execute("SELECT job_id FROM tasks WHERE id = %s", (task_id,))
    ).fetchone()
    job_id = row["job_id"]
    await quiet_conn.execute(
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,)
    )
    claimed = await store.claim_task(quiet_conn, task_id, "test-worker")
    assert claimed is not None
    await store.unlock(quiet_conn, task_id)
    await quiet_conn.commit()

    async def job_exists() -> bool:
        cur = await quiet_conn.execute("SELECT 1 FROM procrastinate_jobs WHERE id = %s", (job_id,))
        return await cur.fetchone() is not None

    stale = await store.finish_task(
        quiet_conn, task_id, claimed.task.attempts + 1, status="completed", end_job=job_id
    )
    assert stale is False and await job_exists()
    written = await store.finish_task(
        quiet_conn, task_id, claimed.task.attempts, status="completed", result=3, end_job=job_id,
        in_graph=False,
    )  # fmt: skip
    await quiet_conn.commit()
    assert written is True
    assert not await job_exists()
    task = await store.get_task(quiet_conn, task_id)
    assert task is not None and (task.status, task.result) == ("completed", 3)
    await quiet_conn.commit()
