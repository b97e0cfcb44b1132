"""Error responses: what went wrong and where, never how the server is built.

400  malformed JSON, a missing or invalid field, an unknown tool, bad params,
     an unknown query parameter, JSON nested too deep, text the database
     cannot store (NUL)
401  no valid API key (keys are in force), with ``WWW-Authenticate``
403  the key lacks the route's scope; or a write from another site
404  no such task or tool (or another key's task)
408  the request took longer than ``limits.request_timeout`` to arrive
409  the request conflicts with the task's state (cancel a finished task)
413  the body is larger than ``limits.request_body``
415  a body not sent as ``application/json``
431  the request line and headers are larger than ``limits.request_headers``
503  the database is unreachable; the client should retry (Retry-After)
500  a bug: logged with its stack trace and an error id the body repeats

(408 and 431 are answered by the connection, ``qasdk_server.http``.) Messages
repeat a client's text as a prefix only (``qasdk._excerpt``), and every body
is bounded here whatever a message holds.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
import psycopg_pool
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from qasdk._documents import JSON_WORDS, KeyPath, decode_message, field_name, suggestion
from qasdk._excerpt import SHOWN, excerpt
from qasdk.errors import DatabaseError
from qasdk.models import Problem
from qasdk.store.connection import is_outage

__all__ = ["ApiError", "ErrorBody", "error_responses", "exception_handlers"]

logger = logging.getLogger("qasdk.api")


class ProblemBody(msgspec.Struct, omit_defaults=True):
    reason: str
    field: str | None = None
    tool: str | None = None


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    type: str
    message: str
    problems: list[ProblemBody] | None = None
    error_id: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Invalid request: the field and the reason are in `problems`",
    403: "The API key lacks the scope, or may not run the tool",
    404: "No such task or tool",
    408: "The request did not arrive within `limits.request_timeout` seconds",
    409: "The request conflicts with the current state",
    413: "The body is larger than `limits.request_body` bytes",
    429: "The API key is over its rate or its cap of running tasks; retry after `Retry-After`",
    431: "The request line and headers are larger than `limits.request_headers` bytes",
    500: "A server fault; the log has its stack trace under `error_id`",
    503: "The database is unreachable; retry after `Retry-After` seconds",
}
#: What each answer really looks like (the schema's examples are these, not random text).
_EXAMPLES = {
    400: ErrorDetail(
        "invalid_params",
        "params.b: expected integer, got string",
        [ProblemBody(reason="expected integer, got string", field="params.b", tool="add")],
    ),
    403: ErrorDetail("forbidden", "the API key 'reports' may not run tool 'add'; tools: summarize"),
    404: ErrorDetail("not_found", "no task with id 3f0c2a5e-8d8e-4f4e-9a55-0b6a2f1c9d21"),
    408: ErrorDetail(
        "request_timeout",
        "the request's headers took longer than 10 s to arrive (limits.request_timeout)",
    ),
    409: ErrorDetail(
        "conflict", "task 3f0c2a5e-8d8e-4f4e-9a55-0b6a2f1c9d21 already completed; nothing to cancel"
    ),
    413: ErrorDetail(
        "body_too_large", "the request body is larger than 1048576 bytes (limits.request_body)"
    ),
    429: ErrorDetail(
        "too_many_requests",
        "the API key 'reports' may submit 10/m (10 tasks per 60 s, in bursts of up to 10); "
        "retry in 6 s",
    ),
    431: ErrorDetail(
        "headers_too_large",
        "the request line and headers are larger than 65536 bytes (limits.request_headers)",
    ),
    500: ErrorDetail("internal_error", "internal server error", error_id="5d1c0e9a7b3f"),
    503: ErrorDetail("unavailable", "the database is unavailable; retry shortly"),
}


#: What any request may be answered: a bad query string or body, a limit, a fault, an outage.
_ALWAYS = (400, 408, 413, 431, 500, 503)


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the error bodies a route answers with (and ``_ALWAYS``).

    Every route may answer 400 (a malformed query string or body), so ours replaces
    the one Litestar would document with a body this API never sends.
    """
    return {
        code: ResponseSpec(
            data_container=ErrorBody,
            description=_DESCRIPTIONS[code],
            generate_examples=False,
            examples=[
                Example(
                    summary=_DESCRIPTIONS[code],
                    value=msgspec.to_builtins(ErrorBody(_EXAMPLES[code])),
                )
            ],
        )
        for code in sorted({*codes, *_ALWAYS})
    }


