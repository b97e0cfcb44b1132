"""Values PostgreSQL will take and give back: what tools, models and clients produce, made storable.

``jsonb`` refuses ``\\u0000``, ``text`` refuses NUL, and neither can hold a lone
surrogate (which the standard ``json`` module produces from ``"\\ud800"``); a
value nested a thousand levels deep is stored but can no longer be read by
JSON decoders with a recursion limit. A task whose outcome cannot be stored
would stay ``running`` forever, so everything qasdk writes goes through here:
text is cleaned (U+FFFD in place of what cannot be stored), nesting is cut at a
depth, and a value over its size is replaced by a marker saying so.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["REPLACEMENT", "clean_text", "json_text", "storable", "truncated"]

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Characters of a too-large value kept in its marker, for a person to recognise it.
PREVIEW = 500


def clean_text(text: str) -> str:
    """``text`` without NUL and lone surrogates (each becomes U+FFFD)."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def truncated(size: int, limit: int, preview: str) -> dict[str, Any]:
    """What stands in for a value over its limit: that it was cut, how big it was, its start."""
    return {
        "truncated": True,
        "bytes": size,
        "limit": limit,
        "preview": clean_text(preview[:PREVIEW]),
    }


def _clean(value: Any, depth: int, limit: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (dict, list, tuple)) and depth >= limit:
        return f"{REPLACEMENT} (nested deeper than {limit} levels)"
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v, depth + 1, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, depth + 1, limit) for v in value]
    return value


def storable(value: Any, *, max_bytes: int | None = None, depth: int = 64) -> Any:
    """``value`` as it can be stored as ``jsonb`` (and read back), within ``max_bytes`` as JSON.

    Cheap when nothing is wrong: one msgspec encode decides; only a value that
    fails it (lone surrogates, too deep) or is over its size is walked or cut.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    try:
        encoded = msgspec.json.encode(value)
    except (UnicodeEncodeError, RecursionError, TypeError, ValueError, OverflowError):
        value = _clean(value, 0, depth)
        encoded = msgspec.json.encode(value)
    if max_bytes is not None and len(encoded) > max_bytes:
        return truncated(len(encoded), max_bytes, encoded[:PREVIEW].decode(errors="replace"))
    if b"\\u0000" in encoded or _too_deep(encoded, depth):
        return _clean(value, 0, depth)
    return value


def _too_deep(encoded: bytes, limit: int) -> bool:
    """Whether JSON bytes nest deeper than ``limit`` (brackets inside strings count too:
    a false alarm only costs a walk that finds nothing to cut)."""
    if encoded.count(b"[") + encoded.count(b"{") < limit:
        return False
    level = deepest = 0
    for byte in encoded:
        if byte in (0x5B, 0x7B):  # [ {
            level += 1
            if level > deepest:
                deepest = level
                if deepest > limit:
                    return True
        elif byte in (0x5D, 0x7D):  # ] }
            level -= 1
    return False


def json_text(value: Any, *, max_bytes: int | None = None, depth: int = 64) -> str | None:
    """``value`` as JSON text for a ``jsonb`` parameter (``None`` stays SQL NULL)."""
    if value is None:
        return None
    return msgspec.json.encode(storable(value, max_bytes=max_bytes, depth=depth)).decode()
