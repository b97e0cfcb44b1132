"""One logging setup for the CLI, the server and the workers.

``logging:`` in ``model_config.yaml`` sets the level, the line format (a
``logging`` format string, or ``json`` for one JSON object per line) and an
optional file. Every record passes a redaction filter, so a password, an API
key or an ``Authorization`` header never reaches a log line. Error records
carry ``error_type``, the message and the stack trace; other context travels
as ``extra=`` fields (``path``, ``statement``, ``sqlstate``, ``method``...).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from qasdk.config import LoggingConfig
from qasdk.redaction import redact, redact_value

__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "console_level",
]

# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD = frozenset(
    set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__)
    | {"message", "asctime", "taskName", "reported"}
)
# Libraries whose INFO lines repeat what qasdk already says (one per job, per request).
_NOISY = {
    "pgserver": logging.WARNING,
    "griffe": logging.ERROR,
    "httpx": logging.WARNING,
    "httpx2": logging.WARNING,
    "procrastinate": logging.WARNING,
    "uvicorn.error": logging.WARNING,
    "qwen_agent_logger": logging.WARNING,
    "watchfiles": logging.WARNING,
}
_MARK = "_qasdk_handler"
_LINE_BREAKS = {c: f"\\u{c:04x}" for c in (0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}


#: Items of a list or mapping (and levels of nesting) an extra field keeps.
_MAX_ITEMS, _MAX_DEPTH = 50, 5


def cap_text(text: str, limit: int) -> str:
    """``text`` cut at ``limit`` characters, saying how many were dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters dropped]"


def cap_value(value: Any, limit: int, depth: int = 0) -> Any:
    """An extra field bounded in size: strings cut, long collections and deep nests elided."""
    if isinstance(value, str):
        return cap_text(value, limit)
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            return f"{{... {len(value)} keys}}"
        items = list(value.items())
        capped = {str(k)[:200]: cap_value(v, limit, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            capped["..."] = f"{len(items) - _MAX_ITEMS} more keys dropped"
        return capped
    if isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            return f"[... {len(value)} items]"
        capped_list = [cap_value(v, limit, depth + 1) for v in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            capped_list.append(f"... {len(value) - _MAX_ITEMS} more items dropped")
        return capped_list
    return value


class RedactingFilter(logging.Filter):
    """Bounds every record, then masks secrets in its message, extras and traceback.

    Bounding comes first: a record is formatted on whatever thread logs it (often
    the event loop), and a tool's 50 MB message must cost no more than a short one.
    """

    def __init__(self, secrets: Iterable[str] = (), *, max_field: int = 16_384) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self.max_field = max_field

    def filter(self, record: logging.LogRecord) -> bool:
        limit = self.max_field
        message = cap_text(record.getMessage(), limit)
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.__dict__.setdefault("error_type", type(exc).__name__)
            record.__dict__.setdefault("error_message", cap_text(_safe_str(exc), limit))
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact(cap_text(record.exc_text, limit * 4), self.secrets)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and not key.startswith("_"):
                record.__dict__[key] = redact_value(cap_value(value, limit), self.secrets)
        return True


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


#: An extra holding a traceback that is not this process's exception (a tool's, from its
#: process): shown as the record's traceback, once, not again as a field.
TRACEBACK_FIELD = "tool_traceback"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v
        for k, v in record.__dict__.items()
        if k not in _STANDARD and not k.startswith("_") and k != TRACEBACK_FIELD
    }


def _traceback(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        return record.exc_text
    other = record.__dict__.get(TRACEBACK_FIELD)
    return other.rstrip() if isinstance(other, str) and other else None


def _error_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Error type and message, unless the redacting filter already set them (masked)."""
    if "error_type" in record.__dict__:
        return {}
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        return {"error_type": type(exc).__name__, "error_message": str(exc)}
    return {}


class TextFormatter(logging.Formatter):
    """The configured format string, then ``key=value`` extras, then the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        fields = {**_error_fields(record), **_extras(record)}
        if fields:
            line += " " + " ".join(f"{k}={_compact(v)}" for k, v in fields.items())
        trace = _traceback(record, self)
        if trace:
            line += "\n" + trace
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if (" " in value or not value) else value
    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, error fields, extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_error_fields(record))
        for key in ("error_type", "error_message"):
            if key in record.__dict__:
                data[key] = record.__dict__[key]
        trace = _traceback(record, self)
        if trace:
            data["stack_trace"] = trace
        data.update(_extras(record))
        line = json.dumps(data, ensure_ascii=False, default=str)
        # Characters some readers treat as line breaks stay escaped: one record, one line.
        return line.translate(_LINE_BREAKS)


class _NotReported(logging.Filter):
    """Keeps records the CLI already showed the user off the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "reported", False)


class _LibraryLevels(logging.Filter):
    """Holds libraries to their levels in :data:`_NOISY` even when they lower their own.

    qwen-agent sets its logger's level when it is imported (DEBUG with
    ``QWEN_AGENT_DEBUG``) and logs every prompt and reply there: the trace has
    them, with a tool's ``redact`` fields masked, and the log must not.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        floor = _NOISY.get(record.name)
        return floor is None or record.levelno >= floor


def configure_logging(
    config: LoggingConfig,
    *,
    secrets: Iterable[str] = (),
    console_level: int | str | None = None,
    stream: IO[str] | None = None,
    max_field: int = 16_384,
) -> None:
    """Install qasdk's handlers on the root logger (replacing earlier ones).

    ``console_level`` defaults to ``config.level``; the CLI passes WARNING so
    routine progress stays out of command output unless ``-v`` is given.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()
    level = logging.getLevelName(config.level)
    formatter: logging.Formatter = (
        JsonFormatter() if config.format.strip().lower() == "json" else TextFormatter(config.format)
    )
    redactor = RedactingFilter(secrets, max_field=max_field)

    console = logging.StreamHandler(stream or sys.stderr)
    console.setLevel(console_level if console_level is not None else level)
    console.addFilter(_NotReported())
    handlers: list[logging.Handler] = [console]
    if config.file:
        path = Path(config.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(path, encoding="utf-8")
        file_handler.setLevel(level)
        handlers.append(file_handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        handler.addFilter(_LibraryLevels())
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    lowest = min(h.level for h in handlers)
    root.setLevel(lowest)
    for name, noisy_level in _NOISY.items():
        logging.getLogger(name).setLevel(max(noisy_level, lowest))


def console_level() -> int | None:
    """The level of the console handler :func:`configure_logging` installed, if any.

    A worker process started by another one logs to the console at its parent's level
    (``-v`` included), which the configuration alone does not say.
    """
    for handler in logging.getLogger().handlers:
        if getattr(handler, _MARK, False) and not isinstance(handler, logging.FileHandler):
            return handler.level
    return None
