"""Signatures cover a tool's type and endpoint, and rows signed before them still verify."""

from __future__ import annotations

import msgspec

from qasdk.models import McpEndpoint, MethodConfig
from qasdk.security.signing import SigningKey, canonical, sign, verify

KEY = SigningKey(secret="k" * 40, source="test")
PYTHON = MethodConfig(
    name="greet", description="Greet.", return_type="string", module_path="t", function_name="g"
)
REMOTE = MethodConfig(
    name="r_add",
    description="Add.",
    return_type="any",
    module_path="",
    function_name="",
    type="mcp",
    endpoint=McpEndpoint(server="calc", tool="add", url="http://127.0.0.1:1/mcp"),
)


def test_a_python_row_signs_as_it_did_before_type_and_endpoint_existed() -> None:
    assert b'"type"' not in canonical(PYTHON)
    assert b'"endpoint"' not in canonical(PYTHON)


def test_changing_the_endpoint_or_the_type_breaks_the_signature() -> None:
    signature = sign(KEY, REMOTE)
    assert verify(KEY, REMOTE, signature)
    assert REMOTE.endpoint is not None
    moved = msgspec.structs.replace(
        REMOTE, endpoint=msgspec.structs.replace(REMOTE.endpoint, url="http://evil.example/mcp")
    )
    assert not verify(KEY, moved, signature)
    assert not verify(KEY, msgspec.structs.replace(REMOTE, type="python"), signature)
