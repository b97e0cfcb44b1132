"""The task queue: Procrastinate, on the same PostgreSQL.

Procrastinate provides what a durable queue needs and qasdk should not
hand-roll: workers wake on LISTEN/NOTIFY (polling is only the fallback),
jobs are fetched by priority with ``FOR UPDATE SKIP LOCKED``, workers send
heartbeats, and abort requests reach the coroutine running the job. This
module defines qasdk's one job (run a task) and when it comes back.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager
from procrastinate.retry import RetryDecision

from qasdk.store.connection import CONNECT_KWARGS, check_connection
from qasdk.store.pools import queue_for
from qasdk.store.tasks import JOB_TASK, QUEUE
from qasdk_server.tasks.runner import (
    DatabaseUnavailable,
    HandBack,
    StopReason,
    TaskBusy,
    TaskRunner,
)

__all__ = ["RETENTION_CRON", "queue_app", "worker_name"]

#: How often retention runs: every ten minutes, in batches, so no run is long.
RETENTION_CRON = "*/10 * * * *"
RETENTION_TASK = "qasdk.retention"


def worker_name() -> str:
    """``host:pid``: how logs, the tasks table and Procrastinate name this worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def queue_app(
    url: str,
    *,
    pool_size: int,
    busy_delay: float = 10.0,
    pools: tuple[str, ...] = ("default",),
    ended_jobs: set[int] | None = None,
) -> procrastinate.App:
    """A Procrastinate app for qasdk's queue, with the job that runs a task.

    ``pools``: the worker pools this worker serves; its retention job goes to the first's
    queue, so a worker of any pool can run it. ``ended_jobs``: jobs the task runner ended
    with their task's outcome (``TaskRunner.ended_jobs``); the worker does not end them
    again.
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=url,
        min_size=1,
        max_size=pool_size,
        kwargs={**CONNECT_KWARGS, "application_name": "qasdk-queue"},
        pool_factory=_queue_pool,
    )
    app = procrastinate.App(connector=connector)
    if ended_jobs is not None:
        app.job_manager = _JobManager(connector, ended_jobs)
    app.task(name=JOB_TASK, queue=QUEUE, pass_context=True, retry=_KeepUntilDone(busy_delay))(
        _run_task
    )
    # Deferred once per period by whichever worker gets there first (Procrastinate's
    # periodic tasks), so retention runs once however many workers there are; on that
    # worker's own pool, so it runs even where no worker serves the default pool.
    app.periodic(cron=RETENTION_CRON, periodic_id="retention")(
        app.task(name=RETENTION_TASK, queue=queue_for(pools[0]), pass_context=True)(
            _apply_retention
        )
    )
    return app


def _queue_pool(**kwargs: Any) -> psycopg_pool.AsyncConnectionPool[Any]:
    """Procrastinate's pool, with qasdk's check on checkout instead of a ping every time.

    Its connections are in autocommit: every query Procrastinate sends is one statement,
    so that is one round trip instead of BEGIN, the query and COMMIT. (Its listener opens
    a connection of its own, in autocommit already.)
    """
    kwargs["check"] = check_connection
    kwargs["configure"] = _autocommit  # not a connect argument: the listener passes its own
    return psycopg_pool.AsyncConnectionPool(**kwargs)


async def _autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


class _JobManager(JobManager):
    """Procrastinate's job manager, minus the end of a job already ended with its task.

    The task's outcome and its job's end are one statement (``finish_task``): one commit,
    and one round trip fewer per task. Any other job it ends as Procrastinate does.
    """

    def __init__(self, connector: procrastinate.PsycopgConnector, ended: set[int]) -> None:
        super().__init__(connector)
        self.ended = ended

    def _ended(self, job: Job) -> bool:
        """Whether ``job`` ended with its task (forgotten here once asked)."""
        if job.id not in self.ended:
            return False
        self.ended.discard(job.id)
        return True

    async def finish_job(self, job: Job, status: Status, delete_job: bool) -> None:
        if not self._ended(job):
            await super().finish_job(job, status, delete_job)

    async def retry_job(self, job: Job, *args: Any, **kwargs: Any) -> None:
        if not self._ended(job):  # one that has an outcome has nothing to retry
            await super().retry_job(job, *args, **kwargs)


class _KeepUntilDone(procrastinate.BaseRetryStrategy):
    """A job stays in the queue until its task has an outcome.

    Handed back at shutdown: at once. The database went away: in a second.
    Locked by another worker: after that worker could have been declared dead.
    (A task that ran but whose outcome waits for the database is not handed back:
    its job waits for the outcome to be stored, see ``OutcomePending``.) Anything
    else is the task's own outcome and is not retried here.
    """

    def __init__(self, busy_delay: float) -> None:
        self.busy_delay = busy_delay

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if isinstance(exception, HandBack):
            return RetryDecision(retry_in={"seconds": 0})
        if isinstance(exception, DatabaseUnavailable):
            return RetryDecision(retry_in={"seconds": 1})
        if isinstance(exception, TaskBusy):
            return RetryDecision(retry_in={"milliseconds": int(self.busy_delay * 1000)})
        return None


async def _apply_retention(context: JobContext, timestamp: int) -> None:
    """Delete finished tasks (and their traces) and audit rows older than ``retention.days``."""
    runner: TaskRunner = context.additional_context["runner"]
    await runner.apply_retention()


async def _run_task(context: JobContext, task_id: str) -> None:
    runner: TaskRunner = context.additional_context["runner"]

    def stop_reason() -> StopReason | None:
        reason = context.abort_reason()
        if reason is AbortReason.SHUTDOWN:
            return StopReason.SHUTDOWN
        if reason is not None:
            return StopReason.CANCELLED
        return None

    await runner.run(uuid.UUID(task_id), stop_reason, context.job.id)
