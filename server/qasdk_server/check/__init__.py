"""``qasdk model check``: can the configured model drive tools, and in which format?

Three stages, each bounded by ``model.timeout``: :mod:`.endpoint` reaches the
server and reads which models it lists (``/v1/models``, Ollama's
``/api/tags``) and times a trivial prompt; :mod:`.probe` runs a built-in
``get_weather`` tool through the same :class:`~qasdk_server.agent.AgentRun`
a task uses, once per function-calling format; :mod:`.report` prints the
table or the JSON, and the settings to use.
"""

from __future__ import annotations

from qasdk_server.check.report import (
    EXIT_NO_TOOL_CALLS,
    EXIT_OK,
    EXIT_UNUSABLE,
    CheckReport,
    check_model,
)

__all__ = ["EXIT_NO_TOOL_CALLS", "EXIT_OK", "EXIT_UNUSABLE", "CheckReport", "check_model"]
