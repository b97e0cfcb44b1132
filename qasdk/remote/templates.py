"""``${VAR}`` templates in MCP headers and env: checked at sync, expanded at call time.

The registry stores the template (``Bearer ${GITHUB_TOKEN}``), never its value:
a row, an API answer or a log line can show it without showing the secret. The
syntax is the configuration's: ``${VAR}``, ``${VAR:-default}``, and ``$$`` for
a dollar sign.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from qasdk.errors import ConfigurationError
from qasdk.models import Problem

__all__ = ["check_template", "expand", "expand_all", "variables"]

_TEMPLATE = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")
#: Header and variable names whose value is a secret: a literal one is refused.
_SECRET_NAME = re.compile(r"authorization|token|secret|password|api[-_]?key|cookie", re.I)


def variables(text: str) -> list[str]:
    """The environment variables ``text`` reads."""
    return [m.group(2) for m in _TEMPLATE.finditer(text) if m.group(2)]


def check_template(name: str, text: str) -> str | None:
    """Why ``text`` (the value of header or variable ``name``) cannot be stored, or ``None``."""
    stray = _TEMPLATE.sub("", text)
    if "${" in stray:
        return "has an unfinished ${...}: write ${VAR} or ${VAR:-default} ($$ for a dollar sign)"
    if _SECRET_NAME.search(name) and not variables(text):
        return (
            "holds a secret as plain text, which would be stored in the registry: "
            f"write it as ${{VARIABLE}} and set that variable where qasdk runs "
            f"(e.g. '{name}: Bearer ${{MY_TOKEN}}')"
        )
    return None


def expand(text: str, environ: Mapping[str, str], *, what: str) -> str:
    """``text`` with its variables from ``environ``; an unset one is an error naming it."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name, default = match.group(2), match.group(3)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigurationError(
            problems=[
                Problem(
                    field=what,
                    reason=f"environment variable {name!r} is not set "
                    f"(write ${{{name}:-default}} to give a default)",
                )
            ]
        )

    return _TEMPLATE.sub(replace, text)


def expand_all(
    templates: Mapping[str, str], environ: Mapping[str, str], *, what: str
) -> dict[str, str]:
    return {k: expand(v, environ, what=f"{what}.{k}") for k, v in templates.items()}
