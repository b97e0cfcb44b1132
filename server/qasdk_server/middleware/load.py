"""``middleware:`` of ``model_config.yaml`` → a :class:`Chain`, or every problem at once.

A name is a built-in (:data:`BUILTINS`), an installed entry point of the
``qasdk.middleware`` group (how packages ship middleware), or a class by
dotted path (``package.module:Class`` or ``package.module.Class``) under the
module root or ``registry.allowed_packages``, the roots tools come from.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qasdk._documents import did_you_mean, load_document
from qasdk.config import Config, MiddlewareConfig
from qasdk.errors import ConfigurationError, QasdkError
from qasdk.models import Problem, Source
from qasdk.security.roots import roots_for
from qasdk.store.connection import Pool
from qasdk_server.metrics import Metrics
from qasdk_server.middleware.approval import Approval
from qasdk_server.middleware.base import Middleware
from qasdk_server.middleware.breaker import Breaker
from qasdk_server.middleware.cache import ResultCache
from qasdk_server.middleware.chain import Chain, Link
from qasdk_server.middleware.limits import Limits
from qasdk_server.middleware.log_calls import LogCalls
from qasdk_server.middleware.metrics import MetricsMiddleware
from qasdk_server.middleware.slow_calls import SlowCalls

__all__ = ["BUILTINS", "ENTRY_POINTS", "build_chain", "chain_for"]

#: The entry point group packages put their middleware classes in.
ENTRY_POINTS = "qasdk.middleware"


class Services:
    """What built-in middleware may use of the process it runs in."""

    def __init__(self, metrics: Metrics, pool: Pool | None) -> None:
        self.metrics = metrics
        self.pool = pool


def _metrics(services: Services, **options: Any) -> Middleware:
    if options:
        raise TypeError(f"takes no options, got {', '.join(sorted(options))}")
    return MetricsMiddleware(services.metrics)


def _cache(services: Services, **options: Any) -> Middleware:
    if options:
        raise TypeError(f"takes no options, got {', '.join(sorted(options))}")
    if services.pool is None:
        raise ValueError("needs the database, and this process has none")
    return ResultCache(services.pool)


def _limits(services: Services, **options: Any) -> Middleware:
    if services.pool is None:
        raise ValueError("needs the database, and this process has none")
    return Limits(services.pool, **options)


def _approval(services: Services, **options: Any) -> Middleware:
    if services.pool is None:
        raise ValueError("needs the database, and this process has none")
    return Approval(services.pool, **options)


def _breaker(services: Services, **options: Any) -> Middleware:
    if services.pool is None:
        raise ValueError("needs the database, and this process has none")
    return Breaker(services.pool, services.metrics, **options)


BUILTINS: dict[str, Callable[..., Middleware]] = {
    "approval": _approval,
    "breaker": _breaker,
    "cache": _cache,
    "limits": _limits,
    "logging": lambda services, **options: LogCalls(**options),
    "metrics": _metrics,
    "slow_calls": lambda services, **options: SlowCalls(**options),
}


class _Problems:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.found: list[Problem] = []
        self._document: Any = None

    def add(self, index: int, key: str, reason: str) -> None:
        keypath = ("middleware", index, key)
        self.found.append(
            Problem(source=self._source(keypath), field=f"middleware[{index}].{key}", reason=reason)
        )

    def _source(self, keypath: tuple[str | int, ...]) -> Source | None:
        if self.path is None:
            return None
        if self._document is None:
            try:
                self._document = load_document(self.path)
            except (QasdkError, OSError):
                return Source(self.path)
        source: Source = self._document.source(keypath)
        return source


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)}


def _by_path(
    dotted: str, root: Path, allowed_packages: tuple[str, ...]
) -> tuple[type[Middleware] | None, str | None]:
    module_path, sep, attribute = dotted.partition(":")
    if not sep:
        module_path, _, attribute = dotted.rpartition(".")
    if not module_path or not attribute:
        return None, f"{dotted!r} is not a built-in, an entry point or a package.module:Class path"
    refusal = roots_for(root, allowed_packages).refusal(module_path)
    if refusal is not None:
        return None, refusal.replace("tools run only code", "middleware runs only code")
    folder = str(root.resolve())
    if folder not in sys.path:
        sys.path.append(folder)
    try:
        module = importlib.import_module(module_path)
    except Exception as exc:
        return None, f"cannot import {module_path!r}: {type(exc).__name__}: {exc}"
    found = getattr(module, attribute, None)
    if found is None:
        return None, f"module {module_path!r} has no {attribute!r}"
    return found, None


def build_chain(
    configs: Sequence[MiddlewareConfig],
    *,
    metrics: Metrics,
    pool: Pool | None = None,
    root: str | Path = ".",
    allowed_packages: tuple[str, ...] = (),
    config_path: str | None = None,
) -> Chain:
    """The chain ``configs`` describe (disabled entries left out).

    Raises:
        ConfigurationError: with one problem (file, line, field) per bad entry.
    """
    problems = _Problems(config_path)
    links: list[Link] = []
    entry_points: dict[str, importlib.metadata.EntryPoint] | None = None
    for index, entry in enumerate(configs):
        if not entry.enabled:
            continue
        name = entry.name
        factory: Callable[..., Middleware] | None = None
        if name in BUILTINS:
            factory = functools.partial(BUILTINS[name], Services(metrics, pool))
        else:
            if entry_points is None:
                entry_points = _entry_points()
            found: Any = None
            if name in entry_points:
                try:
                    found = entry_points[name].load()
                except Exception as exc:
                    problems.add(index, "name", f"entry point {name!r} failed to load: {exc}")
                    continue
            elif ":" in name or "." in name:
                found, why = _by_path(name, Path(root), allowed_packages)
                if why is not None:
                    problems.add(index, "name", why)
                    continue
            else:
                known = [*BUILTINS, *entry_points]
                problems.add(
                    index,
                    "name",
                    f"unknown middleware {name!r}{did_you_mean(name, known)}; built-ins are "
                    f"{', '.join(BUILTINS)}, or give an entry point ({ENTRY_POINTS}) or a "
                    "package.module:Class path",
                )
                continue
            if not (inspect.isclass(found) and issubclass(found, Middleware)):
                problems.add(
                    index,
                    "name",
                    f"{name!r} is {type(found).__name__} {found!r}, not a subclass of "
                    "qasdk_server.middleware.Middleware",
                )
                continue
            factory = found
        options = dict(entry.options)
        if name == "approval":  # with tools/tags, every call it sees needs approval
            options["scoped"] = bool(entry.tools or entry.tags)
        try:
            middleware = factory(**options)
        except (TypeError, ValueError) as exc:
            problems.add(index, "options", f"{name!r} refused its options: {exc}")
            continue
        except Exception as exc:
            problems.add(index, "options", f"{name!r} failed to start: {type(exc).__name__}: {exc}")
            continue
        links.append(Link(middleware.name or name, middleware, entry.tools, entry.tags))
    if problems.found:
        raise ConfigurationError("the middleware chain is not valid", problems=problems.found)
    return Chain(links)


def chain_for(
    config: Config, metrics: Metrics, pool: Pool | None, root: str | Path | None = None
) -> Chain:
    """The chain of ``config.middleware``, user classes found under ``root`` (default: cwd)."""
    return build_chain(
        config.middleware,
        metrics=metrics,
        pool=pool,
        root=os.getcwd() if root is None else root,
        allowed_packages=config.registry.allowed_packages,
        config_path=config.path,
    )
