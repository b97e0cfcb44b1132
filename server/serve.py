"""``qasdk serve`` and ``qasdk worker``: start everything, stop it in order.

Start: database (embedded or configured) → migrations → pool → registry →
events → [worker: tool processes, agent threads, queue] → HTTP.
Stop (SIGTERM or Ctrl-C): the worker stops taking tasks and gives running ones
``worker.shutdown_grace`` seconds, then hands the rest back to the queue; the
HTTP server keeps answering until then, and exits 0. A second signal exits at
once (tasks still running are recovered by other workers).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import DictRow, dict_row

from qasdk.config import Config
from qasdk.errors import DatabaseError
from qasdk.store.connection import CONNECT_KWARGS, Pool, connect, resolve_url
from qasdk.store.migrate import migrate
from server.events import TaskEvents
from server.executor import Executor
from server.metrics import Metrics
from server.queue import Worker, queue_app, worker_name
from server.registry import MethodRegistry
from server.reload import Reloader
from server.runner import TaskRunner

__all__ = ["run_server", "run_worker"]

logger = logging.getLogger("qasdk.serve")


async def open_pool(url: str, config: Config, extra: int = 0) -> Pool:
    """The process's connection pool: autocommit, dict rows, UTC, checked on checkout."""
    pool: Pool = psycopg_pool.AsyncConnectionPool(
        url,
        connection_class=psycopg.AsyncConnection[DictRow],
        min_size=1,
        max_size=config.database.pool_size + extra,
        kwargs={**CONNECT_KWARGS, "autocommit": True, "row_factory": dict_row},
        open=False,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
        timeout=config.database.connect_timeout,
        name="qasdk",
    )
    try:
        await pool.open(wait=True, timeout=config.database.connect_timeout)
    except psycopg_pool.PoolTimeout:
        await pool.close()
        # Say why: one direct attempt raises a DatabaseError with the driver's reason.
        conn = await connect(url, timeout=config.database.connect_timeout)
        await conn.close()
        raise DatabaseError("the database accepted no connections in time") from None
    return pool


async def prepare_database(config: Config) -> str:
    """Resolve (or start) the database and bring its schema up to date; return its URL."""
    url = await asyncio.to_thread(resolve_url, config.database)
    conn = await connect(url, timeout=config.database.connect_timeout)
    async with conn:
        applied = await migrate(conn)
    for migration in applied:
        logger.info("applied migration %04d_%s", migration.version, migration.name)
    return url


@dataclass
class WorkerParts:
    """The pieces of a worker, closed in reverse order."""

    executor: Executor
    threads: concurrent.futures.ThreadPoolExecutor
    runner: TaskRunner
    worker: Worker
    queue: Any


@contextlib.asynccontextmanager
async def worker_parts(
    config: Config,
    url: str,
    pool: Pool,
    registry: MethodRegistry,
    *,
    metrics: Metrics | None = None,
) -> AsyncIterator[WorkerParts]:
    concurrency = config.worker.concurrency
    executor = Executor(
        registry.configs(),
        workers=concurrency,
        default_timeout=config.worker.tool_timeout,
        cwd=os.getcwd(),
        # Tool files edited and synced within the same second must not load stale bytecode.
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    await executor.start()
    registry.on_change(executor.replace_methods)
    threads = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="qasdk-agent")
    runner = TaskRunner(
        config=config,
        pool=pool,
        registry=registry,
        executor=executor,
        worker_name=worker_name(),
        threads=threads,
        metrics=metrics,
    )
    warm = asyncio.create_task(runner.warm_up(), name="qasdk warm-up")
    queue = queue_app(url, pool_size=concurrency + 2, busy_delay=config.worker.stalled_after)
    await queue.open_async()
    worker = Worker(queue, runner, config.worker)
    await worker.start()
    try:
        yield WorkerParts(executor, threads, runner, worker, queue)
    finally:
        warm.cancel()
        await worker.stop()
        await queue.close_async()
        await executor.close()
        threads.shutdown(wait=False, cancel_futures=True)


