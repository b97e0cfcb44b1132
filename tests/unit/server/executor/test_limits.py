"""Which limits a call gets: per-tool overrides over ``worker.tool_limits``, and their names."""

from __future__ import annotations

import msgspec

from qasdk.config import ToolLimits, ToolLimitsOverride
from qasdk_server.executor.child import Call, CallContext, Limits
from qasdk_server.executor.limits import CPU_SLACK, resolve_limits


def test_defaults_apply_and_cpu_follows_the_timeout() -> None:
    limits = resolve_limits("calc", 29.2, ToolLimits())
    assert (limits.memory_mb, limits.cpu_seconds, limits.processes) == (2048, 30 + CPU_SLACK, 64)
    assert limits.cpu_from_timeout
    assert limits.wire == Limits(2048, 31.0, 64)
    assert limits.memory_message() == (
        "tool 'calc' exceeded its memory limit (worker.tool_limits.memory_mb = 2048)"
    )
    assert limits.cpu_message() == (
        "tool 'calc' used more than 31 s of CPU "
        "(its timeout plus 1 s, as worker.tool_limits.cpu_seconds is not set)"
    )


def test_a_given_cpu_budget_wins_over_the_timeout() -> None:
    limits = resolve_limits("calc", 30, ToolLimits(cpu_seconds=2.5))
    assert (limits.cpu_seconds, limits.cpu_from_timeout) == (2.5, False)
    assert limits.cpu_message() == (
        "tool 'calc' used more than 2.5 s of CPU (worker.tool_limits.cpu_seconds = 2.5)"
    )


def test_fields_left_out_of_an_override_come_from_the_defaults() -> None:
    by_tool = {
        "big": ToolLimitsOverride(memory_mb=8192),
        "free": ToolLimitsOverride(memory_mb=None),
    }
    defaults = ToolLimits(memory_mb=512, cpu_seconds=5, processes=8)
    big = resolve_limits("big", 10, defaults, by_tool)
    assert (big.memory_mb, big.cpu_seconds, big.processes) == (8192, 5, 8)
    assert big.memory_setting == "worker.tool_limits_by_tool.big.memory_mb"
    assert big.cpu_setting == "worker.tool_limits.cpu_seconds"
    assert big.memory_message() == (
        "tool 'big' exceeded its memory limit (worker.tool_limits_by_tool.big.memory_mb = 8192)"
    )
    free = resolve_limits("free", 10, defaults, by_tool)
    assert (free.memory_mb, free.cpu_seconds) == (None, 5)  # null lifts the limit
    other = resolve_limits("other", 10, defaults, by_tool)
    assert other.memory_mb == 512


def test_no_defaults_limit_nothing() -> None:
    limits = resolve_limits("calc", 30, None)
    assert (limits.memory_mb, limits.cpu_seconds, limits.processes) == (None, None, None)
    assert limits.wire is None


def test_limits_and_the_trace_context_travel_after_the_call() -> None:
    call = Call("m", "mod", "f", {"a": 1}, {"b": 2}, limits=Limits(256, 1.0, None))
    encoded = msgspec.json.encode(call)
    assert encoded == b'["Call","m","mod","f",{"a":1},{"b":2},[256,1.0,null],null,null,null]'
    assert msgspec.json.decode(encoded, type=Call) == call
    old = msgspec.json.decode(b'["Call","m","mod","f",{}]', type=Call)
    assert old.limits is None and old.context is None and old.traceparent is None
    with_context = Call("m", "mod", "f", {}, context=CallContext("t", 2, 99.5))
    assert b'null,["t",2,99.5],null,null]' in msgspec.json.encode(with_context)
    traced = Call("m", "mod", "f", {}, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    assert msgspec.json.decode(msgspec.json.encode(traced), type=Call) == traced
