"""Docstrings → a summary and a description per parameter (Google, NumPy or Sphinx)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, cast

import griffe
import msgspec

__all__ = ["Documented", "how_to_document", "read_docstring"]

Style = Literal["google", "numpy", "sphinx"]
_STYLES: tuple[Style, ...] = ("google", "numpy", "sphinx")
_OPTIONS: Any = {
    style: {"warnings": False}
    for style in (griffe.Parser.google, griffe.Parser.numpy, griffe.Parser.sphinx)
}
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


def how_to_document(style: str) -> str:
    """Where a parameter's description goes in ``style``."""
    return _HOW_TO_DOCUMENT.get(style, "the docstring")


def read_docstring(function: griffe.Function) -> Documented:
    """Read ``function``'s docstring in the style that documents the most parameters.

    griffe infers the style per docstring; its heuristic can misread a short one
    (a single ``:param x:`` line), so when parameters are left undocumented the
    other styles are tried and the best kept.
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
    for other in _STYLES:
        if other == best.style:
            continue
        candidate = Documented(
            other, *_read_sections(griffe.parse(docstring, other, warnings=False))
        )
        if len(wanted & set(candidate.parameters)) > len(wanted & set(best.parameters)):
            best = candidate
    return best


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
