"""Docstrings → a summary and a description per parameter (Google, NumPy or Sphinx)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal, cast

import griffe
import msgspec

__all__ = ["Documented", "attribute_docs", "entry_line", "how_to_document", "read_docstring"]

Style = Literal["google", "numpy", "sphinx"]
_STYLES: tuple[Style, ...] = ("google", "numpy", "sphinx")
_OPTIONS: Any = {
    style: {"warnings": False}
    for style in (griffe.Parser.google, griffe.Parser.numpy, griffe.Parser.sphinx)
}
#: A line that starts a section in one of the three styles (``Args:``, ``Parameters``...).
_SECTION_TITLE = re.compile(
    r"^(?:(?:Args|Arguments|Params|Parameters|Keyword Args|Keyword Arguments|Other Parameters"
    r"|Returns|Yields|Raises):|Parameters|Other Parameters|Returns|:param\b.*)$"
)
_HOW_TO_DOCUMENT = {
    "google": "an 'Args:' section",
    "numpy": "a 'Parameters' section",
    "sphinx": "a ':param NAME:' line",
}


class Documented(msgspec.Struct, frozen=True):
    """What a docstring says: its style, its summary, and each parameter's description."""

    style: str
    summary: str
    parameters: dict[str, str]


def entry_line(lines: list[str], docstring: griffe.Docstring, name: str) -> int | None:
    """The source line that documents parameter ``name`` (1-based), if it can be found."""
    end = docstring.endlineno or docstring.lineno or 0
    start = docstring.lineno or 0
    pattern = re.compile(
        rf"^\s*(?:{re.escape(name)}\s*(?:\(.*\))?\s*:|{re.escape(name)}\s*$|"
        rf":param\s+(?:\S+\s+)?{re.escape(name)}\s*:)"
    )
    for number in range(max(start, 1), min(end, len(lines)) + 1):
        if pattern.match(lines[number - 1]):
            return number
    return None


def attribute_docs(cls: griffe.Class) -> dict[str, str]:
    """Field descriptions from a class docstring's ``Attributes`` section (any style)."""
    docstring = cls.docstring
    if docstring is None:
        return {}
    style, sections = griffe.infer_docstring_style(docstring, per_style_options=_OPTIONS)
    if sections is None:
        sections = griffe.parse(docstring, cast(griffe.Parser, style or "google"), warnings=False)
    found: dict[str, str] = {}
    for section in sections:
        if section.kind is griffe.DocstringSectionKind.attributes:
            for item in section.value:
                found[item.name] = " ".join(str(item.description).split())
    return found


def how_to_document(style: str) -> str:
    """Where a parameter's description goes in ``style``."""
    return _HOW_TO_DOCUMENT.get(style, "the docstring")


def read_docstring(function: griffe.Function) -> Documented:
    """Read ``function``'s docstring in the style that documents the most parameters.

    griffe infers the style per docstring; its heuristic can misread a short one
    (a single ``:param x:`` line), so when parameters are left undocumented the
    other styles are tried and the best kept. A docstring that opens with its
    section (``Args:`` on the first line, the description given to ``@tool``)
    is read as sections, not as a summary.
    """
    docstring = function.docstring
    if docstring is None:
        return Documented("google", "", {})
    style, sections = griffe.infer_docstring_style(docstring, per_style_options=_OPTIONS)
    parser = cast(griffe.Parser, style or griffe.Parser.google)
    if sections is None:
        sections = griffe.parse(docstring, parser, warnings=False)
    best = Documented(str(parser.value), *_read_sections(sections))
    wanted = {p.name for p in function.parameters}
    if wanted <= set(best.parameters):
        return best
    for text in _readings(docstring):
        for other in _STYLES:
            if other == best.style and text is docstring:
                continue
            candidate = Documented(
                other, *_read_sections(griffe.parse(text, other, warnings=False))
            )
            if len(wanted & set(candidate.parameters)) > len(wanted & set(best.parameters)):
                best = candidate
    return best


def _readings(docstring: griffe.Docstring) -> list[griffe.Docstring]:
    """The docstring, and when its first line is a section title, the same read as sections.

    Every parser takes a docstring's first paragraph for its summary, so a section
    on the first line would be read as text; and Python's docstring cleaning
    measures indentation from the second line on, so a lone section comes out with
    its entries flush left. The second reading puts both back.
    """
    first, _, rest = docstring.value.partition("\n")
    if not _SECTION_TITLE.match(first.strip()):
        return [docstring]
    lines = rest.split("\n")
    if not any(_SECTION_TITLE.match(line) for line in lines):  # one section, flattened
        lines = [f"    {line}" if line.strip() else line for line in lines]
    text = "\n".join(["", first, *lines])
    return [docstring, griffe.Docstring(text, lineno=docstring.lineno, parent=docstring.parent)]


def _read_sections(sections: Iterable[griffe.DocstringSection]) -> tuple[str, dict[str, str]]:
    """The summary and the parameter descriptions of parsed docstring sections."""
    summary = ""
    documented: dict[str, str] = {}
    for section in sections:
        if section.kind is griffe.DocstringSectionKind.text and not summary:
            summary = _first_paragraph(str(section.value))
        elif section.kind in (
            griffe.DocstringSectionKind.parameters,
            griffe.DocstringSectionKind.other_parameters,
        ):
            for item in section.value:
                documented[item.name] = " ".join(str(item.description).split())
    return summary, documented


def _first_paragraph(text: str) -> str:
    paragraph = text.strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())