class ApiError(Exception):
    """An expected failure of a request, answered with ``status`` and a clear body."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        problems: Sequence[Problem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.problems = [ProblemBody(reason=p.reason, field=p.field, tool=p.tool) for p in problems]
        self.headers = headers or {}


#: Bounds of any error body, whatever its messages hold (a backstop: messages that
#: repeat client text repeat an excerpt of it already).
_MESSAGE, _REASON, _FIELD, _PROBLEMS = 1000, 400, 2 * SHOWN, 20


def _bounded(detail: ErrorDetail) -> ErrorDetail:
    problems = detail.problems
    if problems is not None:
        problems = [
            ProblemBody(
                reason=excerpt(p.reason, _REASON),
                field=None if p.field is None else excerpt(p.field, _FIELD),
                tool=None if p.tool is None else excerpt(p.tool, _FIELD),
            )
            for p in problems[:_PROBLEMS]
        ]
    message = excerpt(detail.message, _MESSAGE)
    return ErrorDetail(detail.type, message, problems, detail.error_id)


def _response(
    status: int, detail: ErrorDetail, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(ErrorBody(_bounded(detail)), status_code=status, headers=headers)


def _api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorBody]:
    detail = ErrorDetail(exc.kind, exc.message, exc.problems or None)
    return _response(exc.status, detail, exc.headers)


_ENUM = re.compile(r"Invalid enum value (.*)", re.DOTALL)


def _choices(request: Request[Any, Any, Any], key: str) -> list[str]:
    """The values a handler's parameter ``key`` may take, when it lists them."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    if parameter is None:
        return []
    info = msgspec.inspect.type_info(parameter.annotation)
    options = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    for option in options:
        if isinstance(option, msgspec.inspect.LiteralType):
            return [str(v) for v in option.values]
        if isinstance(option, msgspec.inspect.EnumType):
            return [str(m.value) for m in option.cls]
    return []


def _struct_fields(request: Request[Any, Any, Any]) -> tuple[str, ...]:
    """The fields of the handler's body type (``data``), if it is a Struct."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    annotation = getattr(data, "annotation", None)
    fields: tuple[str, ...] = getattr(annotation, "__struct_fields__", ())
    return fields


def _problem(request: Request[Any, Any, Any], key: str, message: str) -> ProblemBody:
    """One of Litestar's messages (msgspec's, about parameter or body ``key``) in JSON's words."""
    if message in ("data: 'data'", "'data'"):
        return ProblemBody(reason="a JSON body is required")
    body = key == "data" or key.startswith("data.")
    root: KeyPath = tuple(key.split(".")[1:] if body else [key]) if key else ()
    subpath, reason, unknown = decode_message(message, JSON_WORDS)
    keypath = (*root, *subpath)
    enum = _ENUM.fullmatch(message)
    if unknown is not None:
        hint = suggestion(unknown, _struct_fields(request)) if body and not keypath else ""
        reason = f"unknown field {excerpt(unknown)!r}{hint}"
        keypath = (*keypath, excerpt(unknown))
    elif enum is not None:
        choices = _choices(request, key) if not body else []
        reason = f"invalid value {excerpt(enum.group(1))}"
        if choices:
            reason += f"; expected one of {', '.join(choices)}"
    if not keypath:
        return ProblemBody(reason=f"the body: {reason}" if body and unknown is None else reason)
    return ProblemBody(reason=reason, field=field_name(keypath))


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    """Litestar's decoding errors (msgspec underneath) → field and reason, in JSON's words."""
    problems: list[ProblemBody] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            key = str(item.get("key") or "")
            problems.append(_problem(request, key, str(item.get("message", ""))))
    message = "; ".join(f"{p.field}: {p.reason}" if p.field else p.reason for p in problems)
    if not message:
        message = _friendly(str(exc.detail or "invalid request"))
    return _response(400, ErrorDetail("invalid_request", message, problems or None))


