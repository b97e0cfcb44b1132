"""In the tool process: JSON arguments → the function's own types, its result → JSON.

A tool's signature is a promise: ``level: Level`` receives a ``Level``, not the
number the model sent; ``when: date`` a ``date``; ``box: Box`` a ``Box``. msgspec
converts (its conversions are the ones the scanner's schemas describe); an
argument the caller left out is not passed at all, so Python applies the
function's own default object. The result goes back as JSON: dataclasses,
Structs, TypedDicts and a NamedTuple become objects, dates ISO strings, Enums
their values, paths strings.

Loaded by the tool process from this file under a private name (it imports
nothing from qasdk), so a user module called ``convert`` is never shadowed.
"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import typing
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

__all__ = ["ArgumentError", "Converter", "encode_result", "is_context"]


class ArgumentError(TypeError):
    """An argument could not be converted to its parameter's type."""


def _dec_hook(kind: type, value: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, pathlib.PurePath) and isinstance(value, str):
        return kind(value)
    raise NotImplementedError(kind)


def _enc_hook(value: Any) -> Any:
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise NotImplementedError(f"objects of type {type(value).__qualname__} are not supported")


def _is_named_tuple(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")


def _complete(value: Any, depth: int = 0) -> Any:
    """Set a dataclass's defaults on the instance itself, nested ones too.

    msgspec builds dataclasses without setting fields left at a plain default
    (the class attribute answers for them); the tool sees no difference, but
    ``__dict__``, ``vars()`` and encoding the object back would miss them.
    """
    if depth > 64:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            if field.name not in value.__dict__ and field.default is not dataclasses.MISSING:
                value.__dict__[field.name] = field.default
            if field.name in value.__dict__:
                _complete(value.__dict__[field.name], depth + 1)
    elif isinstance(value, list):
        for item in value:
            _complete(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _complete(item, depth + 1)
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            _complete(getattr(value, name), depth + 1)
    return value


def _as_sent(kind: Any, value: Any) -> Any:
    """A NamedTuple's fields sent as an object (its schema says object): as msgspec's array."""
    if not isinstance(value, Mapping):
        return value
    named = [k for k in (kind, *typing.get_args(kind)) if _is_named_tuple(k)]
    if len(named) != 1:
        return value
    fields: tuple[str, ...] = named[0]._fields
    defaults: dict[str, Any] = named[0]._field_defaults
    if set(value) - set(fields):
        return value  # let msgspec say what is wrong
    present = [f for f in fields if f in value or f in defaults]
    if len(present) < len(fields):
        return value
    return [value[f] if f in value else defaults[f] for f in fields]


class Converter:
    """Converts the arguments of one function; built once per function, kept warm."""

    def __init__(self, function: Callable[..., Any]) -> None:
        try:
            self.signature: inspect.Signature | None = inspect.signature(function)
        except (TypeError, ValueError):
            self.signature = None
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # an annotation that does not resolve at run time: pass values as sent
            hints = {}
        hints.pop("return", None)
        self.hints: dict[str, Any] = hints
        #: The parameter that receives the call's ``qasdk.ToolContext``, if any.
        self.context_param: str | None = None
        if self.signature is not None:
            for name, parameter in self.signature.parameters.items():
                if is_context(hints.get(name, parameter.annotation)):
                    self.context_param = name
                    hints.pop(name, None)
                    break

    def arguments(self, params: Mapping[str, Any], fallbacks: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the call.

        ``fallbacks`` are registered defaults, used only for a parameter the
        function itself gives no default (a declared tool may define one).
        """
        converted: dict[str, Any] = {}
        for name, value in params.items():
            converted[name] = self._convert(name, value)
        if self.signature is not None:
            for name, parameter in self.signature.parameters.items():
                if (
                    name not in converted
                    and name in fallbacks
                    and parameter.default is inspect.Parameter.empty
                ):
                    converted[name] = self._convert(name, fallbacks[name])
        return converted

    def _convert(self, name: str, value: Any) -> Any:
        kind = self.hints.get(name)
        if kind is None or kind is Any:
            return value
        try:
            converted = msgspec.convert(
                _as_sent(kind, value), kind, strict=False, dec_hook=_dec_hook
            )
            return _complete(converted)
        except msgspec.ValidationError as exc:
            raise ArgumentError(f"{name}: {exc}") from None
        except (TypeError, NotImplementedError):
            return value  # a type msgspec cannot build: the value as it came


_CONTEXT_PATHS = frozenset({"qasdk.ToolContext", "qasdk.context.ToolContext"})


def is_context(annotation: Any) -> bool:
    """Whether a parameter's annotation is ``qasdk.ToolContext`` (as the scanner decides).

    A string annotation (``from __future__ import annotations`` whose names do
    not resolve, or a quoted one) counts when it names ``ToolContext``.
    """
    if isinstance(annotation, str):
        text = annotation.strip().strip("'\"")
        return text == "ToolContext" or text in _CONTEXT_PATHS
    kind = getattr(annotation, "__module__", None), getattr(annotation, "__qualname__", None)
    return kind == ("qasdk.context", "ToolContext")


def encode_result(value: Any) -> bytes:
    """The JSON of a tool's return value."""
    if _is_named_tuple(type(value)):
        value = value._asdict()
    return msgspec.json.encode(value, enc_hook=_enc_hook)
