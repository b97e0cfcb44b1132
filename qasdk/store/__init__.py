"""PostgreSQL: the embedded server, connections, migrations, and the registry table."""

from qasdk.store.connection import connect, resolve_url
from qasdk.store.embedded import ensure_embedded, stop_embedded
from qasdk.store.methods import (
    SyncPlan,
    SyncReport,
    delete_methods,
    get_method,
    list_methods,
    plan_sync,
    sync_methods,
    upsert_methods,
)
from qasdk.store.migrate import migrate

__all__ = [
    "SyncPlan",
    "SyncReport",
    "connect",
    "delete_methods",
    "ensure_embedded",
    "get_method",
    "list_methods",
    "migrate",
    "plan_sync",
    "resolve_url",
    "stop_embedded",
    "sync_methods",
    "upsert_methods",
]
