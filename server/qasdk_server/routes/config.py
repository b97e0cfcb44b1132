"""``/api/config``: the active configuration (secrets masked), and reloading it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.openapi.datastructures import ResponseSpec

from qasdk.audit import Actor
from qasdk.redaction import redact_value
from qasdk_server.errors import error_responses
from qasdk_server.reload import Reloader, ReloadOutcome
from qasdk_server.state import ServerState

__all__ = ["get_config", "reload_config"]


class ActiveConfig(msgspec.Struct):
    config: dict[str, Any]
    source: str | None
    loaded_at: datetime
    watching: list[str]
    last_reload: ReloadOutcome | None


def _masked(server: ServerState) -> dict[str, Any]:
    """Passwords, keys and URL credentials replaced by ``****``."""
    data: dict[str, Any] = msgspec.to_builtins(server.config)
    data.pop("path", None)
    masked: dict[str, Any] = redact_value(data, server.config.secrets())
    return masked


@get(
    "/api/config",
    summary="The active configuration",
    responses=error_responses(),
    opt={"scope": "admin"},
)
async def get_config(server: ServerState, reloader: Reloader) -> ActiveConfig:
    """What this server runs with (passwords and keys masked), and the last reload."""
    return ActiveConfig(
        config=_masked(server),
        source=server.config.path,
        loaded_at=reloader.config_loaded_at,
        watching=reloader.watched(),
        last_reload=reloader.last,
    )


@post(
    "/api/config/reload",
    opt={"scope": "admin"},
    status_code=200,
    summary="Reload the configuration and the tools",
    responses={
        422: ResponseSpec(
            data_container=ReloadOutcome,
            description="Rejected; nothing changed",
            generate_examples=False,
        ),
        **error_responses(),
    },
)
async def reload_config(reloader: Reloader, actor: Actor) -> Response[ReloadOutcome]:
    """Apply a valid change (200), or keep everything as it is and say why (422).

    Audited (``GET /api/audit?action=reload``) whatever the outcome.
    """
    outcome = await reloader.reload("api", actor=actor)
    return Response(outcome, status_code=422 if outcome.outcome == "rejected" else 200)
