"""``qasdk serve`` and ``qasdk worker``: start everything, stop it in order.

Start: listening socket (serve) → database (embedded or configured) →
migrations → pool → registry → events → [worker: tool processes, agent
threads, queue] → HTTP. Stop (SIGTERM or Ctrl-C): the worker stops taking
tasks and gives running ones ``worker.shutdown_grace`` seconds, then hands the
rest back to the queue; the HTTP server keeps answering until then, and exits
0. A second signal exits at once (tasks still running are recovered by other
workers). With ``worker.processes`` above 1, the extra worker processes
(:mod:`qasdk_server.tasks.processes`) start once this process's worker runs and
stop alongside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
from psycopg.rows import DictRow, dict_row

from qasdk.config import Config
from qasdk.errors import DatabaseError, StartupError
from qasdk.security.guard import RowGuard
from qasdk.security.roots import roots_for
from qasdk.security.signing import load_signing_key
from qasdk.store.connection import (
    CONNECT_KWARGS,
    Pool,
    check_connection,
    configure,
    connect,
    resolve_url,
)
from qasdk.store.migrate import migrate
from qasdk_server.events import TaskEvents
from qasdk_server.metrics import Metrics
from qasdk_server.metrics_http import MetricsPort

if TYPE_CHECKING:
    from qasdk_server.state import ServerState
from qasdk_server.registry import MethodRegistry
from qasdk_server.tasks.processes import WorkerProcesses
from qasdk_server.tasks.worker import Worker

__all__ = ["bind", "open_pool", "prepare_database", "run_server", "run_worker"]

logger = logging.getLogger("qasdk.serve")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or :class:`StartupError` saying which address and why.

    Bound before anything else starts, so a taken port costs one line, not a
    started database and a traceback.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = "; stop the other server or choose another --port (0 picks a free one)"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            hint = "; ports below 1024 need privileges"
        elif isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            hint = "; use an address of this machine, such as 127.0.0.1 or 0.0.0.0"
        raise StartupError(f"cannot listen on {host}:{port}: {reason}{hint}") from None
    sock.set_inheritable(False)
    return sock


async def open_pool(url: str, config: Config, extra: int = 0) -> Pool:
    """The process's connection pool: autocommit, dict rows, UTC, checked on checkout
    (see :func:`~qasdk.store.connection.check_connection`)."""
    pool: Pool = psycopg_pool.AsyncConnectionPool(
        url,
        connection_class=psycopg.AsyncConnection[DictRow],
        min_size=1,
        max_size=config.database.pool_size + extra,
        kwargs={**CONNECT_KWARGS, "autocommit": True, "row_factory": dict_row},
        open=False,
        check=check_connection,
        configure=configure,
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
    url = await asyncio.to_thread(resolve_url, config.database, on_start=_embedded_started)
    conn = await connect(url, timeout=config.database.connect_timeout)
    async with conn:
        applied = await migrate(conn)
    for migration in applied:
        logger.info("applied migration %04d_%s", migration.version, migration.name)
    return url


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


def _embedded_started(path: Any) -> None:
    _announce(
        f"started the embedded PostgreSQL in {path}; it keeps running after this process "
        "(stop it with: qasdk db stop)"
    )


def _announce(message: str) -> None:
    print(f"qasdk: {message}", flush=True)


def _capacity(config: Config) -> str:
    """``4 tasks``, or ``2 processes x 4 tasks`` with ``worker.processes``."""
    tasks = f"{config.worker.concurrency} tasks"
    processes = config.worker.processes
    return f"{processes} processes x {tasks}" if processes > 1 else tasks


@contextlib.asynccontextmanager
async def _extra_processes(config: Config) -> AsyncIterator[WorkerProcesses | None]:
    """The ``worker.processes - 1`` child workers, once this process's own one runs."""
    if config.worker.processes <= 1:
        yield None
        return
    from qasdk.logs import console_level

    async with WorkerProcesses.running(
        config, config.worker.processes - 1, console_level=console_level()
    ) as processes:
        yield processes


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


def row_guard(config: Config, root: str | None = None) -> RowGuard:
    """What this process loads: rows signed with its key, code from its roots.

    Tool processes import from the working directory (``root``), so that is the
    module root; a key file is created on first use, as ``qasdk sync`` does.
    """
    key = load_signing_key(config)
    return RowGuard(key, roots_for(root or os.getcwd(), config.registry.allowed_packages))


@contextlib.asynccontextmanager
async def _process(config: Config) -> AsyncIterator[_Base]:
    """Signals, database (migrated), pool, registry, notifications; closed in reverse."""
    stopper = _Stop()
    stopper.install()
    url = await prepare_database(config)
    pool = await open_pool(url, config, extra=config.worker.concurrency + 2)
    registry = MethodRegistry(pool, guard=row_guard(config))
    # Servers and workers alike listen: tools synced elsewhere reach them at once.
    events = TaskEvents(url, on_registry_change=registry.load)
    try:
        await registry.load()
        await events.start()
        yield _Base(url, pool, registry, events, stopper)
    finally:
        await events.close()
        await pool.close()


