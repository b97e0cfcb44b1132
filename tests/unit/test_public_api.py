"""The public API: documented, exported once, sorted, importable, and light (httpx/griffe habits).

The public modules are ``qasdk`` (what a tool author imports), ``qasdk.testing``
(test helpers), ``qasdk_server`` (to run or embed the server) and
``qasdk_server.middleware`` (to write middleware); the README's
"Python API" table documents them, and this test holds the two together.
Everything else is internal, though its ``__all__`` must still be honest.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import qasdk
import qasdk_server

README = Path(__file__).parents[2] / "README.md"
PUBLIC = (
    "qasdk",
    "qasdk.testing",
    "qasdk_server",
    "qasdk_server.middleware",
    "qasdk_server.testing",
)
ROW = re.compile(r"^\| `(qasdk[\w.]*)` \| (.+) \|$")


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper() and len(name) > 1:
        return (0, name)  # CONSTANTS
    if name[:1].isupper():
        return (1, name)  # Classes
    return (2, name)  # functions


def documented() -> dict[str, list[str]]:
    """The README's "Python API" table: module → names."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    table: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match:
            table[match.group(1)] = re.findall(r"`(\w+)`", match.group(2))
    return table


def test_the_readme_documents_exactly_what_is_exported() -> None:
    table = documented()
    assert sorted(table) == sorted(PUBLIC)
    for name in PUBLIC:
        module = importlib.import_module(name)
        assert sorted(module.__all__) == sorted(table[name]), name


def test_each_public_object_is_exported_from_one_place() -> None:
    homes: dict[int, str] = {}
    for name in PUBLIC:
        module = importlib.import_module(name)
        for attr in module.__all__:
            value = getattr(module, attr)
            if isinstance(value, ModuleType):
                continue
            where = f"{name}.{attr}"
            assert id(value) not in homes, f"{where} is also exported as {homes[id(value)]}"
            homes[id(value)] = where


def _all_modules() -> list[str]:
    found = []
    for package in (qasdk, qasdk_server):
        found.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if info.name.endswith("__main__"):
                continue
            found.append(info.name)
    return found


@pytest.mark.parametrize("name", _all_modules())
def test_every_all_is_sorted_unique_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert list(exported) == sorted(exported, key=_isort_key)  # the order ruff's RUF022 keeps
    assert len(exported) == len(set(exported))
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_error_hierarchy() -> None:
    from qasdk.registration.types import CoercionError

    for error in (
        qasdk.ConfigurationError,
        qasdk.ValidationError,
        qasdk.DatabaseError,
        qasdk.MethodExecutionError,
        qasdk.MethodNotFoundError,
        qasdk.StartupError,
        CoercionError,
    ):
        assert issubclass(error, qasdk.QasdkError)


def _modules_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


HEAVY = (
    "griffe",
    "yaml",
    "litestar",
    "qwen_agent",
    "psycopg",
    "click",
    "procrastinate",
    "openai",
    "mcp",
)


@pytest.mark.parametrize(
    "code",
    ["import qasdk", "from qasdk import tool", "import qasdk_server", "import qasdk.testing"],
)
def test_importing_the_packages_loads_nothing_heavy(code: str) -> None:
    loaded = _modules_after(code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"{code!r} imported {heavy[:5]}"


def test_lazy_names_load_on_first_use() -> None:
    loaded = _modules_after("import qasdk\nqasdk.collect\nqasdk.load_config")
    assert "griffe" in loaded and "yaml" in loaded


def test_importing_qasdk_has_no_side_effects() -> None:
    import logging

    root_handlers = list(logging.getLogger().handlers)
    importlib.reload(qasdk)
    assert logging.getLogger().handlers == root_handlers
