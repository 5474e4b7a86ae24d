"""Beat's metrics and its HTTP endpoint: ``/metrics`` for Prometheus, ``/livez`` for the
kubelet. Liveness is the age of the scheduler loop (the lock holder's tick, or the
standby's lock poll) — no broker round trip, so a Redis outage never restarts beat.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

LAST_TICK = Gauge(
    "marketq_beat_last_tick_timestamp_seconds",
    "When the scheduler last ran its loop while holding the lock (Unix time).",
    registry=REGISTRY,
)
LAST_LOOP = Gauge(
    "marketq_beat_last_loop_timestamp_seconds",
    "When the scheduler loop last ran, holding the lock or waiting for it (Unix time).",
    registry=REGISTRY,
)
LOCK_HELD = Gauge(
    "marketq_beat_lock_held",
    "1 while this process holds the scheduler lock (the active beat), else 0.",
    registry=REGISTRY,
)
ENTRIES = Gauge(
    "marketq_beat_entries",
    "Schedule entries by state (enabled, disabled, chained: runs after another job).",
    ["state"],
    registry=REGISTRY,
)
FIRES = Counter(
    "marketq_beat_fires_total",
    "Runs published by the scheduler.",
    ["job_name", "entry"],
    registry=REGISTRY,
)
SKIPPED = Counter(
    "marketq_beat_skipped_total",
    "Fires not published: market_closed, not_trading_day, missed (past the catch-up "
    "window), duplicate (another beat had claimed it).",
    ["job_name", "entry", "reason"],
    registry=REGISTRY,
)
PUBLISH_ERRORS = Counter(
    "marketq_beat_publish_errors_total",
    "Fires whose publish to the broker failed.",
    ["job_name", "entry"],
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "marketq_beat_redis_errors_total",
    "Scheduler loops cut short because Redis did not answer.",
    registry=REGISTRY,
)
LAST_FIRE = Gauge(
    "marketq_beat_last_fire_timestamp_seconds",
    "Scheduled instant of the last published fire per entry (Unix time).",
    ["job_name", "entry"],
    registry=REGISTRY,
)

_loop_at = time.time()


def mark_loop(now: float | None = None) -> None:
    global _loop_at
    _loop_at = time.time() if now is None else now
    LAST_LOOP.set(_loop_at)


def loop_age() -> float:
    return time.time() - _loop_at


class _Handler(BaseHTTPRequestHandler):
    liveness_seconds = 60.0

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            # Beat's own metrics, then the process-wide registry: the shared publish
            # counters (marketq.common.metrics) and process_* / python_* metrics.
            exposition = generate_latest(REGISTRY) + generate_latest(PROCESS_REGISTRY)
            self._send(200, exposition, CONTENT_TYPE_LATEST)
        elif path == "/livez":
            age = loop_age()
            ok = age <= self.liveness_seconds
            body = f"{'ok' if ok else 'stalled'}: scheduler loop ran {age:.1f} s ago\n"
            self._send(200 if ok else 503, body.encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # probes every few seconds; nothing worth a log line


def serve(host: str, port: int, liveness_seconds: float) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread; returns the server (its port if 0 given)."""
    handler = type("BeatHandler", (_Handler,), {"liveness_seconds": liveness_seconds})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="beat-http", daemon=True).start()
    return server
