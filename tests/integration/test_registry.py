"""The server's in-memory registry against the real table (Properties 16, 17, 20)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qasdk.config import Config
from qasdk.models import MethodConfig
from qasdk.store.methods import delete_methods, list_methods, upsert_methods
from qasdk_server.registry import MethodRegistry
from qasdk_server.serve import open_pool
from tests.strategies import method_configs

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
DB_EXAMPLES = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100
)


@pytest.fixture
async def registry(pg_url: str) -> Any:
    pool = await open_pool(pg_url, Config())
    try:
        yield MethodRegistry(pool, refresh_interval=0)
    finally:
        await pool.close()


def named(configs: list[MethodConfig]) -> list[MethodConfig]:
    prefix = uuid.uuid4().hex[:8]
    return [msgspec.structs.replace(c, name=f"r{prefix}_{i}") for i, c in enumerate(configs)]


# Property 16: Method loading completeness
# Property 17: JSON deserialization correctness
# Property 20: Method lookup by name
@DB_EXAMPLES
@given(st.lists(method_configs, max_size=8))
async def test_the_registry_loads_every_method_exactly(
    conn: Any, registry: MethodRegistry, configs: list[MethodConfig]
) -> None:
    batch = named(configs)
    await upsert_methods(conn, batch)
    await conn.commit()
    try:
        await registry.load()
        stored = await list_methods(conn)
        await conn.commit()
        assert len(registry.methods) == len(stored)  # Property 16: N in the table, N loaded
        for config in batch:
            found = registry.get(config.name)  # Property 20
            assert found is not None
            assert found.to_config() == config  # Property 17: parameters survive JSON
            assert found.parameters == config.parameters
        assert registry.get("no_such_tool_" + uuid.uuid4().hex) is None
    finally:
        await delete_methods(conn, [c.name for c in batch])
        await conn.commit()


async def test_unknown_names_trigger_one_reload(conn: Any, registry: MethodRegistry) -> None:
    await registry.load()
    version = registry.version
    (config,) = named(
        [
            MethodConfig(
                name="x", description="d", return_type="int", module_path="m", function_name="fn"
            )
        ]
    )
    await upsert_methods(conn, [config])
    await conn.commit()
    try:
        assert registry.get(config.name) is None
        found = await registry.find(config.name)
        assert found is not None and found.name == config.name
        assert registry.version == version + 1
        seen: list[int] = []
        registry.on_change(lambda methods: seen.append(len(methods)))
        assert await registry.load() is False and seen == []  # nothing changed, nobody told
    finally:
        await delete_methods(conn, [config.name])
        await conn.commit()
