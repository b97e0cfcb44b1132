"""Run one task: claim it, execute it, record the outcome and the trace.

Guarantees, in order of importance:

- **Never twice at once.** The runner holds a PostgreSQL advisory lock on the
  task for as long as it runs it, on its own connection. A second worker that
  is handed the same task (because the first was presumed dead) cannot take
  the lock and leaves it alone; if the first really died, PostgreSQL released
  the lock with its connection.
- **Only the current attempt writes the outcome.** Each claim increments
  ``attempts``; ``finish_task`` matches on it.
- **Cancel and timeout stop the work.** The job's coroutine is cancelled; the
  executor kills a running tool, and the agent thread stops at its next check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
from psycopg.rows import DictRow

from qasdk.config import Config, ModelConfig
from qasdk.errors import QasdkError
from qasdk.models import ExecutionResult, MethodConfig, Task, TaskError, TraceStep
from qasdk.redaction import mask_fields
from qasdk.store import approvals, audit, dead_letters
from qasdk.store import keys as keys_store
from qasdk.store import results as results_store
from qasdk.store import tasks as store
from qasdk.store.connection import Pool, connect, is_outage
from qasdk_server.agent import AgentFailure, AgentRun, Cancelled, build_llm, qwen_tools
from qasdk_server.agent.plan import Planned, plan_tool, planning_prompt
from qasdk_server.agent.run import CANCELLED_CALL, Paused, progress_text
from qasdk_server.executor import Executor
from qasdk_server.metrics import Metrics
from qasdk_server.middleware.base import AwaitingApproval
from qasdk_server.middleware.chain import Chain
from qasdk_server.middleware.load import chain_for
from qasdk_server.registry import MethodRegistry
from qasdk_server.tasks import retry, split
from qasdk_server.tasks.calls import ToolCalls
from qasdk_server.tasks.trace import TraceRecorder

if TYPE_CHECKING:
    from qasdk_server.telemetry.spans import TaskSpan, Tracing

__all__ = [
    "DatabaseUnavailable",
    "HandBack",
    "OutcomePending",
    "StopReason",
    "TaskBusy",
    "TaskRunner",
]

logger = logging.getLogger("qasdk.runner")
_RETENTION_BATCH = 1000
#: Tool lists kept built (per registry version and key allow-list) before starting afresh.
_TOOL_SETS = 32


class StopReason(enum.Enum):
    """Why a running task's coroutine was cancelled."""

    CANCELLED = "cancelled"  # the user asked
    SHUTDOWN = "shutdown"  # the worker is stopping: hand the task back


class HandBack(Exception):
    """The worker is stopping; the task was put back in the queue for another one."""


class TaskBusy(Exception):
    """Another worker holds the task's lock: look again later, in case that worker dies."""


class DatabaseUnavailable(Exception):
    """The database went away mid-task: run it again once it is back."""


class OutcomePending(Exception):
    """The task ran but its outcome could not be stored yet: it is kept and written once the
    database is back. The job waits for that (``stored``) and so stays this worker's: were it
    handed back to the queue, another worker could take it first and run the tool again."""

    def __init__(self, task_id: str, stored: asyncio.Task[None]) -> None:
        super().__init__(task_id)
        self.stored = stored


_DROPPED = "task %s: a newer attempt owns it; kept outcome dropped"


def _duplicate(exc: BaseException) -> bool:
    """A unique violation (raised as it is, or as the cause of qasdk's database error)."""
    unique = psycopg.errors.UniqueViolation
    return isinstance(exc, unique) or isinstance(exc.__cause__, unique)


