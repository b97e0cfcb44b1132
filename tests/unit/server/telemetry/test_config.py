"""``telemetry:`` in model_config.yaml and the environment."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from qasdk.config import Config, TelemetryConfig, load_config
from qasdk.errors import ConfigurationError
from qasdk.redaction import redact_value


def load(text: str, environ: dict[str, str] | None = None) -> Config:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as f:
        f.write(text)
    path = Path(f.name)
    try:
        return load_config(path, environ=environ or {})
    finally:
        path.unlink()


def test_off_by_default() -> None:
    config = load_config(environ={}, use_file=False)
    assert config.telemetry == TelemetryConfig()
    assert not config.telemetry.enabled


def test_the_section_is_read() -> None:
    config = load(
        "telemetry:\n"
        "  otlp_endpoint: http://collector:4318\n"
        "  service_name: api\n"
        "  headers: {Authorization: Bearer s3cret-token}\n"
        "  sample_ratio: 0.25\n"
    )
    assert config.telemetry.enabled
    assert config.telemetry.otlp_endpoint == "http://collector:4318"
    assert config.telemetry.service_name == "api"
    assert config.telemetry.sample_ratio == 0.25
    # The headers' values are secrets: masked in GET /api/config and kept from tools.
    assert "Bearer s3cret-token" in config.secrets()
    shown = redact_value({"headers": dict(config.telemetry.headers)}, config.secrets())
    assert "s3cret" not in str(shown)


def test_the_standard_variable_turns_it_on() -> None:
    config = load_config(
        environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, use_file=False
    )
    assert config.telemetry.otlp_endpoint == "http://otel:4318"


def test_the_file_wins_over_the_standard_variable() -> None:
    config = load(
        "telemetry:\n  otlp_endpoint: http://mine:4318\n",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"},
    )
    assert config.telemetry.otlp_endpoint == "http://mine:4318"
    ours = load_config(
        environ={
            "QASDK_TELEMETRY_OTLP_ENDPOINT": "http://ours:4318",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
        },
        use_file=False,
    )
    assert ours.telemetry.otlp_endpoint == "http://ours:4318"


def test_bad_values_are_each_named_with_file_and_line() -> None:
    with pytest.raises(ConfigurationError) as info:
        load(
            "telemetry:\n"
            "  otlp_endpoint: collector:4318\n"
            "  sample_ratio: 2\n"
            "  service_name: ''\n"
            "  sample_rate: 1\n"
        )
    problems = {p.field: p for p in info.value.problems}
    assert set(problems) == {
        "telemetry.otlp_endpoint",
        "telemetry.sample_ratio",
        "telemetry.service_name",
        "telemetry.sample_rate",
    }
    assert problems["telemetry.otlp_endpoint"].source.line == 2  # type: ignore[union-attr]
    assert "https?://" in problems["telemetry.otlp_endpoint"].reason
    assert "<= 1" in problems["telemetry.sample_ratio"].reason
    assert "did you mean 'sample_ratio'" in problems["telemetry.sample_rate"].reason


def test_a_bad_standard_variable_is_named() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_config(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, use_file=False)
    (problem,) = info.value.problems
    assert problem.source is not None and problem.source.path == "$OTEL_EXPORTER_OTLP_ENDPOINT"
    assert problem.field == "telemetry.otlp_endpoint"


def test_a_reload_that_changes_telemetry_says_it_needs_a_restart() -> None:
    from qasdk_server.reload import _changed_settings, _live

    old = load_config(environ={}, use_file=False)
    new = load_config(environ={"QASDK_TELEMETRY_OTLP_ENDPOINT": "http://c:4318"}, use_file=False)
    assert _changed_settings(old, new) == ["telemetry.otlp_endpoint"]
    assert not _live("telemetry.otlp_endpoint")
