"""Declared tools are checked against the code they name, without importing it (issue 8, defect 4)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from qasdk.errors import ValidationError
from qasdk.registration.collect import collect

CODE = """
def greet(name, punctuation="!"):
    return f"hello {name}{punctuation}"

def shout(text, **more):
    return text.upper()
"""


@pytest.fixture(autouse=True)
def _in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # problems name files as a user in the project sees them


DECLARED = """
methods:
  - name: {name}
    description: Greet someone.
    module_path: {module}
    function_name: {function}
    parameters:
{parameters}
    return_type: string
"""


def declare(
    tmp_path: Path,
    *,
    name: str = "greeter",
    module: str = "tools.people",
    function: str = "greet",
    parameters: str = "",
) -> Path:
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    (tools / "people.py").write_text(textwrap.dedent(CODE))
    params = parameters or "      - {name: name, type: string, description: Who.}"
    (tools / "methods.yaml").write_text(
        DECLARED.format(name=name, module=module, function=function, parameters=params)
    )
    return tools


def problems(tmp_path: Path, **kwargs: str) -> list[str]:
    tools = declare(tmp_path, **kwargs)
    with pytest.raises(ValidationError) as raised:
        collect([tools], module_root=tmp_path)
    return [str(p) for p in raised.value.problems]


def test_a_matching_declaration_passes(tmp_path: Path) -> None:
    catalog = collect([declare(tmp_path)], module_root=tmp_path)
    assert [e.config.name for e in catalog.entries] == ["greeter"]
    assert catalog.warnings == []


def test_a_misspelled_function_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    assert problems(tmp_path, function="greeet") == [
        "tools/methods.yaml:6: tool 'greeter': function_name: module 'tools.people' has no "
        "function 'greeet' (did you mean 'greet'?)"
    ]


def test_parameters_must_be_the_functions(tmp_path: Path) -> None:
    found = problems(tmp_path, parameters="      - {name: person, type: string, description: Who.}")
    assert found == [
        "tools/methods.yaml:7: tool 'greeter': parameters: greet() requires 'name', which is "
        "not declared",
        "tools/methods.yaml:8: tool 'greeter': parameters.person: greet() has no parameter "
        "'person' (did you mean 'name'?)",
    ]


def test_an_optional_parameter_needs_a_default_somewhere(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        parameters="      - {name: name, type: string, description: Who., required: false}",
    )
    assert found == [
        "tools/methods.yaml:8: tool 'greeter': parameters.name.required: greet() has no "
        "default for 'name': declare a default, or make it required"
    ]


def test_keyword_catch_alls_accept_any_declared_parameter(tmp_path: Path) -> None:
    params = (
        "      - {name: text, type: string, description: What.}\n"
        "      - {name: volume, type: int, description: How loud., default: 3}"
    )
    catalog = collect(
        [declare(tmp_path, function="shout", parameters=params)], module_root=tmp_path
    )
    assert catalog.entries[0].config.function_name == "shout"


def test_a_module_found_nowhere_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        collect([declare(tmp_path, module="deployed.elsewhere")], module_root=tmp_path)
    (problem,) = caught.value.problems
    assert str(problem) == (
        "tools/methods.yaml:5: tool 'greeter': module_path: 'deployed.elsewhere' is not under "
        "the module root '.' nor an allowed package (registry.allowed_packages), no such "
        "module is there; tools run only code from there"
    )


def test_an_allowed_package_not_on_this_machine_is_a_warning(tmp_path: Path) -> None:
    catalog = collect(
        [declare(tmp_path, module="deployed.elsewhere")],
        module_root=tmp_path,
        allowed_packages=("deployed",),
    )
    (warning,) = catalog.warnings
    assert str(warning) == (
        "tools/methods.yaml:5: tool 'greeter': module_path: module 'deployed.elsewhere' of an "
        "allowed package is not under the module root '.', so it could not be checked; it "
        "must be importable where the workers run"
    )


@pytest.mark.parametrize(
    ("module", "why"),
    [
        ("os", "it is a standard-library module"),
        ("subprocess", "it is a standard-library module"),
        ("builtins", "it is a standard-library module"),
        ("importlib.util", "it is a standard-library module"),
        ("ctypes", "it is a standard-library module"),
        ("pickle", "it is a standard-library module"),
        ("msgspec", "it is installed at "),
    ],
)
def test_code_outside_the_allowed_roots_is_an_error(tmp_path: Path, module: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        collect([declare(tmp_path, module=module)], module_root=tmp_path)
    (problem,) = caught.value.problems
    assert problem.field == "module_path" and problem.source is not None
    assert (problem.source.path, problem.source.line) == ("tools/methods.yaml", 5)
    assert f"{module!r} is not under the module root '.' nor an allowed package" in str(problem)
    assert why in problem.reason


def test_a_standard_library_name_cannot_be_allowed_away(tmp_path: Path) -> None:
    """Allowing a package is for installed tool packages: the stdlib check still applies."""
    with pytest.raises(ValidationError):
        collect([declare(tmp_path, module="os")], module_root=tmp_path, allowed_packages=("x",))
