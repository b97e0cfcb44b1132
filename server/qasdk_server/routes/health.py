"""``/health``: is the database reachable, is the model endpoint up, what runs here."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Literal

import httpx
import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from qasdk.redaction import mask_url, redact
from qasdk.store.connection import ping
from qasdk_server.errors import error_responses
from qasdk_server.state import ServerState

__all__ = ["health"]

MODEL_CHECK_MAX_AGE = 5.0


class Check(msgspec.Struct, omit_defaults=True):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None
    url: str | None = None


class RegistryInfo(msgspec.Struct):
    tools: int
    version: int
    loaded_at: datetime | None


class WorkerInfo(msgspec.Struct):
    embedded: bool
    running_tasks: int


class Health(msgspec.Struct):
    status: Literal["ok", "degraded", "unavailable"]
    database: Check
    model: Check
    registry: RegistryInfo
    worker: WorkerInfo
    uptime_seconds: float


async def _database(server: ServerState) -> Check:
    started = time.perf_counter()
    try:
        async with server.pool.connection(timeout=2.0) as conn:
            await ping(conn)
    except Exception as exc:  # any failure means "not usable now"
        return Check(
            ok=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    return Check(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


async def _model(server: ServerState) -> Check:
    """GET <model_server>/models, cached for a few seconds (health checks come often)."""
    cached = server.cached_model_check(MODEL_CHECK_MAX_AGE)
    if cached is not None:
        return msgspec.convert(cached, Check)
    model = server.config.model
    url = f"{model.model_server}/models"
    headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(url, headers=headers)
        ok = response.status_code < 500
        check = Check(
            ok=ok,
            url=mask_url(model.model_server),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            error=None if ok else f"HTTP {response.status_code}",
        )
    except httpx.HTTPError as exc:
        error = redact(f"{type(exc).__name__}: {exc}", server.config.secrets())
        check = Check(ok=False, url=mask_url(model.model_server), error=error)
    server.model_check = (time.monotonic(), msgspec.to_builtins(check))
    return check


@get(
    "/health",
    opt={"scope": "public"},
    summary="Health of the server and what it depends on",
    responses={
        **error_responses(),
        503: ResponseSpec(
            data_container=Health,
            description="The database is unreachable",
            generate_examples=False,
        ),
    },
)
async def health(server: ServerState) -> Response[Health]:
    """200 when the database answers (a model that is down is reported, not fatal); else 503."""
    database, model = await asyncio.gather(_database(server), _model(server))
    status: Literal["ok", "degraded", "unavailable"] = "ok"
    if not database.ok:
        status = "unavailable"
    elif not model.ok:
        status = "degraded"
    body = Health(
        status=status,
        database=database,
        model=model,
        registry=RegistryInfo(
            tools=len(server.registry.methods),
            version=server.registry.version,
            loaded_at=server.registry.loaded_at,
        ),
        worker=WorkerInfo(embedded=server.worker is not None, running_tasks=server.running_tasks),
        uptime_seconds=round(server.uptime(), 3),
    )
    return Response(body, status_code=200 if database.ok else 503)
