"""What request handlers share: configuration, database pool, registry, events."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from qasdk.config import Config
from qasdk.store.connection import Pool
from qasdk_server.events import TaskEvents
from qasdk_server.metrics import Metrics
from qasdk_server.registry import MethodRegistry

if TYPE_CHECKING:
    from qasdk_server.tasks.worker import Worker

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
        #: The embedded worker, when there is one.
        self.worker: Worker | None = None
        self.metrics = Metrics()

    @property
    def running_tasks(self) -> int:
        """Tasks the embedded worker runs now."""
        return len(self.worker.runner.running) if self.worker is not None else 0

    def uptime(self) -> float:
        return (datetime.now(timezone.utc) - self.started_at).total_seconds()

    def cached_model_check(self, max_age: float) -> dict[str, Any] | None:
        if self.model_check and time.monotonic() - self.model_check[0] < max_age:
            return self.model_check[1]
        return None
