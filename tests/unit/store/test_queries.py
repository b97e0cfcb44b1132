"""SQL lives in the store: every named query is used, every used name exists, nobody else runs SQL."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from qasdk.store._sql import query_names

ROOT = Path(__file__).parents[3]
SOURCES = [ROOT / "qasdk", ROOT / "server" / "qasdk_server"]
STORE = ROOT / "qasdk" / "store"
RUNNERS = {"execute", "fetch_one", "fetch_all", "query", "take"}
#: Where each runner takes its query names (``_rates.take`` takes two).
POSITIONS = {"query": (0,), "take": (1, 2)}
SQL = re.compile(
    r"^\s*(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|DATABASE)"
    r"|DROP\s+\w+|ALTER\s+TABLE|LISTEN\s|NOTIFY\s|WITH\s+\w+\s+AS\s*\()"
)  # our SQL writes its keywords in capitals; prose does not


def _files() -> Iterator[Path]:
    for folder in SOURCES:
        yield from sorted(folder.rglob("*.py"))


def _names_asked_for(tree: ast.AST) -> Iterator[str]:
    """String names handed to the store's query runner: ``execute(conn, "name")``..."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if called not in RUNNERS:
            continue
        for position in POSITIONS.get(called, (1,)):
            if len(node.args) > position:
                arg = node.args[position]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield arg.value


def test_every_named_query_is_used_and_every_used_name_exists() -> None:
    asked: set[str] = set()
    for path in sorted(STORE.rglob("*.py")):
        asked |= set(_names_asked_for(ast.parse(path.read_text())))
    defined = set(query_names())
    assert asked - defined == set(), "asked for but not in queries.sql"
    assert defined - asked == set(), "in queries.sql but never used"


def test_only_the_store_runs_sql() -> None:
    offenders = []
    for path in _files():
        inside_store = STORE in path.parents
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not inside_store:
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if any(m.startswith("qasdk.store._sql") for m in modules):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports _sql")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and SQL.match(node.value)
                and not inside_store
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:40]!r}")
        if not inside_store:
            named = set(_names_asked_for(tree)) & query_names()
            offenders += [f"{path.relative_to(ROOT)}: runs the query {n!r}" for n in named]
    assert offenders == []


def test_the_sql_pattern_recognises_sql() -> None:
    # The guard above is only as good as this pattern: it must see the SQL we write.
    for statement in (
        "SELECT 1",
        "  INSERT INTO tasks (id) VALUES (1)",
        "UPDATE tasks SET x = 1",
        "LISTEN qasdk_task_events",
        "WITH job AS (SELECT 1) SELECT * FROM job",
    ):
        assert SQL.match(statement), statement
    assert not SQL.match("select a tool from the list")
