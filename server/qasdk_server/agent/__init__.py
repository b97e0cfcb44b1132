"""The agent: qwen-agent driving the registered tools for one task.

``shim`` adapts qwen-agent (tools, LLM client, hooks), ``run`` is one task's
tool loop, ``model_errors`` classifies failed model calls, ``thinking``
separates qwen3's reasoning from the answer.
"""

from qasdk_server.agent.run import AgentContext, AgentFailure, AgentOutcome, AgentRun, Cancelled
from qasdk_server.agent.shim import build_llm, llm_config, qwen_tools, tool_schema
from qasdk_server.agent.thinking import split_thinking

__all__ = [
    "AgentContext",
    "AgentFailure",
    "AgentOutcome",
    "AgentRun",
    "Cancelled",
    "build_llm",
    "llm_config",
    "qwen_tools",
    "split_thinking",
    "tool_schema",
]
