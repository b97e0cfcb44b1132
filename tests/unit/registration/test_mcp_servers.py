"""``mcp_servers:`` in methods files, and listed MCP tools as entries (no network here)."""

from __future__ import annotations

from typing import Any

import pytest

from qasdk.errors import ConfigurationError
from qasdk.models import McpServer, Source
from qasdk.registration import remote
from qasdk.registration.declared import parse_methods
from qasdk.registration.merge import merge
from qasdk.registration.remote import remote_entries, tool_entry
from qasdk.registration.validate import validate_entries
from qasdk.remote.client import INSTALL_HINT, RemoteTool
from qasdk.remote.templates import check_template, expand


def problems_of(text: str) -> list[str]:
    return [str(p) for p in parse_methods(text, "methods.yaml").problems]


def test_a_url_server_and_a_command_server_are_read_with_their_lines() -> None:
    declared = parse_methods(
        """
mcp_servers:
  - name: github
    url: https://mcp.example.com/mcp
    headers: {Authorization: "Bearer ${GITHUB_TOKEN}"}
    tools: [search_issues, get_issue]
    prefix: gh_
    timeout: 20
  - name: files
    command: python
    args: [servers/files.py, --root, /srv]
    env: {ROOT: "${FILES_ROOT:-/srv}"}
""",
        "methods.yaml",
    )
    assert declared.problems == []
    github, files = declared.servers
    assert github.url == "https://mcp.example.com/mcp"
    assert github.headers == {"Authorization": "Bearer ${GITHUB_TOKEN}"}  # the template, kept
    assert github.tools == ("search_issues", "get_issue")
    assert (github.prefix, github.timeout) == ("gh_", 20)
    assert github.source == Source("methods.yaml", 3)
    assert github.source_of("tools") == Source("methods.yaml", 6)
    assert files.command == "python"
    assert files.args == ("servers/files.py", "--root", "/srv")
    assert files.tools is None  # every tool it lists
    endpoint = files.endpoint("read")
    assert (endpoint.server, endpoint.tool, endpoint.env) == ("files", "read", files.env)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{url: http://x}", "methods.yaml:3: mcp_servers[0].name: required field is missing"),
        ("{name: a b, url: http://x}", "mcp_servers.a b.name: 'a b' is not a valid Python"),
        ("{name: s}", "mcp_servers.s: give a 'url' (streamable HTTP) or a 'command' (stdio)"),
        ("{name: s, url: http://x, command: y}", "mcp_servers.s.command: give a 'url' or a"),
        ("{name: s, url: ftp://x}", "mcp_servers.s.url: must be an http:// or https:// URL"),
        ("{name: s, url: 'http://u:p@x/mcp'}", "mcp_servers.s.url: must not hold credentials"),
        ("{name: s, url: 'http://x/${T}'}", "mcp_servers.s.url: must not hold credentials"),
        ("{name: s, url: http://x, args: [a]}", "mcp_servers.s.args: applies to a 'command'"),
        ("{name: s, command: x, headers: {A: b}}", "mcp_servers.s.headers: applies to a 'url'"),
        ("{name: s, url: http://x, tools: []}", "mcp_servers.s.tools: must name at least one"),
        ("{name: s, url: http://x, tools: [a, a]}", "mcp_servers.s.tools: 'a' is listed twice"),
        ("{name: s, url: http://x, prefix: 9x}", "mcp_servers.s.prefix: '9x' cannot start"),
        ("{name: s, url: http://x, timeout: 0}", "mcp_servers.s.timeout: "),
        ("{name: s, url: http://x, tool: [a]}", "mcp_servers.s.tool: unknown field"),
        ("{name: s, url: 3}", "mcp_servers.s.url: "),
        ("[1]", "each MCP server must be a mapping, got list"),
    ],
)
def test_a_bad_declaration_names_file_line_field_and_why(entry: str, expected: str) -> None:
    problems = problems_of(f"\nmcp_servers:\n  - {entry}\n")
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("methods.yaml:3") for p in problems), problems


def test_a_secret_header_written_in_plain_text_is_refused_with_the_fix() -> None:
    (problem,) = problems_of(
        "mcp_servers:\n  - name: s\n    url: http://x\n    headers:\n      Authorization: Bearer abc\n"
    )
    assert problem.startswith("methods.yaml:5: mcp_servers.s.headers.Authorization: ")
    assert "${" in problem
    assert "abc" not in problem  # the secret itself is not repeated
    assert check_template("X-Team", "blue") is None  # not a secret: may be plain
    assert check_template("Authorization", "Bearer ${T}") is None
    assert "unfinished" in (check_template("X", "${T") or "")


