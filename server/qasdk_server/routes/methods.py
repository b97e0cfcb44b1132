"""``/api/methods``: the registered tools, from the server's in-memory registry."""

from __future__ import annotations

from datetime import datetime

import msgspec
import psycopg
import psycopg_pool
from litestar import get

from qasdk._excerpt import excerpt
from qasdk.errors import QasdkError
from qasdk.models import MethodMetadata
from qasdk.store import breakers
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError, error_responses
from qasdk_server.quota import refuse_tool
from qasdk_server.state import ServerState

__all__ = ["get_method", "list_methods"]


class RefusedMethod(msgspec.Struct):
    """A row of the registry that is not loaded, and why (unsigned, tampered, outside roots)."""

    name: str
    reason: str


class BreakerView(msgspec.Struct, omit_defaults=True):
    """A tool's circuit breaker (the ``breaker`` middleware), shared by every worker."""

    state: str
    #: Failed calls among the last ``calls`` it remembers.
    failures: int
    calls: int
    opened_at: datetime | None = None
    #: Open: when a probe call may go; half-open: when the probe is presumed lost.
    retry_at: datetime | None = None


class MethodDetail(MethodMetadata, frozen=True, kw_only=True, omit_defaults=True):
    """A tool, and its circuit breaker when it has one."""

    breaker: BreakerView | None = None


class MethodList(msgspec.Struct, omit_defaults=True):
    methods: list[MethodMetadata]
    count: int
    #: Rows not loaded; absent when there are none.
    refused: list[RefusedMethod] = []


@get(
    "/api/methods",
    summary="List registered tools",
    responses=error_responses(),
    opt={"scope": "read"},
)
async def list_methods(server: ServerState, principal: Principal) -> MethodList:
    """The tools (those the caller's API key may run when it is limited to some)."""
    key = principal.key
    methods = sorted(
        (m for m in server.registry.methods.values() if key is None or key.may_run(m)),
        key=lambda m: m.name,
    )
    # Why a row is refused is the operators' business (an admin key, or an open server).
    refused = [
        RefusedMethod(n, r)
        for n, r in sorted(server.registry.refused.items())
        if principal.sees_all
    ]
    return MethodList(methods=methods, count=len(methods), refused=refused)


@get(
    "/api/methods/{name:str}",
    summary="Read a registered tool",
    responses=error_responses(403, 404),
    opt={"scope": "read"},
)
async def get_method(name: str, server: ServerState, principal: Principal) -> MethodDetail:
    method = await server.registry.find(name)
    if method is None:
        if name in server.registry.refused:
            reason = server.registry.refused[name]
            raise ApiError(404, "not_found", f"tool {name!r} is not loaded: {reason}")
        hint = server.registry.suggest(name)
        raise ApiError(404, "not_found", f"no registered tool named {excerpt(name)!r}{hint}")
    if principal.key is not None and not principal.key.may_run(method):
        raise refuse_tool(principal.key, method.name)
    try:
        async with server.pool.connection() as conn:
            breaker = await breakers.find(conn, method.name)
    except (QasdkError, psycopg.Error, psycopg_pool.PoolTimeout):  # the registry still answers
        breaker = None
    view = None
    if breaker is not None:
        view = BreakerView(
            state=breaker.state,
            failures=breaker.failures,
            calls=len(breaker.outcomes),
            opened_at=breaker.opened_at,
            retry_at=breaker.retry_at,
        )
    fields = {f: getattr(method, f) for f in MethodMetadata.__struct_fields__}
    return MethodDetail(**fields, breaker=view)
