"""model_config.yaml and the environment (Properties 1 and 3)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from qasdk.config import Config, ToolLimits, ToolLimitsOverride, WorkerConfig, load_config
from qasdk.errors import ConfigurationError

SEED = """
model:
  name: "qwen3:4b"
  api_base: "http://localhost:11434"
  timeout: 30
  temperature: 0.7
  max_tokens: 2000

database:
  host: "localhost"
  port: 5432
  database: "test_db"
  user: "yuanyuan"
  password: "666666"
  pool_size: 5

logging:
  level: "INFO"
  format: "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
  file: "logs/app.log"
"""

words = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="$"),
    min_size=1,
    max_size=30,
)

model_sections = st.fixed_dictionaries(
    {
        "name": words,
        "api_base": st.sampled_from(
            ["http://localhost:11434", "http://10.0.0.2:8080", "https://llm.example/v1"]
        ),
        "timeout": st.floats(min_value=0.1, max_value=3600, allow_nan=False),
        "temperature": st.floats(min_value=0, max_value=2, allow_nan=False),
        "max_tokens": st.integers(1, 100_000),
    }
)
database_sections = st.fixed_dictionaries(
    {
        "host": words,
        "port": st.integers(1, 65535),
        "database": words,
        "user": words,
        "password": words,
        "pool_size": st.integers(1, 100),
    }
)
logging_sections = st.fixed_dictionaries(
    {
        "level": st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
        "format": st.sampled_from(["json", "%(message)s", "%(asctime)s %(levelname)s %(message)s"]),
        "file": st.one_of(st.none(), st.just("logs/app.log")),
    }
)


def write(text: str) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as handle:
        handle.write(text)
    return Path(handle.name)


def load(text: str, environ: dict[str, str] | None = None) -> Config:
    path = write(text)
    try:
        return load_config(path, environ=environ or {})
    finally:
        path.unlink()


def test_seed_file_loads() -> None:
    config = load(SEED)
    assert config.model.name == "qwen3:4b"
    assert config.model.model_server == "http://localhost:11434/v1"
    assert config.database.password == "666666"
    assert config.database.embedded is False
    assert config.logging.file == "logs/app.log"


# Property 1: Configuration loading consistency
@given(model_sections, database_sections, logging_sections)
def test_loaded_values_match_the_file(
    model: dict[str, Any], database: dict[str, Any], logs: dict[str, Any]
) -> None:
    text = yaml.safe_dump({"model": model, "database": database, "logging": logs})
    config = load(text)
    for key, value in model.items():
        assert getattr(config.model, key) == value
    for key, value in database.items():
        assert getattr(config.database, key) == value
    for key, value in logs.items():
        assert getattr(config.logging, key) == value


_BAD_VALUES: list[tuple[str, str, Any, str]] = [
    ("model", "timeout", -1, "model.timeout"),
    ("model", "timeout", "soon", "model.timeout"),
    ("model", "temperature", 5, "model.temperature"),
    ("model", "max_tokens", 0, "model.max_tokens"),
    ("model", "function_calling", "magic", "model.function_calling"),
    ("database", "port", 70000, "database.port"),
    ("database", "pool_size", "many", "database.pool_size"),
    ("logging", "level", "LOUD", "logging.level"),
    ("model", "tmeout", 3, "model.tmeout"),
    ("modle", None, None, "modle"),
]


# Property 3: Invalid configuration rejection
@given(
    model_sections,
    st.lists(
        st.sampled_from(_BAD_VALUES), min_size=1, max_size=4, unique_by=lambda b: (b[0], b[1])
    ),
)
def test_invalid_values_are_each_named(
    model: dict[str, Any], bad: list[tuple[str, str, Any, str]]
) -> None:
    data: dict[str, Any] = {"model": dict(model)}
    for section, key, value, _ in bad:
        if key is None:
            data[section] = {}
        else:
            data.setdefault(section, {})[key] = value
    path = write(yaml.safe_dump(data))
    try:
        with pytest.raises(ConfigurationError) as info:
            load_config(path, environ={})
    finally:
        path.unlink()
    fields = {p.field for p in info.value.problems}
    assert fields == {expected for *_, expected in bad}
    for problem in info.value.problems:
        assert problem.source is not None and problem.source.path == str(path)
        assert problem.source.line is not None
        assert problem.reason


# Property 3: Invalid configuration rejection
@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("model:\n  name: [unclosed\n", 3, "invalid YAML"),
        ("model:\n\tname: x\n", 2, "invalid YAML"),
        ("- a list\n", 1, "expected a mapping"),
        ("model: 3\n", 1, "expected a mapping of settings"),
        ("model:\n  name: a\n  name: b\n", 3, "duplicate key 'name'"),
    ],
)
def test_malformed_files_name_line_and_problem(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load(text)
    problem = info.value.problems[0]
    assert problem.source is not None and problem.source.line == line
    assert reason in problem.reason


def test_missing_explicit_file() -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.yaml: file not found"):
        load_config("nope.yaml", environ={})


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.path is None
    assert config.database.embedded
    assert config.model.name == "qwen3:4b"


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "model_config.yaml").write_text("model:\n  name: from-config-dir\n")
    assert load_config(environ={}).model.name == "from-config-dir"
    (tmp_path / "model_config.yaml").write_text("model:\n  name: from-cwd\n")
    assert load_config(environ={}).model.name == "from-cwd"
    (tmp_path / "other.yaml").write_text("model:\n  name: from-env\n")
    assert load_config(environ={"QASDK_CONFIG": "other.yaml"}).model.name == "from-env"
    assert (
        load_config("config/model_config.yaml", environ={"QASDK_CONFIG": "other.yaml"}).model.name
        == "from-config-dir"
    )


def test_environment_overrides_and_interpolation() -> None:
    config = load(
        "model:\n  name: qwen3:4b\n  api_key: ${LLM_KEY}\ndatabase:\n  password: ${PGPASS:-fallback}\n",
        {
            "LLM_KEY": "k-123",
            "QASDK_DATABASE_URL": "postgresql://u:p@db/x",
            "QASDK_MODEL_TIMEOUT": "12.5",
            "QASDK_LOGGING_LEVEL": "DEBUG",
            "UNRELATED": "1",
        },
    )
    assert config.model.api_key == "k-123"
    assert config.database.password == "fallback"
    assert config.database.url == "postgresql://u:p@db/x"
    assert config.model.timeout == 12.5
    assert config.logging.level == "DEBUG"
    assert set(config.secrets()) == {"fallback", "k-123", "p"}


def test_missing_variable_and_bad_environment_are_reported_together() -> None:
    with pytest.raises(ConfigurationError) as info:
        load(
            "database:\n  password: ${NOT_SET}\n",
            {"QASDK_MODEL_TMEOUT": "3", "QASDK_SERVER_PORT": "x"},
        )
    text = str(info.value)
    assert ":2: database.password: environment variable 'NOT_SET' is not set" in text
    assert "$QASDK_MODEL_TMEOUT: unknown model setting 'tmeout' (did you mean 'timeout'?)" in text
    assert "$QASDK_SERVER_PORT: server.port: expected integer, got string" in text


def test_escaped_dollar() -> None:
    assert load("database:\n  password: a$$b\n").database.password == "a$b"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, ToolLimitsOverride()),
        ({"memory_mb": None}, ToolLimitsOverride(memory_mb=None)),
        ({"cpu_seconds": 3}, ToolLimitsOverride(cpu_seconds=3)),
    ],
)
def test_the_config_tells_left_out_from_null(given: dict[str, Any], expected: Any) -> None:
    worker = msgspec.convert({"tool_limits_by_tool": {"t": given}}, WorkerConfig)
    assert worker.tool_limits_by_tool["t"] == expected
    assert msgspec.to_builtins(worker.tool_limits_by_tool["t"]) == given


def test_tool_limits_in_model_config_yaml(tmp_path: Path) -> None:
    path = tmp_path / "model_config.yaml"
    path.write_text(
        "worker:\n"
        "  tool_limits: {memory_mb: 1024, cpu_seconds: 10}\n"
        "  tool_limits_by_tool:\n"
        "    render: {memory_mb: 4096}\n"
    )
    worker = load_config(path, environ={}).worker
    assert worker.tool_limits == ToolLimits(memory_mb=1024, cpu_seconds=10)
    assert worker.tool_limits_by_tool == {"render": ToolLimitsOverride(memory_mb=4096)}


def test_problems_inside_tool_limits_name_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "model_config.yaml"
    path.write_text(
        "worker:\n"
        "  tool_limits: {memroy_mb: 1}\n"
        "  tool_limits_by_tool:\n"
        "    render: {memory: 4096}\n"
        "    other: {cpu_seconds: -1}\n"
    )
    with pytest.raises(ConfigurationError) as caught:
        load_config(path, environ={})
    lines = [str(p) for p in caught.value.problems]
    assert lines == [
        f"{path}:2: worker.tool_limits.memroy_mb: "
        "unknown setting 'memroy_mb' (did you mean 'memory_mb'?)",
        f"{path}:4: worker.tool_limits_by_tool.render.memory: "
        "unknown setting 'memory' (did you mean 'memory_mb'?)",
        f"{path}:5: worker.tool_limits_by_tool.other.cpu_seconds: expected number > 0.0",
    ]
