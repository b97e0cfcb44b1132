"""The environment tool processes start with: the worker's, without qasdk's secrets.

A tool is user code; it has no business with the database password, the model's API
key or qasdk's own settings. Removed: every ``QASDK_*`` variable, libpq's password
variables, and any variable whose value holds a configured secret (a key given as
``${OPENAI_API_KEY}`` in model_config.yaml, say). The tools' own variables stay;
``worker.tool_env`` names any that should pass although they look like qasdk's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["tool_environment"]

_PREFIXES = ("QASDK_",)
_NAMES = frozenset({"PGPASSWORD", "PGPASSFILE"})
#: What qasdk itself sets for its tool processes, kept whatever it is called.
_OURS = frozenset({"PYTHONDONTWRITEBYTECODE"})


def tool_environment(
    environ: Mapping[str, str], *, secrets: Iterable[str] = (), allow: Iterable[str] = ()
) -> dict[str, str]:
    """``environ`` without qasdk's secrets; names in ``allow`` are kept regardless."""
    allowed = set(allow) | _OURS
    known = [s for s in secrets if s and len(s) >= 3]
    kept: dict[str, str] = {}
    for name, value in environ.items():
        if name not in allowed and (
            name.startswith(_PREFIXES) or name in _NAMES or any(s in value for s in known)
        ):
            continue
        kept[name] = value
    return kept
