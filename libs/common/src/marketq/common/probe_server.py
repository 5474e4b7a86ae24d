"""The small HTTP endpoint of the worker and beat processes: ``/metrics`` for Prometheus
and the kubelet's probes. It runs in a daemon thread of the process it describes, so it
answers from that process's own state and never waits on Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["PLAIN_TEXT", "Answer", "Route", "metrics_route", "serve"]

PLAIN_TEXT = "text/plain; charset=utf-8"

Answer = tuple[int, bytes, str]  # status, body, content type
Route = Callable[[], Answer]


def metrics_route(
    registries: Sequence[CollectorRegistry], before: Callable[[], None] | None = None
) -> Route:
    """``/metrics``: the exposition of each registry in turn; ``before`` runs first on
    every scrape."""

    def answer() -> Answer:
        if before is not None:
            before()
        return 200, b"".join(generate_latest(r) for r in registries), CONTENT_TYPE_LATEST

    return answer


class _Handler(BaseHTTPRequestHandler):
    routes: Mapping[str, Route] = {}

    def do_GET(self) -> None:
        route = self.routes.get(self.path.split("?", 1)[0])
        status, body, content_type = (
            route() if route is not None else (404, b"not found\n", PLAIN_TEXT)
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # probes every few seconds; nothing worth a log line


def serve(host: str, port: int, routes: Mapping[str, Route], *, name: str) -> ThreadingHTTPServer:
    """Serve ``routes`` (path -> answer) in a daemon thread named ``name``; returns the
    server (its ``server_address`` holds the port when 0 was asked for)."""
    handler = type(f"{name}-handler", (_Handler,), {"routes": dict(routes)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
