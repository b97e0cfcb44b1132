"""What a middleware is: three async hooks around one tool call.

Every tool call a worker makes (a direct task, and each call the model asks
for) goes through the configured chain before it reaches a tool process::

    before(call)            outer → inner; may rewrite call.arguments, return a
                            result (the tool does not run), or raise ToolRefused
    the tool runs           (unless a before() answered)
    after(call, result)     inner → outer, for a successful result
    on_error(call, error)   inner → outer, for a failed one; may return a
                            result that replaces it (a fallback, a retry)
    done(call)              inner → outer, always (cancelled too): release
                            what before() took

A middleware's hooks run in the worker's event loop: never block in them
(``await asyncio.to_thread(...)`` for blocking work).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from qasdk.models import ExecutionResult, MethodConfig

__all__ = ["AwaitingApproval", "Middleware", "Suspend", "ToolCall", "ToolError", "ToolRefused"]


class ToolCall:
    """One tool call on its way through the chain (mutable: ``before`` may change it)."""

    __slots__ = (
        "arguments",
        "attempt",
        "code_version",
        "deadline",
        "method",
        "owner",
        "source",
        "started",
        "state",
        "task_id",
        "tool",
        "trace_context",
    )

    def __init__(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        method: MethodConfig | None = None,
        task_id: uuid.UUID | None = None,
        attempt: int = 1,
        owner: uuid.UUID | None = None,
        source: Literal["direct", "model"] = "direct",
        deadline: float | None = None,
        code_version: str | None = None,
    ) -> None:
        #: The registered tool's name, and the arguments it will be called with.
        self.tool = tool
        self.arguments = arguments
        #: The tool's registration (``None``: no tool of that name is registered).
        self.method = method
        #: The task, its attempt, and the key that submitted it (``None``: no key).
        self.task_id = task_id
        self.attempt = attempt
        self.owner = owner
        #: ``direct`` (a task naming the tool) or ``model`` (the model asked for it).
        self.source = source
        #: The task's deadline on ``time.monotonic()``'s clock (``None``: none).
        self.deadline = deadline
        #: The tool code the call will run (a snapshot's id, or the module file's digest).
        self.code_version = code_version
        #: The W3C trace context the tool runs in (``traceparent``...; ``None``: untraced).
        self.trace_context: Mapping[str, str] | None = None
        #: When the call entered the chain (``time.perf_counter()``).
        self.started = time.perf_counter()
        #: Scratch space for middleware, per call (key it by your middleware's name).
        self.state: dict[str, Any] = {}

    @property
    def tags(self) -> tuple[str, ...]:
        return () if self.method is None else self.method.tags

    def remaining(self) -> float | None:
        """Seconds left before the task's deadline (``None``: no deadline)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def __repr__(self) -> str:
        return f"ToolCall({self.tool!r}, task_id={self.task_id!s}, source={self.source!r})"


class ToolRefused(Exception):
    """Raised by ``before``: the call does not run and fails with this message.

    The model gets the message as the tool's result; a direct task fails with it.
    """

    def __init__(self, message: str, *, error_type: str = "ToolRefused") -> None:
        super().__init__(message)
        self.error_type = error_type


class Suspend(Exception):
    """Raised by ``before``: the task stops here and resumes later (the chain lets it through)."""


class AwaitingApproval(Suspend):
    """The call waits for a person's decision (the ``approval`` middleware)."""

    def __init__(self, approval_id: uuid.UUID, tool: str, arguments: Any) -> None:
        super().__init__(f"tool {tool!r} awaits approval ({approval_id})")
        self.approval_id = approval_id
        self.tool = tool
        self.arguments = arguments


class ToolError(Exception):
    """A failed call, as ``on_error`` sees it: its type, message and the failed result."""

    def __init__(self, result: ExecutionResult) -> None:
        super().__init__(result.error or "")
        self.result = result
        self.error_type = result.error_type or "Error"
        self.message = result.error or ""


class Middleware:
    """Subclass and override any of the hooks; the defaults let the call through.

    Configured in ``model_config.yaml``'s ``middleware:`` list by ``name``:
    a built-in, an entry point of the ``qasdk.middleware`` group, or
    ``package.module:Class`` under the module root or ``registry.allowed_packages``.
    Its ``options`` are passed to the constructor as keyword arguments.
    """

    #: What it is called in logs and errors (the configured name when left empty).
    name: ClassVar[str] = ""

    async def before(self, call: ToolCall) -> ExecutionResult | None:
        return None

    async def after(self, call: ToolCall, result: ExecutionResult) -> ExecutionResult:
        return result

    async def on_error(self, call: ToolCall, error: ToolError) -> ExecutionResult | None:
        return None

    async def done(self, call: ToolCall) -> None:
        """Always last, however the call ended (cancelled too): release what before() took."""

    async def close(self) -> None:
        """The chain is being replaced (a reload) or the worker stops."""
