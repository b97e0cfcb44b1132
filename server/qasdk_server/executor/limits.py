"""What one tool call may use: ``worker.tool_limits`` with the tool's own overrides.

Pure: it reads the configuration and says which limits apply and which setting
each came from, so that an error can name the setting to change. Enforcing the
limits is :mod:`qasdk_server.executor.confine`'s job, in the tool process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from qasdk.config import ToolLimits, ToolLimitsOverride
from qasdk_server.executor.child import Limits

__all__ = ["CPU_SLACK", "CallLimits", "resolve_limits"]

#: Seconds of CPU a call gets beyond its timeout when ``cpu_seconds`` is not set.
CPU_SLACK = 1


class CallLimits(msgspec.Struct, frozen=True):
    """The limits of one call and, for each, the setting it came from."""

    tool: str
    memory_mb: int | None
    cpu_seconds: float | None
    processes: int | None
    #: The setting behind each field (``worker.tool_limits_by_tool.x.memory_mb``).
    memory_setting: str
    cpu_setting: str
    processes_setting: str
    #: ``cpu_seconds`` is the call's timeout, as no setting gives one.
    cpu_from_timeout: bool = False

    @property
    def wire(self) -> Limits | None:
        """What the tool process applies (``None`` when nothing is limited)."""
        if self.memory_mb is None and self.cpu_seconds is None and self.processes is None:
            return None
        return Limits(self.memory_mb, self.cpu_seconds, self.processes)

    def memory_message(self) -> str:
        return (
            f"tool {self.tool!r} exceeded its memory limit "
            f"({self.memory_setting} = {self.memory_mb})"
        )

    def cpu_message(self) -> str:
        used = f"tool {self.tool!r} used more than {_seconds(self.cpu_seconds)} s of CPU"
        if self.cpu_from_timeout:
            return f"{used} (its timeout plus {CPU_SLACK} s, as {self.cpu_setting} is not set)"
        return f"{used} ({self.cpu_setting} = {_seconds(self.cpu_seconds)})"


def resolve_limits(
    tool: str,
    timeout: float,
    defaults: ToolLimits | None,
    by_tool: Mapping[str, ToolLimitsOverride] | None = None,
) -> CallLimits:
    """The limits of a call of ``tool`` whose timeout is ``timeout`` seconds.

    ``defaults`` ``None`` limits nothing (an executor built without limits);
    a field of the tool's override that is left out comes from ``defaults``.
    """
    base = "worker.tool_limits"
    own = f"worker.tool_limits_by_tool.{tool}"
    override = (by_tool or {}).get(tool)
    values: dict[str, tuple[float | None, str]] = {}
    for field in ("memory_mb", "cpu_seconds", "processes"):
        given = getattr(override, field, msgspec.UNSET) if override is not None else msgspec.UNSET
        if given is not msgspec.UNSET:
            values[field] = (given, f"{own}.{field}")
        elif defaults is not None:
            values[field] = (getattr(defaults, field), f"{base}.{field}")
        else:
            values[field] = (None, f"{base}.{field}")
    memory, memory_setting = values["memory_mb"]
    cpu, cpu_setting = values["cpu_seconds"]
    processes, processes_setting = values["processes"]
    cpu_from_timeout = cpu is None and defaults is not None
    if cpu_from_timeout:
        cpu = float(math.ceil(timeout) + CPU_SLACK)
    return CallLimits(
        tool=tool,
        memory_mb=None if memory is None else int(memory),
        cpu_seconds=cpu,
        processes=None if processes is None else int(processes),
        memory_setting=memory_setting,
        cpu_setting=cpu_setting,
        processes_setting=processes_setting,
        cpu_from_timeout=cpu_from_timeout,
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else str(value)
