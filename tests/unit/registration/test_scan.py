"""The scanner reads @tool functions statically: types, docstrings, decorator options."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from qasdk.errors import ValidationError
from qasdk.models import MethodConfig, ToolEntry
from qasdk.registration.collect import collect
from qasdk.registration.scan import ScanResult, scan_source
from qasdk.registration.validate import validate_entries


def scan(code: str, module: str = "tools.mod") -> ScanResult:
    return scan_source(textwrap.dedent(code), module=module, path="tools/mod.py")


def only(code: str) -> MethodConfig:
    result = scan(code)
    assert result.problems == []
    assert len(result.entries) == 1
    problems = validate_entries(result.entries)
    assert problems == [], [str(p) for p in problems]
    return result.entries[0].config


def param(config: MethodConfig, name: str) -> Any:
    return next(p for p in config.parameters if p.name == name)


GOOGLE = '''
from qasdk import tool

@tool
def get_weather(city: str, unit: str = "celsius") -> dict:
    """Get the weather of a city.

    More details that are not the summary.

    Args:
        city: The city name.
        unit: Temperature unit.

    Returns:
        The weather.
    """
'''

NUMPY = '''
import qasdk

@qasdk.tool
def calculate(expression: str, precision: int = 2) -> float:
    """Evaluate an expression.

    Parameters
    ----------
    expression : str
        The expression.
    precision : int, optional
        Number of digits.
    """
'''

SPHINX = '''
from qasdk import tool as t

@t()
def count(text: str, unique: bool = False) -> int:
    """Count the words.

    :param text: The text.
    :param unique: Only distinct words.
    :returns: The count.
    """
'''


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            GOOGLE,
            (
                "get_weather",
                "Get the weather of a city.",
                {"city": "The city name.", "unit": "Temperature unit."},
            ),
        ),
        (
            NUMPY,
            (
                "calculate",
                "Evaluate an expression.",
                {"expression": "The expression.", "precision": "Number of digits."},
            ),
        ),
        (
            SPHINX,
            ("count", "Count the words.", {"text": "The text.", "unique": "Only distinct words."}),
        ),
    ],
    ids=["google", "numpy", "sphinx"],
)
def test_docstring_styles(code: str, expected: tuple[str, str, dict[str, str]]) -> None:
    config = only(code)
    name, description, params = expected
    assert config.name == name
    assert config.function_name == name
    assert config.description == description
    assert {p.name: p.description for p in config.parameters} == params
    assert config.module_path == "tools.mod"


def test_styles_are_detected_per_function_in_one_file() -> None:
    result = scan(GOOGLE + NUMPY.replace("import qasdk\n", "import qasdk\n") + SPHINX)
    assert [e.config.name for e in result.entries] == ["get_weather", "calculate", "count"]
    assert validate_entries(result.entries) == []


@pytest.mark.parametrize(
    "header",
    [
        "from qasdk import tool\n\n@tool",
        "from qasdk import tool\n\n@tool()",
        "import qasdk\n\n@qasdk.tool",
        "import qasdk as q\n\n@q.tool(timeout=3)",
        "from qasdk import tool as register\n\n@register",
        "from qasdk.decorator import tool\n\n@tool",
        "import qasdk.decorator\n\n@qasdk.decorator.tool",
    ],
)
def test_decorator_recognised_however_imported(header: str) -> None:
    code = (
        header
        + '\ndef fn(x: int) -> int:\n    """Do.\n\n    Args:\n        x: A number.\n    """\n'
    )
    assert only(code).name == "fn"


def test_undecorated_and_foreign_decorators_are_ignored() -> None:
    code = '''
    import functools
    from other import tool

    def plain(x: int) -> int:
        """Not a tool."""

    @functools.cache
    def cached(x: int) -> int:
        """Not a tool."""

    @tool
    def someone_elses(x: int) -> int:
        """Another library's decorator named tool."""
    '''
    assert scan(code).entries == []


def test_decorator_options() -> None:
    config = only('''
    from qasdk import tool

    TAGS = ["a", "b"]

    @tool(name="renamed", description="From the decorator.", timeout=2.5, tags=TAGS)
    def original(x: int) -> None:
        """Docstring summary.

        Args:
            x: X.
        """
    ''')
    assert config.name == "renamed"
    assert config.function_name == "original"
    assert config.description == "From the decorator."
    assert config.timeout == 2.5
    assert config.tags == ("a", "b")
    assert config.return_type == "None"


def test_non_literal_decorator_option_is_reported() -> None:
    result = scan('''
    from qasdk import tool
    import os

    @tool(name=os.environ["X"])
    def fn(x: int) -> int:
        """F.

        Args:
            x: X.
        """
    ''')
    assert any("must be a literal" in p.reason and p.field == "name" for p in result.problems)


def test_permissions_are_read_without_running_code() -> None:
    config = only('''
    from qasdk import tool

    @tool(permissions=["network", "fs:write"])
    def fetch(x: int) -> None:
        """Fetch.

        Args:
            x: X.
        """
    ''')
    assert config.permissions == ("fs:write", "network")  # sorted: order is not a change


def test_permissions_from_a_constant() -> None:
    result = scan('''
    from qasdk import tool

    NEEDS = {"subprocess", "network:api.example.com"}

    @tool(permissions=NEEDS)
    def run(x: int) -> None:
        """Run.

        Args:
            x: X.
        """
    ''')
    assert result.problems == []
    assert result.entries[0].config.permissions == ("network:api.example.com", "subprocess")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('os.environ["NEEDS"]', "@tool(permissions=os.environ['NEEDS']) must be a literal value"),
        ("needed()", "must be a literal value: qasdk reads it without running your code"),
        (
            '"network"',
            "must be a list of permission names, not a single string (write ['network'])",
        ),
        ("3", "must be a list of permission names, got integer"),
        ('["netwrok"]', "'netwrok' is not a known permission (did you mean 'network'?)"),
        ('["fs:wirte"]', "did you mean 'fs:write'?"),
        ('["fs:*"]', "wildcards are for limiting keys"),
        ('["Network"]', "'Network' is not a permission name"),
        ('["gpu", "gpu"]', "'gpu' is listed twice"),
        ("[1]", "permissions are strings, got 1"),
    ],
)
def test_bad_permissions_name_file_line_and_field(value: str, reason: str) -> None:
    result = scan(f'''
    import os
    from qasdk import tool

    @tool(
        name="fetcher",
        permissions={value},
    )
    def fetch(x: int) -> None:
        """Fetch.

        Args:
            x: X.
        """
    ''')
    (problem,) = result.problems
    assert problem.source is not None
    assert (problem.source.path, problem.source.line) == ("tools/mod.py", 7)  # the argument's line
    assert (problem.tool, problem.field) == ("fetcher", "permissions")
    assert reason in problem.reason, problem.reason
    assert result.entries[0].config.permissions == ()


def test_a_misspelled_option_is_pointed_at() -> None:
    result = scan('''
    from qasdk import tool

    @tool(permission=["gpu"])
    def fn(x: int) -> None:
        """F.

        Args:
            x: X.
        """
    ''')
    (problem,) = result.problems
    assert "no option 'permission' (did you mean 'permissions'?)" in problem.reason


TYPE_CASES = [
    ("str", "string", {"type": "string"}),
    ("int", "int", {"type": "integer"}),
    ("float", "float", {"type": "number"}),
    ("bool", "bool", {"type": "boolean"}),
    ("dict", "dict", {"type": "object"}),
    ("list", "list", {"type": "array"}),
    ("Any", "any", {}),
    ("list[int]", "list", {"type": "array", "items": {"type": "integer"}}),
    ("List[str]", "list", {"type": "array", "items": {"type": "string"}}),
    ("tuple[int, ...]", "list", {"type": "array", "items": {"type": "integer"}}),
    ("dict[str, float]", "dict", {"type": "object", "additionalProperties": {"type": "number"}}),
    ("Dict[str, Any]", "dict", {"type": "object"}),
    ("Optional[int]", "int", {"type": ["integer", "null"]}),
    ("int | None", "int", {"type": ["integer", "null"]}),
    ("Union[str, None]", "string", {"type": ["string", "null"]}),
    ("Union[int, str]", "any", {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    ("Literal['a', 'b']", "string", {"type": "string", "enum": ["a", "b"]}),
    ("Literal[1, 2]", "int", {"type": "integer", "enum": [1, 2]}),
    ("Color", "string", {"type": "string", "enum": ["red", "green"]}),
    ("Level", "int", {"type": "integer", "enum": [1, 2]}),
    (
        "Optional[Color]",
        "string",
        {"anyOf": [{"type": "string", "enum": ["red", "green"]}, {"type": "null"}]},
    ),
    ("Annotated[int, 'doc']", "int", {"type": "integer"}),
    ("'int'", "int", {"type": "integer"}),
    ("list[Literal['x']]", "list", {"type": "array", "items": {"type": "string", "enum": ["x"]}}),
    ("Sequence[int]", "list", {"type": "array", "items": {"type": "integer"}}),
]


@pytest.mark.parametrize(("hint", "type_name", "schema"), TYPE_CASES)
def test_type_hints_map_to_vocabulary_and_schema(
    hint: str, type_name: str, schema: dict[str, Any]
) -> None:
    config = only(f'''
    from enum import Enum, IntEnum
    from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence, Union
    from qasdk import tool

    class Color(str, Enum):
        RED = "red"
        GREEN = "green"

    class Level(IntEnum):
        LOW = 1
        HIGH = 2

    @tool
    def fn(x: {hint}) -> None:
        """F.

        Args:
            x: The x.
        """
    ''')
    assert param(config, "x").type == type_name
    assert param(config, "x").schema == schema


@pytest.mark.parametrize("hint", ["bytes", "complex", "Callable[[], int]", "set[object] | bytes"])
def test_unsupported_hint_is_a_clear_error(hint: str) -> None:
    result = scan(f'''
    from datetime import datetime
    from typing import Callable
    from qasdk import tool

    @tool
    def fn(x: {hint}) -> None:
        """F.

        Args:
            x: The x.
        """
    ''')
    problems = validate_entries(result.entries)
    assert len(problems) == 1
    assert problems[0].field == "parameters.x.type"
    assert "unsupported type" in problems[0].reason
    assert problems[0].source is not None and problems[0].source.line == 6


def test_defaults_and_required() -> None:
    config = only('''
    from enum import Enum
    from typing import Optional
    from qasdk import tool

    class Unit(Enum):
        C = "celsius"
        F = "fahrenheit"

    DEFAULT_DAYS = 3

    @tool
    def fn(city: str, unit: Unit = Unit.F, days: int = DEFAULT_DAYS, note: Optional[str] = None,
          *, flag: bool = True, tags: list[str] = []) -> dict:
        """F.

        Args:
            city: C.
            unit: U.
            days: D.
            note: N.
            flag: F.
            tags: T.
        """
    ''')
    assert param(config, "city").required is True
    assert not param(config, "city").has_default
    assert param(config, "unit").default == "fahrenheit"  # an Enum default is stored as its value
    assert param(config, "days").default == 3
    assert param(config, "note").default is None and param(config, "note").required is False
    assert param(config, "flag").default is True
    assert param(config, "tags").default == []


def test_enum_from_another_module_under_the_root(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "units.py").write_text(
        "from enum import Enum\n\nclass Unit(str, Enum):\n    C = 'c'\n    F = 'f'\n"
    )
    (tmp_path / "tools" / "geo.py").write_text(
        textwrap.dedent('''
        from qasdk import tool
        from tools.units import Unit

        @tool
        def temp(unit: Unit = Unit.C) -> float:
            """Temperature.

            Args:
                unit: Unit.
            """
    ''')
    )
    registry = collect([tmp_path / "tools" / "geo.py"], module_root=tmp_path)
    (config,) = registry.configs
    assert config.module_path == "tools.geo"
    assert config.parameters[0].schema == {"type": "string", "enum": ["c", "f"]}
    assert config.parameters[0].default == "c"


def test_missing_docs_and_hints_are_reported_with_hints() -> None:
    result = scan("""
    from qasdk import tool

    @tool
    def fn(x, y: int) -> int:
        pass
    """)
    reasons = {p.field: p.reason for p in validate_entries(result.entries)}
    assert reasons["description"].startswith("no description: add a docstring")
    assert reasons["parameters.x.type"].startswith("no type hint")
    assert "describe 'y' in an 'Args:' section" in reasons["parameters.y.description"]


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("*args: int", "*args is not supported"),
        ("**kw: int", "**kw is not supported"),
        ("a: int, /", "positional-only"),
    ],
)
def test_unsupported_parameter_kinds(signature: str, reason: str) -> None:
    result = scan(f'''
    from qasdk import tool

    @tool
    def fn({signature}) -> None:
        """F."""
    ''')
    assert any(reason in p.reason for p in result.problems)


def test_tool_on_a_method_is_an_error() -> None:
    result = scan('''
    from qasdk import tool

    class Service:
        @tool
        def run(self, x: int) -> int:
            """Run."""
    ''')
    assert len(result.problems) == 1
    assert "only module-level functions" in result.problems[0].reason


def test_syntax_error_names_file_and_line() -> None:
    result = scan("from qasdk import tool\n\ndef broken(:\n    pass\n")
    (problem,) = result.problems
    assert problem.source is not None
    assert (problem.source.path, problem.source.line) == ("tools/mod.py", 3)
    assert "syntax error" in problem.reason


def test_scanning_never_runs_user_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "side.py").write_text(
        textwrap.dedent(f'''
        from pathlib import Path
        Path({str(marker)!r}).write_text("imported")
        raise SystemExit("importing this module is a bug")

        from qasdk import tool

        @tool
        def fn(x: int) -> int:
            """F.

            Args:
                x: X.
            """
    ''')
    )
    registry = collect([tmp_path / "tools"], module_root=tmp_path)
    assert [c.name for c in registry.configs] == ["fn"]
    assert not marker.exists()


def test_entries_know_where_they_came_from() -> None:
    (entry,) = scan(GOOGLE).entries
    assert isinstance(entry, ToolEntry)
    assert entry.origin == "scanned"
    assert entry.source.path == "tools/mod.py"
    assert entry.source.line == 4


def test_collect_reports_every_problem_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from qasdk import tool\n@tool\ndef fn(x): pass\n")
    (tmp_path / "b.py").write_text("def broken(:\n")
    (tmp_path / "methods.yaml").write_text("methods:\n  - name: g\n")
    with pytest.raises(ValidationError) as info:
        collect([tmp_path], module_root=tmp_path)
    paths = {p.source.path for p in info.value.problems if p.source}
    assert {Path(p).name for p in paths} == {"a.py", "b.py", "methods.yaml"}
    assert len(info.value.problems) >= 6


def test_a_short_sphinx_docstring_is_still_read() -> None:
    # One ":param" line fools griffe's style heuristic; the scanner tries the other styles.
    config = only('''
    from qasdk import tool

    @tool
    def shout(text: str) -> str:
        """Upper-case a text.

        :param text: The text.
        """
    ''')
    assert config.parameters[0].description == "The text."
    assert config.description == "Upper-case a text."


@pytest.mark.parametrize(
    "docstring",
    [
        '"""Args:\n        text: The text.\n        loud: Whether to shout.\n    """',
        '"""Args:\n        text: The text.\n        loud: Whether to shout.\n\n    Returns:\n        It.\n    """',
        '"""Parameters\n    ----------\n    text : str\n        The text.\n    loud : bool\n        Whether to shout.\n    """',
        '""":param text: The text.\n    :param loud: Whether to shout.\n    """',
    ],
    ids=["google", "google-two-sections", "numpy", "sphinx"],
)
def test_a_docstring_that_opens_with_its_section_keeps_its_parameters(docstring: str) -> None:
    source = (
        "from qasdk import tool\n\n"
        '@tool(description="Say a text.")\n'
        f"def say(text: str, loud: bool = False) -> str:\n    {docstring}\n"
    )
    config = only(source)
    assert config.description == "Say a text."
    assert [(p.name, p.description) for p in config.parameters] == [
        ("text", "The text."),
        ("loud", "Whether to shout."),
    ]


def test_a_misspelled_docstring_parameter_is_pointed_at() -> None:
    code = '''
