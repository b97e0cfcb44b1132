"""The HTTP edges over real sockets: header, body and depth limits, slow clients, echoes.

A second `qasdk serve --no-worker` from the shared project runs with small limits
(8 KiB of headers, 64 KiB of body, 1 s to send a request, JSON 16 deep), so each
limit is reached quickly; the shared server checks the defaults are in force.
Time bounds are generous upper bounds (a limit of 1 s, a check at 20 s): a busy
machine makes the server late, never early.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
import yaml

from tests.integration.harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

LIMITS = {"request_headers": 8192, "request_body": 65536, "request_timeout": 1.0, "json_depth": 16}
PATIENCE = 20.0  # seconds a test waits for what the server should do within LIMITS


@pytest.fixture(scope="module")
def limited(served_project: Path, pg_url: str) -> Iterator[Server]:
    config = yaml.safe_load((served_project / "model_config.yaml").read_text())
    config["limits"] = LIMITS
    config["logging"]["file"] = str(served_project / "limited.log")
    (served_project / "limited.yaml").write_text(yaml.safe_dump(config))
    server = Server(served_project, pg_url, "--no-worker", "--config", "limited.yaml")
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"qasdk serve exited with {code}:\n{server.output}"


def connect(server: Server) -> socket.socket:
    address = urlsplit(server.base)
    assert address.hostname is not None and address.port is not None
    return socket.create_connection((address.hostname, address.port), timeout=PATIENCE)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers, body (by Content-Length); raises if the server is silent."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response; got {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(server) as sock:
        sock.sendall(request)
        return read_response(sock)


def closed_by_server(sock: socket.socket, send: bytes = b"", every: float = 0.25) -> bytes:
    """Trickle ``send`` (a byte at a time) until the server answers or closes; what it sent.

    Fails if the connection is still open after ``PATIENCE`` seconds.
    """
    sock.settimeout(every)
    deadline = time.monotonic() + PATIENCE
    received = b""
    position = 0
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if position < len(send):
                try:
                    sock.send(send[position : position + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return received
                position += 1
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the connection was still open after {PATIENCE} s; got {received!r}")


def error_of(body: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(body)["error"]
    return error


# -- headers --------------------------------------------------------------------


def test_headers_over_the_limit_are_431(limited: Server) -> None:
    big = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    status, headers, body = exchange(limited, big)
    assert status == 431, body
    assert headers["content-type"].startswith("application/json")
    error = error_of(body)
    assert error["type"] == "headers_too_large"
    assert "8192 bytes" in error["message"] and "limits.request_headers" in error["message"]
    # Many small headers count together.
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 90) for i in range(100))
    status, _, body = exchange(
        limited, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n"
    )
    assert status == 431, body
    # Under the limit, as before.
    small = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n"
    assert exchange(limited, small)[0] == 200


def test_a_huge_header_is_refused_by_default(served: Server) -> None:
    """The probe's case: a header of megabytes (it got 200) against the default 64 KiB."""
    with connect(served) as sock:
        sent = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        sock.sendall(sent)
        try:
            for _ in range(64):  # 4 MiB in all, unless the server stops reading
                sock.sendall(b"a" * 65536)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return  # closed with an error: refused
        status, _, body = read_response(sock)
    assert status == 431, body


# -- slow clients -------------------------------------------------------------------


def test_an_idle_connection_is_closed(limited: Server) -> None:
    with connect(limited) as sock:
        answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_headers_sent_slowly_are_cut_off(limited: Server) -> None:
    with connect(limited) as sock:
        # A first request on the connection is answered; the next one trickles in.
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock)[0] == 200
        trickle = (
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"s" * 500 + b"\r\n\r\n"
        )
        answer = closed_by_server(sock, trickle)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"limits.request_timeout" in answer


