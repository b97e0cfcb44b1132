"""The server's in-memory copy of ``registered_methods``.

Requests are validated against memory, not the database. A name that is not
in memory triggers one reload (at most every ``refresh_interval`` seconds), so
tools synced by ``qasdk sync`` while the server runs are usable at once.

With a :class:`~qasdk.security.guard.RowGuard`, a row that is not signed with
this deployment's key, or whose module is outside the allowed roots, is not
loaded: it is kept in :attr:`MethodRegistry.refused` with the reason, logged,
audited (``registry.refused``, once per tool and reason in each process), and
the other tools are unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType

import psycopg
import psycopg_pool

from qasdk._documents import suggestion
from qasdk.audit import Actor
from qasdk.errors import QasdkError
from qasdk.models import MethodConfig, MethodMetadata
from qasdk.security.guard import RowGuard
from qasdk.store import audit
from qasdk.store.connection import Pool
from qasdk.store.methods import list_signed_methods

__all__ = ["MethodRegistry"]

logger = logging.getLogger("qasdk.registry")
#: Refusals audited one row each per load; the rest of a load share one row.
_AUDITED_EACH = 100


class MethodRegistry:
    """Registered tools by name, reloaded from PostgreSQL on demand."""

    def __init__(
        self,
        pool: Pool,
        *,
        refresh_interval: float = 0.2,
        guard: RowGuard | None = None,
        actor: Actor | None = None,
    ):
        self._pool = pool
        self.guard = guard
        #: Who the audit log says refused a row: this process's user.
        self.actor = actor or Actor.local("registry")
        self._methods: Mapping[str, MethodMetadata] = MappingProxyType({})
        #: Rows not loaded, by tool name: why.
        self.refused: Mapping[str, str] = MappingProxyType({})
        self._configs: Mapping[str, MethodConfig] = MappingProxyType({})
        self._refresh_interval = refresh_interval
        self._last_load = 0.0
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[Mapping[str, MethodConfig]], None]] = []
        self.version = 0
        self.loaded_at: datetime | None = None

    @property
    def methods(self) -> Mapping[str, MethodMetadata]:
        return self._methods

    def configs(self) -> Mapping[str, MethodConfig]:
        """The tools as configurations (built once per load, read by every task)."""
        return self._configs

    def on_change(self, listener: Callable[[Mapping[str, MethodConfig]], None]) -> None:
        """Call ``listener`` with the new tools whenever the registry changes."""
        self._listeners.append(listener)

    def get(self, name: str) -> MethodMetadata | None:
        return self._methods.get(name)

    def suggest(self, name: str) -> str:
        """`` (did you mean 'x'?)`` for the closest registered name, or nothing."""
        return suggestion(name, list(self._methods))

    async def load(self, *, unless_loaded_since: float | None = None) -> bool:
        """Read every registered tool; return whether anything changed.

        ``unless_loaded_since``: skip when a load started after that moment (someone
        else already read what this caller wanted to see).
        """
        async with self._lock:
            if unless_loaded_since is not None and self._last_load > unless_loaded_since:
                return False
            started = time.monotonic()
            async with self._pool.connection() as conn:
                found = await list_signed_methods(conn)
            self._last_load = started
            methods, newly_refused = self._admit(found)
            changed = methods != dict(self._methods)
            if changed or self.loaded_at is None:
                self._methods = MappingProxyType(methods)
                self._configs = MappingProxyType({n: m.to_config() for n, m in methods.items()})
                self.loaded_at = datetime.now(timezone.utc)
            if changed:
                self.version += 1
                configs = self.configs()
                for listener in self._listeners:
                    listener(configs)
                logger.info("registry loaded: %d tools (version %d)", len(methods), self.version)
        if newly_refused:
            await self._audit_refusals(newly_refused)
        return changed

    async def _audit_refusals(self, refused: dict[str, str]) -> None:
        items = sorted(refused.items())
        try:
            async with self._pool.connection() as conn, conn.transaction():
                for name, reason in items[:_AUDITED_EACH]:
                    await audit.record(
                        conn,
                        actor=self.actor,
                        action="registry.refused",
                        target=name,
                        detail={"reason": reason},
                    )
                rest = items[_AUDITED_EACH:]
                if rest:
                    names = [name for name, _ in rest[:_AUDITED_EACH]]
                    detail = {"tools": names}  # their reasons are in the log
                    await audit.record(
                        conn,
                        actor=self.actor,
                        action="registry.refused",
                        detail=detail,
                        count=len(rest),
                    )
        except (QasdkError, psycopg.Error, psycopg_pool.PoolTimeout):
            logger.warning("could not record refused rows in the audit log", exc_info=True)

    def _admit(
        self, found: list[tuple[MethodMetadata, str | None]]
    ) -> tuple[dict[str, MethodMetadata], dict[str, str]]:
        """The rows to load, and those refused now for a new reason (logged), with why."""
        methods: dict[str, MethodMetadata] = {}
        refused: dict[str, str] = {}
        if self.guard is not None:
            self.guard.refresh()
        for method, signature in found:
            reason = self.guard.refusal(method, signature) if self.guard else None
            if reason is None:
                methods[method.name] = method
            else:
                refused[method.name] = reason
        newly = {n: r for n, r in refused.items() if self.refused.get(n) != r}
        for name, reason in newly.items():
            logger.error(
                "tool %r not loaded: %s", name, reason, extra={"tool": name, "reason": reason}
            )
        if refused != dict(self.refused):
            self.refused = MappingProxyType(refused)
        return methods, newly

    async def find(self, name: str) -> MethodMetadata | None:
        """Look a tool up; an unknown name is looked for again in the database.

        A tool synced before the request is always found. Reloads for unknown
        names happen at most every ``refresh_interval`` seconds, and concurrent
        requests share one.
        """
        method = self._methods.get(name)
        if method is not None:
            return method
        asked = time.monotonic()
        wait = self._refresh_interval - (asked - self._last_load)
        if wait > 0:
            await asyncio.sleep(wait)
        await self.load(unless_loaded_since=asked)
        return self._methods.get(name)
