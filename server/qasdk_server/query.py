"""Query parameters a route does not declare are refused, not ignored.

``GET /api/tasks?offset=20`` answered the first page as if ``offset`` meant
nothing, and ``?method=add`` listed every task: a client could not tell a filter
that works from one that does nothing. Litestar parses the parameters each
handler declares (its signature and its dependencies': the route's kwargs model)
and ignores the rest. This ``before_request`` hook reads the same models and
answers 400 naming the unknown parameters and the accepted ones, for every
route, including routes added later.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request
from litestar.handlers import BaseRouteHandler
from litestar.routes import HTTPRoute

from qasdk._excerpt import excerpt
from qasdk.models import Problem
from qasdk_server.errors import ApiError

__all__ = ["RejectUnknownQuery"]

#: Unknown names an error lists, at most (a query string may hold thousands).
_LISTED = 5


class RejectUnknownQuery:
    """``before_request``: 400 for a query parameter the route's handler does not declare."""

    def __init__(self) -> None:
        # Handler -> the names it accepts, or None when it takes the whole query.
        self._accepted: dict[BaseRouteHandler, frozenset[str] | None] = {}

    def _load(self, app: Litestar) -> None:
        accepted: dict[BaseRouteHandler, set[str] | None] = {}
        for route in app.routes:
            if not isinstance(route, HTTPRoute):
                continue
            for handler, model in route.route_handler_map.values():
                names = accepted.setdefault(handler, set())
                if names is None or "query" in model.expected_reserved_kwargs:
                    accepted[handler] = None
                else:
                    names.update(p.field_alias for p in model.expected_query_params)
        self._accepted = {h: None if n is None else frozenset(n) for h, n in accepted.items()}

    async def __call__(self, request: Request[Any, Any, Any]) -> None:
        if not request.scope["query_string"]:
            return
        handler = request.route_handler
        if handler not in self._accepted:
            self._load(request.app)
        accepted = self._accepted.get(handler)
        if accepted is None:
            return
        unknown = sorted(set(request.query_params) - accepted)
        if unknown:
            raise _unknown(unknown, sorted(accepted))


def _unknown(unknown: list[str], accepted: list[str]) -> ApiError:
    names = ", ".join(repr(excerpt(name)) for name in unknown[:_LISTED])
    if len(unknown) > _LISTED:
        names += f" and {len(unknown) - _LISTED} more"
    plural = "s" if len(unknown) > 1 else ""
    hint = (
        f"accepted: {', '.join(accepted)}" if accepted else "this route takes no query parameters"
    )
    return ApiError(
        400,
        "invalid_request",
        f"unknown query parameter{plural} {names}; {hint}",
        [
            Problem(field=excerpt(name), reason=f"unknown query parameter; {hint}")
            for name in unknown[:_LISTED]
        ],
    )
