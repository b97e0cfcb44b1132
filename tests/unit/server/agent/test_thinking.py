"""qwen3's thinking is kept out of the answer."""

from __future__ import annotations

from typing import Any

import pytest

from qasdk_server.agent.thinking import split_thinking


@pytest.mark.parametrize(
    ("text", "answer", "thinking"),
    [
        ("<think>\nplan\n</think>\n\nIt is sunny.", "It is sunny.", "plan"),
        ("It is sunny.", "It is sunny.", None),
        ("plan only in the prompt</think>\nAnswer", "Answer", "plan only in the prompt"),
        ("<think>a</think>x<think>b</think>y", "xy", "a\n\nb"),
        ("", "", None),
        (None, "", None),
    ],
)
def test_thinking_is_split_from_the_answer(text: Any, answer: str, thinking: str | None) -> None:
    assert split_thinking(text) == (answer, thinking)
