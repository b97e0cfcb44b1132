"""``qasdk.ToolContext``: recognised statically and at run time, and safe to call."""

from __future__ import annotations

import textwrap
import time

import pytest

from qasdk import ToolContext
from qasdk.context import CONTEXT_PATHS, MESSAGE_LIMIT
from qasdk.registration.scan import scan_source
from qasdk.registration.validate import validate_entries
from qasdk_server.executor import convert


def scanned(code: str) -> list[str]:
    result = scan_source(textwrap.dedent(code), module="tools.mod", path="tools/mod.py")
    assert result.problems == []
    assert validate_entries(result.entries) == []
    [entry] = result.entries
    return [p.name for p in entry.config.parameters]


@pytest.mark.parametrize(
    ("imports", "annotation"),
    [
        ("from qasdk import ToolContext, tool", "ToolContext"),
        ("from qasdk import tool\nimport qasdk", "qasdk.ToolContext"),
        ("from qasdk import tool\nfrom qasdk.context import ToolContext as Ctx", "Ctx"),
        ("from qasdk import ToolContext, tool", "'ToolContext'"),
    ],
)
def test_the_scanner_leaves_the_context_out_of_the_schema(imports: str, annotation: str) -> None:
    code = f'''
{imports}

@tool
def crawl(url: str, ctx: {annotation}, pages: int = 3) -> int:
    """Crawl a site.

    Args:
        url: Where to start.
        pages: How many pages.
    """
'''
    assert scanned(code) == ["url", "pages"]


def test_a_class_of_the_same_name_elsewhere_is_a_parameter() -> None:
    code = '''
from qasdk import tool
from mylib import ToolContext

@tool
def crawl(url: str, ctx: ToolContext) -> int:
    """Crawl a site.

    Args:
        url: Where to start.
        ctx: Not qasdk's.
    """
'''
    result = scan_source(textwrap.dedent(code), module="tools.mod", path="tools/mod.py")
    [entry] = result.entries
    assert [p.name for p in entry.config.parameters] == ["url", "ctx"]


def test_the_tool_process_recognises_the_same_annotations() -> None:
    # convert.py cannot import qasdk: its copy of the paths must agree with the scanner's.
    assert convert._CONTEXT_PATHS == CONTEXT_PATHS
    assert convert.is_context(ToolContext)
    assert convert.is_context("ToolContext") and convert.is_context("qasdk.ToolContext")
    assert not convert.is_context(str) and not convert.is_context("Context")

    def crawl(url: str, ctx: ToolContext) -> None: ...

    converter = convert.Converter(crawl)
    assert converter.context_param == "ctx"
    assert "ctx" not in converter.hints


def test_progress_is_clamped_cut_and_never_raises() -> None:
    seen: list[tuple[float | None, str | None]] = []
    ctx = ToolContext(tool="t", task_id="x", emit=lambda f, m: seen.append((f, m)))
    ctx.report_progress(1.7, "x" * (MESSAGE_LIMIT + 10))
    ctx.report_progress(-1)
    ctx.report_progress(float("nan"), 42)  # type: ignore[arg-type]
    ctx.report_progress("half")  # type: ignore[arg-type]
    assert seen == [(1.0, "x" * MESSAGE_LIMIT), (0.0, None), (None, "42"), (None, None)]


def test_a_detached_context_goes_nowhere() -> None:
    ctx = ToolContext.detached("crawl")
    ctx.report_progress(0.5, "half")
    assert not ctx.cancelled
    assert ctx.deadline is None and ctx.remaining() is None and ctx.deadline_at is None
    later = ToolContext(tool="t", deadline=time.time() + 100)
    remaining = later.remaining()
    assert remaining is not None and 0 < remaining <= 100
    assert later.deadline_at is not None and later.deadline_at.tzinfo is not None
