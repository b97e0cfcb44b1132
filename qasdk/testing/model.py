"""A scripted, deterministic stand-in for an OpenAI-compatible model server.

It replaces only the model server (normally Ollama): qwen-agent, the
``openai`` client and httpx all run for real against it, over real HTTP.
Each chat-completions request consumes the next scripted reply; when the
script is empty an optional rule computes one, and with neither the request
fails with HTTP 500 and a message saying so.

The HTTP side lives in :mod:`qasdk.testing._server`: standard library only,
one thread per connection, well under a millisecond of overhead per request.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeAlias

import msgspec

from qasdk.testing._protocol import NO_REPLY_MESSAGE
from qasdk.testing._server import ModelServer
from qasdk.testing.reply import ErrorReply, Reply, TextReply, ToolCallsReply

__all__ = ["NO_REPLY_MESSAGE", "Rule", "ScriptedModel"]

#: ``(request_body) -> Reply``: computes a reply once the script is used up.
Rule: TypeAlias = Callable[[dict[str, Any]], Reply]


class ScriptedModel:
    """An OpenAI-compatible chat-completions server that answers from a script.

    Args:
        script: Replies, consumed one per chat-completions request, in order.
        rule: Computes a reply from the request body when the script is empty
            (see :mod:`qasdk.testing.policies`).
        latency: Seconds added before every reply.
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one.
        model_names: What ``/v1/models`` and ``/api/tags`` list.
        strict: Refuse (HTTP 400) what validating servers refuse and Ollama lets
            pass: a ``tool`` message without ``tool_call_id``, as llama-cpp-python,
            vLLM and the OpenAI API do.

    Example:
        >>> with ScriptedModel([reply.text("hi")]) as model:  # doctest: +SKIP
        ...     model.base_url  # give this to qwen-agent as ``model_server``
    """

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        rule: Rule | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        model_names: Iterable[str] = ("qwen3:4b",),
        strict: bool = False,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0, got {latency}")
        self.rule = rule
        self.latency = latency
        self.host = host
        self.port = port
        self.model_names = tuple(model_names)
        self.strict = strict
        self._lock = threading.Lock()
        self._script: collections.deque[Reply] = collections.deque(_checked(script))
        self._requests: list[dict[str, Any]] = []
        self._served = 0
        self._server: ModelServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> ScriptedModel:
        """Bind and serve in a daemon thread; a no-op when already running."""
        with self._lock:
            if self._server is not None:
                return self
            server = ModelServer((self.host, self.port), model=self)
            self._server = server
            self.port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"scripted-model-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and wake delayed replies; idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<ScriptedModel {where} remaining={self.remaining} requests={len(self._requests)}>"

    # -- state ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    @property
    def url(self) -> str:
        """``http://host:port``: the ``api_base`` a user configures (Ollama-style)."""
        if self._server is None:
            raise RuntimeError("ScriptedModel is not started; use start() or a with block")
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``url + "/v1"`` (qwen-agent's ``model_server``)."""
        return self.url + "/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat-completions request body received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def remaining(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._lock:
            return len(self._script)

    def push(self, *replies: Reply) -> None:
        """Append replies to the script."""
        checked = _checked(replies)
        with self._lock:
            self._script.extend(checked)

    def reset(self) -> None:
        """Forget the script, the rule, the latency, strictness and the recorded requests.

        For a server shared by several tests (a session fixture): each test
        starts from a blank model.
        """
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self.rule = None
            self.latency = 0.0
            self.strict = False

    # -- serving -------------------------------------------------------------------

    def take(self, body: dict[str, Any]) -> tuple[int, Reply | None]:
        """Record the request and pick its reply: script first, then the rule."""
        with self._lock:
            self._served += 1
            number = self._served
            self._requests.append(body)
            if self._script:
                return number, self._script.popleft()
            rule = self.rule
        if rule is None:
            return number, None
        # A fresh copy: the rule may not alter what ``requests`` recorded.
        made = rule(msgspec.json.decode(msgspec.json.encode(body)))
        return number, _checked([made])[0]


def _checked(replies: Iterable[object]) -> list[Reply]:
    checked: list[Reply] = []
    for item in replies:
        if not isinstance(item, (TextReply, ToolCallsReply, ErrorReply)):
            raise TypeError(
                f"script entries must be replies from qasdk.testing.reply, got {item!r}"
            )
        checked.append(item)
    return checked


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