async def _check_posture(state: ServerState, host: str) -> None:
    """Refuse to serve a network with no keys (unless told to); say how open it is."""
    from qasdk.store.keys import keys_in_force
    from qasdk_server.sites import is_loopback

    mode = state.config.server.auth
    async with state.pool.connection() as conn:
        keyed = await keys_in_force(conn)
    if mode == "none":
        logger.warning(
            "server.auth is none: anyone who reaches %s can read every task and run every tool",
            host,
        )
    elif not keyed and mode == "auto":
        if not is_loopback(host):
            raise StartupError(
                f"refusing to serve {host} with no API keys: anyone on the network could run "
                "your tools. Create one (qasdk keys create NAME --scope admin), or set "
                "server.auth: none to serve it open anyway"
            )
        logger.warning(
            "no API keys: the API is open to anyone on this machine "
            "(qasdk keys create NAME --scope ... turns keys on)"
        )


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

    from qasdk_server.app import create_app
    from qasdk_server.http import protocol_for
    from qasdk_server.reload import Reloader
    from qasdk_server.state import ServerState

    sock = bind(host, port)
    try:
        async with _process(config) as base:
            state = ServerState(
                config=config,
                url=base.url,
                pool=base.pool,
                registry=base.registry,
                events=base.events,
            )
            await _check_posture(state, host)
            reloader = Reloader(state, watch=watch, prune=prune, overrides=overrides)
            app = create_app(state, reloader)
            server = _UvicornServer(
                uvicorn.Config(
                    app,
                    http=protocol_for(lambda: state.config.limits),
                    log_config=None,
                    access_log=False,
                    lifespan="on",
                )
            )
            async with contextlib.AsyncExitStack() as stack:
                worker = None
                extra = None
                if embedded_worker:
                    worker = await stack.enter_async_context(
                        Worker.running(
                            config, base.url, base.pool, base.registry, metrics=state.metrics
                        )
                    )
                    state.worker = worker
                    extra = await stack.enter_async_context(_extra_processes(config))
                if watch:
                    first = await reloader.reload("startup")
                    if first.outcome == "rejected":
                        logger.error("serving the registry as it is in the database")
                    await reloader.start()
                stack.push_async_callback(reloader.close)
                serving = asyncio.create_task(server.serve(sockets=[sock]), name="qasdk http")
                while not server.started and not serving.done():
                    await asyncio.sleep(0.01)
                if serving.done():
                    serving.result()
                bound = sock.getsockname()
                worker_note = (
                    f"embedded worker: {_capacity(config)} at a time"
                    if embedded_worker
                    else "no embedded worker"
                )
                _announce(
                    f"serving http://{_url_host(bound[0])}:{bound[1]} "
                    f"({len(base.registry.methods)} tools, {worker_note}); "
                    "console at /console, API docs at /schema"
                )
                waits = [asyncio.create_task(base.stopper.event.wait()), serving]
                if stop is not None:
                    waits.append(asyncio.create_task(stop.wait()))
                if worker is not None:
                    waits.append(asyncio.create_task(worker.wait()))
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not serving and task.exception() is not None:
                        logger.error("the worker stopped unexpectedly", exc_info=task.exception())
                if worker is not None:
                    _announce_stopping(config)
                    if extra is not None:
                        extra.request_stop()  # they stop alongside this process's worker
                    await worker.stop()
                await app.state.mcp.close()  # its open streams would hold the HTTP server's stop
                server.should_exit = True
                await serving
                for task in waits:
                    task.cancel()
    finally:
        sock.close()
    _announce("stopped")


async def run_worker(config: Config, *, stop: asyncio.Event | None = None) -> None:
    """Run tasks from the queue until stopped (no API; metrics on ``worker.metrics_port``)."""
    metrics = Metrics()
    metrics.database.reads_database = False  # the API's /metrics has the database's gauges
    port = None
    if config.worker.metrics_port is not None:
        port = MetricsPort(metrics, config.worker.metrics_host, config.worker.metrics_port)
    try:
        await _run_worker(config, metrics, port, stop)
    finally:
        if port is not None:
            port.close()


async def _run_worker(
    config: Config, metrics: Metrics, port: MetricsPort | None, stop: asyncio.Event | None
) -> None:
    async with _process(config) as base:
        async with (
            Worker.running(config, base.url, base.pool, base.registry, metrics=metrics) as worker,
            _extra_processes(config) as extra,
        ):
            pools = ", ".join(config.worker.pools)
            served = f"; metrics at {port.url}" if port is not None else ""
            _announce(
                f"worker {worker.name} running up to "
                f"{_capacity(config)} ({len(base.registry.methods)} tools; "
                f"pools: {pools}){served}"
            )
            waits = [
                asyncio.create_task(base.stopper.event.wait()),
                asyncio.create_task(worker.wait()),
            ]
            if stop is not None:
                waits.append(asyncio.create_task(stop.wait()))
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            _announce_stopping(config)
            if extra is not None:
                extra.request_stop()  # they stop alongside this process's worker
            await worker.stop()
        _announce("stopped")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _UvicornServer:
    """uvicorn without its signal handling (qasdk stops the worker first)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        return Server(config)
