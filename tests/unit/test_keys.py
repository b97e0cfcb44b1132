"""API keys' own rules: their text, their rates, what a limited key may run."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qasdk.keys import ApiKey, format_rate, new_key, parse_key, parse_rate, verify
from qasdk.models import MethodConfig


def _key(**limits: object) -> ApiKey:
    return ApiKey(
        id=uuid.uuid4(),
        name="k",
        scopes=("submit",),
        created_at=datetime.now(timezone.utc),
        **limits,  # type: ignore[arg-type]
    )


def _tool(name: str, *tags: str) -> MethodConfig:
    return MethodConfig(
        name=name, description="d", return_type="int", module_path="m", function_name=name,
        tags=tags,
    )  # fmt: skip


def test_a_new_key_parses_back_and_verifies() -> None:
    key_id, text, digest = new_key()
    parsed = parse_key(text)
    assert parsed is not None and parsed[0] == key_id and verify(parsed[1], digest)
    assert not verify(parsed[1] + "x", digest)
    assert parse_key("qasdk_nothex_secret") is None and parse_key("Bearer x") is None


@given(st.integers(1, 10**9 - 1), st.sampled_from([1, 30, 60, 90, 3600, 7200, 86400, 172800]))
def test_a_rate_reads_back_as_written(count: int, seconds: int) -> None:
    assert parse_rate(format_rate(count, seconds)) == (count, seconds)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10/m", (10, 60)), ("100/h", (100, 3600)), ("5/30s", (5, 30)), (" 1 / d ", (1, 86400))],
)
def test_rates_as_users_write_them(text: str, expected: tuple[int, int]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["0/m", "10", "10/0s", "x/m", "10/y", "10/m/s", "", "-1/m"])
def test_a_bad_rate_says_what_a_rate_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match="COUNT/UNIT"):
        parse_rate(text)


def test_a_key_limited_to_tools_and_tags_runs_only_those() -> None:
    assert _key().may_run(_tool("anything"))
    limited = _key(tools=("add",), tags=("math",))
    assert limited.may_run(_tool("add"))
    assert limited.may_run(_tool("multiply", "math", "slow"))
    assert not limited.may_run(_tool("echo", "text"))
    assert not _key(tags=("math",)).may_run(_tool("add"))


def test_a_key_limited_to_permissions_runs_only_tools_needing_no_more() -> None:
    key = _key(permissions=("network", "fs:*"))
    assert key.may_run(_tool("offline"))
    assert key.may_run(msgspec.structs.replace(_tool("fetch"), permissions=("network",)))
    assert key.may_run(msgspec.structs.replace(_tool("save"), permissions=("fs:write",)))
    shell = msgspec.structs.replace(_tool("shell"), permissions=("subprocess", "network"))
    assert not key.may_run(shell)
    assert _key().may_run(shell)  # unlimited
