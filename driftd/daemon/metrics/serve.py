"""The metrics port: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for probes.

``/readyz`` answers 200 only once the daemon has restored what it was assigned (a Kubernetes
readiness probe keeps it out of a rollout until then) and ``/healthz`` 200 while its loop
turns (a liveness probe restarts a stuck one); both answer 503 otherwise, with the reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

Probe = Callable[[], str | None]  # None: fine; else why not


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not worth a log line each."""


def serve(
    registry: CollectorRegistry, host: str, port: int, ready: Probe, alive: Probe
) -> tuple[WSGIServer, threading.Thread]:
    """Start serving in a daemon thread; return the server (``shutdown()`` stops it)."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/readyz", "/healthz"):
            why = (ready if path == "/readyz" else alive)()
            status = "200 OK" if why is None else "503 Service Unavailable"
            body = b"ok\n" if why is None else why.encode() + b"\n"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    httpd = make_server(host, port, app, _Server, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
    thread.start()
    return httpd, thread
