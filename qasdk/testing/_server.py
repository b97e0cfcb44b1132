"""The HTTP side of :class:`~qasdk.testing.ScriptedModel`: routing and framing.

Standard library only. Each response leaves in a single write with a
``Content-Length`` (streams too: scripted output has nothing to wait for),
TCP_NODELAY is set, and keep-alive works, so a request costs tens of
microseconds here and the benchmarks measure the client, not this server.
"""

from __future__ import annotations

import contextlib
import http
import socket
import socketserver
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from qasdk.testing import _protocol
from qasdk.testing.reply import ErrorReply

if TYPE_CHECKING:
    from qasdk.testing.reply import Reply


class Script(Protocol):
    """What the HTTP side asks of the model it serves (``ScriptedModel``)."""

    @property
    def model_names(self) -> Sequence[str]: ...

    @property
    def latency(self) -> float: ...

    @property
    def strict(self) -> bool: ...

    def take(self, body: dict[str, Any]) -> tuple[int, Reply | None]:
        """Record a request; its number and the reply to send (``None``: none left)."""
        ...


__all__ = ["ModelServer"]

#: What ``/api/version`` claims, for clients that check Ollama's version.
OLLAMA_VERSION = "0.12.0"
_JSON = "application/json"


class ModelServer(ThreadingHTTPServer):
    """One thread per connection; remembers connections so stop() can cut keep-alives."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], *, model: Script) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.model = model
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, *, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, stop()) are expected; anything else is a bug.
        if not self.stopping.is_set():
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"
    server_version = "qasdk-scripted-model"
    # Headers and body go out in one write, and Nagle must not hold the last segment back.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        names = self.server.model.model_names
        if path == "/v1/models":
            data = [
                {"id": name, "object": "model", "created": _protocol.CREATED, "owned_by": "library"}
                for name in names
            ]
            self._send_json(200, {"object": "list", "data": data})
        elif path == "/api/tags":
            models = [
                {
                    "name": name,
                    "model": name,
                    "modified_at": "2023-11-14T22:13:20Z",
                    "size": 0,
                    "digest": "0" * 64,
                    "details": {"format": "gguf", "family": "scripted", "parameter_size": "0B"},
                }
                for name in names
            ]
            self._send_json(200, {"models": models})
        elif path == "/api/version":
            self._send_json(200, {"version": OLLAMA_VERSION})
        elif path in ("", "/"):
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        else:
            self._not_found()

    def do_POST(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        if self.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
            self._not_found()
            return
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            self._send_error(400, f"invalid JSON body: {exc}")
            return
        if not isinstance(body, dict):
            self._send_error(400, "the request body must be a JSON object")
            return
        problem = _protocol.invalid_messages(body) if self.server.model.strict else None
        if problem is not None:
            self._send_error(400, problem)
            return
        self._complete(body)

    def _complete(self, body: dict[str, Any]) -> None:
        model = self.server.model
        try:
            number, reply = model.take(body)
        except Exception as exc:
            self._send_error(500, f"scripted model: the rule failed: {exc!r}")
            return
        if reply is None:
            self._send_error(500, _protocol.NO_REPLY_MESSAGE)
            return
        wait = model.latency + reply.delay
        if wait > 0 and self.server.stopping.wait(wait):
            self.close_connection = True
            return
        if isinstance(reply, ErrorReply):
            headers: dict[str, str] = {}
            if reply.retry_after is not None:
                headers["retry-after-ms"] = str(max(1, round(reply.retry_after * 1000)))
            if reply.should_retry is not None:
                headers["x-should-retry"] = "true" if reply.should_retry else "false"
            self._send(
                reply.status, _protocol.error_body(reply.message, reply.status), _JSON, headers
            )
            return
        generation = _protocol.generate(reply, native=_protocol.uses_native_tools(body))
        requested = body.get("model")
        name = requested if isinstance(requested, str) and requested else model.model_names[0]
        completion_id = f"chatcmpl-scripted-{number}"
        if body.get("stream") is True:
            payload = _protocol.sse_stream(
                body, generation, completion_id=completion_id, model=name
            )
            self._send(200, payload, "text/event-stream", {"Cache-Control": "no-cache"})
        else:
            payload = _protocol.chat_completion(
                body, generation, completion_id=completion_id, model=name
            )
            self._send(200, payload, _JSON)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                self._send_error(411, "a Content-Length is required")
                return None
            return b""
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            self._send_error(400, "invalid Content-Length")
            return None
        return self.rfile.read(size)

    def _not_found(self) -> None:
        self._send_error(404, f"no route for {self.command} {self.path}")

    def _send_error(self, status: int, message: str) -> None:
        # Deterministic failures: tell the openai client not to retry them.
        body = _protocol.error_body(message, status)
        self._send(status, body, _JSON, {"x-should-retry": "false"})

    def _send_json(self, status: int, data: Mapping[str, Any]) -> None:
        self._send(status, msgspec.json.encode(data), _JSON)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {status} {phrase}",
            f"Server: {self.server_version}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{key}: {value}" for key, value in (headers or {}).items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)
        except OSError:
            self.close_connection = True