def test_server_names_are_unique_and_unknown_top_level_keys_name_both_known() -> None:
    problems = problems_of(
        "mcp_servers:\n  - {name: s, url: 'http://a'}\n  - {name: s, url: 'http://b'}\nmcp: 1\n"
    )
    assert any(
        "methods.yaml:3: mcp_servers.s.name: duplicate MCP server name, also declared "
        "at methods.yaml:2" in p
        for p in problems
    ), problems
    assert any("'methods' and 'mcp_servers'" in p for p in problems), problems


def test_templates_expand_from_the_environment_only() -> None:
    assert expand("Bearer ${T}", {"T": "x"}, what="h") == "Bearer x"
    assert expand("${U:-d}$$", {}, what="h") == "d$"
    with pytest.raises(ConfigurationError, match="'T' is not set"):
        expand("Bearer ${T}", {}, what="mcp_servers.s.headers.Authorization")


SERVER = McpServer(
    name="calc", url="http://127.0.0.1:1/mcp", prefix="r_", source=Source("methods.yaml", 2)
)


def listed(**fields: Any) -> RemoteTool:
    return RemoteTool(**{"name": "add", "description": "Add.", **fields})


def test_a_listed_tool_becomes_an_mcp_entry_with_parameters_from_its_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "title": "A", "description": "First"},
            "b": {"type": ["number", "null"], "description": "Second", "default": None},
            "unit": {"$ref": "#/$defs/Unit", "description": "Unit"},
        },
        "required": ["a", "unit"],
        "$defs": {"Unit": {"enum": ["m", "km"], "type": "string"}},
    }
    entry = tool_entry(SERVER, listed(input_schema=schema))
    config = entry.config
    assert (config.name, config.type, config.module_path) == ("r_add", "mcp", "")
    assert config.endpoint is not None
    assert (config.endpoint.server, config.endpoint.tool) == ("calc", "add")
    a, b, unit = config.parameters
    assert (a.type, a.required, a.description, a.schema) == (
        "int",
        True,
        "First",
        {"type": "integer"},
    )
    assert (b.type, b.required, b.default) == ("float", False, None)
    assert unit.schema == {"enum": ["m", "km"], "type": "string"}
    assert validate_entries([entry]) == []


def test_a_remote_tool_breaking_the_rules_is_reported_naming_its_server() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    entry = tool_entry(SERVER, listed(name="bad-name", description="", input_schema=schema))
    problems = [str(p) for p in validate_entries([entry])]
    suffix = "(as mcp server 'calc' lists its tool 'bad-name')"
    assert any(
        p.startswith("methods.yaml:2: tool 'r_bad-name': name: ") and suffix in p for p in problems
    ), problems
    assert any("description: must not be empty" in p for p in problems), problems
    assert any("parameters.q.description: must not be empty" in p for p in problems), problems


def test_a_clash_with_a_native_tool_names_both_sources() -> None:
    native = parse_methods(
        "methods:\n  - {name: r_add, description: Add., return_type: int, "
        "module_path: tools.m, function_name: add}\n",
        "tools/methods.yaml",
    ).entries
    remote_add = tool_entry(SERVER, listed())
    _, problems = merge([*native, remote_add])
    (problem,) = problems
    text = str(problem)
    assert text.startswith(
        "methods.yaml:2: tool 'r_add': name: duplicate tool name, also "
        "defined at tools/methods.yaml:2"
    )
    assert "tool 'add' of mcp server 'calc'" in text
    assert "prefix" in text


def test_without_the_mcp_package_sync_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(remote, "mcp_available", lambda: False)
    entries, problems = remote_entries([SERVER])
    assert entries == []
    (problem,) = problems
    assert INSTALL_HINT in str(problem)
    assert "qasdk[mcp]" in str(problem)
    assert str(problem).startswith("methods.yaml:2: mcp_servers.calc: ")


def test_no_servers_means_no_network_and_no_mcp_import() -> None:
    assert remote_entries([]) == ([], [])


def test_a_servers_policy_goes_to_each_of_its_tools_and_is_validated_there() -> None:
    (server,) = parse_methods(
        "mcp_servers:\n  - name: calc\n    url: http://x\n    retries: 2\n"
        "    retry_on: [McpUnavailable]\n    cache_ttl: 60\n    max_concurrency: 3\n",
        "methods.yaml",
    ).servers
    assert server.policy is not None
    entry = tool_entry(server, listed())
    assert entry.config.policy == server.policy
    assert (entry.config.policy.retries, entry.config.policy.retry_on) == (2, ("McpUnavailable",))
    assert entry.config.policy.max_concurrency == 3
    (bad,) = parse_methods(
        "mcp_servers:\n  - name: calc\n    url: http://x\n    retry_on: [McpUnavailable]\n",
        "methods.yaml",
    ).servers
    problems = [str(p) for p in validate_entries([tool_entry(bad, listed())])]
    assert any(p.startswith("methods.yaml:4: tool 'add': retry_on: ") for p in problems), problems
