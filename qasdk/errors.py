"""Exceptions raised by qasdk.

Every error is data: it carries the problems it is about, each naming where
(file and line), what (tool and field) and why, so the CLI can print one line
per problem and the server can answer with the same details.

    QasdkError
    ├── ConfigurationError    model_config.yaml, methods files, environment
    ├── ValidationError       tool metadata that breaks the registration rules
    ├── DatabaseError         PostgreSQL unreachable, refusing, or a failed statement
    ├── MethodNotFoundError   a tool name that is not in the registry
    ├── MethodExecutionError  a tool that could not be run
    └── StartupError          a server or worker that cannot start (address in use...)
"""

from __future__ import annotations

from collections.abc import Iterable

from qasdk.models import Problem

__all__ = [
    "ConfigurationError",
    "DatabaseError",
    "MethodExecutionError",
    "MethodNotFoundError",
    "QasdkError",
    "StartupError",
    "ValidationError",
]


class QasdkError(Exception):
    """Something went wrong in qasdk."""

    problems: tuple[Problem, ...]

    def __init__(self, message: str | None = None, *, problems: Iterable[Problem] = ()) -> None:
        self.problems = tuple(problems)
        if message is None:
            message = (
                "\n".join(str(p) for p in self.problems)
                if self.problems
                else (self.__doc__ or "").strip()
            )
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)


class ConfigurationError(QasdkError):
    """The configuration is invalid."""


class ValidationError(QasdkError):
    """Tool metadata breaks the registration rules."""


class DatabaseError(QasdkError):
    """A database operation failed.

    ``statement`` is the SQL that failed (when one did) and ``sqlstate`` the
    PostgreSQL error code, so logs can say exactly what the server refused.
    """

    def __init__(
        self,
        message: str,
        *,
        statement: str | None = None,
        sqlstate: str | None = None,
        query_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.statement = statement
        self.sqlstate = sqlstate
        self.query_name = query_name


class MethodNotFoundError(QasdkError):
    """No tool of that name is registered."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no registered tool named {name!r}")
        self.name = name


class MethodExecutionError(QasdkError):
    """A tool could not be run."""

    def __init__(self, method: str, message: str, *, error_type: str | None = None) -> None:
        super().__init__(f"tool {method!r}: {message}")
        self.method = method
        self.error_type = error_type


class StartupError(QasdkError):
    """A server or worker could not start: its address, its packages, its environment."""
