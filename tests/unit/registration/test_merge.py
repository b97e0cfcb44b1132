"""Merging scanned and declared tools (Property 8, overrides)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qasdk.errors import ValidationError
from qasdk.registration.collect import collect
from qasdk.registration.declared import parse_methods
from qasdk.registration.merge import merge
from tests.strategies import identifiers, method_dicts


# Property 8: Duplicate method name detection
@given(
    st.lists(method_dicts(), min_size=1, max_size=5, unique_by=lambda m: m["name"]),
    st.data(),
)
def test_duplicate_names_are_reported(methods: list[dict[str, Any]], data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(methods))
    duplicate = {**data.draw(method_dicts()), "name": original["name"]}
    position = data.draw(st.integers(0, len(methods)))
    listed = [*methods[:position], duplicate, *methods[position:]]
    declared = parse_methods({"methods": listed}, "methods.yaml")
    merged, problems = merge(declared.entries, declared.overrides)
    assert len(merged) == len(methods)
    (problem,) = problems
    assert problem.tool == original["name"]
    assert problem.field == "name"
    assert "duplicate tool name" in problem.reason


TOOL = '''
from qasdk import tool

@tool
def {name}(text: str, unique: bool = False) -> int:
    """Count words.

    Args:
        text: The text.
        unique: Distinct only.
    """
'''


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "tools"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_scanned_and_declared_duplicate_names_both_sources(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        {
            "a.py": TOOL.format(name="word_count"),
            "methods.yaml": "methods:\n  - name: word_count\n    description: d\n    module_path: tools.a\n"
            "    function_name: word_count\n    return_type: int\n",
        },
    )
    with pytest.raises(ValidationError) as info:
        collect([folder], module_root=tmp_path)
    (problem,) = info.value.problems
    assert problem.tool == "word_count"
    assert str(problem.source).startswith("tools/methods.yaml:2") or "methods.yaml:2" in str(
        problem.source
    )
    assert "a.py:4" in problem.reason
    assert "override: true" in problem.reason


def test_two_scanned_files_with_the_same_tool(tmp_path: Path) -> None:
    folder = write(tmp_path, {"a.py": TOOL.format(name="dup"), "b.py": TOOL.format(name="dup")})
    with pytest.raises(
        ValidationError,
        match=r"b\.py:4: tool 'dup': name: duplicate tool name, also defined at .*a\.py:4",
    ):
        collect([folder], module_root=tmp_path)


def test_override_replaces_given_fields_only(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        {
            "a.py": TOOL.format(name="word_count"),
            "methods.yaml": """
            methods:
              - name: word_count
                override: true
                description: Count words, better.
                timeout: 3
                parameters:
                  - name: unique
                    description: Count each word once.
                    default: true
        """,
        },
    )
    (config,) = collect([folder], module_root=tmp_path).configs
    assert config.description == "Count words, better."
    assert config.timeout == 3.0
    assert config.module_path == "tools.a"
    text, unique = config.parameters
    assert text.description == "The text."
    assert unique.description == "Count each word once."
    assert unique.default is True and unique.required is False


def test_an_override_declares_permissions_and_a_bad_one_names_its_line(tmp_path: Path) -> None:
    override = "methods:\n  - name: word_count\n    override: true\n    permissions: [{}]\n"
    folder = write(
        tmp_path,
        {"a.py": TOOL.format(name="word_count"), "methods.yaml": override.format("env, network")},
    )
    (config,) = collect([folder], module_root=tmp_path).configs
    assert config.permissions == ("env", "network")
    (folder / "methods.yaml").write_text(override.format("envv"))
    with pytest.raises(ValidationError) as info:
        collect([folder], module_root=tmp_path)
    (problem,) = info.value.problems
    assert "tools/methods.yaml:4: tool 'word_count': permissions: 'envv'" in str(problem)
    assert "did you mean 'env'?" in problem.reason


def test_override_can_document_an_undocumented_parameter(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        {
            "a.py": 'from qasdk import tool\n\n@tool\ndef fx(x: int) -> int:\n    """Do."""\n',
            "methods.yaml": "methods:\n  - name: fx\n    override: true\n    parameters:\n"
            "      - name: x\n        description: The x.\n",
        },
    )
    (config,) = collect([folder], module_root=tmp_path).configs
    assert config.parameters[0].description == "The x."


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "methods:\n  - name: nope\n    override: true\n",
            "nothing to override: no @tool has that name",
        ),
        (
            "methods:\n  - name: word_count\n    override: true\n    parameters:\n      - name: zz\n"
            "        description: d\n",
            "has no parameter 'zz'",
        ),
    ],
)
def test_bad_overrides(tmp_path: Path, yaml_text: str, message: str) -> None:
    folder = write(tmp_path, {"a.py": TOOL.format(name="word_count"), "methods.yaml": yaml_text})
    with pytest.raises(ValidationError, match=message):
        collect([folder], module_root=tmp_path)


@given(identifiers)
def test_unique_names_merge_cleanly(name: str) -> None:
    declared = parse_methods(
        {
            "methods": [
                {
                    "name": name,
                    "description": "d",
                    "module_path": "m",
                    "function_name": "fn",
                    "return_type": "int",
                },
                {
                    "name": name + "_2",
                    "description": "d",
                    "module_path": "m",
                    "function_name": "fn",
                    "return_type": "int",
                },
            ]
        }
    )
    merged, problems = merge(declared.entries)
    assert problems == []
    assert [e.config.name for e in merged] == [name, name + "_2"]
