"""The /metrics listener: Prometheus text on a port of its own, for API and worker processes.

Metrics are operator data about every tenant at once, so they are never on the API's
public port (where any tenant's token, an admin's included, would reach them). The
listener binds loopback by default; bound anywhere else it requires a bearer token
(LEDGER_METRICS_TOKEN; Prometheus sends it with `authorization: {credentials: …}`), compared
in constant time. `/healthz` answers without the token, for liveness probes. Runs in a
thread, off the event loop, as prometheus_client's own server does.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MetricsExposureError(ValueError):
    """The listener would serve metrics beyond loopback without a token."""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not log lines."""


def _plain(start_response: StartResponse, status: str, text: str, *extra: tuple[str, str]) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *extra])
    return [text.encode()]


def guarded_metrics_app(registry: CollectorRegistry, token: str) -> WsgiApp:
    """The WSGI app: /healthz open, /metrics behind the token (when one is set), else 404."""
    metrics = make_wsgi_app(registry)
    expected = f"Bearer {token}".encode()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _plain(start_response, "200 OK", "ok\n")
        if path != "/metrics":
            return _plain(start_response, "404 Not Found", "not found\n")
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if token and not hmac.compare_digest(given, expected):
            challenge = ("WWW-Authenticate", 'Bearer realm="metrics"')
            return _plain(start_response, "401 Unauthorized", "a bearer token is required\n", challenge)
        body: Iterable[bytes] = metrics(environ, start_response)
        return body

    return app


@dataclass
class MetricsListener:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, port: int, host: str, token: str) -> MetricsListener:
    """Serve `registry` on host:port in a thread.

    Raises:
        MetricsExposureError: `host` is not loopback and no token is set.
    """
    if host not in LOOPBACK_HOSTS and not token:
        raise MetricsExposureError(
            f"/metrics on {host} would be open to the network: set LEDGER_METRICS_TOKEN "
            "(Prometheus sends it as a bearer token) or keep LEDGER_METRICS_HOST on loopback"
        )
    server = make_server(
        host, port, guarded_metrics_app(registry, token), ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsListener(server, thread)
