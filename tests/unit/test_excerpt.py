"""Client text in error messages: a prefix, never the whole."""

from __future__ import annotations

from qasdk._documents import suggestion
from qasdk._excerpt import SHOWN, excerpt


def test_excerpt() -> None:
    assert excerpt("short") == "short"
    assert excerpt("x" * SHOWN) == "x" * SHOWN
    assert excerpt("x" * 10_000) == "x" * SHOWN + "..."
    assert excerpt("abcdef", 3) == "abc..."


def test_no_suggestion_for_a_word_longer_than_any_option() -> None:
    assert suggestion("ad", ["add", "echo"]) == " (did you mean 'add'?)"
    assert suggestion("add" * 1_000_000, ["add", "echo"]) == ""  # and no difflib work
    assert suggestion("x", []) == ""
