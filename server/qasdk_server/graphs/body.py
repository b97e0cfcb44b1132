"""One entry of ``subtasks``: a task like any other, with an id and what it waits for."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = ["MAX_SUBTASKS", "SubtaskSpec"]

#: Sub-tasks one graph may hold (checks and the summary stay small).
MAX_SUBTASKS = 500

SubtaskId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The sub-task's name in this graph: letters, digits, '_' and '-'.",
        examples=["a"],
    ),
]


class SubtaskSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``method`` + ``params`` or ``task_description``; ``{"$ref": "a.result"}`` in params,
    ``{{a.result}}`` in a description, use a dependency's result."""

    id: SubtaskId
    task_description: str | None = None
    method: str | None = None
    params: dict[str, Any] | None = None
    depends_on: Annotated[
        list[SubtaskId],
        msgspec.Meta(max_length=MAX_SUBTASKS, description="Ids this sub-task waits for."),
    ] = msgspec.field(default_factory=list)
    priority: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0, le=86400)] | None = None
