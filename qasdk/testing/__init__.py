"""Test qwen-agent code without a model: a scripted OpenAI-compatible server.

:class:`ScriptedModel` stands in for the model server (Ollama) only; qwen-agent
and the ``openai`` client run unmodified against it over real HTTP::

    from qasdk.testing import ScriptedModel, reply

    with ScriptedModel([reply.tool_call("get_weather", {"city": "Paris"}),
                        reply.text("It is sunny.")]) as model:
        ...  # point the agent at model.base_url

The ``scripted_model`` pytest fixture (:mod:`qasdk.testing.pytest_plugin`)
gives each test a started, empty one.

Names are imported on first use: pytest loads the plugin in every session,
and this package should cost it nothing until a test needs the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qasdk.testing import policies, reply
    from qasdk.testing.model import NO_REPLY_MESSAGE, Rule, ScriptedModel
    from qasdk.testing.reply import Reply, ToolCall

__all__ = [
    "NO_REPLY_MESSAGE",
    "Reply",
    "Rule",
    "ScriptedModel",
    "ToolCall",
    "policies",
    "reply",
]

_HOMES = {
    "NO_REPLY_MESSAGE": "qasdk.testing.model",
    "Reply": "qasdk.testing.reply",
    "Rule": "qasdk.testing.model",
    "ScriptedModel": "qasdk.testing.model",
    "ToolCall": "qasdk.testing.reply",
}


def __getattr__(name: str) -> Any:
    if name in ("policies", "reply"):
        return importlib.import_module(f"qasdk.testing.{name}")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qasdk.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
