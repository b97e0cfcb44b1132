"""The built-in planning tool of a split task (``"split": true``), and how composing resumes.

The plan goes through qwen-agent's function calling like any tool call: its
JSON Schema is the shape of ``subtasks`` in ``POST /api/tasks``, and the model
is shown the registered tools it may plan direct sub-tasks with. What it plans
is checked exactly as a declared graph is; a plan with problems goes back to the
model as the tool's error, naming every field, so it can correct it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from qasdk.models import MethodConfig
from qasdk_server.agent.shim import qwen_agent, tool_schema

__all__ = [
    "PLAN_TOOL",
    "Planned",
    "Resume",
    "composing_turn",
    "plan_tool",
    "planning_prompt",
]

PLAN_TOOL = "plan_subtasks"
#: How much of the tool list the plan tool's description may hold.
_LISTING_CHARS = 6000
#: How much of one sub-task's outcome the composing turn shows the model.
_OUTCOME_CHARS = 2000

_NODE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {
            "type": "string",
            "description": "A short name for the sub-task: letters, digits, '_' and '-'.",
        },
        "task_description": {
            "type": "string",
            "description": "What to do, in words (the model runs it with the tools); "
            "{{other_id.result}} puts a dependency's result into it.",
        },
        "method": {
            "type": "string",
            "description": "A tool to run directly instead (give params, not task_description).",
        },
        "params": {
            "type": "object",
            "description": 'The tool\'s arguments; {"$ref": "other_id.result"} is a '
            "dependency's result.",
        },
        "depends_on": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Ids of the sub-tasks that must complete first.",
        },
    },
    "required": ["id"],
}

PLAN_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subtasks": {
            "type": "array",
            "items": _NODE,
            "description": "The sub-tasks; those without dependencies run at once, in parallel.",
        },
    },
    "required": ["subtasks"],
}


class Planned(Exception):
    """The model's plan passed its checks: the task waits for its sub-tasks now.

    ``subtasks`` are the validated nodes; ``conversation`` is qwen-agent's
    messages up to the plan's call, which composing goes on from.
    """

    def __init__(self, subtasks: list[Any], conversation: list[Any]) -> None:
        super().__init__(f"planned {len(subtasks)} sub-tasks")
        self.subtasks = subtasks
        self.conversation = conversation


class Resume(msgspec.Struct, kw_only=True):
    """Where a model task goes on (``AgentRun.run``'s ``resume``): messages, calls left."""

    conversation: list[Any]
    pending: list[Any] = msgspec.field(default_factory=list)


def _listing(methods: Mapping[str, MethodConfig]) -> str:
    lines: list[str] = []
    used = 0
    for config in sorted(methods.values(), key=lambda m: m.name):
        schema = json.dumps(tool_schema(config)["properties"], ensure_ascii=False)
        line = f"- {config.name}: {config.description.strip()[:200]} parameters: {schema[:400]}"
        if used + len(line) > _LISTING_CHARS:
            lines.append(f"- ... and {len(methods) - len(lines)} more tools")
            break
        lines.append(line)
        used += len(line)
    return "\n".join(lines) if lines else "(no tools are registered: plan task_description only)"


def plan_tool(methods: Mapping[str, MethodConfig]) -> Any:
    """A qwen-agent tool whose call is the plan (schema only: qasdk handles the call)."""
    base = qwen_agent().tools.base.BaseTool
    description = (
        "Split the user's task into sub-tasks that together answer it, with their "
        "dependencies. Call this once with the whole plan. A sub-task either runs one tool "
        "directly (method + params) or is described in words (task_description). Tools:\n"
        + _listing(methods)
    )

    def never_called(self: Any, params: Any, **kwargs: Any) -> str:
        raise RuntimeError("qasdk handles the plan tool's call itself")

    cls = type(
        "QasdkPlanTool",
        (base,),
        {
            "name": PLAN_TOOL,
            "description": description,
            "parameters": PLAN_PARAMETERS,
            "call": never_called,
        },
    )
    return cls()


def planning_prompt(description: str) -> str:
    """The user's task, asked to be planned first."""
    return (
        f"Plan this task as sub-tasks by calling {PLAN_TOOL} once; their results will be "
        f"given back to you to write the final answer.\n\nTask: {description}"
    )


def composing_turn(conversation: list[Any], summary: Mapping[str, Any]) -> Resume:
    """The planning conversation with the plan call's result: every sub-task's outcome."""
    outcomes = "\n".join(
        f"- {key}: " + json.dumps(entry, ensure_ascii=False, default=str)[:_OUTCOME_CHARS]
        for key, entry in summary.items()
    )
    text = (
        f"The sub-tasks have ended. Their outcomes, by id:\n{outcomes}\n"
        "Answer the original task from these results."
    )
    call_id = "1"
    for message in reversed(conversation):
        if message.get("role") == "assistant" and message.get("function_call"):
            call_id = (message.get("extra") or {}).get("function_id", "1")
            break
    reply = {"role": "function", "name": PLAN_TOOL, "content": text}
    reply["extra"] = {"function_id": call_id}  # type: ignore[assignment]
    return Resume(conversation=[*conversation, reply])