def test_a_body_sent_slowly_is_cut_off(limited: Server) -> None:
    body = json.dumps({"task_description": "x" * 400}).encode()
    head = (
        b"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with connect(limited) as sock:
        sock.sendall(head)
        answer = closed_by_server(sock, body)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def test_a_slow_answer_is_not_a_slow_client(limited: Server, conn: Any) -> None:
    """Waiting for a task longer than ``request_timeout`` is fine: the request was sent."""
    # The shared server's worker may run it; it takes longer than the wait either way.
    task_id = limited.submit(method="slow_add", params={"a": 1, "b": 2, "delay": 30})["task_id"]
    started = time.monotonic()
    response = limited.http.get(f"/api/tasks/{task_id}", params={"wait": 2})
    assert response.status_code == 200, response.text
    assert response.json()["status"] in {"pending", "running"}
    assert time.monotonic() - started >= 2  # it waited, it was not cut off
    assert limited.http.post(f"/api/tasks/{task_id}/cancel").status_code == 200
    # Its job is settled before the test's rows are deleted (the worker would fail to).
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        cur = await conn.execute(
            "SELECT status FROM procrastinate_jobs WHERE args->>'task_id' = %s", (task_id,)
        )
        row = await cur.fetchone()
        await conn.commit()
        if row is None or row["status"] not in ("todo", "doing"):
            break
        await anyio.sleep(0.1)


# -- bodies ------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(limited: Server) -> None:
    body = json.dumps({"task_description": "x" * 70000})
    response = limited.http.post(
        "/api/tasks", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    assert error["type"] == "body_too_large"
    assert "65536 bytes" in error["message"] and "limits.request_body" in error["message"]
    # Without a Content-Length (chunked), counted as it arrives.
    chunked = limited.http.post(
        "/api/tasks",
        content=iter([body[:40000].encode(), body[40000:].encode()]),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413, chunked.text[:300]
    assert chunked.json()["error"]["type"] == "body_too_large"


async def test_the_default_body_limit_is_one_mebibyte(served: Server, conn: Any) -> None:
    response = served.http.post("/api/tasks", json={"task_description": "x" * 1_100_000})
    assert response.status_code == 413, response.text[:300]
    assert "1048576 bytes" in response.json()["error"]["message"]


# -- JSON depth ------------------------------------------------------------------


def nested(depth: int) -> str:
    """A body ``depth`` levels deep: the object, ``params`` and objects inside it."""
    inner = '{"a": ' * (depth - 2) + "{}" + "}" * (depth - 2)
    return '{"task_description": "x", "params": ' + inner + "}"


@pytest.mark.parametrize("depth", [65, 969, 5000, 100_000])
async def test_json_deeper_than_the_limit_is_400(served: Server, depth: int) -> None:
    response = served.http.post(
        "/api/tasks", content=nested(depth), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert "deeper than 64 levels" in error["message"]
    assert "limits.json_depth" in error["message"]


async def test_json_at_the_depth_limit_is_read(served: Server) -> None:
    response = served.http.post(
        "/api/tasks", content=nested(64), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text  # read, then refused for its meaning
    assert "params go with method" in response.json()["error"]["message"]


def test_the_depth_limit_is_configurable(limited: Server) -> None:
    response = limited.http.post(
        "/api/tasks", content=nested(17), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "deeper than 16 levels" in response.json()["error"]["message"]


# -- error bodies stay small -------------------------------------------------------------

LONG = "z" * 500_000
#: Long, but within limits.params (256 KiB), so the parameter itself is what is refused.
PARAM = LONG[:200_000]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/api/tasks", {"method": LONG}, id="unknown method"),
        pytest.param("POST", "/api/tasks", {LONG: 1}, id="unknown field"),
        pytest.param(
            "POST",
            "/api/tasks",
            {"method": "add", "params": {"a": 1, "b": 2, PARAM: 3}},
            id="param",
        ),
        pytest.param(
            "POST", "/api/tasks", {"method": "add", "params": {"a": PARAM}}, id="coercion"
        ),
        pytest.param(
            "POST", "/api/tasks", {"method": "echo", "params": {"text": [PARAM]}}, id="list"
        ),
        pytest.param("GET", "/api/methods/" + LONG[:50_000], None, id="unknown tool"),
        pytest.param("GET", "/api/tasks?status=" + LONG[:50_000], None, id="enum"),
        pytest.param("GET", "/api/tasks?" + LONG[:50_000] + "=1", None, id="query name"),
        pytest.param("GET", "/api/" + LONG[:50_000], None, id="no route"),
    ],
)
def test_error_messages_repeat_a_prefix_of_client_text(
    served: Server, method: str, path: str, body: Any
) -> None:
    response = served.http.request(method, path, json=body)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert len(response.content) < 2000, response.text[:300]
    error = response.json()["error"]
    assert "zzz..." in response.text, error
    for problem in error.get("problems", []):
        assert len(problem.get("field", "")) < 100 and len(problem["reason"]) < 400, problem


def test_nothing_went_wrong_in_the_server_log(limited: Server) -> None:
    """Refused and cut-off requests are the client's doing: no error is logged for them."""
    log = limited.project / "limited.log"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    errors = [r for r in records if r.get("level") in ("ERROR", "CRITICAL")]
    assert not errors, errors
