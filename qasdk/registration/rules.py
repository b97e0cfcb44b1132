"""The registration rules of seed 000, each written once.

``@tool`` (when a module is imported), the scanner (reading ``@tool(...)``
options), the methods-file reader and the validator all ask these functions,
so a rule and its wording cannot drift apart. Each yields why a value breaks
the rule, or nothing when it is fine; values arrive from YAML, JSON or Python,
so types are named the JSON way (``string``, ``integer``, ``list``).

Import-light on purpose: ``@tool`` runs these in every tool process.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterator

from qasdk.permissions import name_problem
from qasdk.rates import parse_rate

__all__ = [
    "CACHE_TTL_MAX",
    "CONCURRENCY_MAX",
    "DEFAULT_POOL",
    "DESCRIPTION_MAX",
    "MODULE_PATH_MAX",
    "NAME_MAX",
    "NAME_MIN",
    "POOL_MAX",
    "RETRIES_MAX",
    "check_cache_ttl",
    "check_description",
    "check_flag",
    "check_function_name",
    "check_identifier",
    "check_max_concurrency",
    "check_module_path",
    "check_name",
    "check_permissions",
    "check_pool",
    "check_rate",
    "check_redact",
    "check_retries",
    "check_retry_on",
    "check_tags",
    "check_timeout",
    "is_module_path",
    "kind_of",
]

#: The pool a tool runs in when it names none; a worker serves it unless told otherwise.
DEFAULT_POOL = "default"
POOL_MAX = 32

NAME_MIN, NAME_MAX = 2, 100
DESCRIPTION_MAX = 1000
MODULE_PATH_MAX = 255


def kind_of(value: object) -> str:
    """The JSON name of a value's type, as error messages say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _why_not_identifier(value: str) -> str:
    if value[0].isdigit():
        return "it starts with a digit"
    if any(c.isspace() for c in value):
        return "it contains whitespace"
    bad = sorted({c for c in value if not (c.isalnum() or c == "_")})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}"
    return "use letters, digits and underscores, not starting with a digit"


def check_identifier(value: object, what: str) -> Iterator[str]:
    """A Python identifier that is not a keyword (``what``: "function name", ...)."""
    if not isinstance(value, str):
        yield f"must be a string, got {kind_of(value)}"
    elif not value:
        yield "must not be empty"
    elif not value.isidentifier():
        yield f"{value!r} is not a valid Python identifier ({_why_not_identifier(value)})"
    elif keyword.iskeyword(value):
        yield f"{value!r} is a Python keyword and cannot be a {what}"


def check_name(value: object) -> Iterator[str]:
    """A tool name: an identifier of 2-100 characters (seed Property 9)."""
    if not isinstance(value, str):
        yield f"must be a string, got {kind_of(value)}"
        return
    if not value:
        yield "must not be empty"
        return
    if not value.isidentifier():
        yield f"{value!r} is not a valid Python identifier ({_why_not_identifier(value)})"
    if not NAME_MIN <= len(value) <= NAME_MAX:
        yield f"must be {NAME_MIN}-{NAME_MAX} characters long, got {len(value)}"


def check_description(value: object) -> Iterator[str]:
    """Non-empty, at most 1000 characters."""
    if not isinstance(value, str):
        yield f"must be a string, got {kind_of(value)}"
    elif not value.strip():
        yield "must not be empty"
    elif len(value) > DESCRIPTION_MAX:
        yield f"must be at most {DESCRIPTION_MAX} characters, got {len(value)}"


def check_timeout(value: object) -> Iterator[str]:
    """Seconds, a positive number (``None`` means the default)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        yield f"must be a positive number of seconds, got {value!r}"


def check_tags(value: object) -> Iterator[str]:
    """A list of non-empty strings."""
    if isinstance(value, str):
        yield "must be a list of strings, not a single string"
    elif not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        yield f"must be a list of strings, got {value!r}"
    elif any(not t.strip() for t in value):
        yield "tags must not be empty strings"


def check_permissions(value: object) -> Iterator[str]:
    """A list (or set) of permission names (:mod:`qasdk.permissions`), each once."""
    if isinstance(value, str):
        yield f"must be a list of permission names, not a single string (write [{value!r}])"
        return
    if not isinstance(value, (list, tuple, set, frozenset)):
        yield f"must be a list of permission names, got {kind_of(value)}"
        return
    seen: set[str] = set()
    for name in value:
        why = name_problem(name)
        if why is not None:
            yield why
        elif name in seen:
            yield f"{name!r} is listed twice"
        else:
            seen.add(name)


#: Longest a cached result may be kept (30 days), and most retries of one call.
CACHE_TTL_MAX, RETRIES_MAX = 30 * 86400, 10


def check_cache_ttl(value: object) -> Iterator[str]:
    """Seconds a result is reused (``None``: not cached)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        yield f"must be a positive number of seconds, got {value!r}"
    elif value > CACHE_TTL_MAX:
        yield f"must be at most {CACHE_TTL_MAX} seconds (30 days), got {value!r}"


