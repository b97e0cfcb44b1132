"""Hot reload: apply a valid change of the tools or the configuration, refuse any other.

``qasdk serve --watch tools/`` watches the tool folders and the config file
(watchfiles, debounced). A change is rescanned, merged, validated and synced in
one transaction; only then is anything swapped in (the registry, the model
settings, the log level), so the next task sees the new version while running
tasks finish with the one they started with. A change that does not validate
(bad YAML, a broken tool file, a rule violation) changes nothing: the running
registry and configuration stay, and the reason is logged with file and line.
``POST /api/config/reload`` runs the same path.

Each reload that changes something or is refused, and each one a client asked
for, is audited (``reload``: the settings changed, old and new, secrets masked;
the sync it ran has its own ``sync`` row with the tools' diff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import msgspec
import psycopg
import psycopg_pool

from qasdk._excerpt import excerpt
from qasdk.audit import Actor
from qasdk.audit.diff import bounded_names
from qasdk.config import Config, load_config
from qasdk.errors import QasdkError
from qasdk.logs import configure_logging
from qasdk.models import Problem
from qasdk.redaction import redact_value
from qasdk.registration.discover import display_path
from qasdk.store import audit
from qasdk.store.embedded import private_folder
from qasdk.store.methods import sync_methods
from qasdk_server.executor.code import prune_snapshots, snapshot
from qasdk_server.middleware.chain import Chain
from qasdk_server.middleware.load import chain_for
from qasdk_server.state import ServerState

__all__ = ["ReloadOutcome", "Reloader"]

logger = logging.getLogger("qasdk.reload")

#: Settings a running process can take over; the rest need a restart.
LIVE_SECTIONS = ("model", "logging", "limits", "retention", "middleware")
LIVE_WORKER_SETTINGS = (
    "tool_timeout",
    "model_retries",
    "retry_backoff",
    "max_attempts",
    "retry_delay_max",
    "tool_limits",
    "tool_limits_by_tool",
)
#: Settings of a live section that are read once, at start (Litestar's body limit).
AT_START = ("limits.request_body",)


class ToolChanges(msgspec.Struct, omit_defaults=True):
    created: list[str] = []
    updated: list[str] = []
    deleted: list[str] = []


class ReloadOutcome(msgspec.Struct, omit_defaults=True):
    """What a reload did: applied, unchanged, or rejected with the problems."""

    outcome: Literal["applied", "unchanged", "rejected"]
    at: datetime
    trigger: str
    problems: list[Problem] = []
    tools: ToolChanges | None = None
    #: The version of the tool code the next tasks run, when this reload changed it.
    code: str | None = None
    settings: list[str] = []
    needs_restart: list[str] = []


def _changed_settings(old: Config, new: Config) -> list[str]:
    changed = []
    sections = ("model", "database", "logging", "server", "worker", "limits", "retention")
    for section in (*sections, "registry", "telemetry", "webhooks"):  # the last two: at start
        before, after = getattr(old, section), getattr(new, section)
        for field in before.__struct_fields__:
            if getattr(before, field) != getattr(after, field):
                changed.append(f"{section}.{field}")
    if old.middleware != new.middleware:
        changed.append("middleware")
    return changed


def _setting(config: Config, setting: str) -> Any:
    section, _, field = setting.partition(".")
    value = getattr(config, section)
    return msgspec.to_builtins(getattr(value, field) if field else value)


def _settings_diff(old: Config, new: Config, changed: list[str]) -> dict[str, Any]:
    """``{setting: {old, new}}``, every secret of either configuration masked."""
    diff = {s: {"old": _setting(old, s), "new": _setting(new, s)} for s in changed}
    masked: dict[str, Any] = redact_value(diff, [*old.secrets(), *new.secrets()])
    return masked


def _live(setting: str) -> bool:
    if setting in AT_START:
        return False
    section, _, field = setting.partition(".")
    return section in LIVE_SECTIONS or (section == "worker" and field in LIVE_WORKER_SETTINGS)


class Reloader:
    """Reloads the configuration and the tools of one server process."""

    def __init__(
        self,
        state: ServerState,
        *,
        watch: Sequence[str | Path] = (),
        actor: Actor | None = None,
        module_root: Path | None = None,
        prune: bool = False,
        debounce_ms: int = 300,
        overrides: Callable[[Config], Config] | None = None,
    ) -> None:
        #: Re-applies command-line options (--port, --concurrency...) to a reloaded file.
        self.overrides = overrides or (lambda config: config)
        self.state = state
        #: Who reloads when no client asked (the watcher, the start): this server's user.
        self.actor = actor or Actor.local("serve")
        self.watch_paths = [Path(p) for p in watch]
        self.module_root = module_root or Path.cwd()
        self.prune = prune
        self.debounce_ms = debounce_ms
        self.last: ReloadOutcome | None = None
        #: Where validated copies of the watched tool code are kept (see executor/code.py).
        self.snapshots = self.module_root / ".qasdk" / "code"
        self.config_loaded_at = datetime.now(timezone.utc)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- watching -------------------------------------------------------------

    def watched(self) -> list[str]:
        paths = [display_path(p) for p in self.watch_paths]
        if self.state.config.path:
            paths.append(self.state.config.path)
        return paths

    async def start(self) -> None:
        if self.watch_paths:
            self._task = asyncio.create_task(self._watch(), name="qasdk watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        import watchfiles

        targets = [str(p) for p in self.watch_paths]
        if self.state.config.path:
            targets.append(self.state.config.path)

        def relevant(change: watchfiles.Change, path: str) -> bool:
            name = Path(path).name
            if "__pycache__" in path or name.startswith("."):
                return False
            return name.endswith((".py", ".yaml", ".yml", ".json"))

        logger.info("watching %s for changes", ", ".join(targets))
        async for changes in watchfiles.awatch(
            *targets, watch_filter=relevant, debounce=self.debounce_ms, step=50
        ):
            files = sorted({display_path(Path(path)) for _, path in changes})
            await self.reload(f"watch: {', '.join(files)}")

    # -- reloading ------------------------------------------------------------

    async def reload(self, trigger: str, *, actor: Actor | None = None) -> ReloadOutcome:
        """Validate everything first; apply only a change that is valid as a whole.

        ``actor``: the client that asked (audited even when nothing changed).
        """
        async with self._lock:
            outcome, settings = await self._reload(trigger, actor or self.actor)
            self.last = outcome
            if outcome.outcome != "unchanged" or actor is not None:
                await self._audit(outcome, settings, actor or self.actor)
        if outcome.outcome == "rejected":
            first = outcome.problems[0] if outcome.problems else None
            logger.error(
                "reload rejected (%s): nothing changed\n%s",
                trigger,
                "\n".join(str(p) for p in outcome.problems),
                extra={
                    "trigger": trigger,
                    "problems": [str(p) for p in outcome.problems],
                    "path": first.source.path if first and first.source else None,
                    "line": first.source.line if first and first.source else None,
                    "parse_error": first.reason if first else None,
                },
            )
        elif outcome.outcome == "applied":
            logger.info(
                "reload applied (%s): %s",
                trigger,
                msgspec.json.encode(
                    {"tools": outcome.tools, "code": outcome.code, "settings": outcome.settings}
                ).decode(),
            )
            if outcome.needs_restart:
                logger.warning(
                    "changed settings take effect after a restart: %s",
                    ", ".join(outcome.needs_restart),
                )
        return outcome

    async def _audit(self, outcome: ReloadOutcome, settings: dict[str, Any], actor: Actor) -> None:
        detail: dict[str, Any] = {"outcome": outcome.outcome, "trigger": excerpt(outcome.trigger)}
        if outcome.tools is not None:
            detail["tools"] = {
                "created": bounded_names(outcome.tools.created),
                "updated": bounded_names(outcome.tools.updated),
                "deleted": bounded_names(outcome.tools.deleted),
            }
        if settings:
            detail["settings"] = settings
        if outcome.needs_restart:
            detail["needs_restart"] = outcome.needs_restart
        if outcome.code is not None:
            detail["code"] = outcome.code
        if outcome.problems:
            detail["problems"] = [excerpt(str(p), 400) for p in outcome.problems[:20]]
        try:
            async with self.state.pool.connection() as conn:
                await audit.record(
                    conn,
                    actor=actor,
                    action="reload",
                    target=self.state.config.path,
                    detail=detail,
                    secrets=self.state.config.secrets(),
                )
        except (QasdkError, psycopg.Error, psycopg_pool.PoolTimeout):
            logger.warning("could not record the reload in the audit log", exc_info=True)

    async def _reload(self, trigger: str, actor: Actor) -> tuple[ReloadOutcome, dict[str, Any]]:
        """The outcome, and the settings it changed (old → new, masked) for the audit log."""
        now = datetime.now(timezone.utc)
        state = self.state
        problems: list[Problem] = []
        new_config = state.config
        try:
            if state.config.path:
                new_config = self.overrides(load_config(state.config.path))
        except QasdkError as exc:
            problems += exc.problems or [Problem(reason=str(exc))]
        registry = None
        if self.watch_paths:
            # The scanner (griffe) loads only in a server that watches folders.
            from qasdk.registration.collect import collect

            try:
                # Off the event loop: scanning reads files and MCP servers are asked
                # for their tools over the network.
                registry = await asyncio.to_thread(
                    collect,
                    self.watch_paths,
                    module_root=self.module_root,
                    allowed_packages=state.config.registry.allowed_packages,
                )
            except QasdkError as exc:
                problems += exc.problems or [Problem(reason=str(exc))]
        chain = None
        if not problems and new_config.middleware != state.config.middleware:
            try:  # built (imported, constructed) before anything is swapped in
                chain = chain_for(new_config, state.metrics, state.pool, self.module_root)
            except QasdkError as exc:
                problems += exc.problems or [Problem(reason=str(exc))]
        if problems:
            return ReloadOutcome("rejected", now, trigger, problems=problems), {}

        tools = None
        if registry is not None:
            try:
                # Signed with the key the registry verifies with: what this sync
                # writes is what this server (and its peers) will load.
                guard = state.registry.guard
                key = guard.key if guard is not None else None
                async with state.pool.connection() as conn:
                    report = await sync_methods(
                        conn, registry.configs, prune=self.prune, key=key, actor=actor
                    )
            except QasdkError as exc:
                problem = Problem(reason=f"sync failed: {exc}")
                return ReloadOutcome("rejected", now, trigger, problems=[problem]), {}
            plan = report.plan
            tools = ToolChanges(
                created=plan.created, updated=list(plan.updated), deleted=plan.deleted
            )
        code = await self._switch_code() if registry is not None else None
        registry_changed = await state.registry.load()
        if code is not None and not registry_changed and state.worker is not None:
            state.worker.runner.executor.replace_methods(state.registry.configs())

        changed = _changed_settings(state.config, new_config)
        diff = _settings_diff(state.config, new_config, changed)
        live = [s for s in changed if _live(s)]
        restart = [s for s in changed if not _live(s)]
        if live:
            self._apply_settings(new_config, live, chain)
        tools_changed = tools is not None and (tools.created or tools.updated or tools.deleted)
        if not live and not restart and not tools_changed and code is None:
            return ReloadOutcome("unchanged", now, trigger, tools=tools), diff
        outcome = ReloadOutcome(
            "applied", now, trigger, tools=tools, code=code, settings=live, needs_restart=restart
        )
        return outcome, diff

    async def _switch_code(self) -> str | None:
        """Snapshot the watched code; the version new tool processes run, if it changed.

        Only the embedded worker's tool processes can be pointed at a snapshot; a
        separate ``qasdk worker`` imports the code deployed next to it.
        """
        worker = self.state.worker
        if worker is None:
            return None
        executor = worker.runner.executor
        private_folder(self.snapshots)
        version = await asyncio.to_thread(
            snapshot, self.module_root, self.watch_paths, self.snapshots
        )
        if executor.code is not None and executor.code.id == version.id:
            return None
        executor.use_code(version)
        await asyncio.to_thread(prune_snapshots, self.snapshots, [version.id])
        logger.info("tool code version %s: new tool processes run it", version.id)
        return version.id

    def _apply_settings(self, new: Config, changed: list[str], chain: Chain | None) -> None:
        """Swap in the settings a running process can take over (atomically, per object)."""
        state = self.state
        current = state.config
        worker = current.worker
        if any(s.startswith("worker.") for s in changed):
            worker = msgspec.structs.replace(
                worker, **{f: getattr(new.worker, f) for f in LIVE_WORKER_SETTINGS}
            )
        config = msgspec.structs.replace(
            current,
            model=new.model,
            logging=new.logging,
            limits=new.limits,
            retention=new.retention,
            worker=worker,
            middleware=new.middleware,
        )
        state.config = config
        self.config_loaded_at = datetime.now(timezone.utc)
        if state.worker is not None:
            state.worker.runner.apply_config(config, chain)
        if any(s.startswith("logging.") or s == "limits.log_field" for s in changed):
            configure_logging(
                config.logging, secrets=config.secrets(), max_field=config.limits.log_field
            )
