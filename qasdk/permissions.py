"""Tool permissions: the names a tool may declare, and whether a key's grants cover them.

A tool says what it needs (``@tool(permissions=["network", "fs:write"])``) so
that access can be limited by it: a key granted only ``fs:read`` does not run
a tool that writes files. It is a declaration, not a sandbox: nothing stops the
tool's code from doing what it did not declare.

A name is a family, optionally narrowed by a qualifier after a colon:
``network``, ``network:api.example.com``, ``acme:billing``. The well-known
names (:data:`WELL_KNOWN`) have fixed meanings; any other name matching
:data:`NAME_PATTERN` is a custom one, except one that looks like a typo of a
well-known name (``netwrok``), which is refused with the name it resembles so
that a misspelling cannot silently escape a limit. The ``fs`` family is closed
(only ``fs:read`` and ``fs:write``); the other well-known families take any
qualifier.

A grant (what a key is limited to) is a name or a family pattern: ``fs`` and
``fs:*`` cover the whole family, ``network:*.example.com`` covers
``network:api.example.com``. See :func:`permitted`.

Import-light on purpose: ``@tool`` checks names in every tool process.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from fnmatch import fnmatchcase

__all__ = [
    "GRANT_PATTERN",
    "NAME_MAX",
    "NAME_PATTERN",
    "WELL_KNOWN",
    "covers",
    "grant_problem",
    "name_problem",
    "permitted",
]

#: The well-known permissions and what declaring one means.
WELL_KNOWN: dict[str, str] = {
    "network": "opens network connections (HTTP, sockets, DNS)",
    "fs:read": "reads files outside its own package",
    "fs:write": "creates, changes or deletes files",
    "subprocess": "starts other programs",
    "env": "reads environment variables or secrets given to it",
    "gpu": "uses a GPU",
}
#: Families whose only members are the well-known ones.
_CLOSED = {"fs"}
_FAMILIES = {name.partition(":")[0] for name in WELL_KNOWN}

NAME_MAX = 100
#: A declared name: a lowercase family, optionally ``:qualifier`` (no wildcards).
NAME_PATTERN = r"^[a-z][a-z0-9_-]*(:[a-z0-9_.-]+)?$"
#: A grant: a name, or a family with a ``*`` pattern as its qualifier.
GRANT_PATTERN = r"^[a-z][a-z0-9_-]*(:[a-z0-9_.*-]+)?$"
_NAME = re.compile(NAME_PATTERN)
_GRANT = re.compile(GRANT_PATTERN)
_SHAPE = (
    "use lowercase letters, digits, '_' and '-', optionally ':' and a qualifier "
    "(e.g. 'network', 'fs:write', 'network:api.example.com')"
)


def _close(name: str) -> str | None:
    """The well-known name ``name`` is probably a misspelling of, if any."""
    import difflib  # only for a name that is not well-known

    family, colon, qualifier = name.partition(":")
    if colon and family not in _FAMILIES:
        near = difflib.get_close_matches(family, sorted(_FAMILIES), n=1, cutoff=0.75)
        if near:
            return f"{near[0]}:{qualifier}"
    near = difflib.get_close_matches(name, sorted(WELL_KNOWN), n=1, cutoff=0.75)
    return near[0] if near else None


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be declared as a permission, or ``None`` when it can."""
    if not isinstance(name, str):
        return f"permissions are strings, got {name!r}"
    if len(name) > NAME_MAX:
        return f"{name[:20]!r}... is longer than {NAME_MAX} characters"
    if name in WELL_KNOWN:
        return None
    if "*" in name and _GRANT.match(name):
        return (
            f"{name!r}: wildcards are for limiting keys; a tool names what it needs "
            "(e.g. 'fs:read')"
        )
    if not _NAME.match(name):
        return f"{name!r} is not a permission name: {_SHAPE}"
    family, colon, _ = name.partition(":")
    if family in _CLOSED:
        members = " or ".join(repr(n) for n in sorted(WELL_KNOWN) if n.startswith(f"{family}:"))
        near = _close(name)
        guess = f" (did you mean {near!r}?)" if near else ""
        return f"{name!r} is not a known permission{guess}: use {members}"
    if family in _FAMILIES and colon:
        return None  # a well-known family, narrowed
    near = _close(name)
    if near is not None:
        return (
            f"{name!r} is not a known permission (did you mean {near!r}?); "
            "a custom permission must not look like a well-known one"
        )
    return None


def grant_problem(grant: object) -> str | None:
    """Why ``grant`` cannot limit a key, or ``None`` when it can."""
    if not isinstance(grant, str):
        return f"permissions are strings, got {grant!r}"
    if len(grant) > NAME_MAX:
        return f"{grant[:20]!r}... is longer than {NAME_MAX} characters"
    if not _GRANT.match(grant):
        return f"{grant!r} is not a permission or pattern: {_SHAPE}, or 'fs:*'"
    if "*" in grant or grant in _FAMILIES:
        return None
    return name_problem(grant)


def covers(grant: str, need: str) -> bool:
    """Whether one grant covers one needed permission.

    Equal names cover each other; a bare family (``fs``) or ``family:*`` covers
    the family and every name in it; a qualifier with ``*`` is a pattern for the
    needed qualifier (``network:*.example.com``). A need broader than the grant
    (``network`` against ``network:api.example.com``) is not covered.
    """
    if grant == need:
        return True
    family, colon, pattern = grant.partition(":")
    need_family, need_colon, qualifier = need.partition(":")
    if family != need_family:
        return False
    if not colon or pattern == "*":
        return True
    return bool(need_colon) and "*" in pattern and fnmatchcase(qualifier, pattern)


def permitted(needed: Collection[str], granted: Collection[str] | None) -> bool:
    """Whether a caller granted ``granted`` may run a tool that needs ``needed``.

    ``granted=None`` means unlimited (a key not limited to permissions); an
    empty grant allows only tools that declare nothing. Every needed permission
    must be covered by some grant (:func:`covers`).
    """
    if granted is None:
        return True
    return all(any(covers(grant, need) for grant in granted) for need in needed)
