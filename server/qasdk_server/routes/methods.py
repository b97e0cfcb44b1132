"""``/api/methods``: the registered tools, from the server's in-memory registry."""

from __future__ import annotations

import msgspec
from litestar import get

from qasdk._excerpt import excerpt
from qasdk.models import MethodMetadata
from qasdk_server.errors import ApiError, error_responses
from qasdk_server.state import ServerState

__all__ = ["get_method", "list_methods"]


class MethodList(msgspec.Struct):
    methods: list[MethodMetadata]
    count: int


@get(
    "/api/methods",
    summary="List registered tools",
    responses=error_responses(),
    opt={"scope": "read"},
)
async def list_methods(server: ServerState) -> MethodList:
    methods = sorted(server.registry.methods.values(), key=lambda m: m.name)
    return MethodList(methods=methods, count=len(methods))


@get(
    "/api/methods/{name:str}",
    summary="Read a registered tool",
    responses=error_responses(404),
    opt={"scope": "read"},
)
async def get_method(name: str, server: ServerState) -> MethodMetadata:
    method = await server.registry.find(name)
    if method is None:
        hint = server.registry.suggest(name)
        raise ApiError(404, "not_found", f"no registered tool named {excerpt(name)!r}{hint}")
    return method
