"""qwen3's ``<think>`` output: kept out of a task's result, kept in its trace."""

from __future__ import annotations

import re

__all__ = ["split_thinking"]

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_thinking(text: str | None) -> tuple[str, str | None]:
    """Split model output into (answer, thinking)."""
    if not text:
        return "", None
    thoughts = [t.strip() for t in _THINK.findall(text)]
    answer = _THINK.sub("", text)
    if "</think>" in answer:  # an opening tag the template put in the prompt
        before, _, answer = answer.rpartition("</think>")
        thoughts.insert(0, before.replace("<think>", "").strip())
    thinking = "\n\n".join(t for t in thoughts if t) or None
    return answer.strip(), thinking
