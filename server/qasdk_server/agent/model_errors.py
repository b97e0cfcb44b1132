"""Model-call failures → worth retrying or not, and a sentence a person can act on."""

from __future__ import annotations

from qasdk.redaction import redact

__all__ = ["cause", "describe", "is_transient"]


def cause(exc: BaseException) -> BaseException:
    """The OpenAI error inside qwen-agent's ``ModelServiceError``."""
    return getattr(exc, "exception", None) or exc.__cause__ or exc


def is_transient(exc: BaseException) -> bool:
    """Connection refused, timeouts, 429 and 5xx are worth retrying; the rest is not."""
    import openai

    inner = cause(exc)
    if isinstance(inner, (openai.APIConnectionError, openai.APITimeoutError)):
        return True
    if isinstance(inner, openai.APIStatusError):
        return inner.status_code == 429 or inner.status_code >= 500
    return isinstance(inner, (ConnectionError, TimeoutError))


def describe(exc: BaseException) -> str:
    """What happened, from the model server's side (URL credentials masked)."""
    return redact(_describe(exc))


def _describe(exc: BaseException) -> str:
    import openai

    inner = cause(exc)
    if isinstance(inner, openai.APIStatusError):
        detail = inner.message or ""
        return f"the model server answered HTTP {inner.status_code}: {detail}".strip()
    if isinstance(inner, openai.APITimeoutError):
        return "the model server did not answer in time"
    if isinstance(inner, openai.APIConnectionError):
        reason = inner.__cause__ or inner
        return f"cannot reach the model server: {reason}"
    return str(inner) or type(inner).__name__
