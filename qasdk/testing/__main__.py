"""``python -m qasdk.testing``: run the scripted model server in the foreground.

Without ``--script`` it answers every request with :func:`policies.auto
<qasdk.testing.policies.auto>`, enough to click through a demo with no model.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from qasdk.testing import policies
from qasdk.testing.model import ScriptedModel
from qasdk.testing.reply import Reply, from_data

__all__ = ["load_script", "main"]


def load_script(path: Path) -> list[Reply]:
    """Replies from a YAML or JSON file holding a list (see :func:`reply.from_data`).

    Raises:
        ValueError: The file is not a list of replies.
    """
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of replies, got {type(data).__name__}")
    replies: list[Reply] = []
    for index, entry in enumerate(data):
        try:
            replies.append(from_data(entry))
        except ValueError as exc:
            raise ValueError(f"{path}: reply #{index + 1}: {exc}") from exc
    return replies


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m qasdk.testing",
        description="A scripted, deterministic OpenAI-compatible model server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=11434, help="port (Ollama's)")
    parser.add_argument(
        "--script", type=Path, help="YAML/JSON list of replies (default: the auto policy)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each reply")
    parser.add_argument(
        "--model-name",
        action="append",
        dest="model_names",
        help="a model to list in /v1/models (repeatable; default qwen3:4b)",
    )
    args = parser.parse_args(argv)
    if args.latency < 0:
        parser.error("--latency must be >= 0")
    try:
        script = load_script(args.script) if args.script else []
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    model = ScriptedModel(
        script,
        rule=None if args.script else policies.auto,
        latency=args.latency,
        host=args.host,
        port=args.port,
        model_names=args.model_names or ("qwen3:4b",),
    )
    try:
        model.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    mode = f"{len(script)} scripted replies" if args.script else "the auto policy"
    print(f"Scripted model at {model.url} (OpenAI base {model.base_url}), {mode}", flush=True)
    _exit_on_signals()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        model.stop()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _exit_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop cleanly, even if the parent ignored SIGINT.

    (Shells start background jobs with SIGINT ignored, and Python then never
    raises KeyboardInterrupt.)
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)


if __name__ == "__main__":
    sys.exit(main())
