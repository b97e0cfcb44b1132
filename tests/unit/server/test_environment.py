"""Tool processes get the worker's environment without qasdk's secrets (issue 9, defect 8)."""

from __future__ import annotations

from qasdk_server.executor.environment import tool_environment

ENVIRON = {
    "PATH": "/usr/bin",
    "HOME": "/home/me",
    "QASDK_DATABASE_URL": "postgresql://app:pw@db/app",
    "QASDK_MODEL_API_KEY": "sk-abc",
    "PGPASSWORD": "pw",
    "OPENAI_API_KEY": "sk-live-123456",
    "WEATHER_API_KEY": "the tool's own",
    "QASDK_TEST_RUNS": "/tmp/runs.log",
}


def test_qasdks_secrets_stay_with_qasdk() -> None:
    env = tool_environment(ENVIRON, secrets=["sk-live-123456", "pw"])
    assert env == {"PATH": "/usr/bin", "HOME": "/home/me", "WEATHER_API_KEY": "the tool's own"}


def test_named_variables_pass_anyway() -> None:
    env = tool_environment(ENVIRON, secrets=["pw"], allow=["QASDK_TEST_RUNS"])
    assert env["QASDK_TEST_RUNS"] == "/tmp/runs.log"
    assert "QASDK_DATABASE_URL" not in env
