"""What a webhook POSTs, and how it is signed.

The signature is HMAC-SHA256 over ``<timestamp>.<body>`` with ``webhooks.secret``:
the timestamp is signed too, so a receiver that refuses old timestamps is safe
from replays of a captured request.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

import msgspec

from qasdk.store.webhooks import Due

__all__ = ["WebhookPayload", "payload_of", "sign"]


class WebhookPayload(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body: the task's summary once it has ended."""

    event: str = "task.finished"
    task_id: uuid.UUID
    status: str
    kind: str
    result: Any = None
    error: Any = None
    created_at: datetime
    completed_at: datetime | None = None
    parent_id: uuid.UUID | None = None
    subtask_id: str | None = None


def payload_of(due: Due) -> bytes:
    """The body of ``due``'s POST, as JSON bytes (the same bytes that are signed)."""
    return msgspec.json.encode(
        WebhookPayload(
            task_id=due.task_id,
            status=due.status,
            kind=due.kind,
            result=due.result,
            error=due.error,
            created_at=due.created_at,
            completed_at=due.completed_at,
            parent_id=due.parent_id,
            subtask_id=due.subtask_id,
        )
    )


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Qasdk-Signature``: ``sha256=`` and the hex HMAC of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
