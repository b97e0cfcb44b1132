"""The public API is exported once, sorted, and importable (httpx/griffe habit)."""

from __future__ import annotations

import importlib

import pytest

import qasdk


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper() and len(name) > 1:
        return (0, name)  # CONSTANTS
    if name[:1].isupper():
        return (1, name)  # Classes
    return (2, name)  # functions


MODULES = [
    "qasdk",
    "qasdk.config",
    "qasdk.models",
    "qasdk.errors",
    "qasdk.registration.types",
    "qasdk.store",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_unique_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=_isort_key)  # the order ruff's RUF022 keeps
    assert len(exported) == len(set(exported))
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_the_documented_names_are_public() -> None:
    for name in (
        "tool",
        "MethodConfig",
        "MethodParameter",
        "ExecutionResult",
        "QasdkError",
        "ConfigurationError",
        "ValidationError",
        "DatabaseError",
        "MethodExecutionError",
        "MethodNotFoundError",
        "load_config",
        "collect",
    ):
        assert name in qasdk.__all__


def test_error_hierarchy() -> None:
    for error in (
        qasdk.ConfigurationError,
        qasdk.ValidationError,
        qasdk.DatabaseError,
        qasdk.MethodExecutionError,
        qasdk.MethodNotFoundError,
    ):
        assert issubclass(error, qasdk.QasdkError)


def test_importing_qasdk_has_no_side_effects() -> None:
    import logging

    root_handlers = list(logging.getLogger().handlers)
    importlib.reload(qasdk)
    assert logging.getLogger().handlers == root_handlers
