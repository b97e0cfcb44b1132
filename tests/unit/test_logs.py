"""Logging: what every error record carries, and what never appears (Property 25)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qasdk.config import LoggingConfig
from qasdk.logs import configure_logging
from qasdk.redaction import redact as redact_text


class Boom(RuntimeError):
    """A custom error type."""


ERRORS = st.sampled_from([ValueError, KeyError, TypeError, OSError, Boom, ZeroDivisionError])
MESSAGES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        if getattr(handler, "_qasdk_handler", False):
            root.removeHandler(handler)
            handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def log_error(error: type[BaseException], message: str, name: str) -> BaseException:
    logger = logging.getLogger(f"qasdk.test.{name}")
    try:
        raise error(message)
    except BaseException as exc:
        logger.error("operation failed", exc_info=True, extra={"operation": name})
        return exc


FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


# Property 25: Error logging completeness
@FIXTURE_OK
@given(ERRORS, MESSAGES, st.sampled_from(["sync", "serve", "worker"]))
def test_json_error_records_are_complete(
    capture: io.StringIO, error: type[BaseException], message: str, name: str
) -> None:
    capture.seek(0)
    capture.truncate()
    configure_logging(LoggingConfig(format="json"), stream=capture)
    exc = log_error(error, message, name)
    (line,) = capture.getvalue().splitlines()
    record = json.loads(line)
    assert record["timestamp"].endswith("+00:00")
    assert record["level"] == "ERROR"
    assert record["error_type"] == type(exc).__name__
    assert record["error_message"] == str(exc)
    assert record["stack_trace"].startswith("Traceback (most recent call last)")
    assert type(exc).__name__ in record["stack_trace"]
    assert record["operation"] == name


# Property 25: Error logging completeness
@FIXTURE_OK
@given(ERRORS, MESSAGES.filter(lambda m: "\n" not in m and "\r" not in m))
def test_text_error_records_are_complete(
    capture: io.StringIO, error: type[BaseException], message: str
) -> None:
    capture.seek(0)
    capture.truncate()
    configure_logging(
        LoggingConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s"), stream=capture
    )
    exc = log_error(error, message, "text")
    text = capture.getvalue()
    first = text.splitlines()[0]
    assert first[:4].isdigit()  # the timestamp leads
    assert " ERROR " in first
    assert f"error_type={type(exc).__name__}" in first
    assert "Traceback (most recent call last)" in text


SECRET_LINES = [
    ("connecting to postgresql://app:hunter2@db:5432/x", "hunter2"),
    ("dsn host=db password=hunter2 user=app", "hunter2"),
    ('headers {"Authorization": "Bearer sk-live-123"}', "sk-live-123"),
    ("Authorization: Bearer sk-live-123", "sk-live-123"),
    ("calling with api_key=sk-live-123&x=1", "sk-live-123"),
    ('{"api_key": "sk-live-123"}', "sk-live-123"),
]


@pytest.mark.parametrize(("line", "secret"), SECRET_LINES)
def test_secrets_never_reach_a_log_line(capture: io.StringIO, line: str, secret: str) -> None:
    configure_logging(LoggingConfig(format="json"), stream=capture)
    logging.getLogger("qasdk.test").warning(
        line, extra={"detail": line, "config": {"password": "hunter2"}}
    )
    output = capture.getvalue()
    assert secret not in output
    assert "hunter2" not in output
    assert "****" in output


def test_configured_secrets_are_masked_anywhere(capture: io.StringIO) -> None:
    configure_logging(LoggingConfig(), secrets=["swordfish-42"], stream=capture)
    try:
        raise RuntimeError("login with swordfish-42 failed")
    except RuntimeError:
        logging.getLogger("qasdk.test").exception(
            "the password swordfish-42 leaked %s", "swordfish-42"
        )
    assert "swordfish-42" not in capture.getvalue()


def test_redact_text_leaves_ordinary_text_alone() -> None:
    assert redact_text("tool 'add' took 3 ms") == "tool 'add' took 3 ms"


def test_noisy_libraries_are_quiet_unless_debug(capture: io.StringIO) -> None:
    configure_logging(LoggingConfig(level="INFO"), stream=capture)
    assert logging.getLogger("procrastinate").getEffectiveLevel() == logging.WARNING
    configure_logging(LoggingConfig(level="DEBUG"), stream=capture)
    assert logging.getLogger("qasdk").getEffectiveLevel() == logging.DEBUG


def test_huge_records_are_bounded_before_they_are_formatted(capture: io.StringIO) -> None:
    configure_logging(LoggingConfig(format="json"), stream=capture, max_field=1000)
    huge = "://a:" * 2_000_000  # 10 MB of what once made redaction quadratic
    logging.getLogger("qasdk.test").error(
        "tool said %s", huge, extra={"params": {"text": huge, "items": list(range(10_000))}}
    )
    line = capture.getvalue()
    assert len(line) < 20_000
    assert "more characters dropped" in line
    assert "9950 more items dropped" in line


TOOL_TRACE = (
    'Traceback (most recent call last):\n  File "tools/t.py", line 3, in t\nValueError: bad\n'
)


@pytest.mark.parametrize("form", ["json", "text"])
def test_a_tool_traceback_is_logged_once(capture: io.StringIO, form: str) -> None:
    """A failing tool's traceback (from its process) appears once per record (issue 18)."""
    configure_logging(
        LoggingConfig(format=form if form == "json" else "%(levelname)s %(message)s"),
        stream=capture,
    )
    logging.getLogger("qasdk.executor").error(
        "tool 't' failed: ValueError: bad", extra={"tool_traceback": TOOL_TRACE}
    )
    text = capture.getvalue()
    assert text.count("line 3, in t") == 1, text
    if form == "json":
        (line,) = text.splitlines()
        record = json.loads(line)
        assert record["stack_trace"] == TOOL_TRACE.rstrip()
        assert "tool_traceback" not in record
    else:
        assert text.splitlines()[1:] == TOOL_TRACE.rstrip().splitlines()
