"""Run your tools the way the server does, in your own tests, without ``qasdk serve``.

``run_tools("tools")`` syncs a folder into a scratch database of an embedded
PostgreSQL (started once per process, deleted at exit), and runs tasks through
the real task runner: tool processes, argument conversion, limits, the trace,
and, for a task in words, qwen-agent against a model (the scripted one in
tests)::

    from qasdk.testing import ScriptedModel, reply
    from qasdk_server.testing import run_tools

    with ScriptedModel() as model, run_tools("tools", model=model) as tools:
        model.push(reply.tool_call("add", {"a": 2, "b": 3}), reply.text("5"))
        run = tools.run("What is 2 + 3?")
        assert run.result == "5"
        assert tools.run(method="add", params={"a": 2, "b": 3}).result == 5

The ``qasdk_tools`` pytest fixture does the same for the folder named by the
``qasdk_tools`` ini option (default ``tools``), with the ``scripted_model``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from qasdk.config import Config, WorkerConfig
from qasdk.models import Task, TaskError, TraceStep
from qasdk.testing import ScriptedModel

__all__ = ["ToolRun", "Tools", "run_tools"]

T = TypeVar("T")


class ToolRun(msgspec.Struct, kw_only=True):
    """A finished task: its outcome and every step it took."""

    task_id: uuid.UUID
    status: str
    result: Any = None
    error: TaskError | None = None
    trace: list[TraceStep] = []

    @property
    def tool_calls(self) -> list[TraceStep]:
        """The trace's tool calls, in order."""
        return [step for step in self.trace if step.kind == "tool"]


class _Database:
    """One embedded PostgreSQL per process, for every harness; removed at exit."""

    _lock = threading.Lock()
    _folder: Path | None = None

    @classmethod
    def scratch(cls) -> tuple[str, str]:
        """A new empty database: its URL, and its name (to drop it)."""
        from qasdk.store.embedded import ensure_embedded

        with cls._lock:
            if cls._folder is None:
                cls._folder = Path(tempfile.mkdtemp(prefix="qasdk-tools-"))
                atexit.register(cls._remove, cls._folder)
        name = f"tools_{uuid.uuid4().hex[:12]}"
        return ensure_embedded(cls._folder / "pg", database=name), name

    @staticmethod
    def drop(url: str, name: str) -> None:
        from qasdk.store.embedded import drop_database

        drop_database(url, name)

    @staticmethod
    def _remove(folder: Path) -> None:
        from qasdk.store.embedded import stop_embedded

        with contextlib.suppress(Exception):
            stop_embedded(folder / "pg")
        shutil.rmtree(folder, ignore_errors=True)