#: The outcome of an attempt that stopped to wait for a person.
AWAITING = "awaiting_approval"
#: The outcome of an attempt that failed in a way another attempt may get past (``retry.py``).
RETRYABLE = "retryable"
SPLIT = "split"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TaskRunner:
    """Everything a worker needs to run tasks: database, tools, model."""

    def __init__(
        self,
        *,
        config: Config,
        pool: Pool,
        registry: MethodRegistry,
        executor: Executor,
        worker_name: str,
        threads: concurrent.futures.Executor,
        metrics: Metrics | None = None,
        chain: Chain | None = None,
        tracing: Tracing | None = None,
        pools: tuple[str, ...] = ("default",),
    ) -> None:
        self.metrics = metrics or Metrics()
        #: The worker pools this worker serves (fixed while it runs: its queues are).
        self.pools = pools
        #: Tasks it ended, whatever their outcome (the workers view's "done").
        self.tasks_done = 0
        #: The middleware every tool call goes through (``config.middleware``).
        self.chain = chain if chain is not None else chain_for(config, self.metrics, pool)
        #: OpenTelemetry spans of tasks (``None``: telemetry is off, nothing is traced).
        self.tracing = tracing
        self.config = config
        #: Runs the tool calls of its tasks (the middleware chain, retries, progress).
        self.calls = ToolCalls(self)
        self.pool = pool
        self.registry = registry
        self.executor = executor
        self.worker_name = worker_name
        self.threads = threads
        self._llm: tuple[ModelConfig, Any] | None = None
        self._tools: dict[tuple[int, frozenset[str]], list[Any]] = {}
        self.running: dict[uuid.UUID, asyncio.Task[Any]] = {}
        #: Progress announcements and chain closings still on their way (strong references).
        self.background: set[asyncio.Task[None]] = set()
        #: Outcomes waiting for the database to come back, written in the background.
        self.pending_outcomes: set[asyncio.Task[None]] = set()
        #: Tasks whose lock went with their outcome's round trip (see ``_finish``).
        self._unlocked: set[uuid.UUID] = set()
        #: The queue job of each task running (to end it with the task's outcome).
        self._job_of: dict[uuid.UUID, int] = {}
        #: Queue jobs ended with their task's outcome: the queue must not end them again
        #: (see ``tasks.queue``, which shares this set).
        self.ended_jobs: set[int] = set()

    def apply_config(self, config: Config, chain: Chain | None = None) -> None:
        """Use ``config`` from the next task on; running tasks keep what they started with.

        ``chain``: the middleware of ``config``, built (and so validated) by the caller.
        """
        self.config = config
        if chain is not None:
            old, self.chain = self.chain, chain
            closing = asyncio.get_running_loop().create_task(old.close())
            self.background.add(closing)
            closing.add_done_callback(self.background.discard)
        self.executor.default_timeout = config.worker.tool_timeout
        self.executor.limits = config.worker.tool_limits
        self.executor.limits_by_tool = config.worker.tool_limits_by_tool
        self.executor.cancel_grace = config.worker.cancel_grace

    # -- shared, lazily built model resources -------------------------------

    async def warm_up(self) -> None:
        """Import qwen-agent and build the tools now, not during the first task."""
        await asyncio.get_running_loop().run_in_executor(
            self.threads, self._model_resources, self.config.model, self.registry.configs()
        )

    def _model_resources(
        self, model: ModelConfig, methods: Mapping[str, MethodConfig]
    ) -> tuple[Any, list[Any]]:
        """The LLM for ``model`` and the tools of this registry version, built once each.

        Keyed by what they were built from, so a reload (or a warm-up finishing late)
        can never leave a task with the previous settings.
        """
        cached = self._llm
        if cached is None or cached[0] != model:
            cached = self._llm = (model, build_llm(model, report_usage=True))
        version = (self.registry.version, frozenset(methods))
        tools = self._tools.get(version)
        if tools is None:
            if len(self._tools) >= _TOOL_SETS:  # one per registry version and key's allow-list
                self._tools.clear()
            tools = self._tools[version] = qwen_tools(methods)
        return cached[1], tools

    # -- housekeeping -----------------------------------------------------------

    async def apply_retention(self) -> tuple[int, int]:
        """Delete tasks finished, and audit rows written, more than ``retention.days`` ago,
        and cached tool results past their ``cache_ttl``.

        Returns how many of each went.
        """
        async with self.pool.connection() as conn:
            for task_id, approval_id in await approvals.expired(conn):
                # Unanswered in time: a rejection; the task is queued again to go on.
                await approvals.decide(conn, task_id, approval_id, "expired", actor="expiry")
                logger.info("task %s: approval %s expired", task_id, approval_id)
            expired = await results_store.delete_expired(conn)  # cached results past their ttl
        if expired:
            logger.debug("result cache: deleted %d expired results", expired)
        days = self.config.retention.days
        if days is None:
            return 0, 0
        total = entries = 0
        while True:
            async with self.pool.connection() as conn:
                tasks, _ = await store.delete_expired_tasks(conn, days=days, batch=_RETENTION_BATCH)
            total += tasks
            self.metrics.tasks_deleted.inc(tasks)
            if tasks < _RETENTION_BATCH:
                break
        while True:
            async with self.pool.connection() as conn:
                deleted = await audit.delete_expired_entries(
                    conn, days=days, batch=_RETENTION_BATCH
                )
            entries += deleted
            if deleted < _RETENTION_BATCH:
                break
        if total or entries:
            logger.info(
                "retention: deleted %d tasks finished and %d audit rows written over %g days ago",
                total,
                entries,
                days,
            )
        return total, entries

    # -- one task -------------------------------------------------------------

    async def run(
        self,
        task_id: uuid.UUID,
        stop_reason: Callable[[], StopReason | None],
        job_id: int | None = None,
    ) -> None:
        """Run ``task_id`` to an outcome (the body of the queue job ``job_id``).

        Raises :class:`TaskBusy` or :class:`DatabaseUnavailable` when the job must
        come back later: the queue keeps it until the task has an outcome. When the
        outcome is written, the job ends in the same statement (it is then in
        ``ended_jobs``).
        """
        if job_id is not None:
            self._job_of[task_id] = job_id
        try:
            await self._run(task_id, stop_reason)
        except OutcomePending as pending:
            await asyncio.shield(pending.stored)
        except (QasdkError, psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            if is_outage(exc):
                logger.warning(
                    "task %s: the database went away (%s); it will run again", task_id, exc
                )
                raise DatabaseUnavailable(str(exc)) from exc
            raise
        finally:
            self._job_of.pop(task_id, None)

    async def _run(self, task_id: uuid.UUID, stop_reason: Callable[[], StopReason | None]) -> None:
        async with self.pool.connection() as conn:
            try:
                claimed = await store.claim_task(conn, task_id, self.worker_name)
            except store.TaskLocked:
                logger.warning("task %s is running on another worker; looking again later", task_id)
                raise TaskBusy(str(task_id)) from None
            except BaseException:
                # A session lock taken by a statement that failed is still held.
                await asyncio.shield(self._unlock(conn, task_id))
                raise
            try:
                await self._claimed(conn, task_id, claimed, stop_reason)
            finally:
                if task_id in self._unlocked:
                    self._unlocked.discard(task_id)
                else:
                    await asyncio.shield(self._unlock(conn, task_id))

    async def _unlock(self, conn: psycopg.AsyncConnection[DictRow], task_id: uuid.UUID) -> None:
        try:
            await store.unlock(conn, task_id)
        except (QasdkError, psycopg.Error):
            # The connection is broken, so the session (and its lock) is gone anyway.
            logger.debug("could not unlock task", exc_info=True)

    async def _claimed(
        self,
        conn: psycopg.AsyncConnection[DictRow],
        task_id: uuid.UUID,
        claimed: store.Claimed | None,
        stop_reason: Callable[[], StopReason | None],
    ) -> None:
        if claimed is None:
            # Cancelled or finished already; or cancelled while its last worker died.
            await store.cancel_abandoned(conn, task_id)
            return
        task, last_seq = claimed.task, claimed.last_seq
        attempt = task.attempts
        span = None
        if self.tracing is not None:
            span = self.tracing.task(task_id, task.kind, attempt, claimed.trace_context)
        try:
            await self._attempt(conn, task, last_seq, stop_reason, span)
        finally:
            if span is not None:
                span.end("interrupted")  # unless it ended with an outcome

    async def _attempt(
        self,
        conn: psycopg.AsyncConnection[DictRow],
        task: Task,
        last_seq: int,
        stop_reason: Callable[[], StopReason | None],
        span: TaskSpan | None,
    ) -> None:
        """Run one claimed attempt at ``task`` and record its outcome (in ``span`` too)."""
        task_id, attempt = task.task_id, task.attempts
        recorder = TraceRecorder(
            conn, task_id, last_seq, asyncio.get_running_loop(), limits=self.config.limits
        )
        log_extra = {"task_id": str(task_id), "attempt": attempt, "kind": task.kind}
        if task.failures:
            logger.info(
                "task %s: attempt %d, after %d failed",
                task_id,
                attempt,
                task.failures,
                extra=log_extra,
            )
        elif attempt > 1:
            logger.info(
                "task %s: attempt %d (its previous worker stopped)",
                task_id,
                attempt,
                extra=log_extra,
            )
        current = asyncio.current_task()
        if current is not None:
            self.running[task_id] = current
        started = time.monotonic()
        try:
            status, result, error = await self._execute(task, attempt, recorder, span)
        except (QasdkError, psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            if is_outage(exc):
                raise
            logger.exception("task %s: unexpected error", task_id, extra=log_extra)
            status, result, error = "failed", None, TaskError(type(exc).__name__, str(exc))
        except asyncio.CancelledError:
            reason = stop_reason()
            await recorder.flush()
            if reason is StopReason.SHUTDOWN:
                await asyncio.shield(store.release_task(conn, task_id, attempt))
                if span is not None:
                    span.end("handed_back")
                logger.info("task %s handed back: the worker is stopping", task_id, extra=log_extra)
                raise HandBack(str(task_id)) from None
            error = TaskError("Cancelled", "cancelled by request")
            await asyncio.shield(self._finish(conn, task, recorder, "cancelled", None, error))
            self.metrics.observe_task(task.kind, "cancelled", time.monotonic() - started)
            self.tasks_done += 1
            if span is not None:
                span.end("cancelled", error)
            logger.info("task %s cancelled", task_id, extra=log_extra)
            return
        finally:
            self.running.pop(task_id, None)
        if status == AWAITING:
            await self._pause(conn, task, recorder, result, span, log_extra)
            return
        if status == RETRYABLE:
            assert error is not None
            if self.config.worker.max_attempts > 0 and await self._retry_later(
                conn, task, recorder, error, span, log_extra
            ):
                return
            # No task retries (worker.max_attempts: 0), or a cancel came first: a failure.
            status = "failed"
        if status == SPLIT:
            await self._park(conn, task, recorder, result, span, log_extra)
            return
        written = await self._finish(conn, task, recorder, status, result, error)
        elapsed = time.monotonic() - started
        self.metrics.observe_task(task.kind, status, elapsed)
        self.tasks_done += 1
        if span is not None:
            span.end(status if written else "superseded", error)
        if not written:
            logger.warning(
                "task %s: a newer attempt owns it; outcome of attempt %d dropped",
                task_id,
                attempt,
                extra=log_extra,
            )
        elif error is not None:
            logger.info(
                "task %s failed after %.3f s: %s: %s",
                task_id,
                elapsed,
                error.type,
                error.message,
                extra=log_extra,
            )
        else:
            logger.debug("task %s completed in %.3f s", task_id, elapsed, extra=log_extra)

    async def _pause(
        self,
        conn: psycopg.AsyncConnection[DictRow],
        task: Task,
        recorder: TraceRecorder,
        paused: Paused,
        span: TaskSpan | None,
        log_extra: dict[str, Any],
    ) -> None:
        """Park the task until a person decides: its job ends, no worker holds it."""
        await recorder.flush()
        parked = await approvals.pause(
            conn,
            task.task_id,
            task.attempts,
            paused.approval_id,
            paused.conversation or None,
            paused.pending or None,
        )
        if span is not None:
            span.end("awaiting_approval" if parked else "superseded")
        logger.info("task %s awaits approval %s", task.task_id, paused.approval_id, extra=log_extra)

    async def _retry_later(
        self,
        conn: psycopg.AsyncConnection[DictRow],
        task: Task,
        recorder: TraceRecorder,
        error: TaskError,
        span: TaskSpan | None,
        log_extra: dict[str, Any],
    ) -> bool:
        """Queue the task again after a backoff, or block it once its attempts are used up.

        ``False``: neither (its cancel was asked for, or a newer attempt owns it); the
        caller records the failure as the outcome (dropped if a newer attempt owns the task).
        """
        worker = self.config.worker
        failures = task.failures + 1
        block = failures >= worker.max_attempts
        delay = retry.backoff(failures, worker.retry_backoff, worker.retry_delay_max)
        await recorder.flush()
        failed = await dead_letters.fail_attempt(
            conn, task.task_id, task.attempts, error, delay=delay, block=block
        )
        if failed is None:
            return False
        if span is not None:
            span.end(failed.status, error)
        if block:
            self.metrics.tasks_finished.labels(task.kind, "blocked").inc()
            logger.warning(
                "task %s blocked after %d failed attempts: %s: %s",
                task.task_id,
                failures,
                error.type,
                error.message,
                extra=log_extra,
            )
            return True
        self.metrics.task_retries.labels(task.kind).inc()
        logger.info(
            "task %s: attempt failed (%s: %s); attempt %d of %d in %.2f s",
            task.task_id,
            error.type,
            error.message,
            failures + 1,
            worker.max_attempts,
            delay,
            extra=log_extra,
        )
        return True

    async def _park(
        self,
        conn: psycopg.AsyncConnection[DictRow],
        task: Task,
        recorder: TraceRecorder,
        planned: Planned,
        span: TaskSpan | None,
        log_extra: dict[str, Any],
    ) -> None:
        """A split task's plan holds: its sub-tasks are stored, it waits for them."""
        await recorder.flush()
        ids = await split.park(conn, task, planned.subtasks, planned.conversation, None)
        if span is not None:
            span.end("waiting" if ids is not None else "superseded")
        logger.info(
            "task %s split into %d sub-tasks",
            task.task_id,
            len(planned.subtasks),
            extra=log_extra,
        )

    async def _finish(
        self,
        conn: psycopg.AsyncConnection[DictRow],
        task: Task,
        recorder: TraceRecorder,
        status: str,
        result: Any,
        error: TaskError | None,
    ) -> bool:
        """Record the outcome, whatever happens: a task never stays ``running`` for good.

        The trace steps still held and the outcome go in one round trip (a pipeline).
        An outcome the database refuses (it should not: values are made storable)
        ends the task as failed with an ``InternalError``. An outcome the database
        cannot take now (an outage) is kept and written when it is back, so a tool
        that ran is not run again (:class:`OutcomePending`).
        """
        task_id, attempt = task.task_id, task.attempts
        job = self._job_of.get(task_id)

        async def write(
            status: str, result: Any, error: TaskError | None, *, release_lock: bool = False
        ) -> bool:
            written = await store.finish_task(
                conn, task_id, attempt, status=status, result=result, error=error,
                limits=self.config.limits, in_graph=task.parent_id is not None,
                release_lock=release_lock, end_job=job,
            )  # fmt: skip
            if written and job is not None:
                self.ended_jobs.add(job)  # the statement ended it
            return written

        try:
            held = recorder.take_held()
            await recorder.flush()
            if held:
                try:
                    async with conn.pipeline():
                        await recorder.insert(held)
                        written = await write(status, result, error, release_lock=True)
                    self._unlocked.add(task_id)
                    return written
                except psycopg.Error as exc:
                    if is_outage(exc):
                        recorder.unwritten(held)
                        raise
                    # One of them was refused: again one by one, so the outcome still lands.
                    for step in held:
                        await recorder.add(step)
            return await write(status, result, error)
        except (QasdkError, psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            if is_outage(exc):
                keeper = self._keep_outcome(task_id, attempt, recorder, status, result, error)
                raise OutcomePending(str(task_id), keeper) from exc
            logger.exception("task %s: its outcome could not be stored", task_id)
            fallback = TaskError("InternalError", f"the task's outcome could not be stored: {exc}")
            return await write("failed", None, fallback)

    def _keep_outcome(
        self,
        task_id: uuid.UUID,
        attempt: int,
        recorder: TraceRecorder,
        status: str,
        result: Any,
        error: TaskError | None,
    ) -> asyncio.Task[None]:
        logger.warning(
            "task %s: the database went away before its outcome was stored; "
            "keeping it until the database is back",
            task_id,
        )
        keeper = asyncio.create_task(
            self._store_later(task_id, attempt, recorder, status, result, error),
            name=f"qasdk outcome {task_id}",
        )
        self.pending_outcomes.add(keeper)
        keeper.add_done_callback(self.pending_outcomes.discard)
        return keeper

    async def _store_later(
        self,
        task_id: uuid.UUID,
        attempt: int,
        recorder: TraceRecorder,
        status: str,
        result: Any,
        error: TaskError | None,
    ) -> None:
        """Retry until the outcome is stored, or a newer attempt owns the task.

        On connections of its own, not the pool's: after an outage the pool
        reconnects with a growing backoff, and every second the outcome waits is
        a second in which the task looks abandoned to the other workers.
        """
        delay = 0.2
        while True:
            try:
                url = self.pool.conninfo
                assert isinstance(url, str)  # qasdk's pools are made from a URL
                conn = await connect(url, timeout=self.config.database.connect_timeout)
                async with conn:
                    await recorder.write_again(conn)
                    written = await store.finish_task(
                        conn,
                        task_id,
                        attempt,
                        status=status,
                        result=result,
                        error=error,
                        limits=self.config.limits,
                    )
            except (QasdkError, psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
                if _duplicate(exc):  # a newer attempt wrote its trace first: it owns the task
                    logger.warning(
                        "task %s: a newer attempt owns it; kept outcome dropped", task_id
                    )
                    return
                if not is_outage(exc):
                    logger.exception("task %s: its kept outcome could not be stored", task_id)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if written:
                logger.info("task %s: outcome stored after the database came back", task_id)
            else:
                logger.warning(_DROPPED, task_id)
            return

    async def _execute(
        self, task: Task, attempt: int, recorder: TraceRecorder, span: TaskSpan | None = None
    ) -> tuple[str, Any, TaskError | None]:
        deadline = None if task.timeout is None else time.monotonic() + task.timeout
        try:
            if task.kind == "direct":
                coro = self._direct(task, attempt, recorder, deadline, span)
            else:
                coro = self._described(task, attempt, recorder, deadline, span)
            if task.timeout is None:
                return await coro
            return await asyncio.wait_for(coro, task.timeout)
        except asyncio.TimeoutError:
            return (
                "failed",
                None,
                TaskError(
                    "TimeoutError",
                    f"the task did not finish within its timeout of {task.timeout:g} s",
                ),
            )

    async def _direct(
        self,
        task: Task,
        attempt: int,
        recorder: TraceRecorder,
        deadline: float | None,
        span: TaskSpan | None,
    ) -> tuple[str, Any, TaskError | None]:
        assert task.method is not None
        await self._ensure_method(task.method)
        started, clock = _now(), time.perf_counter()

        method = self.executor.methods.get(task.method)
        hidden = () if method is None or method.policy is None else method.policy.redact

        def step(**outcome: Any) -> TraceStep:
            if "result" in outcome:
                outcome["result"] = mask_fields(outcome["result"], hidden)
            return TraceStep(
                seq=recorder.next_seq(),
                kind="tool",
                name=task.method,
                attempt=attempt,
                arguments=mask_fields(task.params or {}, hidden),
                started_at=started,
                duration_ms=(time.perf_counter() - clock) * 1000,
                **outcome,
            )

        try:
            outcome = await self.calls.call(
                task.method,
                task.params or {},
                deadline,
                span,
                task_id=task.task_id,
                attempt=attempt,
                owner=task.owner,
            )
        except asyncio.CancelledError:
            # Cancelled (by request, timeout or shutdown) while the tool ran: the trace says so.
            await asyncio.shield(recorder.add(step(error=CANCELLED_CALL)))
            raise
        except AwaitingApproval as waiting:
            message = f"waits for approval {waiting.approval_id}"
            await recorder.add(step(error=TaskError("AwaitingApproval", message)))
            return AWAITING, Paused(waiting.approval_id, [], []), None
        error = (
            None
            if outcome.success
            else TaskError(outcome.error_type or "Error", outcome.error or "")
        )
        recorder.hold(  # written with the outcome, in its round trip
            step(
                result=outcome.result if outcome.success else None,
                error=error,
                code_version=outcome.code_version,
                cached=outcome.cached,
                retries=outcome.retries,
                content=progress_text(outcome.progress),
            )
        )
        if error is not None:
            policy = None if method is None else method.policy
            return RETRYABLE if retry.retryable_tool(error, policy) else "failed", None, error
        return "completed", outcome.result, None

    async def _ensure_method(self, name: str) -> None:
        """A task may name a tool synced after this worker loaded the registry."""
        if name not in self.executor.methods and await self.registry.find(name) is not None:
            self.executor.replace_methods(self.registry.configs())

    async def _methods_for(
        self, owner: uuid.UUID | None
    ) -> tuple[Mapping[str, MethodConfig], int | None]:
        """The tools the task's key may run (all of them unless it is limited), and the
        task's token budget: the lower of the model's and the key's."""
        methods = self.registry.configs()
        budget = self.config.model.max_tokens_per_task
        if owner is None:
            return methods, budget
        async with self.pool.connection() as conn:
            found = await keys_store.find_key(conn, owner)
        key = None if found is None else found[0]
        if key is not None and key.max_tokens_per_task is not None:
            budget = min(budget or key.max_tokens_per_task, key.max_tokens_per_task)
        if key is not None and not key.limits_tools:
            return methods, budget
        # A key that is gone may run nothing; a limited one, what it allows.
        allowed = {n: m for n, m in methods.items() if key is not None and key.may_run(m)}
        return allowed, budget

    async def _described(
        self,
        task: Task,
        attempt: int,
        recorder: TraceRecorder,
        deadline: float | None,
        span: TaskSpan | None,
    ) -> tuple[str, Any, TaskError | None]:
        assert task.task_description is not None
        methods, budget = await self._methods_for(task.owner)
        model = self.config.model
        llm, tools = self._model_resources(model, methods)
        loop = asyncio.get_running_loop()
        context = _TaskContext(self, recorder, task, attempt, deadline, loop, span)
        worker = self.config.worker
        description = task.task_description
        plan = None
        if task.split == "planning":
            tools, description = [plan_tool(methods)], planning_prompt(description)

            def plan(arguments: Any) -> concurrent.futures.Future[Any]:
                check = split.check_plan(self.pool, self.registry, self.config, task, arguments)
                return asyncio.run_coroutine_threadsafe(check, loop)

        agent = AgentRun(
            model=model,
            llm=llm,
            tools=tools,
            methods=methods,
            context=context,
            retries=worker.model_retries,
            backoff=worker.retry_backoff,
            span=span,
            token_budget=budget,
            plan=plan,
        )
        resume: Any = None
        if task.attempts > 1:
            async with self.pool.connection() as conn:
                resume = await approvals.resume_point(conn, task.task_id)
                if resume is None and task.split == "composing":
                    resume = await split.composing(conn, task.task_id)
        future = loop.run_in_executor(self.threads, agent.run, description, resume)
        try:
            outcome = await future
        except asyncio.CancelledError:
            agent.cancel()
            raise
        except Cancelled:
            raise asyncio.CancelledError() from None
        except Paused as paused:
            return AWAITING, paused, None
        except Planned as planned:
            return SPLIT, planned, None
        except AgentFailure as failure:
            status = RETRYABLE if retry.retryable_model(failure.error) else "failed"
            return status, None, failure.error
        except Exception as exc:  # a bug in qwen-agent or qasdk: fail the task, keep the worker
            logger.exception("task %s: the agent crashed", task.task_id)
            return "failed", None, TaskError(type(exc).__name__, str(exc) or "agent error")
        return "completed", outcome.answer, None


class _TaskContext:
    """What the agent of one task reaches its worker through (see ``AgentContext``)."""

    def __init__(
        self,
        runner: TaskRunner,
        recorder: TraceRecorder,
        task: Task,
        attempt: int,
        deadline: float | None,
        loop: asyncio.AbstractEventLoop,
        span: TaskSpan | None = None,
    ) -> None:
        self.attempt = attempt
        self._task = task
        self._span = span
        self._runner = runner
        self._recorder = recorder
        self._deadline = deadline
        self._loop = loop
        self.record = recorder.record
        self.next_seq = recorder.next_seq
        self.observe_model = runner.metrics.observe_model
        self.observe_tokens = runner.metrics.observe_tokens

    def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> concurrent.futures.Future[ExecutionResult]:
        call = self._runner.calls.call(
            name,
            arguments,
            self._deadline,
            self._span,
            task_id=self._task.task_id,
            attempt=self.attempt,
            owner=self._task.owner,
            source="model",
        )
        return asyncio.run_coroutine_threadsafe(call, self._loop)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.001, deadline - time.monotonic())
