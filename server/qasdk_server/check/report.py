"""The check's stages in order, what they found, and how it is shown.

Exit status: :data:`EXIT_OK` (0) when the probe tool was called with the right
arguments and answered in at least one format; :data:`EXIT_NO_TOOL_CALLS` (5)
when the model answers but calls tools in neither format;
:data:`EXIT_UNUSABLE` (6) when the endpoint cannot be reached or the model does
not answer a trivial prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

from qasdk.config import ModelConfig
from qasdk.redaction import mask_url
from qasdk_server.check.endpoint import Listing, PromptResult, list_models, trivial_prompt
from qasdk_server.check.probe import FormatResult, probe

__all__ = [
    "EXIT_NO_TOOL_CALLS",
    "EXIT_OK",
    "EXIT_UNUSABLE",
    "CheckReport",
    "check_model",
    "render_text",
]

EXIT_OK, EXIT_NO_TOOL_CALLS, EXIT_UNUSABLE = 0, 5, 6

FORMATS: tuple[Literal["nous", "native"], ...] = ("nous", "native")


class Recommendation(msgspec.Struct, kw_only=True):
    """The ``model`` settings that worked."""

    function_calling: Literal["nous", "native"]
    recover_tool_calls: bool


class CheckReport(msgspec.Struct, kw_only=True):
    """Everything the check found; ``status`` is the command's exit status."""

    model: str
    model_server: str
    status: int
    message: str
    listing: Listing
    prompt: PromptResult | None = None
    formats: list[FormatResult] = []
    recommended: Recommendation | None = None


def check_model(
    model: ModelConfig, *, progress: Callable[[str], None] | None = None
) -> CheckReport:
    """Run every stage that the previous ones allow."""
    say = progress or (lambda _: None)
    server = mask_url(model.model_server)
    say(f"reaching {server}")
    listing = list_models(model)
    if not listing.reachable:
        return CheckReport(
            model=model.name,
            model_server=server,
            status=EXIT_UNUSABLE,
            message=f"the model server is unreachable: {listing.error} (model.api_base)",
            listing=listing,
        )
    say(f"asking {model.name!r} a trivial prompt")
    prompt = trivial_prompt(model)
    if not prompt.ok:
        unlisted = (
            f"; {model.name!r} is not among the models it lists" if listing.listed is False else ""
        )
        return CheckReport(
            model=model.name,
            model_server=server,
            status=EXIT_UNUSABLE,
            message=f"the model does not answer: {prompt.error}{unlisted}",
            listing=listing,
            prompt=prompt,
        )
    formats = []
    for function_calling in FORMATS:
        say(f"calling the probe tool with function_calling: {function_calling}")
        formats.append(probe(model, function_calling))
    recommended = recommend(model, formats)
    if recommended is None:
        status, message = EXIT_NO_TOOL_CALLS, _no_calls(formats)
    else:
        status = EXIT_OK
        message = (
            f"tool calling works; set model.function_calling: {recommended.function_calling}, "
            f"model.recover_tool_calls: {str(recommended.recover_tool_calls).lower()}"
        )
        if not any(f.answered for f in formats):
            message += (
                "; the model does not answer after the tool's result, so tasks end with "
                "that result as their answer (model.on_tool_loop: answer)"
            )
    return CheckReport(
        model=model.name,
        model_server=server,
        status=status,
        message=message,
        listing=listing,
        prompt=prompt,
        formats=formats,
        recommended=recommended,
    )


def recommend(model: ModelConfig, formats: list[FormatResult]) -> Recommendation | None:
    """The working format: answered before ended by the loop guard, tagged calls before
    recovered ones, the configured format on a tie."""
    working = [f for f in formats if f.works]
    if not working:
        return None
    best = min(
        working,
        key=lambda f: (
            not f.answered,
            f.call != "tagged",
            f.function_calling != model.function_calling,
        ),
    )
    needs_recovery = best.call == "recovered"
    return Recommendation(
        function_calling=best.function_calling,
        recover_tool_calls=needs_recovery or model.recover_tool_calls,
    )