class Tools:
    """Runs tasks against the synced tools; made by :func:`run_tools`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, runner: Any, pool: Any) -> None:
        self._loop = loop
        self._runner = runner
        self._pool = pool

    def _wait(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    @property
    def names(self) -> list[str]:
        """The tools that were synced."""
        return sorted(self._runner.registry.methods)

    def run(
        self,
        task_description: str | None = None,
        *,
        method: str | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> ToolRun:
        """Run one task to its end: in words (the model decides) or ``method`` + ``params``."""
        if (task_description is None) == (method is None):
            raise TypeError("give a task_description, or a method (with params)")
        return self._wait(self._run(task_description, method, params, timeout))

    async def _run(
        self,
        description: str | None,
        method: str | None,
        params: dict[str, Any] | None,
        timeout: float | None,
    ) -> ToolRun:
        from qasdk.store import tasks as store
        from qasdk_server.executor import prepare_params

        pool = "default"
        if method is not None:
            config = await self._runner.registry.find(method)
            if config is None:
                raise LookupError(f"no tool named {method!r}; synced: {', '.join(self.names)}")
            params = prepare_params(config, params or {}, fill_defaults=False)
            pool = config.pool
        async with self._pool.connection() as conn:
            task: Task = await store.insert_task(
                conn,
                kind="direct" if method else "described",
                description=description,
                method=method,
                params=params,
                timeout=timeout,
                pool=pool,
            )
        await self._runner.run(task.task_id, lambda: None)
        async with self._pool.connection() as conn:
            done = await store.get_task(conn, task.task_id)
            steps = await store.list_steps(conn, task.task_id)
        assert done is not None
        return ToolRun(
            task_id=done.task_id,
            status=done.status,
            result=done.result,
            error=done.error,
            trace=steps,
        )


@contextlib.contextmanager
def run_tools(
    paths: str | Path | Sequence[str | Path] = "tools",
    *,
    model: ScriptedModel | str | None = None,
    module_root: str | Path | None = None,
    config: Config | None = None,
) -> Iterator[Tools]:
    """Sync ``paths`` into a scratch database and run tasks with them (see the module docs).

    ``model`` is a :class:`~qasdk.testing.ScriptedModel` (or a model server URL)
    for tasks in words; ``module_root`` is where the tools import from (default:
    the working directory, as for ``qasdk sync``).
    """
    folders = [paths] if isinstance(paths, (str, Path)) else list(paths)
    root = Path(module_root) if module_root is not None else Path.cwd()
    base = config or Config()
    if model is not None:
        url = model.url if isinstance(model, ScriptedModel) else model
        base = msgspec.structs.replace(
            base,
            model=msgspec.structs.replace(base.model, api_base=url, timeout=10.0),
            worker=msgspec.structs.replace(base.worker, model_retries=0),
        )
    url, name = _Database.scratch()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="qasdk-tools", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    def wait(coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()  # type: ignore[arg-type]

    try:
        tools = wait(_start(stack, folders, root, base, url))
        yield tools
    finally:
        with contextlib.suppress(Exception):
            wait(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        _Database.drop(url, name)


async def _start(
    stack: contextlib.AsyncExitStack,
    folders: list[str | Path],
    root: Path,
    config: Config,
    url: str,
) -> Tools:
    from qasdk.registration.collect import collect
    from qasdk.security.guard import RowGuard
    from qasdk.security.roots import roots_for
    from qasdk.security.signing import SigningKey, new_secret
    from qasdk.store.connection import connect
    from qasdk.store.methods import sync_methods
    from qasdk.store.migrate import migrate
    from qasdk_server.agent.threads import AgentThreads
    from qasdk_server.executor import Executor
    from qasdk_server.metrics import Metrics
    from qasdk_server.middleware.load import chain_for
    from qasdk_server.registry import MethodRegistry
    from qasdk_server.serve import open_pool
    from qasdk_server.tasks.runner import TaskRunner

    packages = config.registry.allowed_packages
    catalog = collect(folders, module_root=root, allowed_packages=packages)
    # A scratch database gets a key of its own, which lives as long as it does.
    key = SigningKey(secret=new_secret(), source="run_tools")
    conn = await connect(url)
    async with conn:
        await migrate(conn)
        await sync_methods(conn, catalog.configs, key=key)
    pool = await open_pool(url, config)
    stack.push_async_callback(pool.close)
    registry = MethodRegistry(pool, guard=RowGuard(key, roots_for(root, packages)))
    await registry.load()
    worker: WorkerConfig = config.worker
    executor = Executor(
        registry.configs(),
        processes=min(2, worker.concurrency),
        default_timeout=worker.tool_timeout,
        limits=worker.tool_limits,
        limits_by_tool=worker.tool_limits_by_tool,
        cancel_grace=worker.cancel_grace,
        allowed_packages=packages,
        cwd=root,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    await executor.start()
    stack.push_async_callback(executor.close)
    threads = AgentThreads(2, name="qasdk-tools-agent")
    stack.callback(threads.shutdown, wait=False)
    metrics = Metrics()
    runner = TaskRunner(
        config=config,
        pool=pool,
        registry=registry,
        executor=executor,
        worker_name=f"tests:{os.getpid()}",
        threads=threads,
        metrics=metrics,
        chain=chain_for(config, metrics, pool, root),
        # In a test every tool runs here, whatever pool it names.
        pools=tuple({"default", *(m.pool for m in registry.configs().values())}),
    )
    return Tools(asyncio.get_running_loop(), runner, pool)
