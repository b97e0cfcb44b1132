"""``model_config.yaml`` and the environment → :class:`Config`.

The file is found via ``--config``, then ``QASDK_CONFIG``, then
``model_config.yaml`` or ``config/model_config.yaml`` in the working directory;
with none of them every default applies (Ollama on localhost, embedded
PostgreSQL). Any value can be overridden from the environment as
``QASDK_<SECTION>_<KEY>`` (``QASDK_DATABASE_URL``, ``QASDK_MODEL_NAME``,
``QASDK_LOGGING_LEVEL``...), and ``${VAR}`` / ``${VAR:-default}`` in the file
is replaced by the variable's value.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from qasdk._documents import (
    Document,
    KeyPath,
    decode_error,
    did_you_mean,
    field_name,
    load_document,
)
from qasdk.errors import ConfigurationError
from qasdk.models import Problem, Source
from qasdk.redaction import url_password

__all__ = [
    "DEFAULT_LOG_FORMAT",
    "DEFAULT_MIDDLEWARE",
    "Config",
    "DatabaseConfig",
    "LimitsConfig",
    "LoggingConfig",
    "MiddlewareConfig",
    "ModelConfig",
    "RegistryConfig",
    "RetentionConfig",
    "ServerConfig",
    "TelemetryConfig",
    "ToolLimits",
    "ToolLimitsOverride",
    "WebhooksConfig",
    "WorkerConfig",
    "find_config_file",
    "load_config",
]

DEFAULT_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
ENV_PREFIX = "QASDK_"

Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
#: A worker pool's name (the rule of ``qasdk.registration.rules.check_pool``).
PoolName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class ModelConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The LLM behind the agent: Ollama's OpenAI-compatible API by default."""

    name: str = "qwen3:4b"
    api_base: str = "http://localhost:11434"
    api_key: str | None = None
    timeout: Positive = 30.0
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.7
    max_tokens: PositiveInt = 2000
    #: Upper bound on model turns per task; the tool loop stops there.
    max_turns: PositiveInt = 8
    #: ``nous``: tools in the system prompt (qwen-agent's default);
    #: ``native``: the OpenAI ``tools`` API.
    function_calling: Literal["nous", "native"] = "nous"
    #: Take a turn whose whole text is a tool call written without tags (bare or fenced
    #: JSON, a list of calls, ``<tool_call>`` as plain text) for that call.
    recover_tool_calls: bool = True
    #: Upper bound on tool calls per task, beside ``max_turns``.
    max_tool_calls: PositiveInt = 16
    #: Sub-tasks a model's plan may hold (``"split": true``); a bigger plan goes back
    #: to the model as an error.
    max_plan_subtasks: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20
    #: The same call asked for again after a nudge ends the loop: ``answer`` completes
    #: the task with the last tool result, ``fail`` fails it with ``ToolCallLoop``.
    on_tool_loop: Literal["answer", "fail"] = "answer"
    #: Tokens (prompt and completion, every turn) one task may use; over it the task
    #: stops with ``TokenBudgetExceeded`` (``None``: no budget).
    max_tokens_per_task: PositiveInt | None = None

    @property
    def model_server(self) -> str:
        """The OpenAI-compatible endpoint: ``api_base`` + ``/v1``."""
        base = self.api_base.rstrip("/")
        return base if base.endswith("/v1") else base + "/v1"


class DatabaseConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the registry and the tasks live.

    ``url`` wins; otherwise ``host`` and friends; with neither, an embedded
    PostgreSQL is started in ``data_dir``.
    """

    url: str | None = None
    host: str | None = None
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 5432
    database: str | None = None
    user: str | None = None
    password: str | None = None
    pool_size: PositiveInt = 5
    connect_timeout: Positive = 5.0
    data_dir: str = ".qasdk/pgdata"

    @property
    def embedded(self) -> bool:
        return not self.url and not self.host


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class LoggingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Log level, line format (a ``logging`` format string, or ``json``) and file."""

    level: LogLevel = "INFO"
    format: str = DEFAULT_LOG_FORMAT
    file: str | None = None


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where ``qasdk serve`` listens."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    #: ``Host`` names the API answers to (``*.example.com`` for subdomains, ``*`` for any).
    #: Default: on a loopback address, ``localhost``, ``127.0.0.1`` and ``::1``; else any.
    allowed_hosts: tuple[str, ...] | None = None
    #: Origins (``https://app.example.com``) whose pages may call the API: CORS, and
    #: writes from them. Default none: other sites' pages can neither read nor write.
    cors_origins: tuple[str, ...] = ()
    #: ``auto``: API keys are needed once one exists (``qasdk keys create``), and a
    #: non-loopback address needs one; ``keys``: always needed; ``none``: never (say so).
    auth: Literal["auto", "keys", "none"] = "auto"


class ToolLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one tool call may use; ``None`` is no limit (or, for CPU, the call's timeout)."""

    #: Address space of the tool process, in MiB (``RLIMIT_AS``).
    memory_mb: PositiveInt | None = 2048
    #: CPU seconds one call may use (default: its timeout, rounded up, plus 1 s).
    cpu_seconds: Positive | None = None
    #: Processes (and threads) a call may start beyond those its user already runs
    #: (``RLIMIT_NPROC``, which the kernel counts per user; not enforced for root).
    processes: PositiveInt | None = 64


class ToolLimitsOverride(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The limits of one tool: a field left out is taken from ``worker.tool_limits``.

    ``UNSET`` (left out) and ``None`` (no limit) are different: ``memory_mb: null``
    lifts the memory limit for this tool alone.
    """

    memory_mb: PositiveInt | msgspec.UnsetType | None = msgspec.UNSET
    cpu_seconds: Positive | msgspec.UnsetType | None = msgspec.UNSET
    processes: PositiveInt | msgspec.UnsetType | None = msgspec.UNSET


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How workers (embedded in ``qasdk serve``, or ``qasdk worker``) run tasks."""

    #: Tasks one worker runs at the same time.
    concurrency: PositiveInt = 4
    #: Worker processes of one ``qasdk serve`` or ``qasdk worker`` (one event loop uses
    #: one core): beyond its own worker it starts ``processes - 1`` more, each running what
    #: ``qasdk worker`` runs (``concurrency`` tasks, no ``metrics_port`` of its own), and
    #: starts them again when they die; they stop with it.
    processes: PositiveInt = 1
    #: Seconds a tool may run when it sets no timeout of its own.
    tool_timeout: Positive = 30.0
    #: Retries of a model call that failed for a transient reason (connection, 5xx, timeout).
    model_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    #: First retry delay in seconds; it doubles for each further retry.
    retry_backoff: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    #: Attempts a task gets when it fails for a retryable reason (model unavailable, a tool
    #: timeout or a tool's ``retry_on`` errors...), ``retry_backoff * 2**n`` s apart
    #: (jittered, at most ``retry_delay_max``); then it is ``blocked`` for an operator.
    #: ``0``: no task retries and no dead letters (such a failure is final, ``failed``).
    max_attempts: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    retry_delay_max: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    #: A worker proves it is alive this often...
    heartbeat_interval: Positive = 2.0
    #: ...and is presumed dead (its tasks run elsewhere) after this long without doing so.
    stalled_after: Positive = 10.0
    #: Seconds running tasks get to finish on shutdown before they are handed back.
    shutdown_grace: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    #: Import qwen-agent and build the model's tools at start, not in the first task that
    #: needs them: that task is ~1-2 s faster, an idle process ~130 MB larger (1,000 tools).
    warm_up: bool = False
    #: Seconds a cancelled tool that takes a ``ToolContext`` has to stop before it is killed.
    cancel_grace: Annotated[float, msgspec.Meta(ge=0, le=60)] = 1.0
    #: What one tool call may use, unless ``tool_limits_by_tool`` says otherwise.
    tool_limits: ToolLimits = ToolLimits()
    #: Limits of particular tools, by name (fields left out come from ``tool_limits``).
    tool_limits_by_tool: dict[str, ToolLimitsOverride] = {}
    #: Environment variables tool processes get although they look like qasdk's secrets
    #: (by default ``QASDK_*``, ``PG*`` connection settings and any variable holding a
    #: configured password or key are removed from the tools' environment).
    tool_env: tuple[str, ...] = ()
    #: Tool output (stdout/stderr) that reaches the log: bytes per line, bytes per call,
    #: and lines per second per tool process; the rest is dropped with a note saying how much.
    tool_output_line: PositiveInt = 4096
    tool_output_per_call: PositiveInt = 65536
    tool_output_rate: PositiveInt = 100
    #: The worker pools it serves (``qasdk worker --pool gpu --pool default``): it takes
    #: only tasks of these pools' tools; tasks of a pool nobody serves wait.
    pools: Annotated[tuple[PoolName, ...], msgspec.Meta(min_length=1)] = ("default",)
    #: A ``qasdk worker`` serves its own Prometheus ``/metrics`` on this port (``None``:
    #: off; ``qasdk serve`` has ``/metrics`` already), on ``metrics_host``.
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    metrics_host: str = "127.0.0.1"
    #: Seconds after its last heartbeat a dead worker's row is deleted (GET /api/workers).
    forget_after: Positive = 86400.0


class LimitsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How big, deep and slow what clients, tools and the model send may be.

    Over a request limit the answer is 400 (413 for a body), naming the limit;
    a result or trace value over its limit is stored truncated, with a marker
    that says so and what its full size was.
    """

    #: Bytes of a request body.
    request_body: PositiveInt = 1_048_576
    #: Bytes of a request's headers, all together.
    request_headers: PositiveInt = 65_536
    #: Seconds a client has to send a request's headers (and then its body).
    request_timeout: Positive = 10.0
    #: Nesting depth of any JSON value accepted or stored.
    json_depth: Annotated[int, msgspec.Meta(ge=2, le=256)] = 64
    #: Characters of a task description.
    task_description: PositiveInt = 65_536
    #: Bytes of a direct task's params, as JSON.
    params: PositiveInt = 262_144
    #: Bytes of a task's result (or a tool result in the trace), as JSON.
    result: PositiveInt = 1_048_576
    #: Bytes of any other trace value (arguments, model content, thinking), as JSON.
    trace_value: PositiveInt = 65_536
    #: Characters of one field of a log record.
    log_field: PositiveInt = 16_384


class RetentionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long finished tasks and their traces, and audit log rows, are kept."""

    #: Days after a task's completion or an audit row's writing; ``null`` keeps everything.
    days: Positive | None = 30.0


class RegistryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What registered tools may run, and the key that proves ``qasdk sync`` wrote them.

    Tools are imported only from the module root and ``allowed_packages``. Every
    row of ``registered_methods`` is signed (HMAC-SHA256) with ``signing_key``;
    with none configured, with the key in ``key_file``, created on first use
    (mode 0600). Servers and workers on other machines need the same key.
    """

    #: Packages (installed, not under the module root) whose modules may be tools,
    #: by import name: ``acme_tools`` allows ``acme_tools`` and ``acme_tools.geo``.
    allowed_packages: tuple[str, ...] = ()
    #: The signing key itself (write ``${QASDK_SIGNING_KEY}``); wins over ``key_file``.
    signing_key: str | None = None
    #: Where the key is kept when ``signing_key`` is not set (default: ``signing.key``
    #: next to the embedded database's folder, ``.qasdk/signing.key``).
    key_file: str | None = None


class MiddlewareConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One entry of ``middleware:``, the chain around every tool call, in order."""

    #: A built-in (``metrics``, ``logging``, ``slow_calls``, ``cache``, ``limits``, ``breaker``), an
    #: entry point of the ``qasdk.middleware`` group, or ``package.module:Class`` under the
    #: module root.
    name: Annotated[str, msgspec.Meta(min_length=1)]
    enabled: bool = True
    #: Keyword arguments of its constructor.
    options: dict[str, Any] = {}
    #: The tools it applies to, by name or by tag (both empty: every tool).
    tools: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


#: The chain when ``middleware:`` is not set.
DEFAULT_MIDDLEWARE = (
    MiddlewareConfig(name="metrics"),
    MiddlewareConfig(name="slow_calls"),
    MiddlewareConfig(name="approval"),
    MiddlewareConfig(name="cache"),
    MiddlewareConfig(name="limits"),
)


class TelemetryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """OpenTelemetry traces, sent over OTLP/HTTP; off unless an endpoint is given.

    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the standard variable) turns it on too, when
    ``otlp_endpoint`` is not set. Read when a server or worker starts.
    """

    #: The collector's base URL (``http://localhost:4318``); traces go to ``/v1/traces``.
    otlp_endpoint: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$")] | None = None
    #: ``service.name`` of the spans (tool processes use it too, unless they set their own).
    service_name: Annotated[str, msgspec.Meta(min_length=1)] = "qasdk"
    #: Headers sent with every export (``Authorization: Bearer ${OTLP_TOKEN}``); masked.
    headers: dict[str, str] = {}
    #: The share of traces kept (0 to 1), when the request brings no sampled parent.
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0

    @property
    def enabled(self) -> bool:
        return bool(self.otlp_endpoint)


class WebhooksConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Completion webhooks: tasks submitted with ``callback_url`` are POSTed there, signed.

    Off (``callback_url`` refused) until ``secret`` is set. Read when a worker starts.
    """

    #: The HMAC-SHA256 key of ``X-Qasdk-Signature`` (write ``${QASDK_WEBHOOK_SECRET}``).
    secret: str | None = None
    #: Hosts callbacks may go to: names, ``*.example.com``, addresses or networks
    #: (``10.0.0.0/8``); ``*`` is any. Empty (the default): any host whose addresses are
    #: public; loopback, private, link-local and reserved addresses are refused.
    allowed_hosts: tuple[str, ...] = ()
    #: Attempts before a delivery is given up (``failed``).
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10
    #: Seconds one attempt may take, all told (connect, send, response headers).
    timeout: Positive = 10.0
    #: Seconds before the second attempt; doubled for each further one (25 % jitter)...
    backoff: Positive = 5.0
    #: ...up to this many.
    backoff_max: Positive = 3600.0
    #: Deliveries one process sends at the same time.
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    #: Seconds between looks for due deliveries when no notification came (a safety net).
    poll_interval: Positive = 5.0
    #: Characters of a ``callback_url``.
    max_url_length: Annotated[int, msgspec.Meta(ge=16, le=65536)] = 2048


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything ``model_config.yaml`` and the environment say."""

    model: ModelConfig = ModelConfig()
    database: DatabaseConfig = DatabaseConfig()
    logging: LoggingConfig = LoggingConfig()
    server: ServerConfig = ServerConfig()
    worker: WorkerConfig = WorkerConfig()
    limits: LimitsConfig = LimitsConfig()
    retention: RetentionConfig = RetentionConfig()
    registry: RegistryConfig = RegistryConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    #: Where the tools are: what ``qasdk sync`` and ``qasdk check`` read when given no path.
    tools: tuple[str, ...] = ()
    #: The chain of middleware every tool call goes through, outermost first.
    middleware: tuple[MiddlewareConfig, ...] = DEFAULT_MIDDLEWARE
    #: The file this came from, or ``None`` when only defaults and env applied.
    path: str | None = None

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line or an error message."""
        values = [
            self.database.password,
            self.model.api_key,
            url_password(self.model.api_base),
            self.registry.signing_key,
            *self.telemetry.headers.values(),
            self.webhooks.secret,
        ]
        if self.telemetry.otlp_endpoint:
            values.append(url_password(self.telemetry.otlp_endpoint))
        if self.database.url:
            values.append(url_password(self.database.url))
        return [v for v in values if v]


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "model": ModelConfig,
    "database": DatabaseConfig,
    "logging": LoggingConfig,
    "server": ServerConfig,
    "worker": WorkerConfig,
    "limits": LimitsConfig,
    "retention": RetentionConfig,
    "registry": RegistryConfig,
    "telemetry": TelemetryConfig,
    "webhooks": WebhooksConfig,
}
#: Top-level settings that are not sections.
_SETTINGS = ("tools", "middleware")
#: The standard variable that turns telemetry on when ``telemetry.otlp_endpoint`` is unset.
OTEL_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
_INTERPOLATION = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")


def find_config_file(
    explicit: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to read, or ``None`` when there is none to read."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get(f"{ENV_PREFIX}CONFIG"):
        return Path(environ[f"{ENV_PREFIX}CONFIG"])
    for candidate in (Path("model_config.yaml"), Path("config") / "model_config.yaml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    use_file: bool = True,
) -> Config:
    """Load the configuration, or raise :class:`ConfigurationError` naming every problem.

    ``use_file=False`` reads only the environment (how errors in the file itself
    still get logged where ``QASDK_LOGGING_*`` says).
    """
    environ = os.environ if environ is None else environ
    file = find_config_file(path, environ) if use_file else None
    document: Document | None = None
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    if file is not None:
        document = load_document(file)
        if document.data is None:
            data = {}
        elif isinstance(document.data, dict):
            data = _interpolate(document.data, (), document, environ, problems)
        else:
            problems.append(
                Problem(
                    source=document.source(),
                    reason="expected a mapping with model, database and logging sections",
                )
            )
    overridden = _apply_environment(data, environ, problems)
    _apply_otel_endpoint(data, environ, overridden)
    problems += _check_fields(data, document, overridden)
    if problems:
        raise ConfigurationError(problems=problems)
    data["path"] = str(file) if file is not None else None
    return msgspec.convert(data, Config, strict=False)


def _check_fields(
    data: dict[str, Any], document: Document | None, overridden: dict[KeyPath, str]
) -> list[Problem]:
    """Validate every setting on its own, so one bad value does not hide the next."""
    problems = []
    for section, values in data.items():
        if section == "middleware" and isinstance(values, list):
            problems += _check_middleware(values, document, overridden)
            continue
        if section in _SETTINGS:
            try:
                msgspec.convert({section: values}, Config, strict=False)
            except msgspec.ValidationError as exc:
                problems.append(_problem_from(exc, document, overridden))
            continue
        if section not in _SECTIONS:
            problems.append(
                Problem(
                    source=document.source((section,)) if document else None,
                    field=section,
                    reason=f"unknown section {section!r}{did_you_mean(section, tuple(_SECTIONS))}",
                )
            )
            continue
        if values is None:
            continue
        if not isinstance(values, dict):
            problem = Problem(
                source=document.source((section,)) if document else None,
                field=section,
                reason=f"expected a mapping of settings, got {type(data[section]).__name__}",
            )
            problems.append(problem)
            continue
        for key, value in values.items():
            if (section, key) == ("worker", "tool_limits_by_tool") and isinstance(value, dict):
                problems += _check_tool_limits(value, document, overridden)
                continue
            try:
                msgspec.convert({section: {key: value}}, Config, strict=False)
            except msgspec.ValidationError as exc:
                problems.append(_problem_from(exc, document, overridden))
    return problems


def _check_middleware(
    entries: list[Any], document: Document | None, overridden: dict[KeyPath, str]
) -> list[Problem]:
    """Each entry of the chain on its own, so every bad one is named with its index."""
    problems = []
    for index, entry in enumerate(entries):
        try:
            msgspec.convert(entry, MiddlewareConfig, strict=False)
        except msgspec.ValidationError as exc:
            problems.append(
                _problem_from(
                    exc, document, overridden, prefix=("middleware", index), into=MiddlewareConfig
                )
            )
    return problems


def _check_tool_limits(
    by_tool: dict[Any, Any], document: Document | None, overridden: dict[KeyPath, str]
) -> list[Problem]:
    """Each tool's limits on their own: msgspec names no mapping key in its errors."""
    problems = []
    for tool, limits in by_tool.items():
        prefix = ("worker", "tool_limits_by_tool", str(tool))
        try:
            msgspec.convert(limits, ToolLimitsOverride, strict=False)
        except msgspec.ValidationError as exc:
            problems.append(
                _problem_from(exc, document, overridden, prefix=prefix, into=ToolLimitsOverride)
            )
    return problems


def _interpolate(
    value: Any,
    keypath: KeyPath,
    document: Document,
    environ: Mapping[str, str],
    problems: list[Problem],
) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, (*keypath, k), document, environ, problems) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, (*keypath, i), document, environ, problems) for i, v in enumerate(value)
        ]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name, default = match.group(2), match.group(3)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        problems.append(
            Problem(
                source=document.source(keypath),
                field=".".join(str(p) for p in keypath),
                reason=f"environment variable {name!r} is not set "
                f"(write ${{{name}:-default}} to give a default)",
            )
        )
        return ""

    return _INTERPOLATION.sub(replace, value)


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str], problems: list[Problem]
) -> dict[KeyPath, str]:
    """Fold ``QASDK_<SECTION>_<KEY>`` variables into ``data``; return what they set."""
    overridden: dict[KeyPath, str] = {}
    for variable, value in sorted(environ.items()):
        if not variable.startswith(ENV_PREFIX):
            continue
        section, _, key = variable[len(ENV_PREFIX) :].lower().partition("_")
        if section not in _SECTIONS or not key:
            continue
        fields = _SECTIONS[section].__struct_fields__
        if key not in fields:
            problems.append(
                Problem(
                    source=Source(f"${variable}"),
                    reason=f"unknown {section} setting {key!r}{did_you_mean(key, fields)}",
                )
            )
            continue
        existing = data.get(section)
        if not isinstance(existing, dict):
            existing = data[section] = {}
        existing[key] = value
        overridden[(section, key)] = variable
    return overridden


