"""Client text in error messages: a prefix, never the whole of it.

An error repeats what it is about (a tool name, a field, a value) so the
reader sees what went wrong; a client that sends megabytes must not get them
back, once or twice, in an error body. Every message that quotes text from a
request (or from a file) quotes it through :func:`excerpt`.
"""

from __future__ import annotations

__all__ = ["SHOWN", "excerpt"]

#: Characters of someone else's text an error message repeats, at most.
SHOWN = 80


def excerpt(text: str, limit: int = SHOWN) -> str:
    """``text``, or its first ``limit`` characters and ``...`` when it is longer."""
    return text if len(text) <= limit else text[:limit] + "..."
