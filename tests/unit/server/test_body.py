"""How deep a JSON body nests, measured before it is decoded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qasdk_server.body import json_depth


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"1", 0),
        (b'"[[[{"', 0),
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["\\"[[[", ["]]]\\\\"]]', 2),  # brackets in strings, escaped quotes and backslashes
        (b"[" * 5000 + b"]" * 5000, 5000),
    ],
)
def test_depth(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


values = st.recursive(
    st.none() | st.integers() | st.text(st.sampled_from('[]{}"\\ab')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@given(values)
def test_depth_is_the_nesting_of_the_decoded_value(value: object) -> None:
    assert json_depth(json.dumps(value).encode()) == _depth(value)