class _Stop:
    """SIGINT/SIGTERM: the first asks for a graceful stop, the second exits now."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._signalled, sig)

    def _signalled(self, sig: signal.Signals) -> None:
        if self.event.is_set():
            print("qasdk: stopping now", file=sys.stderr, flush=True)
            os._exit(1)
        logger.info("%s received: stopping (again to force)", sig.name)
        self.event.set()


def _announce(message: str) -> None:
    print(f"qasdk: {message}", flush=True)


def _announce_stopping(config: Config) -> None:
    grace = config.worker.shutdown_grace
    _announce(f"stopping: running tasks get up to {grace:g} s, the rest go back to the queue")


@dataclass
class _Base:
    """What every qasdk process runs on."""

    url: str
    pool: Pool
    registry: MethodRegistry
    events: TaskEvents
    stopper: _Stop


@contextlib.asynccontextmanager
async def _process(config: Config) -> AsyncIterator[_Base]:
    """Signals, database (migrated), pool, registry, notifications; closed in reverse."""
    stopper = _Stop()
    stopper.install()
    url = await prepare_database(config)
    pool = await open_pool(url, config, extra=config.worker.concurrency + 2)
    registry = MethodRegistry(pool)
    # Servers and workers alike listen: tools synced elsewhere reach them at once.
    events = TaskEvents(url, on_registry_change=registry.load)
    try:
        await registry.load()
        await events.start()
        yield _Base(url, pool, registry, events, stopper)
    finally:
        await events.close()
        await pool.close()


async def run_server(
    config: Config,
    *,
    host: str,
    port: int,
    embedded_worker: bool = True,
    watch: Sequence[str] = (),
    prune: bool = False,
    overrides: Callable[[Config], Config] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the API (and run an embedded worker) until stopped.

    ``watch``: tool folders to rescan, validate and sync when they change
    (the config file is watched too); ``prune`` deletes tools removed from them.
    """
    import uvicorn

    from server.app import create_app
    from server.state import ServerState

    async with _process(config) as base:
        state = ServerState(
            config=config,
            url=base.url,
            pool=base.pool,
            registry=base.registry,
            events=base.events,
        )
        server = _UvicornServer(
            uvicorn.Config(
                create_app(state),
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
        )
        async with contextlib.AsyncExitStack() as stack:
            parts = None
            if embedded_worker:
                parts = await stack.enter_async_context(
                    worker_parts(config, base.url, base.pool, base.registry, metrics=state.metrics)
                )
                state.worker = parts.runner
            reloader = Reloader(state, watch=watch, prune=prune, overrides=overrides)
            state.reloader = reloader
            if watch:
                first = await reloader.reload("startup")
                if first.outcome == "rejected":
                    logger.error("serving the registry as it is in the database")
                await reloader.start()
            stack.push_async_callback(reloader.close)
            serving = asyncio.create_task(server.serve(), name="qasdk http")
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            if serving.done():
                serving.result()  # port in use and the like: raise it
            bound = server.servers[0].sockets[0].getsockname()
            worker_note = (
                f"embedded worker: {config.worker.concurrency} tasks at a time"
                if embedded_worker
                else "no embedded worker"
            )
            _announce(
                f"serving http://{bound[0]}:{bound[1]} ({len(base.registry.methods)} tools, "
                f"{worker_note}); API docs at /schema"
            )
            waits = [asyncio.create_task(base.stopper.event.wait()), serving]
            if stop is not None:
                waits.append(asyncio.create_task(stop.wait()))
            if parts is not None:
                waits.append(asyncio.create_task(parts.worker.wait()))
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not serving and task.exception() is not None:
                    logger.error("the worker stopped unexpectedly", exc_info=task.exception())
            if parts is not None:
                _announce_stopping(config)
                await parts.worker.stop()
            server.should_exit = True
            await serving
            for task in waits:
                task.cancel()
        _announce("stopped")


async def run_worker(config: Config, *, stop: asyncio.Event | None = None) -> None:
    """Run tasks from the queue (no HTTP) until stopped."""
    async with _process(config) as base:
        async with worker_parts(config, base.url, base.pool, base.registry) as parts:
            _announce(
                f"worker {parts.runner.worker_name} running up to "
                f"{config.worker.concurrency} tasks ({len(base.registry.methods)} tools)"
            )
            waits = [
                asyncio.create_task(base.stopper.event.wait()),
                asyncio.create_task(parts.worker.wait()),
            ]
            if stop is not None:
                waits.append(asyncio.create_task(stop.wait()))
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            _announce_stopping(config)
        _announce("stopped")


class _UvicornServer:
    """uvicorn without its signal handling (qasdk stops the worker first)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        return Server(config)
