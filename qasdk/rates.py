"""Rates as people write them: ``10/s``, ``100/h``, ``5/30s`` (keys' submits, tools' calls)."""

from __future__ import annotations

import re

__all__ = ["format_rate", "parse_rate"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{0,4})\s*(s|m|h|d)\s*$")


def parse_rate(text: str) -> tuple[int, int]:
    """``(count, seconds)`` of a rate such as ``10/m``, ``100/h`` or ``5/30s``.

    Raises ``ValueError`` saying what a rate looks like.
    """
    match = _RATE.match(text)
    if match is None or int(match.group(1)) == 0 or int(match.group(2) or 1) == 0:
        raise ValueError(
            f"{text!r} is not a rate: write COUNT/UNIT, such as 10/m, 100/h or 5/30s "
            "(units: s, m, h, d; count at least 1)"
        )
    return int(match.group(1)), int(match.group(2) or 1) * _UNITS[match.group(3)]


def format_rate(count: int, seconds: int) -> str:
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            times = seconds // size
            return f"{count}/{'' if times == 1 else times}{unit}"
    return f"{count}/{seconds}s"  # pragma: no cover - every whole second divides by 1
