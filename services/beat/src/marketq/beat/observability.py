"""Beat's metrics and its HTTP endpoint: ``/metrics`` for Prometheus, ``/livez`` for the
kubelet. Liveness is the age of the scheduler loop (the lock holder's tick, or the
standby's lock poll) — no broker round trip, so a Redis outage never restarts beat.
"""

from __future__ import annotations

import time
from http.server import ThreadingHTTPServer

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge

from marketq.common import probe_server
from marketq.common.probe_server import PLAIN_TEXT, Answer, Route, metrics_route

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
    "Schedule entries by state (enabled, disabled).",
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
    "window), duplicate (another beat had claimed it), calendar_out_of_range (the "
    "exchange calendar ends before the fire).",
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


def _livez(liveness_seconds: float) -> Route:
    def answer() -> Answer:
        age = loop_age()
        ok = age <= liveness_seconds
        body = f"{'ok' if ok else 'stalled'}: scheduler loop ran {age:.1f} s ago\n"
        return (200 if ok else 503), body.encode(), PLAIN_TEXT

    return answer


def serve(host: str, port: int, liveness_seconds: float) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread; returns the server (its port if 0 given).

    ``/metrics`` is beat's own registry, then the process-wide one: the shared publish
    counters (marketq.common.metrics) and process_* / python_* metrics."""
    routes = {
        "/metrics": metrics_route([REGISTRY, PROCESS_REGISTRY]),
        "/livez": _livez(liveness_seconds),
    }
    return probe_server.serve(host, port, routes, name="beat-http")
