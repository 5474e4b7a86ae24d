"""``GET /metrics``: Prometheus exposition of the API process and of the queues.

Request metrics are recorded by ``RequestMetricsMiddleware`` with the route *template*
(``/api/v1/runs/{run_id}``), never the raw path, so their cardinality is bounded by the
routes the app declares; requests that match no route share ``route="unmatched"``.

Queue gauges are read at scrape time with the same single Redis read as
``GET /api/v1/queues``. Every API replica reports them: aggregate with ``max by (queue)``.

With ``uvicorn --workers N`` (N > 1) each process counts its own requests; set
``PROMETHEUS_MULTIPROC_DIR`` to aggregate them (prometheus-client's multiprocess mode),
or run one process per pod (the chart's default).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketq.api.freshness import FreshnessCache, FreshnessCollector
from marketq.api.queue_stats import QueueSnapshot, read_queue_stats
from marketq.api.routes.market import market_calendar
from marketq.api.state import ApiState, State
from marketq.common.metrics import init_publish_series
from marketq.common.queues import ALL_QUEUES
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.schedules import ScheduleEntry
from marketq.common.settings import Settings

log = logging.getLogger("marketq.api")

router = APIRouter(tags=["health"])

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The API's publish counters start at zero for every job (marketq.common.metrics).
init_publish_series("api")

REQUESTS = Counter(
    "marketq_api_requests",
    "HTTP requests answered by the API, by route template, method and status code.",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "marketq_api_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response, by route template.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class RequestMetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before responding

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            # The router stores the matched route in the (shared) scope.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope.get("method", "")
            method = method if method in METHODS else "OTHER"
            REQUESTS.labels(route, method, str(status)).inc()
            DURATION.labels(route, method).observe(time.perf_counter() - started)


class _QueueCollector(Collector):
    def __init__(self, snapshot: QueueSnapshot | None, settings: Settings) -> None:
        self._snapshot = snapshot
        self._settings = settings

    def collect(self) -> Iterable[Metric]:
        target = GaugeMetricFamily(
            "marketq_queue_target_age_seconds",
            "Target for the age of the queue's oldest waiting message "
            "(MARKETQ_QUEUES__<Q>__TARGET_AGE_SECONDS); alerts compare the age with it.",
            labels=["queue"],
        )
        for configured in ALL_QUEUES:
            target.add_metric(
                [configured.value],
                self._settings.queues.for_queue(configured).target_age_seconds,
            )
        yield target
        up = GaugeMetricFamily(
            "marketq_queue_stats_up",
            "1 when this scrape could read the queues from Redis, else 0.",
            value=0 if self._snapshot is None else 1,
        )
        yield up
        if self._snapshot is None:
            return
        length = GaugeMetricFamily(
            "marketq_queue_length",
            "Messages waiting in the queue, over every priority list.",
            labels=["queue"],
        )
        age = GaugeMetricFamily(
            "marketq_queue_oldest_age_seconds",
            "Seconds since the oldest waiting message was due (enqueue time or later ETA); "
            "0 when nothing waits.",
            labels=["queue"],
        )
        reserved = GaugeMetricFamily(
            "marketq_queue_reserved",
            "Messages of the queue taken by a worker and not yet acknowledged.",
            labels=["queue"],
        )
        for queue in self._snapshot.queues:
            length.add_metric([queue.name], queue.length)
            if queue.length == 0:
                age.add_metric([queue.name], 0.0)
            elif queue.oldest_age_seconds is not None:
                age.add_metric([queue.name], queue.oldest_age_seconds)
            if queue.reserved is not None:
                reserved.add_metric([queue.name], queue.reserved)
        yield length
        yield age
        yield reserved


def _process_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


@router.get(
    "/metrics",
    summary="Prometheus metrics (no authentication)",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"example": 'marketq_queue_length{queue="daily"} 3.0\n'}},
            "description": "Prometheus text exposition format.",
        }
    },
)
async def metrics(state: State) -> Response:
    """Request counts and latency by route template, process metrics, and per queue:
    ``marketq_queue_length``, ``marketq_queue_oldest_age_seconds``,
    ``marketq_queue_reserved`` (read from Redis at scrape time; if Redis cannot be read,
    ``marketq_queue_stats_up`` is 0 and the queue gauges are absent)."""
    snapshot: QueueSnapshot | None
    try:
        snapshot = await read_queue_stats(state.redis, state.settings.redis_key_prefix)
    except (RedisError, OSError) as exc:
        log.warning("metrics: cannot read queue stats: %s", exc)
        snapshot = None
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_QueueCollector(snapshot, state.settings))
    scraped.register(await _freshness(state))
    body = generate_latest(_process_registry()) + generate_latest(scraped)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


FRESHNESS_CACHE = "metrics.freshness"


async def _freshness(state: ApiState) -> FreshnessCollector:
    from marketq.api.routes.schedules import _entries  # the route's own effective schedule

    held = state.cache.get(FRESHNESS_CACHE)
    if held is None:
        held = (0.0, FreshnessCache(ttl_seconds=state.settings.metrics_freshness_cache_seconds))
        state.cache[FRESHNESS_CACHE] = held
    cache: FreshnessCache = held[1]
    calendar: MarketCalendar | None
    try:
        calendar = await market_calendar(state.settings)
    except Exception as exc:  # an unknown exchange code: no calendar gauges, still a scrape
        log.warning("metrics: no exchange calendar: %s", exc)
        calendar = None

    async def load_entries() -> list[ScheduleEntry] | None:
        if calendar is None:
            return None
        try:
            entries, _ = await _entries(state)
        except (RedisError, OSError) as exc:
            log.warning("metrics: cannot read schedule edits: %s", exc)
            return None
        return list(entries.values())

    tz = ZoneInfo(state.settings.timezone)
    snapshot = await cache.get(state.sessions, load_entries, calendar, tz)  # type: ignore[arg-type]
    return FreshnessCollector(snapshot, calendar, state.settings.exchange)