def _no_calls(formats: list[FormatResult]) -> str:
    if any(f.call != "none" and f.right_arguments for f in formats):
        return (
            "the model calls the tool but gives no answer after its result "
            "(see the table); tasks fail with the loop guard (model.on_tool_loop: fail) "
            "or no answer"
        )
    if any(f.call != "none" for f in formats):
        return "the model calls the tool with wrong arguments in every format"
    return (
        "the model never called the probe tool, in either format: it answered in text; "
        "try a larger or tool-trained model"
    )


# -- text -------------------------------------------------------------------------


def render_text(report: CheckReport) -> list[str]:
    """The table a person reads, then the verdict."""
    rows: list[tuple[str, str, str]] = [("check", "result", "detail")]
    rows.append(_endpoint_row(report))
    if report.listing.reachable:
        rows.append(_listed_row(report))
    if report.prompt is not None:
        rows.append(_prompt_row(report.prompt))
    rows.extend(_format_row(f) for f in report.formats)
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"model {report.model!r} at {report.model_server}"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    if report.recommended is not None:
        lines.append("recommended model_config.yaml:")
        lines.append("  model:")
        lines.append(f"    function_calling: {report.recommended.function_calling}")
        lines.append(
            f"    recover_tool_calls: {str(report.recommended.recover_tool_calls).lower()}"
        )
    return lines


def _endpoint_row(report: CheckReport) -> tuple[str, str, str]:
    listing = report.listing
    if not listing.reachable:
        return ("endpoint", "FAIL", listing.error or "unreachable")
    took = f" in {_ms(listing.seconds)}" if listing.seconds is not None else ""
    return ("endpoint", "ok", f"reachable{took}")


def _listed_row(report: CheckReport) -> tuple[str, str, str]:
    listing = report.listing
    if listing.listed is None:
        return ("listed", "?", "neither /v1/models nor /api/tags could be read")
    if listing.listed:
        return ("listed", "ok", f"{report.model!r} in {listing.source}")
    shown = ", ".join(listing.models[:5]) + (" ..." if len(listing.models) > 5 else "")
    return ("listed", "warn", f"{report.model!r} not in {listing.source} ({shown})")


def _prompt_row(prompt: PromptResult) -> tuple[str, str, str]:
    if not prompt.ok:
        return ("prompt", "FAIL", prompt.error or "no answer")
    detail = f"answered in {_ms(prompt.seconds)}"
    if prompt.completion_tokens is not None:
        tokens = prompt.completion_tokens
        detail += f", {tokens} token{'' if tokens == 1 else 's'}"
    if prompt.tokens_per_second is not None:
        detail += f", {prompt.tokens_per_second:.1f} tokens/s"
    return ("prompt", "ok", detail)


def _format_row(result: FormatResult) -> tuple[str, str, str]:
    name = f"tools ({result.function_calling})"
    took = f"{result.turns} turn{'s' if result.turns != 1 else ''}, {_ms(result.seconds)}"
    call = f"get_weather({_args(result.arguments)})"
    how = "tagged" if result.call == "tagged" else "recovered from text"
    if result.works and result.answered:
        return (name, "ok", f"{call} {how}, then answered; {took}")
    if result.works:
        return (
            name,
            "partial",
            f"{call} {how}, then repeated it: the loop guard answered with the result; {took}",
        )
    if result.call == "none":
        why = _first_line(result.error) or (
            f"no tool call; the model wrote: {result.wrote!r}" if result.wrote else "no tool call"
        )
        return (name, "FAIL", f"{why}; {took}")
    if not result.right_arguments:
        return (name, "FAIL", f"{call}: wrong arguments; {took}")
    if result.loop_stopped:
        return (name, "FAIL", f"{call} repeated until the loop guard stopped it; {took}")
    return (name, "FAIL", f"{call}, then {_first_line(result.error) or 'no answer'}; {took}")


def _first_line(text: str | None, width: int = 160) -> str | None:
    """Long errors (a server's validation report) stay whole in --json only."""
    if not text:
        return text
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= width else line[: width - 3] + "..."


def _args(arguments: Any) -> str:
    if isinstance(arguments, dict):
        return ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return "" if arguments is None else repr(arguments)


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