from qasdk import tool

@tool
def pick(item: str, count: int) -> str:
    """Pick an item.

    Args:
        itme: The item.
        count: How many.
    """
'''
    result = scan(code)
    (problem,) = validate_entries(result.entries)
    assert str(problem) == (
        "tools/mod.py:9: tool 'pick': parameters.item.description: not documented: the "
        "docstring describes 'itme' on line 9, which is not a parameter (did you mean 'item'?)"
    )


def test_tool_uses_that_cannot_be_registered_are_warned_about() -> None:
    result = scan(
        '''
from qasdk import tool
import qasdk

shout = tool

@shout
def loud(text: str) -> str:
    """Say it loud.

    Args:
        text: What.
    """

def factory():
    @qasdk.tool
    def inner(x: int) -> int:
        """Inner.

        Args:
            x: X.
        """
    return inner
'''
    )
    assert result.entries == []
    reasons = [(w.source.line if w.source else None, w.reason) for w in result.warnings]
    assert reasons == [
        (
            7,
            "@shout on 'loud' is not registered: 'shout' is assigned tool at run time (line 5), "
            "which qasdk does not run; import it instead (from qasdk import tool as shout)",
        ),
        (
            16,
            "@tool on 'inner', defined inside 'factory', is not registered: only module-level "
            "functions can be tools",
        ),
    ]


RICH = '''
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple, NotRequired, TypedDict
from uuid import UUID

