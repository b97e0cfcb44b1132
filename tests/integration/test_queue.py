"""qasdk's Procrastinate app against the real PostgreSQL: jobs ended with their task."""

from __future__ import annotations

import pytest
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Job, Status

from qasdk_server.tasks.queue import queue_app

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def _job(job_id: int) -> Job:
    return Job(id=job_id, queue="qasdk", lock=None, queueing_lock=None, task_name="t")


async def test_a_job_ended_with_its_task_is_not_ended_again(quiet_url: str) -> None:
    ended = {2**62}  # no such job: ending it again would fail
    app = queue_app(quiet_url, pool_size=1, ended_jobs=ended)
    async with app.open_async():
        await app.job_manager.finish_job(_job(2**62), Status.SUCCEEDED, delete_job=True)
        assert ended == set()  # forgotten once skipped
        # Any other job is Procrastinate's to end, as before.
        with pytest.raises(ConnectorException):
            await app.job_manager.finish_job(_job(2**62), Status.SUCCEEDED, delete_job=True)
