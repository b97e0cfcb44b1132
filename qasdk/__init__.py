"""qasdk: code-first tool registration and an embedded task server for qwen-agent.

Mark functions with :func:`tool`, run ``qasdk sync ./tools`` to register them
in PostgreSQL, and ``qasdk serve`` to run tasks that use them.
"""

from qasdk.collect import Registry, collect
from qasdk.config import (
    Config,
    DatabaseConfig,
    LoggingConfig,
    ModelConfig,
    ServerConfig,
    WorkerConfig,
    load_config,
)
from qasdk.declared import load_methods_file, parse_methods
from qasdk.decorator import tool
from qasdk.errors import (
    ConfigurationError,
    DatabaseError,
    MethodExecutionError,
    MethodNotFoundError,
    QasdkError,
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
from qasdk.validate import validate_method

__all__ = [
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
    "Registry",
    "ServerConfig",
    "Source",
    "ValidationError",
    "WorkerConfig",
    "collect",
    "load_config",
    "load_methods_file",
    "parse_methods",
    "tool",
    "validate_method",
]