import msgspec

from qasdk import tool


@dataclass
class Point:
    """A point.

    Attributes:
        x: Across.
    """

    x: int
    y: int = 0
    """Up."""
    tags: list[str] = field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Pair(NamedTuple):
    a: int
    b: str = "b"


class Box(msgspec.Struct, kw_only=True):
    scale: float = 1.5
    corner: Point


@tool
def rich(when: datetime, day: date, at: time, span: timedelta, price: Decimal, path: Path,
         id: UUID, p: Point, m: Movie, pair: Pair, box: Box) -> datetime:
    """Rich types.

    Args:
        when: W.
        day: D.
        at: A.
        span: S.
        price: P.
        path: Pa.
        id: I.
        p: Pt.
        m: M.
        pair: Pr.
        box: B.
    """
'''

POINT = {
    "type": "object",
    "properties": {
        "x": {"type": "integer", "description": "Across."},
        "y": {"type": "integer", "description": "Up.", "default": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["x"],
}


def test_rich_types_are_read_from_source() -> None:
    config = only(RICH)
    formats = {p.name: p.schema.get("format") for p in config.parameters if p.type == "string"}
    assert formats == {
        "when": "date-time",
        "day": "date",
        "at": "time",
        "span": "duration",
        "price": "decimal",
        "path": "path",
        "id": "uuid",
    }
    assert config.return_type == "string"
    assert param(config, "p").type == "dict"
    assert param(config, "p").schema == POINT
    assert param(config, "m").schema == {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title"],
    }
    assert param(config, "pair").schema["required"] == ["a"]
    assert param(config, "box").schema == {
        "type": "object",
        "properties": {"scale": {"type": "number", "default": 1.5}, "corner": POINT},
        "required": ["corner"],
    }


def test_a_class_that_contains_itself_is_reported() -> None:
    result = scan(
        '''
    from dataclasses import dataclass
    from qasdk import tool

    @dataclass
    class Node:
        child: "Node | None" = None

    @tool
    def walk(n: Node) -> int:
        """Walk.

        Args:
            n: N.
        """
    '''
    )
    (problem,) = validate_entries(result.entries)
    assert problem.field == "parameters.n.type"
    assert "it contains itself" in problem.reason


def test_return_types_follow_the_parameters_rules() -> None:
    result = scan(
        '''
    from qasdk import tool

    @tool
    def raw() -> bytes:
        """Raw."""
    '''
    )
    (problem,) = validate_entries(result.entries)
    assert problem.field == "return_type"
    assert problem.reason.startswith("unsupported return type bytes; use str")
