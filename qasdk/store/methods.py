"""The ``registered_methods`` table: read it, and sync a registry into it.

A sync compares what the sources define with what the table holds and writes
only the difference, in one transaction: new tools are inserted, changed ones
updated, identical ones left alone (their ``updated_at`` does not move), and,
with ``prune``, tools no longer defined are deleted. A sync that writes
anything appends an audit row (who, and each change: see
:mod:`qasdk.audit.diff`) in that same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec
import psycopg
from psycopg.rows import DictRow

from qasdk.audit.diff import bounded_names, sync_changes
from qasdk.audit.entry import Actor
from qasdk.models import MethodConfig, MethodMetadata, MethodParameter
from qasdk.registration.types import CoercionError, coerce, parameter_schema
from qasdk.security.signing import SigningKey, sign, verify
from qasdk.store import audit
from qasdk.store._sql import execute
from qasdk.store.migrate import migrate

__all__ = [
    "ResignReport",
    "SyncPlan",
    "SyncReport",
    "delete_methods",
    "get_method",
    "list_methods",
    "list_signed_methods",
    "parameter_json",
    "plan_sync",
    "resign_methods",
    "sign_methods",
    "sync_methods",
    "upsert_methods",
]

logger = logging.getLogger("qasdk.store")
_COMPARED = tuple(f for f in MethodConfig.__struct_fields__ if f != "name")


class SyncPlan(msgspec.Struct, kw_only=True):
    """What a sync does: tool names per action, and the fields each update changes."""

    created: list[str] = []
    updated: dict[str, list[str]] = {}
    unchanged: list[str] = []
    deleted: list[str] = []
    #: In the database but no longer defined; deleted only with ``prune``.
    stale: list[str] = []
    #: The MCP server of each remote tool the plan names (what changed on which server).
    servers: dict[str, str] = {}

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


class SyncReport(msgspec.Struct, kw_only=True):
    plan: SyncPlan
    dry_run: bool
    rows_written: int = 0
    migrations_applied: list[str] = []
    #: Tools whose signature this sync wrote (new, changed, or not signed with the key).
    signed: list[str] = []


class ResignReport(msgspec.Struct, kw_only=True):
    """A key rotation: rows signed with the new key, and rows left refused."""

    resigned: list[str] = []
    #: Rows whose signature the old key did not verify: not re-signed, still not loaded.
    refused: list[str] = []


def plan_sync(
    existing: Iterable[MethodConfig], desired: Iterable[MethodConfig], *, prune: bool = False
) -> SyncPlan:
    """Compare the table with the sources; pure, so it is the same for a dry run."""
    current = {m.name: m for m in existing}
    plan = SyncPlan()
    for method in current.values():
        if method.endpoint is not None:
            plan.servers[method.name] = method.endpoint.server
    wanted = set()
    for config in desired:
        wanted.add(config.name)
        if config.endpoint is not None:
            plan.servers[config.name] = config.endpoint.server
        before = current.get(config.name)
        if before is None:
            plan.created.append(config.name)
            continue
        changed = [f for f in _COMPARED if getattr(before, f) != getattr(config, f)]
        if changed:
            plan.updated[config.name] = changed
        else:
            plan.unchanged.append(config.name)
    gone = sorted(set(current) - wanted)
    if prune:
        plan.deleted = gone
    else:
        plan.stale = gone
    return plan


def parameter_json(param: MethodParameter) -> dict[str, Any]:
    """A parameter as the table stores it: seed 000's ``MethodParameter`` in full.

    Other services read ``registered_methods``: every field is there, ``required``
    included, and ``default`` whenever there is one (``null`` is a default).
    """
    data: dict[str, Any] = {
        "name": param.name,
        "type": param.type,
        "description": param.description,
        "required": param.required,
    }
    if param.has_default:
        data["default"] = msgspec.to_builtins(param.default)
    if param.schema:
        data["schema"] = param.schema
    return data


def _row(config: MethodConfig) -> dict[str, object]:
    return {
        "name": config.name,
        "description": config.description,
        "parameters_json": [parameter_json(p) for p in config.parameters],
        "return_type": config.return_type,
        "module_path": config.module_path,
        "function_name": config.function_name,
        "timeout": config.timeout,
        "tags": list(config.tags),
        "permissions": list(config.permissions),
        "type": config.type,
        "endpoint": msgspec.to_builtins(config.endpoint) if config.endpoint else None,
        "policy": None if config.policy is None else msgspec.to_builtins(config.policy),
    }


def _metadata(row: dict[str, Any]) -> MethodMetadata:
    row.pop("signature", None)
    # TIMESTAMP columns (seed 000's schema) hold UTC: every session runs in UTC.
    for column in ("created_at", "updated_at"):
        value = row.get(column)
        if isinstance(value, datetime) and value.tzinfo is None:
            row[column] = value.replace(tzinfo=timezone.utc)
    method = msgspec.convert(row, MethodMetadata)
    return msgspec.structs.replace(method, parameters=tuple(map(_typed_default, method.parameters)))


def _typed_default(param: MethodParameter) -> MethodParameter:
    """Give a default back its declared type.

    JSONB stores numbers as decimals: ``1.8e16`` comes back as the integer
    ``18014400656965630``. Coercing to the parameter's schema restores the float,
    so a stored tool compares equal to its source and is not rewritten.
    """
    if not param.has_default:
        return param
    try:
        default = coerce(param.default, parameter_schema(param))
    except CoercionError:
        return param
    if default == param.default and type(default) is type(param.default):
        return param
    return msgspec.structs.replace(param, default=default)


async def list_methods(conn: psycopg.AsyncConnection[DictRow]) -> list[MethodMetadata]:
    """Every registered tool, by name."""
    rows = await (await execute(conn, "list_methods")).fetchall()
    return [_metadata(row) for row in rows]


async def list_signed_methods(
    conn: psycopg.AsyncConnection[DictRow],
) -> list[tuple[MethodMetadata, str | None]]:
    """Every registered tool with the signature stored beside it (``None``: unsigned)."""
    rows = await (await execute(conn, "list_methods")).fetchall()
    found = []
    for row in rows:
        signature = row.pop("signature", None)
        found.append((_metadata(row), signature))
    return found


async def sign_methods(
    conn: psycopg.AsyncConnection[DictRow],
    key: SigningKey,
    names: Iterable[str] | None = None,
) -> list[str]:
    """Sign the rows ``names`` (default: all) as they are stored; return those re-signed.

    The signature covers the row as it is read back, the way servers read it,
    so values JSONB normalises (numbers) verify exactly.
    """
    wanted = None if names is None else set(names)
    signatures = [
        {"name": method.name, "signature": sign(key, method.to_config())}
        for method, signature in await list_signed_methods(conn)
        if (wanted is None or method.name in wanted)
        and not verify(key, method.to_config(), signature)
    ]
    if not signatures:
        return []
    payload = msgspec.json.encode(signatures).decode()
    rows = await (await execute(conn, "sign_methods", {"signatures": payload})).fetchall()
    return sorted(row["name"] for row in rows)


async def resign_methods(
    conn: psycopg.AsyncConnection[DictRow],
    old: SigningKey,
    new: SigningKey,
    *,
    actor: Actor | None = None,
) -> ResignReport:
    """Re-sign every row the ``old`` key verifies with ``new``, in one transaction.

    The rotation is audited (``signing_key.rotate``) as done by ``actor``
    (default: this machine's user, ``sdk:<user>@<host>``).
    """
    report = ResignReport()
    async with conn.transaction():
        await migrate(conn)
        await execute(conn, "lock_registry")
        signatures = []
        for method, signature in await list_signed_methods(conn):
            config = method.to_config()
            if verify(new, config, signature):
                continue  # a rotation interrupted after the database committed
            if not verify(old, config, signature):
                report.refused.append(method.name)
                continue
            signatures.append({"name": method.name, "signature": sign(new, config)})
            report.resigned.append(method.name)
        if signatures:
            payload = msgspec.json.encode(signatures).decode()
            await execute(conn, "sign_methods", {"signatures": payload})
        detail = {
            "resigned": len(report.resigned),
            "refused": bounded_names(report.refused),
            "refused_count": len(report.refused),
        }
        await audit.record(
            conn, actor=actor or Actor.local("sdk"), action="signing_key.rotate", detail=detail
        )
    return report


async def get_method(conn: psycopg.AsyncConnection[DictRow], name: str) -> MethodMetadata | None:
    row = await (await execute(conn, "get_method", {"name": name})).fetchone()
    return _metadata(row) if row else None


async def upsert_methods(
    conn: psycopg.AsyncConnection[DictRow], configs: Sequence[MethodConfig]
) -> dict[str, bool]:
    """Insert or update tools by name; return ``{name: inserted}`` for rows written."""
    if not configs:
        return {}
    payload = msgspec.json.encode([_row(c) for c in configs]).decode()
    rows = await (await execute(conn, "upsert_methods", {"methods": payload})).fetchall()
    return {row["name"]: row["inserted"] for row in rows}


async def delete_methods(conn: psycopg.AsyncConnection[DictRow], names: Sequence[str]) -> list[str]:
    if not names:
        return []
    rows = await (await execute(conn, "delete_methods", {"names": list(names)})).fetchall()
    return [row["name"] for row in rows]


async def sync_methods(
    conn: psycopg.AsyncConnection[DictRow],
    configs: Sequence[MethodConfig],
    *,
    prune: bool = False,
    dry_run: bool = False,
    key: SigningKey | None = None,
    actor: Actor | None = None,
) -> SyncReport:
    """Make the table match ``configs``: one transaction, only the difference written.

    A dry run takes the same path and rolls everything back, so its plan is
    exactly what a real sync would do. With ``key``, every row of ``configs``
    ends signed with it (rows ``configs`` does not define are never signed: a
    row changed by hand must not become trusted because a sync ran). A sync
    that writes anything is audited as done by ``actor`` (default: this
    machine's user, ``sdk:<user>@<host>``).
    """
    signed: list[str] = []
    async with conn.transaction(force_rollback=dry_run):
        applied = await migrate(conn)
        await execute(conn, "lock_registry")
        existing = await list_methods(conn)
        plan = plan_sync(existing, configs, prune=prune)
        written: dict[str, bool] = {}
        deleted: list[str] = []
        for name in plan.created:
            logger.debug("sync: create %r", name)
        for name, fields in plan.updated.items():
            logger.debug("sync: update %r (%s)", name, ", ".join(fields))
        for name in plan.deleted:
            logger.debug("sync: delete %r", name)
        if not dry_run:
            to_write = set(plan.created) | set(plan.updated)
            written = await upsert_methods(conn, [c for c in configs if c.name in to_write])
            deleted = await delete_methods(conn, plan.deleted)
            if key is not None:
                signed = await sign_methods(conn, key, [c.name for c in configs])
            if plan.changes or signed:
                before = {m.name: m.to_config() for m in existing}
                detail = sync_changes(plan, before, {c.name: c for c in configs})
                detail.update(prune=prune, signed=len(signed))
                await audit.record(
                    conn, actor=actor or Actor.local("sdk"), action="sync", detail=detail
                )
    logger.info(
        "sync%s: %d created, %d updated, %d unchanged, %d deleted",
        " (dry run)" if dry_run else "",
        len(plan.created),
        len(plan.updated),
        len(plan.unchanged),
        len(plan.deleted),
    )
    return SyncReport(
        plan=plan,
        dry_run=dry_run,
        rows_written=len(written) + len(deleted),
        migrations_applied=[] if dry_run else [f"{m.version:04d}_{m.name}" for m in applied],
        signed=signed,
    )
