"""Read YAML and JSON files and remember the line of every value.

Errors about configuration should point at the line to fix, so documents are
parsed into plain data plus a map from key path to line number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import yaml

from qasdk.errors import ConfigurationError
from qasdk.models import Problem, Source

__all__ = ["Document", "KeyPath", "load_document", "parse_document"]

KeyPath = tuple[str | int, ...]


class Document(msgspec.Struct, frozen=True):
    """A parsed file: its data, its path, and the line of each key path."""

    path: str
    data: Any
    lines: dict[KeyPath, int]

    def line(self, keypath: Sequence[str | int] = ()) -> int | None:
        """The line of ``keypath``, or of its nearest ancestor that has one."""
        parts = tuple(keypath)
        while True:
            if parts in self.lines:
                return self.lines[parts]
            if not parts:
                return None
            parts = parts[:-1]

    def source(self, keypath: Sequence[str | int] = ()) -> Source:
        return Source(self.path, self.line(keypath))


def load_document(path: str | Path, *, display: str | None = None) -> Document:
    """Parse a ``.yaml``/``.yml``/``.json`` file, or raise :class:`ConfigurationError`."""
    path = Path(path)
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _error(shown, None, "file not found") from None
    except IsADirectoryError:
        raise _error(shown, None, "is a directory, expected a file") from None
    except OSError as exc:
        raise _error(shown, None, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(shown, None, f"not UTF-8 text (byte {exc.start})") from None
    return parse_document(text, shown, json_syntax=path.suffix.lower() == ".json")


def parse_document(text: str, path: str, *, json_syntax: bool = False) -> Document:
    """Parse YAML (or JSON when ``json_syntax``) text named ``path``."""
    if json_syntax:
        return _parse_json(text, path)
    return _parse_yaml(text, path)


def _error(path: str, line: int | None, reason: str) -> ConfigurationError:
    return ConfigurationError(problems=[Problem(source=Source(path, line), reason=reason)])


def _loader(text: str) -> yaml.SafeLoader:
    # libyaml's parser when present: the same documents, several times faster.
    cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: yaml.SafeLoader = cls(text)
    return loader


def _parse_yaml(text: str, path: str) -> Document:
    loader = _loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(p for p in (exc.context, exc.problem) if p)
        raise _error(path, line, f"invalid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise _error(path, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), lines, problems, path)
    if problems:
        raise ConfigurationError(problems=problems)
    return Document(path=path, data=data, lines=lines)


def _walk(
    node: yaml.Node,
    keypath: KeyPath,
    lines: dict[KeyPath, int],
    problems: list[Problem],
    path: str,
) -> None:
    lines.setdefault(keypath, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key == "<<":
                continue
            if key in seen:
                problems.append(
                    Problem(
                        source=Source(path, line),
                        reason=f"duplicate key {key!r} (first on line {seen[key]})",
                    )
                )
            seen[key] = line
            child = (*keypath, key)
            lines[child] = line
            _walk(value_node, child, lines, problems, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*keypath, index), lines, problems, path)


def _parse_json(text: str, path: str) -> Document:
    problems: list[Problem] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                problems.append(Problem(source=Source(path), reason=f"duplicate key {key!r}"))
            result[key] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise _error(path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    lines: dict[KeyPath, int] = {}
    # JSON is (nearly) YAML, and YAML remembers lines; when the two disagree
    # (tabs, odd escapes) we simply report without line numbers.
    try:
        line_problems: list[Problem] = []
        loader = _loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is not None:
            _walk(node, (), lines, line_problems, path)
        problems = [
            next((lp for lp in line_problems if lp.reason.startswith(p.reason)), p)
            for p in problems
        ]
    except yaml.YAMLError:
        lines = {}
    if problems:
        raise ConfigurationError(problems=problems)
    return Document(path=path, data=data, lines=lines)
