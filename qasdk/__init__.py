"""qasdk: code-first tool registration and an embedded task server for qwen-agent.

Mark functions with :func:`tool`, run ``qasdk sync ./tools`` to register them
in PostgreSQL, and ``qasdk serve`` to run tasks that use them.

``import qasdk`` loads only what ``@tool`` needs (it runs in every tool
process): the decorator, the errors and the data models. The configuration
and the registration pipeline (griffe, PyYAML) load on first use of their
names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qasdk.context import ToolContext
from qasdk.decorator import tool
from qasdk.errors import (
    ConfigurationError,
    DatabaseError,
    MethodExecutionError,
    MethodNotFoundError,
    QasdkError,
    StartupError,
    ValidationError,
)
from qasdk.models import (
    ExecutionResult,
    MethodConfig,
    MethodMetadata,
    MethodParameter,
    Problem,
    Source,
)

if TYPE_CHECKING:
    from qasdk.config import (
        Config,
        DatabaseConfig,
        LoggingConfig,
        ModelConfig,
        ServerConfig,
        WorkerConfig,
        load_config,
    )
    from qasdk.registration.collect import Catalog, collect
    from qasdk.registration.declared import load_methods_file, parse_methods
    from qasdk.registration.validate import validate_method

__all__ = [
    "Catalog",
    "Config",
    "ConfigurationError",
    "DatabaseConfig",
    "DatabaseError",
    "ExecutionResult",
    "LoggingConfig",
    "MethodConfig",
    "MethodExecutionError",
    "MethodMetadata",
    "MethodNotFoundError",
    "MethodParameter",
    "ModelConfig",
    "Problem",
    "QasdkError",
    "ServerConfig",
    "Source",
    "StartupError",
    "ToolContext",
    "ValidationError",
    "WorkerConfig",
    "collect",
    "load_config",
    "load_methods_file",
    "parse_methods",
    "tool",
    "validate_method",
]

#: Names loaded on first use, and the module each comes from.
_LAZY = {
    "Catalog": "qasdk.registration.collect",
    "collect": "qasdk.registration.collect",
    "Config": "qasdk.config",
    "DatabaseConfig": "qasdk.config",
    "LoggingConfig": "qasdk.config",
    "ModelConfig": "qasdk.config",
    "ServerConfig": "qasdk.config",
    "WorkerConfig": "qasdk.config",
    "load_config": "qasdk.config",
    "load_methods_file": "qasdk.registration.declared",
    "parse_methods": "qasdk.registration.declared",
    "validate_method": "qasdk.registration.validate",
}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'qasdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
