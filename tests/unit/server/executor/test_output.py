"""What of a tool's output reaches the log: the three caps of ``worker.tool_output_*``."""

from __future__ import annotations

from qasdk_server.executor.output import OutputBudget, OutputLimits


def test_a_long_line_is_cut_and_says_how_much_is_missing() -> None:
    budget = OutputBudget(OutputLimits(line=10, per_call=1000, rate=100))
    shown = budget.admit("x" * 25)
    assert shown == "x" * 10 + "... [15 more bytes; worker.tool_output_line]"
    assert budget.admit("short") == "short"


def test_output_over_the_per_call_cap_is_dropped_and_counted() -> None:
    budget = OutputBudget(OutputLimits(line=100, per_call=20, rate=1000))
    admitted = [budget.admit("0123456789") for _ in range(5)]
    assert admitted == ["0123456789", "0123456789", None, None, None]
    note = budget.summary()
    assert note == (
        "dropped 3 lines (30 bytes) of output: more than 20 bytes in one call "
        "(worker.tool_output_per_call)"
    )
    assert budget.summary() is None  # counted once
    budget.new_call()
    assert budget.admit("again") == "again"


def test_lines_over_the_rate_are_dropped() -> None:
    budget = OutputBudget(OutputLimits(line=100, per_call=10**9, rate=5))
    admitted = [budget.admit("line") for _ in range(1000)]
    # A burst of ``rate`` lines passes, plus what refills while the loop runs (well under 1 s).
    assert 5 <= sum(a is not None for a in admitted) < 500
    note = budget.summary()
    assert note is not None
    assert "more than 5 lines a second (worker.tool_output_rate)" in note


def test_multibyte_text_is_cut_on_a_character_boundary() -> None:
    budget = OutputBudget(OutputLimits(line=5, per_call=1000, rate=100))
    shown = budget.admit("ééééé")  # 10 bytes
    assert shown is not None
    assert shown.startswith("éé...")
