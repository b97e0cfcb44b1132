"""Built-in ``cache``: results of tools that declare ``cache_ttl``, shared by every worker.

A call of such a tool with the same arguments (as canonical JSON) as an
earlier successful one, within ``cache_ttl`` seconds, is answered from
PostgreSQL without running the tool; the trace marks it (``cached: true``).
The key includes the tool's version (its registration and its code: the
module file, or the ``--watch`` snapshot): a change of either misses. Only
successes are kept, and a cut (over-limit) result never is. In the default
chain; it does nothing (no query) for tools without ``cache_ttl``.
"""

from __future__ import annotations

import hashlib
import logging

import msgspec

from qasdk.models import ExecutionResult
from qasdk.store import results as store
from qasdk.store.connection import Pool
from qasdk_server.middleware.base import Middleware, ToolCall

__all__ = ["ResultCache"]

logger = logging.getLogger("qasdk.cache")


class ResultCache(Middleware):
    name = "cache"

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @staticmethod
    def _ttl(call: ToolCall) -> float | None:
        policy = None if call.method is None else call.method.policy
        return None if policy is None else policy.cache_ttl

    @staticmethod
    def _version(call: ToolCall) -> str:
        assert call.method is not None
        registration = msgspec.json.encode(call.method, order="sorted")
        code = (call.code_version or "").encode()
        return hashlib.sha256(registration + b"\0" + code).hexdigest()

    async def before(self, call: ToolCall) -> ExecutionResult | None:
        if self._ttl(call) is None:
            return None
        key = store.arguments_hash(call.arguments)
        version = self._version(call)
        call.state[self.name] = (key, version)
        try:
            async with self._pool.connection() as conn:
                hit, result = await store.lookup(conn, call.tool, key, version)
        except Exception:  # no cache is no reason to fail the call
            logger.warning("result cache lookup failed for %r", call.tool, exc_info=True)
            return None
        if not hit:
            return None
        return ExecutionResult(success=True, result=result, cached=True)

    async def after(self, call: ToolCall, result: ExecutionResult) -> ExecutionResult:
        ttl = self._ttl(call)
        keyed = call.state.get(self.name)
        if ttl is None or keyed is None or result.cached or _cut(result.result):
            return result
        key, version = keyed
        try:
            async with self._pool.connection() as conn:
                await store.store(conn, call.tool, key, version, result.result, ttl)
        except Exception:
            logger.warning("could not cache a result of %r", call.tool, exc_info=True)
        return result


def _cut(value: object) -> bool:
    """A result over the size limit, which the executor replaced by a truncation marker."""
    return isinstance(value, dict) and value.get("truncated") is True and "limit" in value
