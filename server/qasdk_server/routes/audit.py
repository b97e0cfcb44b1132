"""``/api/audit``: the audit log, newest first, for admin keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.params import Parameter

from qasdk.audit import AuditEntry
from qasdk.store import audit as store
from qasdk_server.errors import error_responses
from qasdk_server.routes._cursor import decode_cursor, page
from qasdk_server.state import ServerState

__all__ = ["list_audit"]

_MAX_ID = 2**63 - 1


class AuditPage(msgspec.Struct):
    entries: list[AuditEntry]
    next_cursor: str | None


def _row_id(text: str) -> int:
    value = int(text)
    if not 0 < value <= _MAX_ID:
        raise ValueError(text)
    return value


@get("/api/audit", summary="The audit log", responses=error_responses(), opt={"scope": "admin"})
async def list_audit(
    server: ServerState,
    action: Annotated[
        str | None,
        Parameter(
            description="This action, or those under it: task matches task.submit and "
            "task.cancel. Actions: sync, reload, key.create, key.revoke, "
            "signing_key.rotate, task.submit, task.cancel, denied, registry.refused."
        ),
    ] = None,
    # Not called `actor`: that name is the dependency of the caller (auth.current_actor).
    by: Annotated[
        str | None,
        Parameter(
            query="actor",
            description="Who: an API key's name, open (no keys in force), anonymous (no "
            "valid key), or cli:<user>@<host>.",
        ),
    ] = None,
    target: Annotated[
        str | None, Parameter(description="What it was done to: a task id, a key, a tool.")
    ] = None,
    since: Annotated[datetime | None, Parameter(description="At or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Parameter(description="Before (ISO 8601).")] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> AuditPage:
    """Who did what and when: syncs and reloads (with each changed field, old and new),
    key changes, task submits and cancels, denied requests (a ``count`` per row:
    repeated denials are aggregated) and registry rows servers refused to load.

    Pass ``next_cursor`` back as ``cursor`` for the next page. Rows are never
    updated; they are deleted after ``retention.days``.
    """
    before = decode_cursor(cursor, _row_id) if cursor else None
    async with server.pool.connection() as conn:
        entries = await store.list_entries(
            conn,
            action=action,
            actor=by,
            target=target,
            since=since,
            until=until,
            limit=limit + 1,
            before=before,
        )
    shown, next_cursor = page(entries, limit, lambda e: (e.at, e.id))
    return AuditPage(entries=shown, next_cursor=next_cursor)
