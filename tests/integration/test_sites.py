"""Other sites cannot use a local server: DNS rebinding and cross-site writes (issue 10).

Over HTTP against a real ``qasdk serve`` on 127.0.0.1 with its defaults, and
one with ``server.cors_origins`` and ``server.allowed_hosts`` set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

EVIL = "http://evil.example"
ADD = {"method": "add", "params": {"a": 1, "b": 2}}


def _own_host(server: Server) -> str:
    return server.base.split("//", 1)[1].rstrip("/")


async def test_a_host_header_of_another_name_is_refused(served: Server, conn: Any) -> None:
    """DNS rebinding: evil.example resolved to 127.0.0.1 still says ``Host: evil.example``."""
    response = served.http.get("/api/tasks", headers={"Host": "evil.example"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_host"
    assert "'evil.example'" in error["message"]
    assert "server.allowed_hosts: localhost, 127.0.0.1, ::1" in error["message"]
    port = _own_host(served).rsplit(":", 1)[1]
    for name in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert served.http.get("/health", headers={"Host": name}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["origin", "null origin", "fetch metadata"],
)
async def test_a_write_from_another_site_is_refused(
    served: Server, conn: Any, headers: dict[str, str]
) -> None:
    before = len(served.http.get("/api/tasks", params={"limit": 100}).json()["tasks"])
    response = served.http.post("/api/tasks", json=ADD, headers=headers)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "forbidden_origin"
    assert "server.cors_origins" in error["message"]
    after = len(served.http.get("/api/tasks", params={"limit": 100}).json()["tasks"])
    assert after == before  # nothing was submitted


async def test_a_cancel_from_another_site_is_refused(served: Server, conn: Any) -> None:
    task = served.submit(method="record", params={"tag": "cross-site", "seconds": 5})
    response = served.http.post(f"/api/tasks/{task['task_id']}/cancel", headers={"Origin": EVIL})
    assert response.status_code == 403, response.text
    assert served.get(task["task_id"])["status"] in ("pending", "running", "completed")
    served.http.post(f"/api/tasks/{task['task_id']}/cancel")


async def test_the_servers_own_pages_and_plain_clients_may_write(served: Server, conn: Any) -> None:
    own = served.http.post("/api/tasks", json=ADD, headers={"Origin": served.base.rstrip("/")})
    assert own.status_code == 201, own.text
    assert served.http.post("/api/tasks", json=ADD).status_code == 201  # curl, SDKs: no Origin
    same_site = served.http.post("/api/tasks", json=ADD, headers={"Sec-Fetch-Site": "same-origin"})
    assert same_site.status_code == 201


async def test_other_sites_cannot_read_responses(served: Server, conn: Any) -> None:
    """No CORS by default: a browser keeps the answer from the page that asked."""
    response = served.http.get("/api/tasks", headers={"Origin": EVIL})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture(scope="module")
def open_to_one_site(served_project: Path, pg_url: str) -> Iterator[Server]:
    config = yaml.safe_load((served_project / "model_config.yaml").read_text())
    config["server"] = {
        "cors_origins": ["https://app.example.com"],
        "allowed_hosts": ["127.0.0.1", "*.example.com"],
    }
    (served_project / "sites.yaml").write_text(yaml.safe_dump(config))
    server = Server(served_project, pg_url, "--no-worker", "--config", "sites.yaml")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output


async def test_configured_origins_and_hosts(open_to_one_site: Server, conn: Any) -> None:
    server = open_to_one_site
    app = "https://app.example.com"
    preflight = server.http.options(
        "/api/tasks",
        headers={
            "Origin": app,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers["access-control-allow-origin"] == app
    submitted = server.http.post("/api/tasks", json=ADD, headers={"Origin": app})
    assert submitted.status_code == 201, submitted.text
    assert submitted.headers["access-control-allow-origin"] == app
    assert server.http.post("/api/tasks", json=ADD, headers={"Origin": EVIL}).status_code == 403
    assert server.http.get("/health", headers={"Host": "api.example.com"}).status_code == 200
    assert server.http.get("/health", headers={"Host": "localhost"}).status_code == 400
