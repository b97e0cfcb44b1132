"""A sync's audit detail: each changed field old → new, and never more than a bounded size."""

from __future__ import annotations

import msgspec

from qasdk.audit import diff
from qasdk.models import MethodConfig, MethodParameter
from qasdk.store.methods import plan_sync


def tool(name: str, **changes: object) -> MethodConfig:
    base = MethodConfig(
        name=name,
        description="Adds.",
        parameters=(MethodParameter(name="a", type="int", description="A number."),),
        return_type="int",
        module_path="tools.basic",
        function_name=name,
    )
    return msgspec.structs.replace(base, **changes)


def detail(before: list[MethodConfig], after: list[MethodConfig], prune: bool = True) -> dict:
    plan = plan_sync(before, after, prune=prune)
    return diff.sync_changes(plan, {c.name: c for c in before}, {c.name: c for c in after})


def test_created_updated_and_deleted_with_old_and_new_values() -> None:
    found = detail(
        [tool("kept"), tool("changed"), tool("gone")],
        [tool("kept"), tool("changed", timeout=5.0, tags=("x",)), tool("new")],
    )
    assert found["created"] == ["new"]
    assert found["deleted"] == ["gone"]
    assert found["updated"] == {
        "changed": {"timeout": {"old": None, "new": 5.0}, "tags": {"old": [], "new": ["x"]}}
    }
    assert found["counts"] == {"created": 1, "updated": 1, "deleted": 1, "unchanged": 1}


def test_parameters_are_shown_as_json() -> None:
    new = (MethodParameter(name="a", type="float", description="A number.", default=1.5),)
    found = detail([tool("t")], [tool("t", parameters=new)])
    change = found["updated"]["t"]["parameters"]
    assert change["old"] == [{"name": "a", "type": "int", "description": "A number."}]
    assert change["new"][0]["default"] == 1.5


def test_a_large_value_is_a_marker_with_its_size() -> None:
    long = "word " * 2000
    found = detail([tool("t")], [tool("t", description=long)])
    new = found["updated"]["t"]["description"]["new"]
    assert new["truncated"] is True and new["bytes"] > diff.VALUE_BYTES
    assert new["preview"].startswith('"word word')  # the JSON text, cut
    assert found["updated"]["t"]["description"]["old"] == "Adds."


def test_a_sync_of_thousands_of_big_tools_stays_small() -> None:
    before = [tool(f"t{n}") for n in range(3000)]
    after = [tool(f"t{n}", description="x" * 5000, timeout=1.0) for n in range(2000)]
    after += [tool(f"new{n}") for n in range(1000)]
    found = detail(before, after)
    size = len(msgspec.json.encode(found))
    assert size < 100_000, size
    assert found["counts"] == {"created": 1000, "updated": 2000, "deleted": 1000, "unchanged": 0}
    assert len(found["created"]) == len(found["deleted"]) == len(found["updated"]) == diff.MAX_NAMES
    # Once the budget is spent, a changed field is named with null: changed, values not kept.
    assert list(found["updated"].values())[-1] == {"description": None, "timeout": None}
