"""What request handlers share: configuration, database pool, registry, events."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from qasdk.config import Config
from qasdk.store.connection import Pool
from server.events import TaskEvents
from server.metrics import Metrics
from server.registry import MethodRegistry

__all__ = ["ServerState"]


class ServerState:
    """One per server process; handed to handlers as the ``server`` dependency."""

    def __init__(
        self,
        *,
        config: Config,
        url: str,
        pool: Pool,
        registry: MethodRegistry,
        events: TaskEvents,
    ) -> None:
        self.config = config
        self.url = url
        self.pool = pool
        self.registry = registry
        self.events = events
        self.started_at = datetime.now(timezone.utc)
        self.model_check: tuple[float, dict[str, Any]] | None = None
        #: Set by the embedded worker, when there is one.
        self.worker: Any = None
        self.metrics = Metrics()
        #: The hot-reload machinery (a ``server.reload.Reloader``), once started.
        self.reloader: Any = None

    def uptime(self) -> float:
        return (datetime.now(timezone.utc) - self.started_at).total_seconds()

    def cached_model_check(self, max_age: float) -> dict[str, Any] | None:
        if self.model_check and time.monotonic() - self.model_check[0] < max_age:
            return self.model_check[1]
        return None
