"""The ``tool_results`` table: cached results of tools that declare ``cache_ttl``.

Keyed by tool and canonical arguments; a row is valid for the tool version
(registration and code) that made it, until it expires. Shared by every worker.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from qasdk.store._sql import Conn, execute, fetch_one

__all__ = ["arguments_hash", "delete_expired", "lookup", "store"]


def arguments_hash(arguments: Any) -> str:
    """sha256 of the arguments as canonical JSON (sorted keys)."""
    return hashlib.sha256(msgspec.json.encode(arguments, order="sorted")).hexdigest()


async def lookup(conn: Conn, tool: str, key: str, version: str) -> tuple[bool, Any]:
    """``(True, result)`` for a live entry, ``(False, None)`` otherwise."""
    row = await fetch_one(
        conn, "cached_result", {"tool": tool, "arguments_hash": key, "version": version}
    )
    return (False, None) if row is None else (True, row["result"])


async def store(conn: Conn, tool: str, key: str, version: str, result: Any, ttl: float) -> None:
    await execute(
        conn,
        "store_result",
        {
            "tool": tool,
            "arguments_hash": key,
            "version": version,
            "result": msgspec.json.encode(result).decode(),  # bounded by the executor
            "ttl": ttl,
        },
    )


async def delete_expired(conn: Conn) -> int:
    cursor = await execute(conn, "delete_expired_results")
    return cursor.rowcount
