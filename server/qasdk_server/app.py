"""The Litestar application: routes, MCP at ``/mcp``, errors, limits, OpenAPI at ``/schema``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from qasdk.audit.entry import Actor
from qasdk_server.auth import Authenticator, Principal, actor_of, current_principal, guard
from qasdk_server.body import request_class_for
from qasdk_server.console import console_assets, home
from qasdk_server.denials import Denials
from qasdk_server.errors import exception_handlers
from qasdk_server.mcp.http import McpHttp
from qasdk_server.query import RejectUnknownQuery
from qasdk_server.reload import Reloader
from qasdk_server.routes.approvals import decide_approval, list_approvals
from qasdk_server.routes.audit import list_audit
from qasdk_server.routes.breakers import list_breakers
from qasdk_server.routes.config import get_config, reload_config
from qasdk_server.routes.dead_letters import discard_task, retry_task
from qasdk_server.routes.docs import docs_assets, openapi_config
from qasdk_server.routes.events import task_events
from qasdk_server.routes.health import health
from qasdk_server.routes.keys import KeyController
from qasdk_server.routes.me import whoami
from qasdk_server.routes.methods import get_method, list_methods
from qasdk_server.routes.metrics import metrics
from qasdk_server.routes.tasks import TaskController
from qasdk_server.routes.workers import list_workers
from qasdk_server.sites import SiteGuard, default_hosts
from qasdk_server.state import ServerState

__all__ = ["create_app"]


def _version() -> str:
    try:
        return version("qasdk")
    except PackageNotFoundError:
        return "0"


def create_app(state: ServerState, reloader: Reloader | None = None) -> Litestar:
    """The HTTP API over ``state`` (pool, registry, events) and its ``reloader``."""
    reloader = reloader or Reloader(state)

    def provide_server() -> ServerState:
        return state

    def provide_reloader() -> Reloader:
        return reloader

    # Chained (principal after server, actor after principal) on purpose: Litestar resolves
    # the independent dependencies of a request concurrently, in a task group of their own
    # per request, which cost a submit ~10 % of its CPU; in a chain they are plain calls.
    def provide_principal(request: Request[Any, Any, Any], server: ServerState) -> Principal:
        return current_principal(request)

    def provide_actor(request: Request[Any, Any, Any], principal: Principal) -> Actor:
        return actor_of(request, principal)

    server = state.config.server
    hosts = server.allowed_hosts
    if hosts is None:
        hosts = default_hosts(server.host)
    denials = Denials(state.pool, secrets=lambda: state.config.secrets())
    mcp = McpHttp(state, denials, version=_version())
    return Litestar(
        route_handlers=[
            TaskController,
            KeyController,
            task_events,
            list_methods,
            get_method,
            list_breakers,
            list_approvals,
            decide_approval,
            retry_task,
            discard_task,
            health,
            metrics,
            get_config,
            reload_config,
            list_audit,
            list_workers,
            whoami,
            home,
            docs_assets(),
            console_assets(),
            mcp.route(),
        ],
        dependencies={
            "server": Provide(provide_server, sync_to_thread=False),
            "reloader": Provide(provide_reloader, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "actor": Provide(provide_actor, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
        guards=[guard],
        state=State(
            {
                "authenticator": Authenticator(state.pool, server.auth),
                "denials": denials,
                "mcp": mcp,
            }
        ),
        on_startup=[denials.start],
        on_shutdown=[denials.close],
        lifespan=[mcp.lifespan],
        # Read when the app is built: a reload cannot change it (reload.py says so).
        request_max_body_size=state.config.limits.request_body,
        request_class=request_class_for(lambda: state.config.limits),
        before_request=RejectUnknownQuery(),
        middleware=[DefineMiddleware(SiteGuard, hosts=hosts, origins=server.cors_origins)],
        cors_config=CORSConfig(allow_origins=list(server.cors_origins))
        if server.cors_origins
        else None,
        openapi_config=openapi_config(_version()),
        logging_config=None,
        debug=False,
    )
