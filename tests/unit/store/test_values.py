"""Everything qasdk stores can be stored, and read back (issue 9, defects 2 and 3)."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from qasdk.store.values import REPLACEMENT, clean_text, json_text, storable

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


@given(json_values)
def test_what_needs_no_change_is_kept_as_it_is(value: Any) -> None:
    if b"\\u0000" not in msgspec.json.encode(value) and depth(value) <= 64:  # JSON spells NUL so
        assert storable(value) == value


@given(json_values | st.text(alphabet=st.characters(exclude_categories=())))
@example("lone \ud800 surrogate and \x00")
def test_stored_text_has_no_nul_and_no_lone_surrogate(value: Any) -> None:
    text = json_text(value)
    assert text is None or ("\\u0000" not in text and msgspec.json.decode(text) is not None)


def test_nul_and_lone_surrogates_become_the_replacement_character() -> None:
    assert clean_text("a\x00b\ud800c") == f"a{REPLACEMENT}b{REPLACEMENT}c"
    assert storable({"k\x00": ["\x00"]}) == {f"k{REPLACEMENT}": [REPLACEMENT]}
    assert storable("😀") == "😀"  # a real astral character is not a lone surrogate


def test_nesting_is_cut_at_the_limit() -> None:
    cut = storable(nested(5000), depth=64)  # deeper than msgspec or json can encode
    assert depth(cut) == 64
    assert msgspec.json.decode(json_text(cut) or "null") == cut


def test_a_value_over_its_size_becomes_a_marker() -> None:
    marker = storable("x" * 10_000, max_bytes=1000)
    assert marker["truncated"] is True
    assert (marker["bytes"], marker["limit"]) == (10_002, 1000)
    assert marker["preview"].startswith('"xxx') and len(marker["preview"]) == 500
