"""methods.yaml / methods.json parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from qasdk.registration.declared import METHOD_REQUIRED, load_methods_file, parse_methods
from qasdk.registration.validate import validate_entries
from tests.strategies import config_from_dict, method_dicts

SEED_EXAMPLE = """
methods:
  - name: "get_weather"
    description: "获取指定城市的天气信息"
    module_path: "tools.weather"
    function_name: "get_weather"
    parameters:
      - name: "city"
        type: "string"
        description: "城市名称"
        required: true
      - name: "unit"
        type: "string"
        description: "温度单位，celsius或fahrenheit"
        required: false
        default: "celsius"
    return_type: "dict"

  - name: "calculate"
    description: "执行数学计算"
    module_path: "tools.calculator"
    function_name: "calculate"
    parameters:
      - name: "expression"
        type: "string"
        description: "数学表达式"
        required: true
    return_type: "float"
"""


def test_seed_example_parses() -> None:
    declared = parse_methods(SEED_EXAMPLE, "methods.yaml")
    assert declared.problems == []
    weather, calculate = declared.configs
    assert weather.name == "get_weather"
    assert weather.parameters[1].default == "celsius"
    assert weather.parameters[1].required is False
    assert calculate.return_type == "float"
    assert declared.entries[1].source.line == 19


# Property 4: Configuration format equivalence
@given(st.lists(method_dicts(), max_size=4))
def test_yaml_and_json_parse_to_equal_configs(methods: list[dict[str, Any]]) -> None:
    import tempfile

    data = {"methods": methods}
    with tempfile.TemporaryDirectory() as folder:
        yaml_file = Path(folder) / "methods.yaml"
        json_file = Path(folder) / "methods.json"
        # Double-quoted scalars: PyYAML's plain style folds characters such as NEL.
        dumped = yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True, default_style='"')
        yaml_file.write_text(dumped, encoding="utf-8")
        json_file.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        from_yaml = load_methods_file(yaml_file)
        from_json = load_methods_file(json_file)
    assert from_yaml.problems == from_json.problems == []
    assert from_yaml.configs == from_json.configs
    assert len(from_yaml.configs) == len(methods)


# Property 5: Method metadata completeness
@given(method_dicts())
def test_parsed_config_has_every_field(method: dict[str, Any]) -> None:
    declared = parse_methods({"methods": [method]})
    assert declared.problems == []
    (config,) = declared.configs
    assert config == config_from_dict(method)
    for field in (
        "name",
        "description",
        "parameters",
        "return_type",
        "module_path",
        "function_name",
    ):
        assert getattr(config, field) is not None
    assert config.name and config.description and config.module_path and config.function_name


# Property 7: Missing field detection
@given(method_dicts(), st.sets(st.sampled_from(METHOD_REQUIRED), min_size=1))
def test_every_missing_field_is_named(method: dict[str, Any], missing: set[str]) -> None:
    for field in missing:
        del method[field]
    declared = parse_methods({"methods": [method]})
    reported = {p.field for p in declared.problems if p.reason == "required field is missing"}
    assert reported == missing


# Property 7: Missing field detection (parameters)
@given(method_dicts(), st.sets(st.sampled_from(["name", "type", "description"]), min_size=1))
def test_every_missing_parameter_field_is_named(method: dict[str, Any], missing: set[str]) -> None:
    method["parameters"] = [{"name": "p1", "type": "int", "description": "P."}]
    for field in missing:
        del method["parameters"][0][field]
    problems = parse_methods({"methods": [method]}).problems
    reported = {p.field.rsplit(".", 1)[-1] for p in problems if p.field and "missing" in p.reason}
    assert reported == missing


def test_unknown_fields_suggest_the_right_one() -> None:
    declared = parse_methods(
        "methods:\n  - name: ab\n    descripton: x\n    module_path: m\n"
        "    function_name: f\n    return_type: int\n",
        "methods.yaml",
    )
    reasons = {(p.field, p.reason) for p in declared.problems}
    assert ("descripton", "unknown field (did you mean 'description'?)") in reasons
    assert ("description", "required field is missing") in reasons


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("methods:\n  - name: [\n", 3, "invalid YAML"),
        ("methods:\n  - name: a\n    name: b\n", 3, "duplicate key 'name' (first on line 2)"),
        ("- just a list\n", 1, "expected a mapping with a 'methods' list"),
        ("methods:\n  - 42\n", 2, "each method must be a mapping"),
        ("methods: []\nextra: 1\n", 2, "unknown top-level key"),
    ],
)
def test_structural_errors_are_located(text: str, line: int, reason: str) -> None:
    problems = parse_methods(text, "methods.yaml").problems
    assert problems, "expected a problem"
    assert problems[0].source is not None
    assert problems[0].source.line == line
    assert reason in problems[0].reason


def test_json_errors_have_lines(tmp_path: Path) -> None:
    file = tmp_path / "methods.json"
    file.write_text('{\n  "methods": [\n    {"name": "a",}\n  ]\n}\n')
    (problem,) = load_methods_file(file, display="methods.json").problems
    assert str(problem).startswith("methods.json:3: invalid JSON")


def test_json_field_lines_are_known(tmp_path: Path) -> None:
    file = tmp_path / "methods.json"
    file.write_text(json.dumps({"methods": [{"name": "ab"}]}, indent=2))
    declared = load_methods_file(file)
    lines = {p.field: p.source.line for p in declared.problems if p.source}
    assert lines["description"] == 3  # the entry starts on line 3 of the pretty JSON


def test_override_entries_are_partial() -> None:
    declared = parse_methods(
        {
            "methods": [
                {
                    "name": "ab",
                    "override": True,
                    "description": "better",
                    "parameters": [{"name": "x", "description": "X!"}],
                }
            ]
        }
    )
    assert declared.problems == []
    assert declared.entries == []
    (override,) = declared.overrides
    assert override.fields == {"description": "better"}
    assert override.parameters == ({"name": "x", "description": "X!"},)


PERMISSIONS = """
methods:
  - name: fetch
    description: Fetch a page.
    module_path: tools.web
    function_name: fetch
    return_type: string
    permissions: {given}
