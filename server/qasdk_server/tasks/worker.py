"""A worker: takes tasks from the queue and runs them, in ``qasdk serve`` or ``qasdk worker``.

One worker is Procrastinate's worker (the job loop), the task runner, the
tool processes, the agent threads, and a recovery loop: jobs whose worker
stopped sending heartbeats (killed, machine lost) are put back in the queue
for another worker. The runner's advisory lock makes sure a worker that was
only slow never runs alongside its replacement.

Procrastinate stops its worker when the database goes away (its heartbeat or
listener fails); qasdk starts it again, with backoff, until asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator

import procrastinate

from qasdk.config import Config
from qasdk.redaction import mask_url
from qasdk.store.connection import Pool, ping
from qasdk.store.pools import queues_for
from qasdk.store.queue import recover_stalled_jobs
from qasdk.store.tasks import settle_orphans
from qasdk_server.agent.threads import AgentThreads
from qasdk_server.executor import Executor
from qasdk_server.executor.environment import tool_environment
from qasdk_server.executor.output import OutputLimits
from qasdk_server.metrics import Metrics
from qasdk_server.middleware.load import chain_for
from qasdk_server.registry import MethodRegistry
from qasdk_server.tasks.presence import Presence
from qasdk_server.tasks.queue import queue_app, worker_name
from qasdk_server.tasks.runner import TaskRunner
from qasdk_server.telemetry import start as start_tracing
from qasdk_server.webhooks import Deliverer

__all__ = ["Worker"]

logger = logging.getLogger("qasdk.worker")

#: Recovery rounds between two sweeps for orphaned tasks (the sweep is rarely needed).
_SWEEP_EVERY = 15


class Worker:
    """Runs tasks until stopped; use :meth:`running` to start one and stop it in order."""

    def __init__(self, app: procrastinate.App, runner: TaskRunner, config: Config) -> None:
        self.app = app
        self.runner = runner
        self.config = config.worker
        self._worker_task: asyncio.Task[None] | None = None
        self._recovery_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def name(self) -> str:
        return self.runner.worker_name

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        config: Config,
        url: str,
        pool: Pool,
        registry: MethodRegistry,
        *,
        metrics: Metrics | None = None,
    ) -> AsyncIterator[Worker]:
        """Start tool processes, agent threads, the runner and the job loop; stop in reverse.

        With telemetry on, the spans still queued are exported last.
        """
        concurrency = config.worker.concurrency
        metrics = metrics or Metrics()
        chain = chain_for(config, metrics, pool)  # a bad chain stops the worker before it starts
        tracing = start_tracing(config.telemetry)
        tool_env = {"PYTHONDONTWRITEBYTECODE": "1"}
        if tracing is not None:
            tool_env.update(tracing.tool_environment(os.environ))
            logger.info(
                "telemetry: sending traces to %s", mask_url(tracing.config.otlp_endpoint or "")
            )
        executor = Executor(
            registry.configs(),
            processes=concurrency,
            default_timeout=config.worker.tool_timeout,
            limits=config.worker.tool_limits,
            limits_by_tool=config.worker.tool_limits_by_tool,
            cancel_grace=config.worker.cancel_grace,
            allowed_packages=config.registry.allowed_packages,
            cwd=os.getcwd(),
            # Tool files edited and synced within the same second must not load stale bytecode.
            env=tool_env,
            base_env=tool_environment(
                os.environ,
                # The database URL too: where it holds no password it still says where to go.
                secrets=[*config.secrets(), config.database.url or ""],
                allow=config.worker.tool_env,
            ),
            result_limit=config.limits.result,
            output=OutputLimits(
                line=config.worker.tool_output_line,
                per_call=config.worker.tool_output_per_call,
                rate=config.worker.tool_output_rate,
            ),
        )
        await executor.start()
        registry.on_change(executor.replace_methods)
        threads = AgentThreads(concurrency)
        runner = TaskRunner(
            config=config,
            pool=pool,
            registry=registry,
            executor=executor,
            worker_name=worker_name(),
            threads=threads,
            metrics=metrics,
            chain=chain,
            tracing=tracing,
            pools=config.worker.pools,
        )
        metrics.database.live = lambda: (len(runner.running), len(registry.methods))
        # qwen-agent (~90 MB) loads with the first task that needs the model, or now if asked.
        warm = (
            asyncio.create_task(runner.warm_up(), name="qasdk warm-up")
            if config.worker.warm_up
            else None
        )
        app = queue_app(
            url,
            pool_size=concurrency + 2,
            busy_delay=config.worker.stalled_after,
            pools=config.worker.pools,
            ended_jobs=runner.ended_jobs,
        )
        await app.open_async()
        worker = cls(app, runner, config)
        presence = Presence(
            pool,
            name=runner.worker_name,
            pools=config.worker.pools,
            concurrency=concurrency,
            interval=config.worker.heartbeat_interval,
            forget_after=config.worker.forget_after,
            counts=lambda: (len(runner.running), runner.tasks_done),
        )
        await worker.start()
        presence.start()
        deliverer = await Deliverer.start_for(url, config.webhooks, metrics)
        try:
            yield worker
        finally:
            if warm is not None:
                warm.cancel()
            if deliverer is not None:
                await deliverer.close()
            await worker.stop()
            await presence.stop()
            await app.close_async()
            await executor.close()
            threads.shutdown(wait=False, cancel_futures=True)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    async def start(self) -> None:
        self._worker_task = asyncio.create_task(self._supervise(), name="qasdk worker")
        self._recovery_task = asyncio.create_task(self._recover(), name="qasdk recovery")

    async def _supervise(self) -> None:
        delay = 0.5
        while not self._stopping:
            started = time.monotonic()
            try:
                await self.app.run_worker_async(
                    queues=queues_for(self.config.pools),
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
        pending = self.runner.pending_outcomes
        if pending:
            logger.warning("waiting for %d outcomes to be stored", len(pending))
            await asyncio.wait(pending, timeout=self.config.shutdown_grace)

    async def _recover(self) -> None:
        """Every heartbeat: queue again the jobs of dead workers; now and then, settle orphans.

        After the database was unreachable, nothing is recovered until it has answered
        for ``stalled_after`` seconds: every worker lost it too, and the live ones need
        that long to send heartbeats again and store the outcomes they kept (see
        ``TaskRunner._finish``). Recovering earlier would run their tasks a second time.
        """
        interval = self.config.heartbeat_interval
        reachable_since: float | None = time.monotonic()
        rounds = 0
        while True:
            await asyncio.sleep(interval)
            rounds += 1
            try:
                async with self.runner.pool.connection() as conn:
                    if reachable_since is None:
                        await ping(conn)
                        reachable_since = time.monotonic()
                        logger.info(
                            "database reachable again; recovering stalled tasks in %.0f s",
                            self.config.stalled_after,
                        )
                        continue
                    if time.monotonic() - reachable_since < self.config.stalled_after:
                        await ping(conn)
                        continue
                    recovered = await recover_stalled_jobs(conn, stale=self.config.stalled_after)
                    orphans = []
                    if rounds % _SWEEP_EVERY == 0:
                        orphans = await settle_orphans(conn, grace=self.config.stalled_after * 3)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be restarting; try again next round
                logger.debug("stalled-job recovery failed this round", exc_info=True)
                reachable_since = None
                continue
            for job in recovered:
                if job.abort_requested:
                    logger.warning(
                        "task %s: its worker stopped while cancelling it; cancelled", job.task_id
                    )
                else:
                    logger.warning(
                        "task %s: its worker stopped; queued again (job %s)",
                        job.task_id,
                        job.job_id,
                    )
            for task_id in orphans:
                logger.error("task %s: its job ended without an outcome; ended as failed", task_id)
