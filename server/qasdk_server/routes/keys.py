"""``/api/keys``: API keys managed over HTTP (admin), as ``qasdk keys`` does from a shell."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post

from qasdk.audit import Actor
from qasdk.errors import ValidationError
from qasdk.keys import ApiKey, Scope
from qasdk.store import keys as store
from qasdk_server.errors import ApiError, error_responses
from qasdk_server.state import ServerState

__all__ = ["KeyController"]


class NewKey(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A key to create; only ``name`` and ``scopes`` are required."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["reports"])]
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, examples=[["read", "submit"]])]
    expires_in_days: Annotated[float, msgspec.Meta(gt=0, le=36500)] | None = None
    tools: list[str] | None = None
    tags: list[str] | None = None
    permissions: list[str] | None = None
    rate: Annotated[str, msgspec.Meta(examples=["10/m"])] | None = None
    max_running: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    max_tokens_per_task: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None


class CreatedKey(msgspec.Struct):
    #: The secret, shown this once: it is not stored and cannot be read again.
    key: str
    details: ApiKey


class KeyList(msgspec.Struct):
    keys: list[ApiKey]


class KeyController(Controller):
    path = "/api/keys"
    tags = ("keys",)

    @post(
        "/",
        status_code=201,
        summary="Create an API key",
        responses=error_responses(400),
        opt={"scope": "admin"},
    )
    async def create_key(
        self, data: NewKey, server: ServerState, actor: Actor
    ) -> Response[CreatedKey]:
        """Create a key; the answer holds its secret, which is never shown again."""
        expires = None
        if data.expires_in_days is not None:
            expires = datetime.now(timezone.utc) + timedelta(days=data.expires_in_days)
        try:
            async with server.pool.connection() as conn:
                key, text = await store.create_key(
                    conn,
                    data.name,
                    data.scopes,
                    actor=actor,
                    expires_at=expires,
                    tools=data.tools,
                    tags=data.tags,
                    permissions=data.permissions,
                    rate=data.rate,
                    max_running=data.max_running,
                    max_tokens_per_task=data.max_tokens_per_task,
                )
        except ValidationError as exc:
            raise ApiError(
                400,
                "invalid_key",
                "; ".join(f"{p.field}: {p.reason}" for p in exc.problems),
                exc.problems,
            ) from None
        return Response(
            CreatedKey(text, key),
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    @get(
        "/",
        summary="List the API keys (never their secrets)",
        responses=error_responses(),
        opt={"scope": "admin"},
    )
    async def list_keys(self, server: ServerState) -> KeyList:
        async with server.pool.connection() as conn:
            return KeyList(await store.list_keys(conn))

    @delete(
        "/{name:str}",
        status_code=200,
        summary="Revoke an API key",
        responses=error_responses(404),
        opt={"scope": "admin"},
    )
    async def revoke_key(self, name: str, server: ServerState, actor: Actor) -> ApiKey:
        """Revoke the key: requests with it are refused within seconds, on every server."""
        async with server.pool.connection() as conn:
            key = await store.revoke_key(conn, name, actor=actor)
        if key is None:
            raise ApiError(404, "not_found", f"no key in force is called {name!r}")
        return key
