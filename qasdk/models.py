"""Data shared by the registration pipeline and the task server.

Everything here is a msgspec ``Struct``: cheap to build, validated on decode,
and serialised natively by Litestar.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from qasdk.permissions import WELL_KNOWN

__all__ = [
    "UNSET",
    "AttemptRecord",
    "ExecutionResult",
    "McpEndpoint",
    "McpServer",
    "MethodConfig",
    "MethodMetadata",
    "MethodParameter",
    "Problem",
    "Source",
    "Task",
    "TaskError",
    "TaskStatus",
    "ToolEntry",
    "ToolOverride",
    "TraceStep",
    "WebhookAttempt",
    "WebhookState",
]


class Source(msgspec.Struct, frozen=True):
    """Where something was defined: a file and, when known, a line."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One thing wrong with the input, precise enough to fix without guessing."""

    reason: str
    source: Source | None = None
    tool: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.source is not None:
            parts.append(str(self.source))
        if self.tool is not None:
            parts.append(f"tool {self.tool!r}")
        if self.field is not None:
            parts.append(self.field)
        parts.append(self.reason)
        return ": ".join(parts)


class MethodParameter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One parameter of a tool.

    ``default`` is ``UNSET`` when the parameter has no default (``None`` is a
    real default). ``schema`` is the parameter's JSON Schema for the model,
    richer than ``type`` for ``list[int]``, ``Literal`` and ``Enum`` hints.
    """

    name: str
    type: str
    description: str
    required: bool = True
    default: Any | UnsetType = UNSET
    schema: dict[str, Any] = {}

    @property
    def has_default(self) -> bool:
        return self.default is not UNSET


class McpEndpoint(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where an ``mcp`` tool lives: its server (a URL or a command) and its remote name.

    ``headers`` and ``env`` hold templates (``Bearer ${TOKEN}``), expanded from the
    environment only when a call is made: the registry never holds the secret.
    """

    server: str
    tool: str
    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    headers: dict[str, str] = {}
    env: dict[str, str] = {}

    @property
    def where(self) -> str:
        """The server as a person would name it (never with a header or an env value)."""
        target = self.url or " ".join((self.command or "", *self.args)).strip()
        return f"mcp server {self.server!r} ({target})"


