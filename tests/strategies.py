"""Hypothesis strategies for tool metadata and configuration (seed 000's generators, tightened)."""

from __future__ import annotations

import keyword
import string
from typing import Any

from hypothesis import strategies as st

from qasdk.models import MethodConfig, MethodParameter
from qasdk.permissions import NAME_PATTERN, WELL_KNOWN, name_problem
from qasdk.registration.types import TYPE_NAMES, base_schema

# Seed 000: letters and digits, starting with a letter, a valid identifier.
identifiers = st.text(
    alphabet=string.ascii_letters + string.digits + "_", min_size=2, max_size=40
).filter(lambda s: s[0].isalpha() and s.isidentifier() and not keyword.iskeyword(s))

# Unicode text without surrogates or NUL (PostgreSQL text cannot hold NUL).
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=200,
).filter(lambda s: s.strip() != "")

#: What a tool may declare: the well-known permissions and custom names of the documented shape.
permission_names = st.one_of(
    st.sampled_from(sorted(WELL_KNOWN)),
    st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda n: name_problem(n) is None),
)
param_types = st.sampled_from(["string", "int", "float", "bool", "dict", "list"])
return_types = st.sampled_from(list(TYPE_NAMES))
module_paths = st.lists(identifiers, min_size=1, max_size=4).map(".".join)

_DEFAULTS: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(alphabet=string.printable, max_size=20),
    "int": st.integers(-(10**9), 10**9),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "bool": st.booleans(),
    "dict": st.dictionaries(st.text(string.ascii_letters, max_size=5), st.integers(), max_size=3),
    "list": st.lists(st.integers(), max_size=3),
}


@st.composite
def parameter_dicts(draw: st.DrawFn, name: str | None = None) -> dict[str, Any]:
    """A declared parameter, as written in methods.yaml."""
    type_name = draw(param_types)
    param: dict[str, Any] = {
        "name": name or draw(identifiers),
        "type": type_name,
        "description": draw(texts),
    }
    if draw(st.booleans()):
        param["required"] = True
    elif draw(st.booleans()):
        param["required"] = False
        param["default"] = draw(_DEFAULTS[type_name])
    else:
        param["required"] = False
    return param


@st.composite
def method_dicts(draw: st.DrawFn, name: str | None = None) -> dict[str, Any]:
    """A declared method, as written in methods.yaml."""
    param_names = draw(st.lists(identifiers, max_size=6, unique=True))
    method: dict[str, Any] = {
        "name": name or draw(identifiers),
        "description": draw(texts),
        "module_path": draw(module_paths),
        "function_name": draw(identifiers),
        "parameters": [draw(parameter_dicts(name=n)) for n in param_names],
        "return_type": draw(return_types),
    }
    if draw(st.booleans()):
        method["timeout"] = draw(st.floats(min_value=0.5, max_value=600, allow_nan=False))
    if draw(st.booleans()):
        method["tags"] = draw(st.lists(identifiers, max_size=3))
    if draw(st.booleans()):
        method["permissions"] = sorted(draw(st.lists(permission_names, max_size=3, unique=True)))
    return method


def config_from_dict(method: dict[str, Any]) -> MethodConfig:
    """What parsing ``method`` must produce, built independently of the parser."""
    params = []
    for p in method.get("parameters", []):
        extra = {"default": p["default"]} if "default" in p else {}
        params.append(
            MethodParameter(
                name=p["name"],
                type=p["type"],
                description=p["description"],
                required=p.get("required", "default" not in p),
                schema=base_schema(p["type"]),
                **extra,
            )
        )
    return MethodConfig(
        name=method["name"],
        description=method["description"],
        parameters=tuple(params),
        return_type=method["return_type"],
        module_path=method["module_path"],
        function_name=method["function_name"],
        timeout=method.get("timeout"),
        tags=tuple(method.get("tags", ())),
        permissions=tuple(method.get("permissions", ())),
    )


method_configs = method_dicts().map(config_from_dict)
