"""One tool call of a task: the middleware chain around the tool process.

The call carries what its middleware and its tool may ask about (the task,
attempt, owner, deadline, the code version the result cache keys by); the
innermost step runs the tool process, again when the tool's policy allows a
retry, with the task's ``ToolContext`` and its progress reports relayed to the
task's followers and span.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal, Protocol

from qasdk.models import ExecutionResult, MethodConfig, ToolPolicy
from qasdk.store.notify import announce_progress
from qasdk_server.executor.child import CallContext
from qasdk_server.executor.code import ModuleDigests
from qasdk_server.metrics import tool_outcome
from qasdk_server.middleware.base import ToolCall
from qasdk_server.tasks.progress import ProgressRelay

if TYPE_CHECKING:
    from qasdk.config import Config
    from qasdk.store.connection import Pool
    from qasdk_server.executor import Executor
    from qasdk_server.middleware.chain import Chain
    from qasdk_server.telemetry.spans import TaskSpan

__all__ = ["ToolCalls"]

logger = logging.getLogger("qasdk.runner")


class Runner(Protocol):
    """What the calls use of their task runner (read at each call: a reload swaps them)."""

    executor: Executor
    chain: Chain
    config: Config
    pool: Pool
    background: set[asyncio.Task[None]]
    pools: tuple[str, ...]


class ToolCalls:
    """The tool calls of one runner's tasks."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._digests: ModuleDigests | None = None  # made on first use (cache_ttl tools)
        #: Tools already checked against the chain (checked again after a reload).
        self._checked_chain: object = None
        self._checked_tools: set[str] = set()

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        deadline: float | None,
        span: TaskSpan | None = None,
        *,
        task_id: uuid.UUID | None = None,
        attempt: int = 1,
        owner: uuid.UUID | None = None,
        source: Literal["direct", "model"] = "direct",
    ) -> ExecutionResult:
        """Run a tool through the middleware chain and the executor (capped by the deadline).

        A tool that takes a ``ToolContext`` learns the task, attempt and
        deadline; its progress reports become the task's ``progress`` events.
        Traced, the call (chain included) is a span under the task's, and the
        tool runs in that span's context.
        """
        method = self._runner.executor.methods.get(name)
        if method is not None and method.pool not in self._runner.pools:
            return _pool_not_served(method.name, method.pool, self._runner.pools)
        if method is not None and method.policy is not None:
            self._warn_unserved(method.name, method.policy)
        call = ToolCall(
            name,
            arguments,
            method=method,
            task_id=task_id,
            attempt=attempt,
            owner=owner,
            source=source,
            deadline=deadline,
            code_version=self._code_version(method),
        )
        if span is None:
            return await self._runner.chain.run(call, self._execute_call)
        traced = span.tool_call(name)
        call.trace_context = traced.carrier
        call.state["qasdk.span"] = traced
        try:
            outcome = await self._runner.chain.run(call, self._execute_call)
        except asyncio.CancelledError:
            traced.end(None, "cancelled")
            raise
        except BaseException as exc:
            traced.fail(exc)
            raise
        traced.end(outcome, tool_outcome(outcome.success, outcome.error_type))
        return outcome

    def _warn_unserved(self, tool: str, policy: ToolPolicy) -> None:
        """Say once when a tool asks for what the configured chain leaves out."""
        chain = self._runner.chain
        if chain is self._checked_chain:
            if tool in self._checked_tools:
                return
        else:
            self._checked_chain, self._checked_tools = chain, set()
        self._checked_tools.add(tool)
        names = set(chain.names)
        wanted = {
            "cache": policy.cache_ttl is not None,
            "limits": policy.max_concurrency is not None or policy.rate is not None,
            "approval": policy.requires_approval,
        }
        for link, asked in wanted.items():
            if asked and link not in names:
                logger.warning(
                    "tool %r asks for %s, but the middleware chain has no %r entry: "
                    "add it to middleware: in model_config.yaml",
                    tool,
                    {"cache": "cache_ttl", "limits": "limits", "approval": "requires_approval"}[
                        link
                    ],
                    link,
                    extra={"method": tool},
                )

    def _code_version(self, method: MethodConfig | None) -> str | None:
        """The code the call will run: the snapshot in use, or the module file's digest."""
        if method is None or method.policy is None or method.policy.cache_ttl is None:
            return None  # only the result cache asks
        code = self._runner.executor.code
        if code is not None:
            return code.id
        if self._digests is None:
            self._digests = ModuleDigests(self._runner.executor.cwd)
        return self._digests.digest(method.module_path)

    async def _execute_call(self, call: ToolCall) -> ExecutionResult:
        """The innermost step of the chain: the tool process, again if the tool allows it.

        A tool with ``retries`` is called again after a timeout or an error type
        of its ``retry_on``, after ``worker.retry_backoff * 2**n`` seconds
        (jittered, at most 30 s), while the task's deadline leaves room.
        """
        policy = None if call.method is None else call.method.policy
        tries = 1 + (policy.retries if policy is not None else 0)
        for retry in range(tries):
            outcome = await self._execute_once(call)
            if outcome.success or retry == tries - 1 or not _retryable(outcome, policy):
                break
            delay = min(30.0, self._runner.config.worker.retry_backoff * 2**retry)
            delay *= 0.5 + random.random()
            remaining = _remaining(call.deadline)
            if remaining is not None and remaining <= delay:
                break
            logger.info(
                "tool %r failed (%s); retry %d/%d in %.2f s",
                call.tool,
                outcome.error_type,
                retry + 1,
                tries - 1,
                delay,
                extra={"method": call.tool},
            )
            await asyncio.sleep(delay)
        outcome.retries = retry
        return outcome

    async def _execute_once(self, call: ToolCall) -> ExecutionResult:
        remaining = _remaining(call.deadline)
        context = CallContext(
            task_id=None if call.task_id is None else str(call.task_id),
            attempt=call.attempt,
            deadline=None if remaining is None else time.time() + remaining,
        )
        relay = None
        if call.task_id is not None:
            relay = self._progress_relay(call.task_id, call.tool, call.state.get("qasdk.span"))
        try:
            outcome = await self._runner.executor.execute(
                call.tool,
                call.arguments,
                timeout=remaining,
                context=context,
                on_progress=relay,
                trace_context=call.trace_context,
            )
        finally:
            if relay is not None:
                relay.close()
        if relay is not None and relay.last is not None:
            outcome.progress = {"fraction": relay.last.fraction, "message": relay.last.message}
        return outcome

    def _progress_relay(self, task_id: uuid.UUID, tool: str, span: Any = None) -> ProgressRelay:
        async def announce(fraction: float | None, message: str | None) -> None:
            if span is not None:
                span.progress(fraction, message)
            async with self._runner.pool.connection() as conn:
                await announce_progress(conn, task_id, tool, fraction, message)

        return ProgressRelay(announce, self._runner.background)


def _pool_not_served(tool: str, pool: str, served: tuple[str, ...]) -> ExecutionResult:
    """A call this worker may not run: the tool's pool is another worker's.

    A direct task always lands on a worker of its pool (its queue); this is a model's
    call from a task of another pool (or a tool moved to another pool since submit).
    """
    return ExecutionResult(
        success=False,
        error_type="PoolNotServed",
        error=(
            f"tool {tool!r} runs in worker pool {pool!r}, which this worker does not serve "
            f"(it serves {', '.join(served)}): start one with qasdk worker --pool {pool} "
            "--pool default to run model tasks that call it"
        ),
    )


def _retryable(outcome: ExecutionResult, policy: ToolPolicy | None) -> bool:
    """A timeout, or an error type the tool names as worth another try."""
    if policy is None or not policy.retries:
        return False
    return outcome.error_type == "TimeoutError" or outcome.error_type in policy.retry_on


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.001, deadline - time.monotonic())
