"""A tool receives what its signature promises and its result comes back as JSON (issue 8).

Round trip through the real pipeline (sync → direct task → tool process → stored
result): a value, sent as JSON, reaches the tool as the annotated type itself
(the tool checks ``isinstance`` and fails otherwise), and the tool's return
value comes back as the same JSON.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import pathlib
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qasdk.errors import ValidationError
from qasdk_server.testing import Tools, run_tools

pytestmark = [pytest.mark.integration]

TOOLS = '''
from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import uuid
from typing import NamedTuple, TypedDict

import msgspec

from qasdk import tool


class Level(enum.Enum):
    """How loud."""

    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    """A point.

    Attributes:
        x: Across.
        y: Up.
    """

    x: int
    y: int = 0


class Span(NamedTuple):
    """A span.

    Attributes:
        start: First.
        end: Last.
    """

    start: int
    end: int


class Person(TypedDict):
    """Someone.

    Attributes:
        name: The name.
        age: In years.
    """

    name: str
    age: int


class Box(msgspec.Struct):
    """A box of points.

    Attributes:
        label: What is in it.
        points: Its corners.
    """

    label: str
    points: list[Point] = []


def _check(value, kind):
    if not isinstance(value, kind):
        raise TypeError(f"got {type(value).__name__} {value!r}, not {kind.__name__}")
    return value


@tool
def level_of(level: Level = Level.LOW) -> dict:
    """Say which level came, and whether the default object is the function's own.

    Args:
        level: The level.
    """
    return {"name": level.name, "is_enum": isinstance(level, Level), "default": level is Level.LOW}


@tool
def rt_datetime(value: datetime.datetime) -> datetime.datetime:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, datetime.datetime)


@tool
def rt_date(value: datetime.date) -> datetime.date:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, datetime.date)


@tool
def rt_time(value: datetime.time) -> datetime.time:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, datetime.time)


@tool
def rt_uuid(value: uuid.UUID) -> uuid.UUID:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, uuid.UUID)


@tool
def rt_decimal(value: decimal.Decimal) -> decimal.Decimal:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, decimal.Decimal)


@tool
def rt_path(value: pathlib.Path) -> pathlib.Path:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, pathlib.Path)


@tool
def rt_point(value: Point) -> Point:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, Point)


@tool
def rt_span(value: Span) -> Span:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, Span)


@tool
def rt_person(value: Person) -> Person:
    """Round trip.

    Args:
        value: A value.
    """
    return _check(value, dict)


@tool
def rt_box(value: Box) -> Box:
    """Round trip.

    Args:
        value: A value.
    """
    _check(value, Box)
    for point in value.points:
        _check(point, Point)
    return value
'''


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tools]:
    root = tmp_path_factory.mktemp("conversion")
    (root / "tools").mkdir()
    (root / "tools" / "typed.py").write_text(textwrap.dedent(TOOLS))
    with run_tools(root / "tools", module_root=root) as running:
        yield running


def _json(value: Any) -> Any:
    """What a client sends for ``value`` (and what the result must be)."""
    return json.loads(msgspec.json.encode(value))


def _round_trip(tools: Tools, method: str, value: Any) -> None:
    sent = _json(value)
    run = tools.run(method=method, params={"value": sent})
    assert run.status == "completed", run.error
    assert run.result == sent


def test_an_enum_argument_arrives_as_the_enum_and_a_left_out_one_as_the_default_object(
    tools: Tools,
) -> None:
    given_ = tools.run(method="level_of", params={"level": 2})
    assert given_.result == {"name": "HIGH", "is_enum": True, "default": False}
    left_out = tools.run(method="level_of", params={})
    assert left_out.result == {"name": "LOW", "is_enum": True, "default": True}


EXAMPLES = settings(max_examples=15, deadline=None, derandomize=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
INTS = st.integers(-(2**31), 2**31)
POINTS = st.builds(dict, x=INTS, y=INTS)


# Property 21 (round trip of rich types): value → JSON → the tool's own type → JSON
@EXAMPLES
@given(st.datetimes(timezones=st.just(dt.timezone.utc)))
def test_datetime_round_trip(tools: Tools, value: dt.datetime) -> None:
    _round_trip(tools, "rt_datetime", value)


@EXAMPLES
@given(st.dates())
def test_date_round_trip(tools: Tools, value: dt.date) -> None:
    _round_trip(tools, "rt_date", value)


@EXAMPLES
@given(st.times())
def test_time_round_trip(tools: Tools, value: dt.time) -> None:
    _round_trip(tools, "rt_time", value)


@EXAMPLES
@given(st.uuids())
def test_uuid_round_trip(tools: Tools, value: uuid.UUID) -> None:
    _round_trip(tools, "rt_uuid", value)


@EXAMPLES
@given(st.decimals(allow_nan=False, allow_infinity=False, places=4))
def test_decimal_round_trip(tools: Tools, value: decimal.Decimal) -> None:
    _round_trip(tools, "rt_decimal", value)


@EXAMPLES
@given(st.lists(st.text("abc_-.", min_size=1, max_size=8), min_size=1, max_size=4))
def test_path_round_trip(tools: Tools, parts: list[str]) -> None:
    _round_trip(tools, "rt_path", str(pathlib.PurePosixPath(*parts)))  # a path as Path spells it


@EXAMPLES
@given(POINTS)
def test_dataclass_round_trip(tools: Tools, value: dict[str, int]) -> None:
    _round_trip(tools, "rt_point", value)


@EXAMPLES
@given(st.builds(dict, start=INTS, end=INTS))
def test_named_tuple_round_trip(tools: Tools, value: dict[str, int]) -> None:
    _round_trip(tools, "rt_span", value)


@EXAMPLES
@given(st.builds(dict, name=TEXT, age=st.integers(0, 150)))
def test_typed_dict_round_trip(tools: Tools, value: dict[str, Any]) -> None:
    _round_trip(tools, "rt_person", value)


@EXAMPLES
@given(st.builds(dict, label=TEXT, points=st.lists(POINTS, max_size=3)))
def test_nested_struct_round_trip(tools: Tools, value: dict[str, Any]) -> None:
    _round_trip(tools, "rt_box", value)


def test_left_out_fields_get_their_defaults_in_the_result(tools: Tools) -> None:
    run = tools.run(method="rt_box", params={"value": {"label": "empty"}})
    assert run.result == {"label": "empty", "points": []}
    run = tools.run(method="rt_point", params={"value": {"x": 1}})
    assert run.result == {"x": 1, "y": 0}


def test_a_value_of_the_wrong_shape_is_refused_naming_the_field(tools: Tools) -> None:
    with pytest.raises(ValidationError) as refused:
        tools.run(method="rt_point", params={"value": {"x": "one"}})
    assert "params.value.x: expected integer" in str(refused.value)
