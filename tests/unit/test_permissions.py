"""Tool permissions: which names a tool may declare, and which grants cover them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qasdk.permissions import (
    GRANT_PATTERN,
    WELL_KNOWN,
    covers,
    grant_problem,
    name_problem,
    permitted,
)
from tests.strategies import permission_names

name_sets = st.lists(permission_names, max_size=5, unique=True)


def family(name: str) -> str:
    return name.partition(":")[0]


@pytest.mark.parametrize(
    "name",
    [
        *WELL_KNOWN,
        "network:api.example.com",
        "subprocess:git",
        "acme:billing",
        "db",
        "db:orders-v2",
        "payments_api",
    ],
)
def test_well_known_and_custom_names_are_accepted(name: str) -> None:
    assert name_problem(name) is None
    assert grant_problem(name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("netwrok", "'netwrok' is not a known permission (did you mean 'network'?)"),
        ("subproces", "did you mean 'subprocess'?"),
        ("fs:wirte", "'fs:wirte' is not a known permission (did you mean 'fs:write'?)"),
        ("fs_write", "did you mean 'fs:write'?"),
        ("netwrok:api.example.com", "did you mean 'network:api.example.com'?"),
        ("fs:delete", "'fs:delete' is not a known permission: use 'fs:read' or 'fs:write'"),
        ("fs", "use 'fs:read' or 'fs:write'"),
        ("fs:*", "wildcards are for limiting keys; a tool names what it needs"),
        ("Network", "is not a permission name: use lowercase letters"),
        ("fs write", "is not a permission name"),
        ("", "is not a permission name"),
        ("a:b:c", "is not a permission name"),
        ("x" * 101, "is longer than 100 characters"),
        (3, "permissions are strings, got 3"),
    ],
)
def test_bad_names_say_why(name: object, reason: str) -> None:
    why = name_problem(name)
    assert why is not None and reason in why, why


@pytest.mark.parametrize("grant", ["fs", "fs:*", "network:*.example.com", "acme:*"])
def test_grants_may_be_families_and_patterns(grant: str) -> None:
    assert grant_problem(grant) is None
    assert re.match(GRANT_PATTERN, grant)


@pytest.mark.parametrize(
    ("grant", "reason"),
    [("*", "is not a permission or pattern"), ("netwrok", "did you mean 'network'?")],
)
def test_bad_grants_say_why(grant: str, reason: str) -> None:
    why = grant_problem(grant)
    assert why is not None and reason in why, why


@pytest.mark.parametrize(
    ("grant", "need", "expected"),
    [
        ("fs:read", "fs:read", True),
        ("fs:read", "fs:write", False),
        ("fs:*", "fs:read", True),
        ("fs:*", "fs:write", True),
        ("fs", "fs:write", True),
        ("fs:*", "network", False),
        ("network", "network:api.example.com", True),
        ("network:*.example.com", "network:api.example.com", True),
        ("network:*.example.com", "network:example.org", False),
        ("network:api.example.com", "network", False),  # a need broader than the grant
        ("network:*", "network", True),
        ("net", "network", False),  # a family is matched whole, not as a prefix
        ("acme:billing", "acme:billing", True),
    ],
)
def test_what_one_grant_covers(grant: str, need: str, expected: bool) -> None:
    assert covers(grant, need) is expected


def test_permitted() -> None:
    assert permitted(["network", "fs:write"], None)  # an unlimited key
    assert permitted([], [])  # a tool that declares nothing runs with any key
    assert not permitted(["network"], [])
    assert permitted(["network", "fs:write"], ["network", "fs:*"])
    assert not permitted(["network", "fs:write"], ["network", "fs:read"])
    assert permitted(("fs:read",), frozenset({"fs:read"}))


@given(name_sets)
def test_granting_exactly_what_is_needed_permits(needed: list[str]) -> None:
    assert permitted(needed, needed)
    assert permitted(needed, None)


@given(name_sets, name_sets, name_sets)
def test_more_grants_never_take_anything_away(
    needed: list[str], granted: list[str], more: list[str]
) -> None:
    if permitted(needed, granted):
        assert permitted(needed, granted + more)
        assert permitted(needed[1:], granted)  # nor does needing less


@given(name_sets)
def test_family_grants_cover_their_families_only(needed: list[str]) -> None:
    families = {family(n) for n in needed}
    assert permitted(needed, [f"{f}:*" for f in families])
    assert permitted(needed, sorted(families))
    for name in needed:
        others = [f"{f}:*" for f in families - {family(name)}]
        assert not permitted([name], others)


@given(name_sets, name_sets)
def test_a_need_nobody_granted_is_refused(needed: list[str], granted: list[str]) -> None:
    covered = all(any(covers(g, n) for g in granted) for n in needed)
    assert permitted(needed, granted) is covered
    ungranted = [n for n in needed if family(n) not in {family(g) for g in granted}]
    if ungranted:
        assert not permitted(needed, granted)
