"""qasdk's task server: the REST API, the queue's workers, the agent and the tool processes.

Installed with ``pip install 'qasdk[server]'`` and started by ``qasdk serve``
and ``qasdk worker``. To run it from Python (an embedding, a test)::

    from qasdk import load_config
    from qasdk_server import run_server

    asyncio.run(run_server(load_config(), host="127.0.0.1", port=8000))

Names load on first use: ``import qasdk_server`` imports no web framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qasdk_server.app import create_app
    from qasdk_server.serve import run_server, run_worker
    from qasdk_server.state import ServerState

__all__ = ["ServerState", "create_app", "run_server", "run_worker"]

_LAZY = {
    "ServerState": "qasdk_server.state",
    "create_app": "qasdk_server.app",
    "run_server": "qasdk_server.serve",
    "run_worker": "qasdk_server.serve",
}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'qasdk_server' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