def _friendly(reason: str) -> str:
    return excerpt(reason[:1].lower() + reason[1:], _REASON)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if exc.status_code == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        message = f"the request body is larger than {limit} bytes (limits.request_body)"
        return _response(413, ErrorDetail("body_too_large", message))
    kind = {404: "not_found", 405: "method_not_allowed", 400: "invalid_request"}.get(
        exc.status_code, "http_error"
    )
    message = _friendly(str(exc.detail)) if exc.status_code == 400 else str(exc.detail)
    if isinstance(exc, NotFoundException) and message == "Not Found":
        message = _no_route(request.method, request.url.path)
    return _response(exc.status_code, ErrorDetail(kind, message), dict(exc.headers or {}))


#: Routes whose second segment is an id of a known shape, for a 404 that says why.
_ID_ROUTES = {"tasks": "task"}


def _no_route(method: str, path: str) -> str:
    """Why nothing answers ``path``: an id that cannot exist, or no such route."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "api" and parts[2] in _ID_ROUTES and parts[3]:
        try:
            uuid.UUID(parts[3])
        except ValueError:
            return f"no {_ID_ROUTES[parts[2]]} with id {excerpt(parts[3])!r}: ids are UUIDs"
    return f"no route for {method} {excerpt(path)}"


# SQLSTATEs of text PostgreSQL cannot store: NUL (\u0000) in text or jsonb, or a character
# the database's encoding lacks. In a request handler that text came from the request.
_UNSTORABLE_TEXT = {"22P05", "22021"}


def _unstorable_text(cause: BaseException, sqlstate: str | None) -> bool:
    if sqlstate in _UNSTORABLE_TEXT:
        return True
    # psycopg refuses a str with NUL before sending it (a DataError without SQLSTATE).
    return sqlstate is None and isinstance(cause, psycopg.DataError) and "NUL" in str(cause)


def _database(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Database failures: an outage is a 503, text it cannot store a 400, the rest a bug."""
    cause = exc.__cause__ if isinstance(exc, DatabaseError) and exc.__cause__ else exc
    sqlstate = getattr(exc, "sqlstate", None) or getattr(cause, "sqlstate", None)
    if _unstorable_text(cause, sqlstate):
        message = "the request contains text the database cannot store (such as NUL, \\u0000)"
        return _response(400, ErrorDetail("invalid_request", message))
    if not is_outage(exc):
        return _internal(request, exc)  # a failed statement is a bug, not an outage
    logger.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    detail = ErrorDetail("unavailable", "the database is unavailable; retry shortly")
    return _response(503, detail, {"Retry-After": "1"})


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    error_id = uuid.uuid4().hex[:12]
    logger.error(
        "unhandled error in %s %s (error id %s)",
        request.method,
        request.url.path,
        error_id,
        exc_info=exc,
        extra={"error_id": error_id, "path": request.url.path, "http_method": request.method},
    )
    detail = ErrorDetail("internal_error", "internal server error", error_id=error_id)
    return _response(HTTP_500_INTERNAL_SERVER_ERROR, detail)


exception_handlers: dict[type[Exception] | int, Any] = {
    ApiError: _api_error,
    ValidationException: _validation,
    HTTPException: _http,
    DatabaseError: _database,
    psycopg.OperationalError: _database,
    psycopg_pool.PoolTimeout: _database,
    Exception: _internal,
}
