"""A ``qasdk worker``'s own ``/metrics`` port (``--metrics-port``, ``worker.metrics_port``).

A worker has no API, so without this its tool, model and task counters would
never be scraped. ``prometheus_client``'s exposition server runs in a daemon
thread (a scrape never waits on the event loop) and serves this process's
registry; it binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import errno
import os
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from qasdk.errors import StartupError
from qasdk_server.metrics import Metrics

__all__ = ["MetricsPort"]


class MetricsPort:
    """The running exposition server; :meth:`close` stops it."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        try:
            server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            hint = "; choose another --metrics-port" if exc.errno == errno.EADDRINUSE else ""
            raise StartupError(
                f"cannot serve worker metrics on {host}:{port}: {reason}{hint}"
            ) from None
        self._server: WSGIServer = server
        self.host = host
        self.port: int = server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
