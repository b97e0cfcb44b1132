"""Secrets out of everything qasdk shows: log records, errors, API answers.

One implementation, used by the configuration (which secrets there are), the
store (URLs in messages), logging (every record) and the server (``/api/config``,
``/health``). Every pattern is linear in the text: quantifiers that could
rescan are bounded, so a hostile 50 MB string costs one pass, not hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "mask_fields",
    "mask_url",
    "redact",
    "redact_value",
    "secret_key",
    "url_password",
]

MASK = "****"

# ``scheme://user:password@``: the password of a URL. Found from "://" (a literal the
# engine searches fast); user and password lengths are bounded so a string with many
# "://" and no "@" is not rescanned to its end from each of them.
_URL_CREDENTIALS = re.compile(r"(://[^:/@\s]{0,256}:)([^@\s]{1,512})(@)")
# ``password=...`` in a libpq connection string (quoted or not) or a query string.
_KV_PASSWORD = re.compile(r"(password\s{0,8}=\s{0,8})('(?:[^'\\]|\\.)*'|[^\s&']+)", re.IGNORECASE)
_SECRET_LOOKING = (
    (re.compile(r"(password\s{0,8}[=:]\s{0,8})(\S+)", re.IGNORECASE), r"\1" + MASK),
    (
        re.compile(
            r"(authorization[\"']?\s{0,8}[:=]\s{0,8}[\"']?)([^\"'\s,}]+(?: [^\"'\s,}]+)?)",
            re.IGNORECASE,
        ),
        r"\1" + MASK,
    ),
    (
        re.compile(r"(api[_-]?key[\"']?\s{0,8}[:=]\s{0,8}[\"']?)([^\"'\s,}&]+)", re.IGNORECASE),
        r"\1" + MASK,
    ),
    (re.compile(r"(bearer\s{1,8})([A-Za-z0-9._~+/=-]+)", re.IGNORECASE), r"\1" + MASK),
)
# One search for the words every pattern above starts from: most text has none of them.
_SECRET_WORD = re.compile(r"password|authorization|api[_-]?key|bearer", re.IGNORECASE)
# "token" but not "tokens": max_tokens is a count, not a secret.
_SECRET_KEY = re.compile(r"password|secret|token(?!s)|api_?key|authorization", re.IGNORECASE)


def url_password(url: str) -> str | None:
    """The password a database URL or connection string carries, if any."""
    match = _URL_CREDENTIALS.search(url)
    if match:
        return match.group(2)
    match = _KV_PASSWORD.search(url)
    if match:
        value = match.group(2)
        return value[1:-1] if value.startswith("'") and value.endswith("'") else value
    return None


def mask_url(url: str) -> str:
    """``url`` (or a libpq connection string) with its password replaced by ``****``."""
    masked = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + m.group(3), url)
    return _KV_PASSWORD.sub(lambda m: m.group(1) + MASK, masked)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with known secrets, URL credentials and secret-looking values masked."""
    for secret in secrets:
        if secret and len(secret) >= 3 and secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    if _SECRET_WORD.search(text):
        for pattern, replacement in _SECRET_LOOKING:
            text = pattern.sub(replacement, text)
    return text


def secret_key(key: object) -> bool:
    """Whether a mapping key names a secret (``password``, ``api_key``, ``token``...)."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def redact_value(value: Any, secrets: Iterable[str | None] = (), *, by_key: bool = True) -> Any:
    """A copy of ``value`` (strings, mappings, lists) with every secret masked.

    ``by_key``: also mask whatever a key such as ``password`` holds (off where keys
    are names of the user's, like tools, that may well be called ``get_token``).
    """
    known = [s for s in secrets if s]
    return _redact_value(value, known, by_key)


def _redact_value(value: Any, secrets: list[str], by_key: bool) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {
            k: MASK
            if by_key and secret_key(k) and v not in (None, "")
            else _redact_value(v, secrets, by_key)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, secrets, by_key) for v in value]
    return value


def mask_fields(value: Any, fields: Iterable[str], *, depth: int = 0) -> Any:
    """``value`` with the entries named ``fields`` (at any depth of its mappings) masked.

    A tool's ``redact=[...]``: what its arguments and results hold under those
    names never reaches a log line or a trace step. Lists are walked too; a JSON
    string (a model's call arguments) is parsed, masked and written back.
    """
    names = fields if isinstance(fields, frozenset) else frozenset(fields)
    if not names or depth > 64:
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK if k in names else mask_fields(v, names, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_fields(v, names, depth=depth + 1) for v in value]
    if isinstance(value, str) and depth == 0 and value[:1] in "{[":
        import json

        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return json.dumps(mask_fields(parsed, names, depth=1), ensure_ascii=False)
    return value
