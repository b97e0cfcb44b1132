"""Request bodies as JSON: within ``limits.json_depth``, and errors that say what is wrong.

msgspec decodes every body; where it fails it names its own trouble: "input
data was truncated" for a lone ``\\ud800`` escape, "invalid UTF-8 encoded
string" with no place, and past some 960 levels of nesting a RecursionError
(a 500). So a body is measured before it is decoded (brackets outside strings,
at C speed, and only when it has enough of them to be deep), and a body msgspec
refuses is looked at again, with the standard library's more lenient decoder,
to say what it is: not UTF-8 (at which byte, in which field), an escape that is
half of a surrogate pair (in which field), or not JSON at all.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

from qasdk._documents import KeyPath, field_name
from qasdk._excerpt import excerpt
from qasdk.config import LimitsConfig
from qasdk.models import Problem
from qasdk_server.errors import ApiError

__all__ = ["JsonRequest", "json_depth", "request_class_for"]

# A JSON string, quotes and escapes included (unrolled: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes
#: Values looked at to find the field of a bad character (the rest: no field).
_SEARCHED = 20_000


def json_depth(body: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (1: a flat object)."""
    steps = array("b")
    steps.frombytes(_STRING.sub(b"", body).translate(None, _NOT_BRACKETS).translate(_STEPS))
    return max(accumulate(steps), default=0)


class JsonRequest(Request[Any, Any, Any]):
    """A request whose JSON body is read within the depth limit, with precise errors."""

    @staticmethod
    def current_limits() -> LimitsConfig:
        """The limits in force (the running configuration's: see :func:`request_class_for`)."""
        return LimitsConfig()

    async def json(self) -> Any:
        _require_json(self.headers.get("content-type"))
        body = await self.body()
        limit = self.current_limits().json_depth
        if body.count(b"[") + body.count(b"{") > limit and json_depth(body) > limit:
            raise _invalid(f"the body is nested deeper than {limit} levels (limits.json_depth)")
        try:
            return await super().json()
        except SerializationException as exc:
            raise _undecodable(body, str(exc.detail)) from None


def request_class_for(limits: Callable[[], LimitsConfig]) -> type[JsonRequest]:
    """The request class for ``Litestar(request_class=...)``, reading ``limits()``."""

    class Request(JsonRequest):
        current_limits = staticmethod(limits)

    return Request


def _require_json(content_type: str | None) -> None:
    """A body is JSON only when it says so: ``application/json`` (or ``...+json``).

    Also what keeps other sites out: an HTML form, or a page's "simple" cross-site
    request, cannot send this content type without the browser asking the server
    first (a CORS preflight), which this server never approves.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    got = f"got {excerpt(media)!r}" if media else "got no Content-Type"
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the body as JSON with the header 'Content-Type: application/json' "
        f"(curl --json '{{...}}', or -H 'Content-Type: application/json'); {got}",
    )


def _invalid(message: str, field: str | None = None) -> ApiError:
    problems = [Problem(reason=message, field=field)] if field else []
    return ApiError(400, "invalid_request", f"{field}: {message}" if field else message, problems)


def _undecodable(body: bytes, reason: str) -> ApiError:
    """Why msgspec refused ``body`` (its ``reason``), in the client's terms."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Undecodable bytes become lone surrogates (U+DC80-U+DCFF): their string is the field.
        field = _field_of(body.decode("utf-8", "surrogateescape"))
        where = f"byte {exc.start}" + (f", in {field}" if field else "")
        problems = [Problem(reason=f"not valid UTF-8 (byte {exc.start})", field=field)]
        return ApiError(
            400,
            "invalid_request",
            f"the body is not valid UTF-8 ({where})",
            problems if field else [],
        )
    lone = _lone_surrogate(text)
    if lone is not None:
        message = f"invalid \\u{ord(lone):04x} escape (a lone surrogate, not a character)"
        return _invalid(message, _field_of(text))
    if reason == "Input data was truncated":
        return _invalid("the body is not valid JSON: it ends early")
    reason = reason.removeprefix("JSON is malformed: ")
    return _invalid(f"the body is not valid JSON: {reason[:1].lower()}{reason[1:]}")


def _decoded(text: str) -> Any:
    """``text`` decoded by the standard library (which lets lone surrogates through)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _surrogate(text: str) -> str | None:
    """The first surrogate code point in ``text`` (one that UTF-8 cannot encode), if any."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return str(exc.object[exc.start])
    return None


def _lone_surrogate(text: str) -> str | None:
    """The first lone surrogate that the JSON ``text`` decodes to, if any."""
    return _surrogate(json.dumps(_decoded(text), ensure_ascii=False))


def _field_of(text: str) -> str | None:
    """The key path of the first string in the JSON ``text`` that holds a surrogate."""
    for count, (keypath, item) in enumerate(_strings(_decoded(text), ())):
        if count > _SEARCHED:
            break
        if _surrogate(item) is not None:
            return field_name(keypath) or None
    return None


def _strings(value: Any, keypath: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Every string in ``value`` with its key path (a bad key is reported as its object)."""
    if isinstance(value, str):
        yield keypath, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield keypath, key
            yield from _strings(item, (*keypath, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*keypath, index))
