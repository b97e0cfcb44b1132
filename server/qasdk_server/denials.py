"""Denied requests in the audit log, without letting a flood of them fill the database.

The first 401 or 403 of a (reason, client address, key) is written at once;
the ones that follow within :data:`WINDOW` seconds are only counted, and
written as one row with their count when the window closes (looked at every
:data:`FLUSH_EVERY` seconds, and at shutdown). A flood that goes on costs one
row per minute per (reason, client, key), and the counts add up to every
denial. At most :data:`MAX_WINDOWS` are tracked at once; denials beyond (many
addresses at once) are counted together under client ``*``.

Nothing the client presented is kept: no key text, no header, no query
string; only the stored key a request named (by id), and its method and path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from qasdk._excerpt import excerpt
from qasdk.audit.entry import ANONYMOUS, Actor
from qasdk.store import audit
from qasdk.store.connection import Pool

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from qasdk_server.auth import Refused

__all__ = ["FLUSH_EVERY", "MAX_WINDOWS", "WINDOW", "Denials"]

logger = logging.getLogger("qasdk.audit")

WINDOW = 60.0
FLUSH_EVERY = 5.0
MAX_WINDOWS = 1000
#: Distinct paths kept per row (the count covers every request).
_PATHS = 5
_Key = tuple[str, str | None, uuid.UUID | None]


class _Window:
    """Denials of one (reason, client, key) since ``opened``, not yet written."""

    __slots__ = ("actor", "first_at", "last_at", "opened", "paths", "scope", "status", "unwritten")

    def __init__(self, opened: float, actor: Actor, status: int, scope: str | None) -> None:
        self.opened = opened
        self.actor = actor
        self.status = status
        self.scope = scope
        self.unwritten = 0
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None
        self.paths: list[str] = []

    def add(self, path: str) -> None:
        now = datetime.now(timezone.utc)
        self.unwritten += 1
        self.first_at = self.first_at or now
        self.last_at = now
        if path not in self.paths and len(self.paths) < _PATHS:
            self.paths.append(path)


def _actor(refused: Refused, client: str | None) -> Actor:
    key = refused.key
    if key is None:
        return Actor(name=ANONYMOUS, client=client)
    # A wrong secret proves nothing about who sent it: the key is only the one it named.
    name = ANONYMOUS if refused.reason == "bad_key" else key.name
    return Actor(name=name, key_id=key.id, client=client)


class Denials:
    """Aggregates the guard's refusals of one server process into audit rows."""

    def __init__(
        self,
        pool: Pool,
        *,
        secrets: Callable[[], list[str]] = list,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.secrets = secrets
        self.window = window
        self.clock = clock
        self._windows: dict[_Key, _Window] = {}
        self._task: asyncio.Task[None] | None = None

    async def note(self, refused: Refused, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Count one refusal: written now if it opens a window, else when the window closes."""
        from qasdk_server.auth import client_address

        client = client_address(connection)
        actor = _actor(refused, client)
        reason = refused.reason if refused.scope is None else f"scope:{refused.scope}"
        key: _Key = (reason, client, actor.key_id)
        path = f"{connection.scope.get('method', '?')} {excerpt(connection.scope['path'])}"
        window = self._windows.get(key)
        if window is not None:
            window.add(path)
            return
        if len(self._windows) >= MAX_WINDOWS:
            key = (reason, "*", None)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(
                    self.clock(), Actor(name=ANONYMOUS, client="*"), refused.status, refused.scope
                )
            window.add(path)
            return
        self._windows[key] = _Window(self.clock(), actor, refused.status, refused.scope)
        detail = {"status": refused.status, "reason": reason, "paths": [path]}
        await self._write(actor, detail, 1)

    async def flush(self, *, everything: bool = False) -> int:
        """Write the counts of closed windows (``everything``: of all); rows written."""
        now = self.clock()
        written = 0
        for key, window in list(self._windows.items()):
            if not everything and now - window.opened < self.window:
                continue
            if window.unwritten == 0:
                del self._windows[key]  # a quiet window: the next denial is written at once
                continue
            detail = {
                "status": window.status,
                "reason": key[0],
                "paths": window.paths,
                "first_at": window.first_at,
                "last_at": window.last_at,
            }
            count = window.unwritten
            # Kept open: while the flood goes on, one row per window.
            window.opened, window.unwritten, window.paths = now, 0, []
            window.first_at = window.last_at = None
            await self._write(window.actor, detail, count)
            written += 1
        return written

    async def _write(self, actor: Actor, detail: dict[str, Any], count: int) -> None:
        try:
            async with self.pool.connection() as conn:
                await audit.record(
                    conn,
                    actor=actor,
                    action="denied",
                    detail=detail,
                    count=count,
                    secrets=self.secrets(),
                )
        except Exception:  # an audit row lost must not turn a 401 into a 500
            logger.warning("could not record %d denied requests", count, exc_info=True)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flushing(), name="qasdk denials")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(everything=True)

    async def _flushing(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()
