"""The qwen-agent shim: model configuration, tool schemas, the agent (Properties 2, 18, 19)."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from qasdk.config import ModelConfig
from qasdk.models import MethodConfig
from qasdk_server.agent.shim import (
    SYSTEM_MESSAGE,
    agent_class,
    build_llm,
    llm_config,
    openai_message,
    qwen_tools,
    tool_schema,
)
from tests.strategies import method_configs

model_configs = st.builds(
    ModelConfig,
    name=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30),
    api_base=st.sampled_from(
        ["http://localhost:11434", "http://10.1.2.3:8080", "https://llm.example/v1"]
    ),
    timeout=st.floats(min_value=0.1, max_value=600, allow_nan=False),
    temperature=st.floats(min_value=0, max_value=2, allow_nan=False),
    max_tokens=st.integers(1, 100_000),
    function_calling=st.sampled_from(["nous", "native"]),
)


# Property 2: Configuration parameter propagation
@given(model_configs)
def test_model_config_reaches_qwen_agent_exactly(model: ModelConfig) -> None:
    llm = build_llm(model)
    assert llm.model == model.name
    assert str(llm.client.base_url).rstrip("/") == model.model_server
    assert llm.client.timeout == model.timeout
    assert llm.client.max_retries == 0
    assert llm.generate_cfg["temperature"] == model.temperature
    assert llm.generate_cfg["max_tokens"] == model.max_tokens
    assert llm.use_raw_api is (model.function_calling == "native")
    cfg = llm_config(model)
    assert (cfg["model"], cfg["model_server"], cfg["timeout"]) == (
        model.name,
        model.model_server,
        model.timeout,
    )


def test_ollama_base_gets_v1() -> None:
    assert (
        ModelConfig(api_base="http://localhost:11434").model_server == "http://localhost:11434/v1"
    )
    assert (
        ModelConfig(api_base="http://localhost:11434/v1/").model_server
        == "http://localhost:11434/v1"
    )


# Property 18: qwen-agent tool format conversion
@given(method_configs)
def test_every_method_converts_to_a_tool_qwen_agent_accepts(config: MethodConfig) -> None:
    from qwen_agent.tools.base import is_tool_schema

    schema = tool_schema(config)
    assert set(schema) == {"type", "properties", "required"}
    assert is_tool_schema(
        {"name": config.name, "description": config.description, "parameters": schema}
    )
    assert list(schema["properties"]) == [p.name for p in config.parameters]
    assert schema["required"] == [p.name for p in config.parameters if p.required]
    for param in config.parameters:
        assert schema["properties"][param.name]["description"] == param.description
    (tool,) = qwen_tools({config.name: config})  # BaseTool validates the schema itself
    assert tool.function == {
        "name": config.name,
        "description": config.description,
        "parameters": schema,
    }


# Property 19: Agent client initialization
@given(model_configs, st.lists(method_configs, max_size=3, unique_by=lambda c: c.name))
def test_an_agent_builds_for_any_valid_configuration(
    model: ModelConfig, methods: list[MethodConfig]
) -> None:
    tools = qwen_tools({m.name: m for m in methods})
    agent = agent_class()(function_list=tools, llm=build_llm(model), system_message=SYSTEM_MESSAGE)
    assert set(agent.function_map) == {m.name for m in methods}
    assert agent.llm.model == model.name


def test_schemas_of_rich_types_pass_through() -> None:
    config = MethodConfig(
        name="rich",
        description="d",
        return_type="any",
        module_path="m",
        function_name="fn",
        parameters=(
            msgspec.convert(
                {
                    "name": "unit",
                    "type": "string",
                    "description": "u",
                    "required": False,
                    "default": "c",
                    "schema": {"type": "string", "enum": ["c", "f"]},
                },
                type=__import__("qasdk").MethodParameter,
            ),
        ),
    )
    assert tool_schema(config)["properties"]["unit"] == {
        "type": "string",
        "enum": ["c", "f"],
        "description": "u",
        "default": "c",
    }


def test_a_tool_result_says_which_call_it_answers() -> None:
    # qwen-agent 0.0.34's raw API sends ``id``; validating servers need ``tool_call_id``.
    sent = {
        "role": "tool",
        "content": "{}",
        "name": "get_weather",
        "id": "call_1",
        "extra": {"function_id": "call_1"},
    }
    assert openai_message(sent) == {
        "role": "tool",
        "content": "{}",
        "name": "get_weather",
        "tool_call_id": "call_1",
    }
    kept = {"role": "tool", "content": "{}", "tool_call_id": "call_2"}
    assert openai_message(kept) == kept
    user = {"role": "user", "content": "hi", "extra": {}}
    assert openai_message(user) is user
