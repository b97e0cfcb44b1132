"""``GET /api/breakers``: the tools whose circuit breaker is open, half-open or has failures."""

from __future__ import annotations

import msgspec
from litestar import get

from qasdk.store import breakers as store
from qasdk_server.auth import Principal
from qasdk_server.errors import error_responses
from qasdk_server.routes.methods import BreakerView
from qasdk_server.state import ServerState

__all__ = ["list_breakers"]


class ToolBreaker(BreakerView, kw_only=True):
    tool: str


class BreakerList(msgspec.Struct):
    breakers: list[ToolBreaker]
    #: How many are open or half-open (calls fail at once, but for a probe).
    open: int


@get(
    "/api/breakers",
    summary="Circuit breakers that are open or have failures",
    responses=error_responses(),
    opt={"scope": "read"},
    tags=("tools",),
)
async def list_breakers(server: ServerState, principal: Principal) -> BreakerList:
    """The ``breaker`` middleware's state, shared by every worker; closed ones without failures
    are left out. A key limited to some tools sees only theirs."""
    async with server.pool.connection() as conn:
        found = await store.listed(conn)
    key = principal.key
    shown = []
    for tool, breaker in found:
        method = server.registry.get(tool)
        if key is not None and key.limits_tools and (method is None or not key.may_run(method)):
            continue
        shown.append(
            ToolBreaker(
                tool=tool,
                state=breaker.state,
                failures=breaker.failures,
                calls=len(breaker.outcomes),
                opened_at=breaker.opened_at,
                retry_at=breaker.retry_at,
            )
        )
    return BreakerList(breakers=shown, open=sum(1 for b in shown if b.state != "closed"))
