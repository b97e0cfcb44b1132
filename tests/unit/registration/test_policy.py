"""``cache_ttl``, ``retries`` and ``retry_on``: read statically, checked by the same rules
in ``@tool``, the scanner and ``methods.yaml``, and stored as one policy."""

from __future__ import annotations

import textwrap

import pytest

from qasdk import tool
from qasdk.models import ToolPolicy
from qasdk.registration.declared import parse_methods
from qasdk.registration.scan import scan_source
from qasdk.registration.validate import validate_entries

TOOL = '''
from qasdk import tool

@tool({options})
def lookup(key: str) -> str:
    """Look up.

    Args:
        key: The key.
    """
'''


def scanned(options: str) -> tuple[ToolPolicy | None, list[str]]:
    result = scan_source(
        textwrap.dedent(TOOL.format(options=options)), module="tools.mod", path="tools/mod.py"
    )
    problems = [f"{p.field}: {p.reason}" for p in result.problems]
    problems += [f"{p.field}: {p.reason}" for p in validate_entries(result.entries)]
    policy = result.entries[0].config.policy if result.entries else None
    return policy, problems


def test_the_scanner_reads_a_policy() -> None:
    policy, problems = scanned('cache_ttl=60, retries=2, retry_on=["ConnectionError"]')
    assert problems == []
    assert policy == ToolPolicy(cache_ttl=60.0, retries=2, retry_on=("ConnectionError",))
    policy, problems = scanned(
        'max_concurrency=2, rate="10/s", redact=["secret"], requires_approval=True'
    )
    assert problems == []
    assert policy == ToolPolicy(
        max_concurrency=2, rate="10/s", redact=("secret",), requires_approval=True
    )
    assert scanned("requires_approval=False") == (None, [])
    assert scanned("timeout=3") == (None, [])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("cache_ttl=-1", "cache_ttl: must be a positive number of seconds"),
        ("cache_ttl=1000000000", "cache_ttl: must be at most 2592000 seconds"),
        ("retries=11", "retries: must be from 0 to 10"),
        ("retries=1.5", "retries: must be a whole number"),
        ('retries=1, retry_on="ConnectionError"', "retry_on: must be a list of error type names"),
        ('retries=1, retry_on=["not a name"]', "is not an error type name"),
        ('retry_on=["ConnectionError"]', "retry_on: names errors to retry but retries is 0"),
        ('requires_approval="yes"', "requires_approval: must be true or false"),
        ('rate="fast"', "rate: 'fast' is not a rate"),
        ("max_concurrency=0", "max_concurrency: must be a whole number from 1"),
        ('redact="password"', "redact: must be a list of field names"),
    ],
)
def test_bad_policies_are_named(options: str, expected: str) -> None:
    _, problems = scanned(options)
    assert any(expected in p for p in problems), problems


def test_the_decorator_applies_the_same_rules() -> None:
    with pytest.raises(TypeError, match="@tool retries must be from 0 to 10"):
        tool(retries=20)
    with pytest.raises(TypeError, match="@tool cache_ttl must be a positive number"):
        tool(cache_ttl=0)

    @tool(cache_ttl=5, retries=1, retry_on=["TimeoutError"])
    def fine(x: int) -> int:
        return x

    assert fine(3) == 3  # unchanged when called directly


def test_methods_yaml_declares_a_policy() -> None:
    text = textwrap.dedent(
        """
        methods:
          - name: remote_lookup
            description: Look a key up remotely.
            return_type: str
            module_path: tools.remote
            function_name: lookup
            cache_ttl: 600
            retries: 3
            retry_on: [ConnectionError, OSError]
        """
    )
    declared = parse_methods(text, "methods.yaml")
    assert declared.problems == []
    (config,) = declared.configs
    assert config.policy == ToolPolicy(
        cache_ttl=600.0, retries=3, retry_on=("ConnectionError", "OSError")
    )
    bad = parse_methods(text.replace("retries: 3", "retries: many"), "methods.yaml")
    assert [(p.source.line if p.source else None, p.field) for p in bad.problems] == [
        (9, "retries")
    ]
