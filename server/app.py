"""The Litestar application: routes, error handling, OpenAPI at ``/schema``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from server.errors import exception_handlers
from server.routes.config import get_config, reload_config
from server.routes.events import task_events
from server.routes.health import health
from server.routes.methods import get_method, list_methods
from server.routes.metrics import metrics
from server.routes.tasks import cancel_task, get_task, get_trace, list_tasks, submit_task
from server.state import ServerState

__all__ = ["create_app"]


def _version() -> str:
    try:
        return version("qasdk")
    except PackageNotFoundError:
        return "0"


def create_app(state: ServerState) -> Litestar:
    """The HTTP API over ``state`` (pool, registry, events)."""

    def provide_server() -> ServerState:
        return state

    return Litestar(
        route_handlers=[
            submit_task,
            list_tasks,
            get_task,
            cancel_task,
            get_trace,
            task_events,
            list_methods,
            get_method,
            health,
            metrics,
            get_config,
            reload_config,
        ],
        dependencies={"server": Provide(provide_server, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        openapi_config=OpenAPIConfig(
            title="qasdk",
            version=_version(),
            description="Submit tasks to qwen-agent with your registered tools.",
            path="/schema",
        ),
        logging_config=None,
        debug=False,
    )
