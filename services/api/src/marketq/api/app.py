"""The FastAPI application: ``create_served_app()`` for uvicorn (``--factory``),
``create_app()`` for the tests and the OpenAPI document."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from marketq.api.auth import KeyRing
from marketq.api.body_limit import BodyLimitMiddleware
from marketq.api.errors import ErrorResponse, install_error_handlers, require_json_body
from marketq.api.publisher import RunPublisher
from marketq.api.routes import (
    health,
    jobs,
    market,
    metrics,
    pipelines,
    providers,
    queues,
    runs,
    schedules,
    uploads,
    workers,
)
from marketq.api.state import ApiState
from marketq.common import tracing
from marketq.common.celery_app import create_celery_app
from marketq.common.db.engine import get_sessionmaker
from marketq.common.ledger import Ledger
from marketq.common.logs import configure_logging
from marketq.common.pipeline_metrics import record_finished
from marketq.common.pipeline_runs import PipelineEngine
from marketq.common.redis_client import async_redis_client
from marketq.common.scheduling.schedules import load_schedule_file
from marketq.common.settings import Settings, get_settings

DESCRIPTION = """
Trigger market-data jobs, follow them and cancel them; start, follow, cancel and retry
pipeline runs; read the catalog, queues, workers and schedules.

Authenticate with `Authorization: Bearer <api key>`. Scopes: `read` (GET), `trigger`
(start and cancel runs; implies read), `admin` (everything). Every error has the same
shape, `{"error": {"code", "message", "details": [{"field", "message"}]}}`; validation
errors name the field. When Redis is unavailable the answer is 503 with `Retry-After`
and nothing was accepted; a 202 means the run's message is in Redis.
"""


def _redis(settings: Settings) -> Redis:
    timeout = settings.api_redis_timeout_seconds
    url = settings.effective_broker_url
    # The broker's server, or for a sentinel:// URL its current master: the scripts, XADDs
    # and idempotency keys follow a failover.
    return async_redis_client(
        url,
        settings,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=10,
        retry_on_timeout=False,
        max_connections=256,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # An invalid schedule file stops the start, naming the entry and field.
    schedule_file = load_schedule_file(settings.schedule_file) if settings.schedule_file else {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = _redis(settings)
        celery = create_celery_app("marketq-api", settings=settings)
        sessions = get_sessionmaker(settings)
        app.state.marketq = ApiState(
            settings=settings,
            redis=redis,
            celery=celery,
            publisher=RunPublisher(celery, redis, settings),
            sessions=sessions,
            ledger=Ledger(sessions),
            keys=KeyRing(settings.api_keys),
            pipelines=PipelineEngine(sessions, celery, settings, on_finished=record_finished),
            schedule_file=schedule_file,
        )
        # Build the exchange calendar now, then move everything start-up made (pandas and
        # the calendar's tables among it) out of the collector's reach: full collections
        # walking those objects stalled one request in a hundred (p99 ~70 ms at a p90 of
        # 6 ms, docs/performance.md).
        await market.market_calendar(settings)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await redis.aclose()
            celery.close()

    app = FastAPI(
        title="marketq API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={500: {"model": ErrorResponse, "description": "Unexpected error."}},
    )
    install_error_handlers(app)
    app.add_middleware(metrics.RequestMetricsMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.api_max_body_bytes,
        routes={uploads.UPLOAD_PATH: settings.import_max_bytes},
    )
    for module in (
        health,
        jobs,
        runs,
        pipelines,
        uploads,
        queues,
        workers,
        schedules,
        market,
        providers,
        metrics,
    ):
        # Every body is JSON except an upload's, which is the file itself.
        json_only = [] if module is uploads else [Depends(require_json_body)]
        app.include_router(module.router, dependencies=json_only)
    return app


def create_served_app() -> FastAPI:
    """uvicorn's factory (``marketq-api``): the app plus this process's logging and tracing.

    Logging is set up here, once uvicorn has configured its own: its loggers then write
    through marketq's handler and format. Each uvicorn worker process calls this.
    """
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    if tracing.setup_tracing("marketq-api", {"marketq.component": "api"}):
        # Server spans per request, parents of the publish span; probes and scrapes are
        # left out (they would dwarf the traces that matter).
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="livez,readyz,metrics")
    return app