class McpServer(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``mcp_servers:`` in a methods file.

    ``tools`` are the remote tools to take (``None``: all of them); each is
    registered as ``prefix`` + its remote name. ``locations`` maps a field to
    its line, as :class:`ToolEntry` does.
    """

    name: str
    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    headers: dict[str, str] = {}
    env: dict[str, str] = {}
    tools: tuple[str, ...] | None = None
    prefix: str = ""
    timeout: float | None = None
    #: ``cache_ttl``, ``retries``, ``retry_on``: given to each of its tools.
    policy: ToolPolicy | None = None
    source: Source
    locations: dict[str, Source] = {}

    def endpoint(self, tool: str) -> McpEndpoint:
        return McpEndpoint(
            server=self.name,
            tool=tool,
            url=self.url,
            command=self.command,
            args=self.args,
            headers=dict(self.headers),
            env=dict(self.env),
        )

    def source_of(self, field: str) -> Source:
        return self.locations.get(field, self.source)


_PERMISSIONS = msgspec.Meta(
    description=f"What the tool declares it needs ({', '.join(WELL_KNOWN)}, or a custom name): "
    "what API keys can be limited by. A declaration, not a sandbox. Absent: none declared.",
    examples=[["fs:write", "network"]],
)


class ToolPolicy(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How the worker's pipeline treats a tool's calls (``@tool(cache_ttl=..., retries=...)``).

    Stored as one JSONB value, so a policy added later needs no migration;
    ``omit_defaults`` keeps the signed bytes of rows without one unchanged.
    """

    #: Seconds a result is reused for the same arguments (the ``cache`` middleware).
    cache_ttl: float | None = None
    #: Further attempts after a failure the tool says is safe to repeat...
    retries: int = 0
    #: ...on these error types (a timeout always qualifies).
    retry_on: tuple[str, ...] = ()
    #: Calls running at once, across every worker (the ``limits`` middleware)...
    max_concurrency: int | None = None
    #: ...and calls started per period (``10/s``, ``100/m``); over either, a call waits.
    rate: str | None = None
    #: Argument and result fields masked in logs and traces (``["password", "token"]``).
    redact: tuple[str, ...] = ()
    #: Each call waits for a person's approval (the ``approval`` middleware).
    requires_approval: bool = False
    #: The worker pool its tasks run in (``None``: the default pool; see :attr:`MethodConfig.pool`).
    pool: str | None = None

    #: The options of ``@tool`` / ``methods.yaml`` that make up a policy.
    OPTIONS: ClassVar[tuple[str, ...]] = (
        "cache_ttl",
        "retries",
        "retry_on",
        "max_concurrency",
        "rate",
        "redact",
        "requires_approval",
        "pool",
    )

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> ToolPolicy | None:
        """The policy in a tool's options; ``None`` when they ask for nothing."""
        given = {
            k: options[k] for k in cls.OPTIONS if options.get(k) not in (None, 0, False, (), [])
        }
        if given.get("pool") == "default":  # the default pool is no policy: rows stay as signed
            del given["pool"]
        if not given:
            return None
        ttl = given.get("cache_ttl")
        if isinstance(ttl, int) and not isinstance(ttl, bool):
            given["cache_ttl"] = float(ttl)
        for listed in ("retry_on", "redact"):
            if isinstance(given.get(listed), list):
                given[listed] = tuple(given[listed])
        return cls(**given)  # checked by the registration rules, not here


class MethodConfig(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A tool as declared in ``methods.yaml`` or scanned from a ``@tool`` function.

    ``omit_defaults`` is load-bearing: registry signatures cover this encoding, so a
    field added with a default (``permissions``) leaves rows signed before it valid.
    """

    name: str
    description: str
    parameters: tuple[MethodParameter, ...] = ()
    return_type: str
    module_path: str
    function_name: str
    timeout: float | None = None
    tags: tuple[str, ...] = ()
    #: What the tool says it needs (see :mod:`qasdk.permissions`). Sync writes them sorted.
    permissions: Annotated[tuple[str, ...], _PERMISSIONS] = ()
    #: ``python`` (``module_path``/``function_name`` run in a tool process) or ``mcp``
    #: (a remote ``tools/call`` to ``endpoint``; ``module_path``/``function_name`` empty).
    type: Literal["python", "mcp"] = "python"
    endpoint: McpEndpoint | None = None
    #: Cache, retries: ``None`` when the tool asks for none.
    policy: ToolPolicy | None = None

    @property
    def pool(self) -> str:
        """The worker pool its direct tasks run in (``default`` unless the tool names one)."""
        named = None if self.policy is None else self.policy.pool
        return named or "default"


class MethodMetadata(MethodConfig, frozen=True, kw_only=True):
    """A tool as stored in ``registered_methods``."""

    id: int
    created_at: datetime
    updated_at: datetime

    def to_config(self) -> MethodConfig:
        fields = {f: getattr(self, f) for f in MethodConfig.__struct_fields__}
        return MethodConfig(**fields)


class ExecutionResult(msgspec.Struct, kw_only=True):
    """The outcome of running one tool."""

    success: bool
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    execution_time: float = 0.0
    #: The version of the tool code that ran (``None``: the code as it is on disk).
    code_version: str | None = None
    #: Answered from the result cache (``cache_ttl``): the tool did not run.
    cached: bool = False
    #: Attempts after the first (``retries``).
    retries: int = 0
    #: The tool's last ``ToolContext.report_progress``: ``fraction`` and ``message``.
    progress: dict[str, Any] | None = None


class ToolEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A tool on its way through the pipeline, with where each part came from.

    ``locations`` maps a field (``description``, ``parameters.city.type``) to
    where it is defined; ``missing`` names required fields the source left out
    (already reported); ``hints`` says how to fix a field should it fail
    validation (a scanned parameter without docs says where to document it).
    """

    config: MethodConfig
    source: Source
    origin: str  # "scanned", "declared" or "mcp" (listed from an MCP server)
    locations: dict[str, Source] = {}
    missing: frozenset[str] = frozenset()
    hints: dict[str, str] = {}

    def source_of(self, field: str | None) -> Source:
        """The most precise location known for ``field``."""
        while field:
            if field in self.locations:
                return self.locations[field]
            field = field.rpartition(".")[0]
        return self.source


class ToolOverride(msgspec.Struct, frozen=True, kw_only=True):
    """A declared entry marked ``override: true``: fields that replace a scanned tool's."""

    name: str
    fields: dict[str, Any]
    parameters: tuple[dict[str, Any], ...] | None = None
    source: Source
    locations: dict[str, Source] = {}


TaskStatus = Literal[
    "pending", "running", "awaiting_approval", "blocked", "completed", "failed", "cancelled"
]
#: ``blocked`` is not among them: a dead letter waits for an operator's retry or discard.
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class TaskError(msgspec.Struct, frozen=True):
    """Why a task failed: the error's type and a message a person can act on."""

    type: str
    message: str


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One failed attempt of a task that was worth another (``worker.max_attempts``)."""

    attempt: int
    at: datetime
    error: TaskError
    #: When the next attempt was due; ``None``: it was the last one (the task is blocked).
    retry_at: datetime | None = None


class WebhookAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One POST of a completion webhook: when, the answer's status code, what went wrong."""

    at: datetime
    status_code: int | None = None
    error: str | None = None


class WebhookState(msgspec.Struct, frozen=True, kw_only=True):
    """A task's ``callback_url`` (credentials and query masked) and how delivering it goes.

    ``waiting``: the task has not ended; ``pending``: to be sent (again) at
    ``next_attempt_at``; ``delivered``; ``failed``: given up after the attempts shown.
    """

    url: str
    status: Literal["waiting", "pending", "delivered", "failed"]
    attempts: list[WebhookAttempt] = []
    next_attempt_at: datetime | None = None


class Task(msgspec.Struct, kw_only=True):
    """A task as the API shows it.

    ``params`` and ``result`` are unset (absent from the JSON) in a list of tasks,
    unless asked for (``include``).
    """

    task_id: UUID
    status: TaskStatus
    kind: Literal["described", "direct", "graph"]
    task_description: str | None = None
    method: str | None = None
    params: dict[str, Any] | UnsetType | None = None
    priority: int = 5
    timeout: float | None = None
    result: Any | UnsetType = None
    error: TaskError | None = None
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: The id of the API key that submitted it (``None``: submitted with no keys in force).
    owner: UUID | None = None
    #: Tokens its model turns used (``prompt_tokens``, ``completion_tokens``,
    #: ``total_tokens``, ``turns``), once it has finished; ``None``: no model turn.
    usage: dict[str, int] | None = None
    #: Of a sub-task: its graph (the parent task), its id in the graph, the tasks it waits for.
    parent_id: UUID | None = None
    subtask_id: str | None = None
    depends_on: list[UUID] | None = None
    #: Of a graph: ``fail_fast`` or ``continue`` (what a failed sub-task does to the rest).
    failure_policy: str | None = None
    #: The worker pool it runs in: its tool's (``@tool(pool=...)``), ``default`` otherwise.
    pool: str = "default"
    #: In ``GET /api/tasks/{id}`` of a pending task: ``True`` when no live worker serves
    #: its pool, so it waits for one to start (it does not fail for it).
    waiting_for_pool: bool | None = None
    #: Retryable failures since it was submitted or last retried by an operator, each
    #: failed attempt (the latest last; unset in a list of tasks), and when the next
    #: attempt is due (retrying).
    failures: int = 0
    attempt_history: list[AttemptRecord] | UnsetType = []
    next_attempt_at: datetime | None = None
    #: Its completion webhook, when one task is read (``None``: it has no ``callback_url``).
    webhook: WebhookState | UnsetType | None = UNSET
    #: Of a task the model splits (``"split": true``): ``planning`` (the model makes the
    #: plan), ``waiting`` (its sub-tasks run), ``composing`` (the model answers from them).
    split: Literal["planning", "waiting", "composing"] | None = None


class TraceStep(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One model turn or tool call of a task, in order."""

    seq: int
    kind: Literal["model", "tool"]
    name: str | None = None
    attempt: int = 1
    arguments: Any = None
    result: Any = None
    error: TaskError | None = None
    content: str | None = None
    thinking: str | None = None
    usage: dict[str, int] | None = None
    started_at: datetime
    duration_ms: float | None = None
    #: Of a tool step: the version of the tool code that ran it (changes on hot reload).
    code_version: str | None = None
    #: Of a tool step: answered from the result cache, and the retries it took.
    cached: bool = False
    retries: int = 0
