"""The tool-call pipeline: an ordered chain of middleware around every tool call.

Write one by subclassing :class:`Middleware`; configure the chain in
``model_config.yaml`` (``middleware:``); see the README's "Middleware" section.
"""

from __future__ import annotations

from qasdk_server.middleware.base import Middleware, ToolCall, ToolError, ToolRefused

__all__ = ["Middleware", "ToolCall", "ToolError", "ToolRefused"]
