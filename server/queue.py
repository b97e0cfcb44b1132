"""The task queue: Procrastinate, on the same PostgreSQL.

Procrastinate provides what a durable queue needs and qasdk should not
hand-roll: workers wake on LISTEN/NOTIFY (polling is only the fallback),
jobs are fetched by priority with ``FOR UPDATE SKIP LOCKED``, workers send
heartbeats, and abort requests reach the coroutine running the job.

qasdk adds a recovery loop: jobs whose worker stopped sending heartbeats
(killed, machine lost) are put back in the queue, and another worker picks
them up. The task runner's advisory lock makes sure a worker that was only
slow never runs alongside its replacement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

import procrastinate
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.retry import RetryDecision

from qasdk.config import WorkerConfig
from qasdk.store._sql import execute
from qasdk.store.connection import CONNECT_KWARGS
from qasdk.store.tasks import JOB_TASK, QUEUE
from server.runner import DatabaseUnavailable, HandBack, StopReason, TaskBusy, TaskRunner

__all__ = ["Worker", "queue_app", "worker_name"]

logger = logging.getLogger("qasdk.queue")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def queue_app(url: str, *, pool_size: int, busy_delay: float = 10.0) -> procrastinate.App:
    """A Procrastinate app for qasdk's queue, with the job that runs a task."""
    connector = procrastinate.PsycopgConnector(
        conninfo=url,
        min_size=1,
        max_size=pool_size,
        kwargs={**CONNECT_KWARGS, "application_name": "qasdk-queue"},
    )
    app = procrastinate.App(connector=connector)
    app.task(name=JOB_TASK, queue=QUEUE, pass_context=True, retry=_KeepUntilDone(busy_delay))(
        _run_task
    )
    return app


class _KeepUntilDone(procrastinate.BaseRetryStrategy):
    """A job stays in the queue until its task has an outcome.

    Handed back at shutdown: at once. The database went away: in a second.
    Locked by another worker: after that worker could have been declared dead.
    Anything else is the task's own outcome and is not retried here.
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


async def _run_task(context: JobContext, task_id: str) -> None:
    runner: TaskRunner = context.additional_context["runner"]

    def stop_reason() -> StopReason | None:
        reason = context.abort_reason()
        if reason is AbortReason.SHUTDOWN:
            return StopReason.SHUTDOWN
        if reason is not None:
            return StopReason.CANCELLED
        return None

    await runner.run(uuid.UUID(task_id), stop_reason)


class Worker:
    """A Procrastinate worker running qasdk tasks, plus the stalled-job recovery loop.

    Procrastinate stops its worker when the database goes away (its heartbeat or
    listener fails); qasdk starts it again, with backoff, until asked to stop. Tasks
    that were running meanwhile are recovered like those of a dead worker.
    """

    def __init__(self, app: procrastinate.App, runner: TaskRunner, config: WorkerConfig) -> None:
        self.app = app
        self.runner = runner
        self.config = config
        self._worker_task: asyncio.Task[None] | None = None
        self._recovery_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    async def start(self) -> None:
        self._worker_task = asyncio.create_task(self._supervise(), name="qasdk worker")
        self._recovery_task = asyncio.create_task(self._recover(), name="qasdk recovery")

    async def _supervise(self) -> None:
        delay = 0.5
        while not self._stopping:
            started = time.monotonic()
            try:
                await self.app.run_worker_async(
                    queues=[QUEUE],
                    name=self.runner.worker_name,
                    concurrency=self.config.concurrency,
                    install_signal_handlers=False,
                    additional_context={"runner": self.runner},
                    update_heartbeat_interval=self.config.heartbeat_interval,
                    stalled_worker_timeout=self.config.stalled_after,
                    shutdown_graceful_timeout=self.config.shutdown_grace,
                    abort_job_polling_interval=max(0.5, self.config.heartbeat_interval),
                    fetch_job_polling_interval=5.0,
                    delete_jobs="successful",
                )
                reason = "it stopped"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is unreachable, most likely
                reason = f"{type(exc).__name__}: {exc}".strip()
            if self._stopping:
                return
            if time.monotonic() - started > 30:
                delay = 0.5
            self.restarts += 1
            logger.warning("queue worker: %s; starting again in %.1f s", reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    @property
    def done(self) -> bool:
        return self._worker_task is None or self._worker_task.done()

    async def wait(self) -> None:
        """Until the worker stops; re-raise why it failed if it did.

        Cancelling a waiter must not cancel the worker: a second cancellation would
        cut Procrastinate's graceful shutdown short.
        """
        if self._worker_task is not None:
            await asyncio.shield(self._worker_task)

    async def stop(self) -> None:
        """Stop taking jobs; running ones get ``shutdown_grace`` seconds, then are handed back."""
        self._stopping = True
        if self._recovery_task is not None:
            self._recovery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery_task
        if self._worker_task is not None and not self._worker_task.done():
            self._worker_task.cancel()  # once: Procrastinate turns it into a graceful stop
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._worker_task)

    async def _recover(self) -> None:
        interval = self.config.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.runner.pool.connection() as conn:
                    cur = await execute(
                        conn,
                        "recover_stalled_jobs",
                        {"queue": QUEUE, "stale": self.config.stalled_after},
                    )
                    recovered = await cur.fetchall()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be restarting; try again next round
                logger.debug("stalled-job recovery failed this round", exc_info=True)
                continue
            for row in recovered:
                if row["abort_requested"]:
                    logger.warning(
                        "task %s: its worker stopped while cancelling it; cancelled", row["task_id"]
                    )
                else:
                    logger.warning(
                        "task %s: its worker stopped; queued again (job %s)",
                        row["task_id"],
                        row["job_id"],
                    )