"""


def test_permissions_are_declared_and_sorted() -> None:
    declared = parse_methods(PERMISSIONS.format(given="[network, fs:write]"), "methods.yaml")
    assert declared.problems == []
    assert validate_entries(declared.entries) == []
    assert declared.configs[0].permissions == ("fs:write", "network")


@pytest.mark.parametrize(
    ("given", "field", "reason"),
    [
        ("network", "permissions", "expected list, got string"),
        ("[1]", "permissions[0]", "expected string, got integer"),
        (
            "[netwrok]",
            "permissions",
            "'netwrok' is not a known permission (did you mean 'network'?)",
        ),
        ("[fs:wirte]", "permissions", "did you mean 'fs:write'?"),
        ("['fs:*']", "permissions", "wildcards are for limiting keys"),
        ("[gpu, gpu]", "permissions", "'gpu' is listed twice"),
    ],
)
def test_bad_permissions_name_file_line_and_field(given: str, field: str, reason: str) -> None:
    declared = parse_methods(PERMISSIONS.format(given=given), "tools/methods.yaml")
    (problem,) = declared.problems + validate_entries(declared.entries)
    assert str(problem).startswith(f"tools/methods.yaml:8: tool 'fetch': {field}: "), str(problem)
    assert reason in problem.reason


def test_an_override_may_change_permissions() -> None:
    declared = parse_methods(
        {"methods": [{"name": "ab", "override": True, "permissions": ["network", "env"]}]}
    )
    (override,) = declared.overrides
    assert override.fields == {"permissions": ("env", "network")}


def test_enum_items_and_schema_shorthands() -> None:
    declared = parse_methods(
        {
            "methods": [
                {
                    "name": "ab",
                    "description": "d",
                    "module_path": "m",
                    "function_name": "f",
                    "return_type": "str",
                    "parameters": [
                        {"name": "unit", "type": "string", "description": "u", "enum": ["c", "f"]},
                        {"name": "ids", "type": "list", "description": "i", "items": "int"},
                    ],
                }
            ]
        }
    )
    assert declared.problems == []
    (config,) = declared.configs
    assert config.return_type == "string"  # aliases are normalised
    assert config.parameters[0].schema == {"type": "string", "enum": ["c", "f"]}
    assert config.parameters[1].schema == {"type": "array", "items": {"type": "integer"}}


def test_a_trailing_comma_is_named_on_its_own_line(tmp_path: Path) -> None:
    file = tmp_path / "methods.json"
    file.write_text(
        '{\n  "methods": [\n    {"name": "a",\n     "description": "x",\n    }\n  ]\n}\n'
    )
    (problem,) = load_methods_file(file, display="methods.json").problems
    assert str(problem) == (
        "methods.json:4: invalid JSON: trailing comma before '}' (column 24); JSON allows none"
    )
