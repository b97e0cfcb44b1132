"""Is the model server there, does it list the model, does the model answer at all?

Plain HTTP (httpx, which the ``openai`` client brings): ``GET /v1/models``, then
Ollama's ``GET /api/tags`` when the first does not list the model, and one
short chat completion without tools for latency and tokens per second.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec

from qasdk.config import ModelConfig
from qasdk.redaction import mask_url

__all__ = ["Listing", "PromptResult", "list_models", "trivial_prompt"]

#: What the model is asked to show it answers (no tools offered): a few tokens, for a speed.
PROMPT = "Count from 1 to 10, separated by spaces."


class Listing(msgspec.Struct, kw_only=True):
    """Whether the server answered, and which models it lists."""

    reachable: bool
    #: ``None`` when neither listing could be read.
    listed: bool | None = None
    models: list[str] = []
    #: Where the names came from (``/v1/models`` or ``/api/tags``).
    source: str | None = None
    seconds: float | None = None
    error: str | None = None


class PromptResult(msgspec.Struct, kw_only=True):
    """The trivial prompt: its answer, how long it took, and the speed when usage was given."""

    ok: bool
    seconds: float
    answer: str | None = None
    completion_tokens: int | None = None
    tokens_per_second: float | None = None
    error: str | None = None


def _headers(model: ModelConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}


def describe_failure(exc: Exception, url: str) -> str:
    """One line naming the (masked) URL and what went wrong."""
    shown = mask_url(url)
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {shown} within the timeout (model.timeout)"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {shown}: {_reason(exc)}"
    if isinstance(exc, httpx.HTTPError):
        return f"{shown}: {type(exc).__name__}: {_reason(exc)}"
    return f"{shown}: {type(exc).__name__}: {exc}"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return mask_url(text.split("\n", 1)[0])


def list_models(model: ModelConfig) -> Listing:
    """Reach the server and look for ``model.name`` in what it lists."""
    base = model.api_base.rstrip("/").removesuffix("/v1")
    found: list[str] = []
    source: str | None = None
    reachable, error = False, None
    started = time.perf_counter()
    with httpx.Client(timeout=model.timeout, headers=_headers(model)) as client:
        for path, read in (("/v1/models", _openai_names), ("/api/tags", _ollama_names)):
            url = base + path
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                error = describe_failure(exc, url)
                if isinstance(exc, (httpx.ConnectError, httpx.TimeoutException)):
                    break  # the second path would fail the same way
                continue
            reachable = True
            names = read(response) if response.status_code == 200 else None
            if names is None:
                continue
            found, source = found + [n for n in names if n not in found], source or path
            if _matches(model.name, names):
                break
    seconds = time.perf_counter() - started
    if not reachable:
        return Listing(reachable=False, seconds=seconds, error=error)
    listed = _matches(model.name, found) if source is not None else None
    return Listing(reachable=True, listed=listed, models=found, source=source, seconds=seconds)


def _matches(name: str, names: list[str]) -> bool:
    # Ollama lists ``qwen3:4b`` for a model asked for as ``qwen3:4b`` and ``llama3`` as
    # ``llama3:latest``.
    return name in names or f"{name}:latest" in names


def _openai_names(response: httpx.Response) -> list[str] | None:
    data = _json(response)
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    return [str(i["id"]) for i in items if isinstance(i, dict) and "id" in i]


def _ollama_names(response: httpx.Response) -> list[str] | None:
    data = _json(response)
    items = data.get("models") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    return [str(i.get("name") or i.get("model")) for i in items if isinstance(i, dict)]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def trivial_prompt(model: ModelConfig) -> PromptResult:
    """One short chat completion, no tools, no streaming."""
    url = model.model_server + "/chat/completions"
    body = {
        "model": model.name,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": min(model.max_tokens, 64),
        "temperature": model.temperature,
        "stream": False,
    }
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=model.timeout, headers=_headers(model)) as client:
            response = client.post(url, json=body)
    except httpx.HTTPError as exc:
        return PromptResult(
            ok=False, seconds=time.perf_counter() - started, error=describe_failure(exc, url)
        )
    seconds = time.perf_counter() - started
    data = _json(response)
    if response.status_code != 200 or not isinstance(data, dict):
        detail = _error_message(data) or response.text[:200].strip()
        return PromptResult(
            ok=False,
            seconds=seconds,
            error=f"{mask_url(url)} answered HTTP {response.status_code}: {detail}",
        )
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {} if isinstance(choices[0], dict) else {}
    answer = message.get("content") or message.get("reasoning_content") or ""
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    speed = tokens / seconds if isinstance(tokens, int) and tokens and seconds > 0 else None
    return PromptResult(
        ok=True,
        seconds=seconds,
        answer=str(answer).strip(),
        completion_tokens=tokens if isinstance(tokens, int) else None,
        tokens_per_second=speed,
    )


def _error_message(data: Any) -> str | None:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
        if data.get("detail"):
            return str(data["detail"])
    return None
