"""What a sync changed, for its audit row: tool names, and each changed field's old → new.

A sync may touch thousands of tools with long descriptions and schemas, and
an audit row must stay small: names are listed up to :data:`MAX_NAMES` per
kind (``counts`` has the totals), each old or new value is kept up to
:data:`VALUE_BYTES` as JSON (beyond, a marker with its size and a preview),
and once :data:`DIFF_BYTES` of values are spent, later changed fields are
named with ``null`` (changed; values not kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from qasdk.models import MethodConfig
from qasdk.store.values import storable

if TYPE_CHECKING:
    from qasdk.store.methods import SyncPlan

__all__ = ["DIFF_BYTES", "MAX_NAMES", "VALUE_BYTES", "bounded_names", "sync_changes"]

MAX_NAMES = 100
VALUE_BYTES = 1024
DIFF_BYTES = 32_768


def bounded_names(names: Sequence[str]) -> list[str]:
    """The first :data:`MAX_NAMES` names (the count says how many there were)."""
    return list(names[:MAX_NAMES])


def _bounded(value: Any) -> tuple[Any, int]:
    """``value`` as JSON (within :data:`VALUE_BYTES`), and the bytes it costs."""
    encoded = msgspec.json.encode(storable(msgspec.to_builtins(value), max_bytes=VALUE_BYTES))
    return msgspec.json.decode(encoded), len(encoded)


def sync_changes(
    plan: SyncPlan,
    before: Mapping[str, MethodConfig],
    after: Mapping[str, MethodConfig],
) -> dict[str, Any]:
    """The audit detail of ``plan``: created, updated (field: old → new), deleted, counts."""
    detail: dict[str, Any] = {
        "counts": {
            "created": len(plan.created),
            "updated": len(plan.updated),
            "deleted": len(plan.deleted),
            "unchanged": len(plan.unchanged),
        },
        "created": bounded_names(plan.created),
        "deleted": bounded_names(plan.deleted),
    }
    budget = DIFF_BYTES
    updated: dict[str, dict[str, Any]] = {}
    for name in bounded_names(list(plan.updated)):
        old, new = before.get(name), after.get(name)
        changes: dict[str, Any] = {}
        for field in plan.updated[name]:
            if old is None or new is None or budget <= 0:
                changes[field] = None
                continue
            old_value, old_cost = _bounded(getattr(old, field))
            new_value, new_cost = _bounded(getattr(new, field))
            budget -= old_cost + new_cost
            changes[field] = {"old": old_value, "new": new_value}
        updated[name] = changes
    detail["updated"] = updated
    return detail
