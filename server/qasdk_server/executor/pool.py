"""Run registered tools in isolated, pre-started tool processes.

A tool is arbitrary user code: it may hang in a C call, ``os._exit``, print,
or leak state. Running it in a child process makes every one of those
survivable (kill the child, start another) while a pool of warm children
keeps the cost of a call well under a millisecond.

Only registered tools run: :meth:`Executor.execute` resolves the name in the
mapping it was given and sends the child that tool's module and function,
nothing else, and only when that module is under the working directory (the
module root), its code snapshot, or an allowed package: a registry row that
names ``os.system`` never reaches a tool process, whatever loaded it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec

from qasdk.config import ToolLimits, ToolLimitsOverride
from qasdk.errors import MethodExecutionError, MethodNotFoundError, StartupError, ValidationError
from qasdk.models import ExecutionResult, MethodConfig, Problem
from qasdk.redaction import mask_fields
from qasdk.security.roots import ModuleRoots
from qasdk.store.values import PREVIEW, truncated
from qasdk_server.executor.arguments import prepare_params, registered_defaults
from qasdk_server.executor.child import Call, CallContext, Progress, Reply
from qasdk_server.executor.code import CodeVersion
from qasdk_server.executor.limits import CallLimits, resolve_limits
from qasdk_server.executor.output import OutputLimits
from qasdk_server.executor.process import TimedOut, ToolProcess, settle
from qasdk_server.executor.remote import RemoteSessions

__all__ = ["LIMIT_EXCEEDED", "Executor"]

logger = logging.getLogger("qasdk.executor")

#: The error type of a call that ran into one of its limits (memory, CPU).
LIMIT_EXCEEDED = "ToolLimitExceeded"


class Executor:
    """A pool of tool processes that run registered tools.

    Use as ``async with Executor(methods) as executor``. ``processes`` children
    start on entry; each runs one call at a time. ``cwd`` (default: the
    current directory) is the children's working directory and first
    ``sys.path`` entry; ``env`` is added to ``base_env`` (default: this
    process's environment). A result over ``result_limit`` bytes of JSON comes
    back as a truncation marker; ``output`` caps what of tools' output is logged.
    ``limits`` (``worker.tool_limits``) and ``limits_by_tool`` bound what each
    call may use (default: nothing is limited); whatever a call starts is
    killed when it ends. Tools run only from ``cwd`` (the module root) and
    ``allowed_packages``. A cancelled call is killed at once, or after
    ``cancel_grace`` seconds when its tool takes a ``ToolContext`` (it may stop
    on its own when ``ctx.cancelled`` turns true).
    """

    def __init__(
        self,
        methods: Mapping[str, MethodConfig],
        *,
        processes: int = 2,
        default_timeout: float = 30.0,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        result_limit: int | None = None,
        output: OutputLimits | None = None,
        limits: ToolLimits | None = None,
        limits_by_tool: Mapping[str, ToolLimitsOverride] | None = None,
        allowed_packages: tuple[str, ...] = (),
        cancel_grace: float = 1.0,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self._methods = dict(methods)
        self._size = processes
        #: Seconds a cancelled call whose tool takes a ToolContext may take to stop.
        self.cancel_grace = cancel_grace
        #: Seconds a tool without a timeout of its own may run (changeable while running).
        self.default_timeout = default_timeout
        #: What a call may use, and the tools that differ (changeable while running).
        self.limits = limits
        self.limits_by_tool: Mapping[str, ToolLimitsOverride] = dict(limits_by_tool or {})
        self._cwd = os.path.abspath(cwd if cwd is not None else os.getcwd())
        self._roots = ModuleRoots(root=self._cwd, packages=allowed_packages)
        #: Why a module may not run, by (module, code snapshot); ``None``: it may.
        self._refusals: dict[tuple[str, str | None], str | None] = {}
        if base_env is None and not env:
            self._env: dict[str, str] | None = None
        else:
            self._env = {**(os.environ if base_env is None else base_env), **(env or {})}
        self._result_limit = result_limit
        self._output = output
        self._code: CodeVersion | None = None
        self._generation = 0
        self._idle: deque[ToolProcess] = deque()
        self._waiters: deque[asyncio.Future[ToolProcess | None]] = deque()
        self._processes: set[ToolProcess] = set()
        self._spawners: set[asyncio.Task[None]] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        #: Sessions to the MCP servers of ``mcp`` tools (opened on first call).
        self._sessions = RemoteSessions()
        self._started = False
        self._closed = False

    async def __aenter__(self) -> Executor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def methods(self) -> Mapping[str, MethodConfig]:
        """The tools this executor runs."""
        return self._methods

    async def start(self) -> None:
        """Start the tool processes and wait until each is ready."""
        if self._started or self._closed:
            raise RuntimeError("an Executor can be started only once")
        self._started = True
        try:
            results = await asyncio.gather(
                *(self._spawn(self._generation) for _ in range(self._size)),
                return_exceptions=True,
            )
        except BaseException:  # cancelled: do not leak the children already started
            await self.close()
            raise
        for result in results:
            if isinstance(result, BaseException):
                await self.close()
                raise result
        for process in results:
            assert isinstance(process, ToolProcess)
            self._release(process)

    async def close(self) -> None:
        """Stop every child and wait for it to exit; calls in flight fail."""
        if self._closed:
            return
        self._closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(_closed())
        self._waiters.clear()
        self._idle.clear()
        for task in self._spawners:
            task.cancel()
        await asyncio.gather(*self._spawners, return_exceptions=True)
        for process in list(self._processes):
            self._retire(process)
        while self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        await self._sessions.close()

    def replace_methods(self, methods: Mapping[str, MethodConfig]) -> None:
        """Hot reload: later calls use ``methods`` in fresh processes.

        Calls already running finish in their old process, which then retires.
        """
        self._methods = dict(methods)
        self._refusals.clear()  # modules may have appeared or gone with the new code
        if not self._started or self._closed:
            return
        self._generation += 1
        idle, self._idle = self._idle, deque()
        for process in idle:
            self._retire(process)
        for _ in range(self._size):
            self._spawn_in_background()

    @property
    def cwd(self) -> str:
        """The tool processes' working directory: the module root."""
        return self._cwd

    @property
    def code(self) -> CodeVersion | None:
        """The code snapshot new tool processes import from (``None``: the working tree)."""
        return self._code

    def use_code(self, version: CodeVersion | None) -> None:
        """Tool processes started from now on import ``version`` first.

        Call :meth:`replace_methods` to retire the ones already running.
        """
        self._code = version

    def prepare(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and coerce ``params`` for tool ``name`` and fill in defaults.

        Raises:
            MethodNotFoundError: no tool of that name is registered.
            ValidationError: listing every unexpected, missing or invalid parameter.
        """
        config = self._methods.get(name)
        if config is None:
            raise MethodNotFoundError(name)
        return prepare_params(config, params)

    async def execute(
        self,
        name: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        context: CallContext | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        trace_context: Mapping[str, str] | None = None,
    ) -> ExecutionResult:
        """Run tool ``name``; every failure of the tool comes back as ``success=False``.

        The tool's limit is its ``timeout`` (or the default), capped by
        ``timeout``, which also bounds the wait for a free process. Cancelling
        the caller warns the child (``ToolContext.cancelled``) and kills it
        ``cancel_grace`` seconds later. ``context`` is what a ``ToolContext``
        parameter receives; ``on_progress`` gets its progress reports.
        ``trace_context`` (the tool-call span's ``traceparent`` and
        ``tracestate``) is the one the tool runs in.
        """
        if not self._started or self._closed:
            raise MethodExecutionError(name, "the executor is not running (the worker is stopping)")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            config = self._methods.get(name)
            if config is None:
                return self._rejected(name, params, MethodNotFoundError(name))
            refusal = self._refusal(config.module_path) if config.type == "python" else None
            if refusal is not None:
                problem = Problem(tool=name, field="module_path", reason=refusal)
                return self._rejected(name, params, ValidationError(problems=[problem]))
            try:
                prepared = prepare_params(config, params, fill_defaults=False)
            except ValidationError as exc:
                return self._rejected(name, params, exc)
            if config.endpoint is not None:
                return await self._remote(name, config, prepared, deadline)
            limits = resolve_limits(
                name,
                float(config.timeout or self.default_timeout),
                self.limits,
                self.limits_by_tool,
            )
            call = Call(
                name,
                config.module_path,
                config.function_name,
                prepared,
                registered_defaults(config, prepared),
                limits.wire,
                context,
                *_trace_fields(trace_context),
            )
            try:
                frame = msgspec.json.encode(call)
            except (TypeError, ValueError, OverflowError) as exc:
                problem = Problem(tool=name, field="params", reason=f"not JSON-serializable: {exc}")
                return self._rejected(name, params, ValidationError(problems=[problem]))
            process = await self._acquire(deadline)
            if process is None:
                message = (
                    f"tool {name!r} timed out after {timeout} s waiting for a free tool process"
                )
                return self._failed(name, prepared, "TimeoutError", message, None, 0.0)
            if process.generation == self._generation and self._methods.get(name) is config:
                break
            self._release(process)  # methods were replaced while we waited: start over

        limit = float(config.timeout or self.default_timeout)
        if deadline is not None:
            limit = min(limit, deadline - loop.time())
        if limit <= 0:
            self._release(process)
            message = f"tool {name!r} timed out after {timeout} s before it could start"
            return self._failed(name, prepared, "TimeoutError", message, None, 0.0)

        result = await self._call(process, name, prepared, frame, limit, limits, on_progress)
        result.code_version = process.code_version
        return result

    async def _remote(
        self,
        name: str,
        config: MethodConfig,
        prepared: dict[str, Any],
        deadline: float | None,
    ) -> ExecutionResult:
        """An ``mcp`` tool: a remote call, with the tool's timeout and the result limit."""
        assert config.endpoint is not None
        limit = float(config.timeout or self.default_timeout)
        if deadline is not None:
            limit = min(limit, deadline - asyncio.get_running_loop().time())
        if limit <= 0:
            message = f"tool {name!r} timed out before it could start"
            return self._failed(name, prepared, "TimeoutError", message, None, 0.0)
        return await self._sessions.call(
            name,
            config.endpoint,
            prepared,
            limit,
            failed=lambda kind, error, elapsed: self._failed(
                name, prepared, kind, error, None, elapsed
            ),
            parse=lambda raw: self._parse(name, raw),
        )

    def _refusal(self, module_path: str) -> str | None:
        """Why a tool process must not import ``module_path`` (checked once per snapshot)."""
        code = self._code.path if self._code is not None else None
        key = (module_path, code)
        if key not in self._refusals:
            roots = self._roots
            if code is not None:
                roots = msgspec.structs.replace(roots, copies=(code,))
            self._refusals[key] = roots.refusal(module_path)
        return self._refusals[key]

    async def _call(
        self,
        process: ToolProcess,
        name: str,
        prepared: dict[str, Any],
        frame: bytes,
        limit: float,
        limits: CallLimits,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> ExecutionResult:
        """Send the call to ``process`` and turn what comes back into a result."""
        start = time.perf_counter()
        try:
            outcome = await process.call(frame, name, limit, on_progress)
        except asyncio.CancelledError:
            if process.busy:
                # Its exit starts a replacement; a tool that checks ctx.cancelled
                # gets a moment to stop cleanly first.
                if process.listening and self.cancel_grace > 0:
                    process.warn_cancelled()
                    asyncio.get_running_loop().call_later(self.cancel_grace, process.kill)
                else:
                    process.kill()
            else:
                self._release(process)
            raise
        elapsed = time.perf_counter() - start

        if isinstance(outcome, Reply):
            process.sweep()  # nothing the call started outlives it
            self._release(process)
            if outcome.ok:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "tool %r succeeded in %.3f ms", name, elapsed * 1000, extra={"method": name}
                    )
                return ExecutionResult(
                    success=True,
                    result=self._parse(name, outcome.result, outcome.cut),
                    execution_time=elapsed,
                )
            error_type, error = _limit_hit(limits, outcome.error_type, outcome.error)
            return self._failed(name, prepared, error_type, error, outcome.traceback, elapsed)
        if isinstance(outcome, TimedOut):
            process.kill()
            message = f"tool {name!r} timed out after {round(limit, 3)} s"
            return self._failed(name, prepared, "TimeoutError", message, None, elapsed)
        if outcome.code == -signal.SIGXCPU and limits.cpu_seconds is not None:
            error_type, error = LIMIT_EXCEEDED, limits.cpu_message()
        else:
            error_type, error = "ToolProcessExited", _exit_message(name, outcome.code)
        return self._failed(name, prepared, error_type, error, None, elapsed)

    # -- results and logging ------------------------------------------------

    def _parse(self, name: str, raw: msgspec.Raw, cut: int = 0) -> Any:
        """The tool's result; over ``result_limit`` bytes, a marker instead (never parsed).

        A tool that returns 50 MB must not stall this event loop parsing it, nor
        carry it through the agent and the store: the tool process sends only
        a marker (``cut``: the size it had), and a result over the limit that
        comes anyway is not parsed here.
        """
        data = memoryview(raw)
        limit = self._result_limit
        over = limit is not None and len(data) > limit
        if cut or over:
            logger.warning(
                "tool %r returned %d bytes of JSON, more than limits.result (%s): kept a preview",
                name,
                cut or len(data),
                limit,
                extra={"method": name},
            )
        if over and limit is not None:
            return truncated(len(data), limit, bytes(data[:PREVIEW]).decode(errors="replace"))
        return msgspec.json.decode(data)

    def _rejected(
        self, name: str, params: Mapping[str, Any], exc: MethodNotFoundError | ValidationError
    ) -> ExecutionResult:
        error_type = type(exc).__name__
        if isinstance(exc, ValidationError) and exc.problems:
            error = "; ".join(str(p) for p in exc.problems)
        else:
            error = str(exc)
        logger.warning(
            "tool %r rejected: %s: %s",
            name,
            error_type,
            error,
            extra={"method": name, "params": self._masked(name, params), "error_type": error_type},
        )
        return ExecutionResult(success=False, error=error, error_type=error_type)

    def _masked(self, name: str, params: Mapping[str, Any]) -> Any:
        """``params`` as logs may show them: the tool's ``redact`` fields masked."""
        config = self._methods.get(name)
        fields = () if config is None or config.policy is None else config.policy.redact
        return mask_fields(dict(params), fields)

    def _failed(
        self,
        name: str,
        params: dict[str, Any],
        error_type: str,
        error: str,
        tool_traceback: str | None,
        elapsed: float,
    ) -> ExecutionResult:
        params = self._masked(name, params)
        shown = repr(params)
        if len(shown) > 1000:
            shown = shown[:997] + "..."
        logger.error(
            "tool %r failed with params %s: %s: %s",
            name,
            shown,
            error_type,
            error,
            extra={
                "method": name,
                "params": params,
                "error_type": error_type,
                "tool_traceback": tool_traceback,
            },
        )
        return ExecutionResult(
            success=False, error=error, error_type=error_type, execution_time=elapsed
        )

    # -- the pool -------------------------------------------------------------

    async def _acquire(self, deadline: float | None) -> ToolProcess | None:
        """An idle process of the current generation, or ``None`` at ``deadline``."""
        while self._idle:
            process = self._idle.pop()  # LIFO: the warmest process
            if not process.dead:
                return process
        if self._closed:
            raise _closed()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[ToolProcess | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if deadline is None else loop.call_at(deadline, settle, waiter, None)
        try:
            return await waiter
        except asyncio.CancelledError:
            # A process handed over just before the cancel would otherwise be lost.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is not None:
                    self._release(handed)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _release(self, process: ToolProcess) -> None:
        """Give an idle process to the next waiter, keep it, or retire it if outdated."""
        if process.dead:
            return
        if self._closed or process.generation != self._generation:
            self._retire(process)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(process)
                return
        self._idle.append(process)

    def _retire(self, process: ToolProcess) -> None:
        task = process.stop()
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _on_exit(self, process: ToolProcess) -> None:
        """A child exited: forget it and, unless we stopped it, start a replacement."""
        self._processes.discard(process)
        if process in self._idle:
            self._idle.remove(process)
        replace = not (process.retiring or self._closed or process.generation != self._generation)
        self._retire(process)  # reaps its pipes, so close() leaves no transport behind
        if replace and process.ready.done() and process.ready.result():
            self._spawn_in_background()

    def _spawn_in_background(self) -> None:
        task = asyncio.get_running_loop().create_task(self._keep_spawning(self._generation))
        self._spawners.add(task)
        task.add_done_callback(self._spawners.discard)

    async def _keep_spawning(self, generation: int) -> None:
        """Start one process for ``generation``, retrying with backoff if that fails."""
        delay = 0.1
        while not self._closed and generation == self._generation:
            try:
                process = await self._spawn(generation)
            except (OSError, StartupError):
                logger.exception("could not start a tool process; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._release(process)
            return

    async def _spawn(self, generation: int) -> ToolProcess:
        env, version = self._env, self._code
        if version is not None:
            env = {**(env or os.environ), "QASDK_CODE_ROOT": version.path}
        if self._result_limit is not None:
            env = {**(env or os.environ), "QASDK_RESULT_LIMIT": str(self._result_limit)}
        process = await ToolProcess.start(
            cwd=self._cwd,
            env=env,
            generation=generation,
            on_exit=self._on_exit,
            output=self._output,
        )
        process.code_version = version.id if version is not None else None
        self._processes.add(process)
        if not await process.ready:
            await process.stop()
            output = "\n".join(process.stderr_tail) or "(no output)"
            code = process.proc.returncode
            raise StartupError(f"a tool process exited with code {code} while starting:\n{output}")
        return process


def _trace_fields(carrier: Mapping[str, str] | None) -> tuple[str | None, str | None]:
    if not carrier:
        return None, None
    return carrier.get("traceparent"), carrier.get("tracestate")


def _limit_hit(limits: CallLimits, error_type: str, error: str) -> tuple[str, str]:
    """A tool's failure, or the limit it ran into (a ``MemoryError`` under ``RLIMIT_AS``)."""
    if error_type == "MemoryError" and limits.memory_mb is not None:
        return LIMIT_EXCEEDED, limits.memory_message()
    return error_type, error


def _closed() -> MethodExecutionError:
    return MethodExecutionError("(any)", "the executor was closed (the worker is stopping)")


def _exit_message(name: str, code: int) -> str:
    if code < 0:
        try:
            signame = signal.Signals(-code).name
        except ValueError:
            signame = str(-code)
        return f"the tool process was killed by signal {signame} while running {name!r}"
    return f"the tool process exited with code {code} while running {name!r}"