def _apply_otel_endpoint(
    data: dict[str, Any], environ: Mapping[str, str], overridden: dict[KeyPath, str]
) -> None:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` as ``telemetry.otlp_endpoint``, unless that is set."""
    endpoint = environ.get(OTEL_ENDPOINT_VARIABLE)
    if not endpoint:
        return
    section = data.get("telemetry")
    if section is None:
        section = data["telemetry"] = {}
    if isinstance(section, dict) and not section.get("otlp_endpoint"):
        section["otlp_endpoint"] = endpoint
        overridden[("telemetry", "otlp_endpoint")] = OTEL_ENDPOINT_VARIABLE


def _problem_from(
    exc: msgspec.ValidationError,
    document: Document | None,
    overridden: dict[KeyPath, str],
    *,
    prefix: KeyPath = (),
    into: type[msgspec.Struct] | None = None,
) -> Problem:
    """Turn msgspec's ``... - at `$.model.timeout``` into a located problem.

    ``prefix`` is where the value that ``exc`` is about sits, when it was
    checked on its own as an ``into``.
    """
    keypath, reason, unknown = decode_error(exc)
    if prefix:
        keypath = (*prefix, *keypath)
    if unknown is not None:
        section = into if into is not None else _struct_at(keypath)
        options = section.__struct_fields__ if section else ()
        reason = f"unknown setting {unknown!r}{did_you_mean(unknown, tuple(options))}"
        keypath = (*keypath, unknown)
    if reason.startswith("invalid enum value") and len(keypath) == 2:
        choices = _literal_choices(str(keypath[0]), str(keypath[1]))
        if choices:
            reason += f"; expected one of {', '.join(choices)}"
    if keypath in overridden:
        source = Source(f"${overridden[keypath]}")
    elif document is not None:
        source = document.source(keypath)
    else:
        source = None
    return Problem(source=source, field=field_name(keypath) or None, reason=reason)


def _struct_at(keypath: KeyPath) -> type[msgspec.Struct] | None:
    """The settings struct at ``keypath`` (``worker.tool_limits``: :class:`ToolLimits`)."""
    struct: type[msgspec.Struct] = Config
    for part in keypath:
        hint = typing.get_type_hints(struct).get(str(part))
        if not (isinstance(hint, type) and issubclass(hint, msgspec.Struct)):
            return None
        struct = hint
    return struct


def _literal_choices(section: str, key: str) -> tuple[str, ...]:
    hints = typing.get_type_hints(_SECTIONS[section]) if section in _SECTIONS else {}
    hint = hints.get(key)
    if typing.get_origin(hint) is Literal:
        return tuple(str(a) for a in typing.get_args(hint))
    return ()