def check_retries(value: object) -> Iterator[str]:
    """How many more attempts a failed call gets: 0 to 10."""
    if isinstance(value, bool) or not isinstance(value, int):
        yield f"must be a whole number from 0 to {RETRIES_MAX}, got {value!r}"
    elif not 0 <= value <= RETRIES_MAX:
        yield f"must be from 0 to {RETRIES_MAX}, got {value}"


def check_retry_on(value: object) -> Iterator[str]:
    """Error type names (``ConnectionError``), each once."""
    if isinstance(value, str):
        yield f"must be a list of error type names, not a single string (write [{value!r}])"
        return
    if not isinstance(value, (list, tuple)):
        yield f"must be a list of error type names, got {kind_of(value)}"
        return
    seen: set[str] = set()
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            yield f"{name!r} is not an error type name (an identifier such as 'ConnectionError')"
        elif name in seen:
            yield f"{name!r} is listed twice"
        else:
            seen.add(name)


def check_redact(value: object) -> Iterator[str]:
    """Field names (of arguments or results), each once."""
    if isinstance(value, str):
        yield f"must be a list of field names, not a single string (write [{value!r}])"
        return
    if not isinstance(value, (list, tuple)):
        yield f"must be a list of field names, got {kind_of(value)}"
        return
    seen: set[str] = set()
    for name in value:
        if not isinstance(name, str) or not name.strip():
            yield f"{name!r} is not a field name"
        elif name in seen:
            yield f"{name!r} is listed twice"
        else:
            seen.add(name)


def check_flag(value: object) -> Iterator[str]:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        yield f"must be true or false, got {value!r}"


def check_pool(value: object) -> Iterator[str]:
    """A worker pool's name: 1-32 of ``a-z 0-9 _ -``, starting with a letter or digit.

    Short and plain because it becomes part of a queue name (``qasdk.gpu``) and a
    metric label; ``None`` means the default pool.
    """
    if value is None:
        return
    if not isinstance(value, str):
        yield f"must be a pool name (a string such as 'gpu'), got {kind_of(value)}"
        return
    if not value:
        yield "must not be empty (leave it out for the default pool)"
        return
    if len(value) > POOL_MAX:
        yield f"must be at most {POOL_MAX} characters, got {len(value)}"
    bad = sorted({c for c in value if not (c in "_-" or c.isdigit() or "a" <= c <= "z")})
    if bad:
        listed = ", ".join(repr(c) for c in bad)
        yield f"{value!r} is not a pool name: use a-z, 0-9, '_' and '-' (it contains {listed})"
    elif not value[0].isalnum():
        yield f"{value!r} is not a pool name: it must start with a letter or a digit"


#: Most calls of one tool that may run at once.
CONCURRENCY_MAX = 10_000


def check_max_concurrency(value: object) -> Iterator[str]:
    """Calls of the tool running at once, cluster-wide (``None``: no limit)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= CONCURRENCY_MAX:
        yield f"must be a whole number from 1 to {CONCURRENCY_MAX}, got {value!r}"


def check_rate(value: object) -> Iterator[str]:
    """Calls started per period, as ``COUNT/UNIT`` (``None``: no limit)."""
    if value is None:
        return
    if not isinstance(value, str):
        yield f"must be a rate such as '10/s' or '100/m', got {kind_of(value)}"
        return
    try:
        parse_rate(value)
    except ValueError as exc:
        yield str(exc)


def check_module_path(value: object) -> Iterator[str]:
    """A dotted module name that ``import`` accepts."""
    if not isinstance(value, str):
        yield f"must be a string, got {kind_of(value)}"
        return
    if not value:
        yield "must not be empty"
        return
    if len(value) > MODULE_PATH_MAX:
        yield f"must be at most {MODULE_PATH_MAX} characters"
    for part in value.split("."):
        for reason in check_identifier(part, "module name"):
            yield f"{value!r} cannot be imported: segment {reason}"
            return


def is_module_path(value: object) -> bool:
    """Whether ``value`` passes :func:`check_module_path`."""
    return next(check_module_path(value), None) is None


def check_function_name(value: object) -> Iterator[str]:
    """An identifier of at most 100 characters."""
    reasons = list(check_identifier(value, "function name"))
    yield from reasons
    if not reasons and isinstance(value, str) and len(value) > NAME_MAX:
        yield f"must be at most {NAME_MAX} characters"
