"""How much of a tool's stdout/stderr reaches the log.

A tool that prints a megabyte line, or prints in a loop, must not flood the
log (nor the disk, nor the log shipper behind it). Three caps, from
``worker.tool_output_*``: bytes per line, bytes per call, lines per second per
tool process. What is over a cap is dropped and counted; one note per call
says how much was dropped and which setting to raise.
"""

from __future__ import annotations

import time

import msgspec

__all__ = ["OutputBudget", "OutputLimits"]


class OutputLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The caps; see ``WorkerConfig.tool_output_line`` and friends."""

    line: int = 4096
    per_call: int = 65536
    rate: int = 100


class OutputBudget:
    """Decides, line by line, what to log; counts what it drops."""

    def __init__(self, limits: OutputLimits) -> None:
        self.limits = limits
        self._now = time.monotonic
        self._tokens = float(limits.rate)
        self._last = self._now()
        self._spent = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self.reason = ""

    def new_call(self) -> None:
        """A call starts: its own per-call allowance."""
        self._spent = 0

    def admit(self, line: str) -> str | None:
        """``line`` as it should be logged (maybe shortened), or ``None`` to drop it."""
        size = len(line.encode(errors="replace"))
        now = self._now()
        rate = self.limits.rate
        self._tokens = min(float(rate), self._tokens + (now - self._last) * rate)
        self._last = now
        if self._spent >= self.limits.per_call:
            reason = f"more than {self.limits.per_call} bytes in one call"
            return self._drop(size, f"{reason} (worker.tool_output_per_call)")
        if self._tokens < 1:
            return self._drop(size, f"more than {rate} lines a second (worker.tool_output_rate)")
        self._tokens -= 1
        if size > self.limits.line:
            cut = line.encode(errors="replace")[: self.limits.line].decode(errors="ignore")
            line = f"{cut}... [{size - len(cut.encode())} more bytes; worker.tool_output_line]"
            size = self.limits.line
        self._spent += size
        return line

    def _drop(self, size: int, reason: str) -> str | None:
        self.dropped_lines += 1
        self.dropped_bytes += size
        self.reason = self.reason or reason
        return None

    def summary(self) -> str | None:
        """What was dropped since the last summary, as a note for the log; resets the counts."""
        if not self.dropped_lines:
            return None
        note = (
            f"dropped {self.dropped_lines} lines ({self.dropped_bytes} bytes) of output: "
            f"{self.reason}"
        )
        self.dropped_lines = self.dropped_bytes = 0
        self.reason = ""
        return note
