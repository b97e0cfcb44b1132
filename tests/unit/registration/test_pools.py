"""``pool``: a tool names the worker pool it runs in, checked alike by ``@tool``, the
scanner, ``methods.yaml`` and the configuration's ``worker.pools``; pools map to queues."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from qasdk import tool
from qasdk.config import WorkerConfig, load_config
from qasdk.errors import ConfigurationError
from qasdk.models import ToolPolicy
from qasdk.registration.declared import parse_methods
from qasdk.registration.rules import check_pool
from qasdk.registration.scan import scan_source
from qasdk.registration.validate import validate_entries
from qasdk.store.pools import QUEUE, pool_of, queue_for, queues_for

TOOL = '''
from qasdk import tool

@tool(
    timeout=5,
    {options},
)
def render(scene: str) -> str:
    """Render a scene.

    Args:
        scene: The scene.
    """
'''


def scanned(options: str) -> tuple[str | None, list[tuple[int | None, str | None, str]]]:
    result = scan_source(
        textwrap.dedent(TOOL.format(options=options)), module="tools.gfx", path="tools/gfx.py"
    )
    problems = [*result.problems, *validate_entries(result.entries)]
    found = [(p.source.line if p.source else None, p.field, p.reason) for p in problems]
    pool = result.entries[0].config.pool if result.entries else None
    return pool, found


def test_the_scanner_reads_a_pool_into_the_policy() -> None:
    assert scanned('pool="gpu"') == ("gpu", [])
    result = scan_source(
        textwrap.dedent(TOOL.format(options='pool="gpu"')), module="tools.gfx", path="tools/gfx.py"
    )
    assert result.entries[0].config.policy == ToolPolicy(pool="gpu")
    # The default pool is no policy at all: the rows of tools without a pool stay as signed.
    result = scan_source(
        textwrap.dedent(TOOL.format(options='pool="default"')),
        module="tools.gfx",
        path="tools/gfx.py",
    )
    assert result.entries[0].config.policy is None
    assert result.entries[0].config.pool == "default"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            '"GPU"',
            "'GPU' is not a pool name: use a-z, 0-9, '_' and '-' (it contains 'G', 'P', 'U')",
        ),
        ('"gpu.big"', "(it contains '.')"),
        ('"-gpu"', "it must start with a letter or a digit"),
        ('""', "must not be empty (leave it out for the default pool)"),
        ('"' + "x" * 33 + '"', "must be at most 32 characters, got 33"),
        ("3", "must be a pool name (a string such as 'gpu'), got integer"),
    ],
)
def test_a_bad_pool_is_named_with_its_line(given: str, expected: str) -> None:
    _, problems = scanned(f"pool={given}")
    assert [(line, field) for line, field, _ in problems] == [(6, "pool")], problems
    assert expected in problems[0][2]


def test_the_decorator_applies_the_same_rule() -> None:
    with pytest.raises(TypeError, match=r"@tool pool 'GPU' is not a pool name"):
        tool(pool="GPU")

    @tool(pool="gpu")
    def render(scene: str) -> str:
        return scene.upper()

    assert render("a") == "A"  # unchanged when called directly
    assert render.__qasdk_tool__.pool == "gpu"  # type: ignore[attr-defined]


def test_methods_yaml_declares_a_pool() -> None:
    text = textwrap.dedent(
        """
        methods:
          - name: render
            description: Render a scene.
            return_type: str
            module_path: tools.gfx
            function_name: render
            pool: gpu
        """
    )
    declared = parse_methods(text, "methods.yaml")
    assert declared.problems == []
    assert declared.configs[0].pool == "gpu"
    bad = parse_methods(text.replace("pool: gpu", "pool: Big GPU"), "methods.yaml")
    problems = validate_entries(bad.entries)
    assert [(str(p.source), p.tool, p.field) for p in problems] == [
        ("methods.yaml:8", "render", "pool")
    ]
    assert "'Big GPU' is not a pool name" in problems[0].reason


def test_worker_pools_in_the_configuration(tmp_path: Path) -> None:
    assert WorkerConfig().pools == ("default",)
    path = tmp_path / "model_config.yaml"
    path.write_text("worker:\n  pools: [gpu, default]\n  metrics_port: 9108\n")
    config = load_config(path, environ={})
    assert config.worker.pools == ("gpu", "default")
    assert (config.worker.metrics_port, config.worker.metrics_host) == (9108, "127.0.0.1")
    for bad in ("[Big]", "[]"):
        path.write_text(f"worker:\n  pools: {bad}\n")
        with pytest.raises(ConfigurationError) as caught:
            load_config(path, environ={})
        assert "worker.pools" in str(caught.value), str(caught.value)


def test_a_pool_is_a_queue_and_back() -> None:
    assert queue_for("default") == queue_for(None) == QUEUE == "qasdk"  # rows from before
    assert queue_for("gpu") == "qasdk.gpu"
    assert queues_for(["gpu", "default", "gpu"]) == ["qasdk.gpu", "qasdk"]
    for pool in ("default", "gpu", "big-gpu_2"):
        assert next(check_pool(pool), None) is None
        assert pool_of(queue_for(pool)) == pool
