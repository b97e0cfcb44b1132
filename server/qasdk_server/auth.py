"""Who is calling: API keys, their scopes, and whose tasks they may see.

Every route declares the scope it needs (``opt={"scope": ...}``; a route that
declares none needs ``admin``, so a new route is closed until it says
otherwise; ``"public"`` needs none). While keys are in force (one created,
not revoked or expired; or ``server.auth: keys``), a request without a valid
key is 401, one whose key lacks the scope 403. With no keys (and
``server.auth: auto``, the default) the server is open, as it was before keys:
``qasdk serve`` refuses that posture on a non-loopback address.

Keys are read from the database and kept for :data:`CACHE_SECONDS`: a revoked
key stops working within that time, on every server of a database. Every 401
and 403 of the guard is a :class:`Refused` that says why, and goes to the
audit log through :mod:`qasdk_server.denials` (aggregated, never the secret).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from qasdk.audit import entry as audit
from qasdk.keys import ApiKey, parse_key, verify
from qasdk.store import keys as store
from qasdk.store.connection import Pool
from qasdk_server.errors import ApiError
from qasdk_server.routes.docs import DOCS_PATH

if TYPE_CHECKING:
    from qasdk_server.denials import Denials

__all__ = [
    "CACHE_SECONDS",
    "OPEN",
    "Authenticator",
    "Principal",
    "Refused",
    "actor_of",
    "client_address",
    "current_actor",
    "current_principal",
    "guard",
]

#: Seconds a key (or "no keys in force") is trusted before it is read again.
CACHE_SECONDS = 2.0
AuthMode = Literal["auto", "keys", "none"]


class Principal(msgspec.Struct, frozen=True):
    """The caller: a key, or nobody in particular on an open server."""

    key: ApiKey | None = None

    def allows(self, scope: str) -> bool:
        return self.key is None or self.key.allows(scope)

    @property
    def owner(self) -> uuid.UUID | None:
        """The id tasks this caller submits are stored under."""
        return None if self.key is None else self.key.id

    @property
    def sees_all(self) -> bool:
        """Whether it may see every task (open server, or an ``admin`` key)."""
        return self.key is None or self.key.allows("admin")

    def may_see(self, owner: uuid.UUID | None) -> bool:
        return self.sees_all or (owner is not None and owner == self.owner)


OPEN = Principal()

#: Why a request was refused: no key, a key that is not valid (unknown id, wrong
#: secret, malformed), revoked, expired, or lacking the route's scope.
Reason = Literal["no_key", "bad_key", "revoked", "expired", "scope"]


class Refused(ApiError):
    """A 401 or 403 of the guard, with why, for the audit log.

    ``key`` is the stored key the request named, if any: proven for
    ``revoked``, ``expired`` and ``scope``; only claimed (its id with a wrong
    secret) for ``bad_key``.
    """

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        reason: Reason,
        key: ApiKey | None = None,
        scope: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, kind, message, headers=headers)
        self.reason: Reason = reason
        self.key = key
        self.scope = scope


def _unauthorized(message: str, reason: Reason, key: ApiKey | None = None) -> Refused:
    return Refused(
        401,
        "unauthorized",
        message,
        reason=reason,
        key=key,
        headers={"WWW-Authenticate": 'Bearer realm="qasdk"'},
    )


def _presented(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    authorization = connection.headers.get("authorization")
    if authorization is not None:
        kind, _, token = authorization.partition(" ")
        return token.strip() if kind.lower() == "bearer" else ""
    return connection.headers.get("x-api-key")


class Authenticator:
    """Checks the key a request presents, with a short cache in front of the database."""

    def __init__(self, pool: Pool, mode: AuthMode = "auto") -> None:
        self.pool = pool
        self.mode = mode
        self._in_force: tuple[float, bool] | None = None
        self._keys: dict[uuid.UUID, tuple[float, ApiKey, bytes] | tuple[float, None, None]] = {}

    async def required(self) -> bool:
        """Whether requests need a key now."""
        if self.mode != "auto":
            return self.mode == "keys"
        now = time.monotonic()
        if self._in_force is None or now - self._in_force[0] > CACHE_SECONDS:
            async with self.pool.connection() as conn:
                self._in_force = (now, await store.keys_in_force(conn))
        return self._in_force[1]

    async def _find(self, key_id: uuid.UUID) -> tuple[ApiKey, bytes] | None:
        now = time.monotonic()
        cached = self._keys.get(key_id)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            async with self.pool.connection() as conn:
                found = await store.find_key(conn, key_id)
            if len(self._keys) > 10_000:  # keys probed at random must not grow this forever
                self._keys.clear()
            cached = (now, *found) if found else (now, None, None)
            self._keys[key_id] = cached
        _, key, digest = cached
        return None if key is None or digest is None else (key, digest)

    async def principal(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
        """The caller of ``connection``; raises 401 when a key is needed and not valid."""
        if self.mode == "none":
            return OPEN
        presented = _presented(connection)
        if not presented and not await self.required():
            return OPEN
        if not presented:
            return await self._refuse_missing()
        parsed = parse_key(presented)
        found = await self._find(parsed[0]) if parsed else None
        if parsed is None or found is None or not verify(parsed[1], found[1]):
            raise _unauthorized(
                "the API key is not valid (qasdk keys list shows those in force)",
                "bad_key",
                found[0] if found else None,
            )
        key = found[0]
        if not key.active(datetime.now(timezone.utc)):
            state: Reason = "revoked" if key.revoked_at else "expired"
            raise _unauthorized(f"the API key {key.name!r} is {state}", state, key)
        return Principal(key)

    async def _refuse_missing(self) -> Principal:
        raise _unauthorized(
            "an API key is needed: send 'Authorization: Bearer <key>' (or 'X-API-Key: <key>'); "
            "qasdk keys create NAME --scope read --scope submit makes one",
            "no_key",
        )


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard: the route's scope, or 401/403; leaves the caller in the request state."""
    scope = handler.opt.get("scope", "admin")
    if scope == "public" or connection.scope["path"].startswith(DOCS_PATH):
        return  # the API docs are public: they describe the API, they do not use it
    authenticator: Authenticator = connection.app.state.authenticator
    try:
        principal = await authenticator.principal(connection)
        if not principal.allows(scope):
            assert principal.key is not None
            raise Refused(
                403,
                "forbidden",
                f"the API key {principal.key.name!r} lacks the {scope!r} scope "
                f"(it has: {', '.join(principal.key.scopes)})",
                reason="scope",
                key=principal.key,
                scope=scope,
            )
    except Refused as refused:
        denials: Denials | None = getattr(connection.app.state, "denials", None)
        if denials is not None:
            await denials.note(refused, connection)
        raise
    connection.state.principal = principal


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The address the request came from (the peer's: a proxy's header is not trusted)."""
    client = connection.client
    return client.host if client else None


def current_principal(request: Request[Any, Any, Any]) -> Principal:
    """The ``principal`` dependency: who the guard let in."""
    principal: Principal = getattr(request.state, "principal", OPEN)
    return principal


def current_actor(request: Request[Any, Any, Any]) -> audit.Actor:
    """The ``actor`` dependency: the caller as the audit log names it (key, address)."""
    return actor_of(request, current_principal(request))


def actor_of(request: Request[Any, Any, Any], principal: Principal) -> audit.Actor:
    """``principal``, who made ``request``, as the audit log names it."""
    key = principal.key
    client = client_address(request)
    if key is None:
        return audit.Actor(name=audit.OPEN, client=client)
    return audit.Actor(name=key.name, key_id=key.id, client=client)
