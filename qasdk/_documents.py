"""Read YAML and JSON files, remember the line of every value, decode into Structs.

Errors about configuration should point at the line to fix, so documents are
parsed into plain data plus a map from key path to line number. Both kinds of
input file (``model_config.yaml`` and the methods files) are then decoded with
msgspec the same way: field by field, so every problem is reported at once,
each with its key path (hence its line) and a reason in JSON's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import yaml

from qasdk.errors import ConfigurationError
from qasdk.models import Problem, Source

__all__ = [
    "DOCUMENT_WORDS",
    "JSON_WORDS",
    "Document",
    "KeyPath",
    "decode_error",
    "decode_message",
    "did_you_mean",
    "field_name",
    "field_problems",
    "json_words",
    "load_document",
    "parse_document",
    "suggestion",
]

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


def _json_error(text: str, exc: json.JSONDecodeError) -> tuple[int, str]:
    """Where and what, as a person would say it: a trailing comma is on the comma's line."""
    closer = text[exc.pos : exc.pos + 1]
    before = text[: exc.pos].rstrip()
    if closer in ("}", "]") and before.endswith(","):
        comma = len(before) - 1
        line = text.count("\n", 0, comma) + 1
        column = comma - (text.rfind("\n", 0, comma) + 1) + 1
        return line, f"trailing comma before {closer!r} (column {column}); JSON allows none"
    return exc.lineno, f"{exc.msg} (column {exc.colno})"


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
        line, reason = _json_error(text, exc)
        raise _error(path, line, f"invalid JSON: {reason}") from None
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


# -- decoding into msgspec Structs, every problem at once -------------------------

_PATH_IN_ERROR = re.compile(r" - at `\$((?:\.[^.\[`]+|\[\d+\])*)`$")
_PATH_PART = re.compile(r"\.([^.\[`]+)|\[(\d+)\]")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.*)`", re.DOTALL)
#: msgspec's type names in the words of a YAML or JSON file's author.
DOCUMENT_WORDS = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "array": "list",
    "object": "mapping",
}
#: msgspec's type names as JSON Schema (and so the API) names them.
JSON_WORDS = {**DOCUMENT_WORDS, "array": "array", "object": "object"}


def json_words(message: str, words: Mapping[str, str] = DOCUMENT_WORDS) -> str:
    """msgspec's ``Expected `int`, got `str``` as ``expected integer, got string``."""

    def name(match: re.Match[str]) -> str:
        names = [words.get(w.strip(), w.strip()) for w in match.group(1).split("|")]
        shown = [w for w in names if w != "null"] or names
        return " or ".join(shown)

    message = re.sub(r"`([^`]*)`", name, message)
    return message[:1].lower() + message[1:]


def decode_message(
    message: str, words: Mapping[str, str] = DOCUMENT_WORDS
) -> tuple[KeyPath, str, str | None]:
    """(key path, reason, unknown field name or ``None``) of a msgspec validation message."""
    keypath: KeyPath = ()
    match = _PATH_IN_ERROR.search(message)
    if match:
        message = message[: match.start()]
        keypath = tuple(
            int(index) if index else key for key, index in _PATH_PART.findall(match.group(1))
        )
    unknown = _UNKNOWN_FIELD.fullmatch(message)
    if unknown:
        return keypath, "unknown field", unknown.group(1)
    return keypath, json_words(message, words) or "invalid value", None


def decode_error(
    exc: msgspec.ValidationError, words: Mapping[str, str] = DOCUMENT_WORDS
) -> tuple[KeyPath, str, str | None]:
    """(key path, reason, unknown field name or ``None``) of a msgspec validation error."""
    return decode_message(str(exc), words)


def field_name(keypath: Sequence[str | int]) -> str:
    """``parameters[0].type``: a key path as problems name it."""
    text = ""
    for part in keypath:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def suggestion(word: str, options: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or nothing.

    A word far longer than every option resembles none of them: it is not
    compared (difflib's work grows with the word's length).
    """
    import difflib

    if not options or len(word) > 2 * max(len(o) for o in options) + 2:
        return ""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or the list of options."""
    return suggestion(word, options) or f"; expected one of {', '.join(options)}"


def field_problems(
    data: Mapping[str, Any], into: type[msgspec.Struct], *, strict: bool = True
) -> Iterator[tuple[KeyPath, str]]:
    """Decode each field of ``data`` on its own into ``into``; yield (key path, reason) per bad one.

    ``into`` must accept each field alone (its other fields have defaults), so one
    bad value never hides the next. An unknown field's reason suggests the closest
    known one.
    """
    fields = into.__struct_fields__
    for key, value in data.items():
        try:
            msgspec.convert({key: value}, into, strict=strict)
        except msgspec.ValidationError as exc:
            keypath, reason, unknown = decode_error(exc)
            if unknown is not None:
                hint = suggestion(unknown, fields) if not keypath else ""
                keypath, reason = (*keypath, unknown), f"unknown field{hint}"
            yield keypath or (key,), reason
