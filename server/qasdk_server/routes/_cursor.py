"""Keyset cursors: where a page ended, as an opaque string the client hands back.

A cursor is the (time, id) of the last row of a page, in base64: the next page
is the rows strictly before it in ``(time, id) DESC`` order, so rows written
meanwhile neither repeat nor shift the pages (``GET /api/tasks``,
``GET /api/audit``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from qasdk_server.routes._lookup import invalid

__all__ = ["decode_cursor", "encode_cursor", "page"]

T = TypeVar("T")


def encode_cursor(at: datetime, row_id: object) -> str:
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parse_id: Callable[[str], T]) -> tuple[datetime, T]:
    """The (time, id) of ``cursor``; 400 for anything this API did not return.

    ``parse_id`` raises ``ValueError`` for an id that is not of the page's rows.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, row_id = raw.partition("|")
        return datetime.fromisoformat(at), parse_id(row_id)
    except (ValueError, UnicodeDecodeError):
        raise invalid("is not a cursor this API returned", "cursor") from None


def page(
    rows: Sequence[T], limit: int, position: Callable[[T], tuple[datetime, object]]
) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (fetched as ``limit + 1``) and the next page's cursor.

    ``position`` is a row's (time, id); there is a next page only when the extra row came.
    """
    shown = list(rows[:limit])
    if len(rows) <= limit or not shown:
        return shown, None
    return shown, encode_cursor(*position(shown[-1]))
