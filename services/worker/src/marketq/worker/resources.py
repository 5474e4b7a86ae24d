"""Per-process resources of the worker: created lazily, so each pool child makes its own."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import signals
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.engine import get_sessionmaker
from marketq.common.pipeline_metrics import record_finished
from marketq.common.pipeline_runs import PipelineEngine
from marketq.common.run_events import EventLog, broker_redis
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings, get_settings
from marketq.providers.quota import Quota, quota_from_settings
from marketq.providers.routing import ProviderRegistry


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def calendar() -> MarketCalendar:
    return MarketCalendar(settings().exchange)


@lru_cache(maxsize=1)
def providers() -> ProviderRegistry:
    """This process's adapters, shared by every run (connections, caches, price paths)."""
    return ProviderRegistry(settings(), quota())


def prepare_before_fork(**_: Any) -> None:
    """Build in the worker's main process, before the pool forks, what a pool child would
    otherwise build on its first run: the database engine (with PostgreSQL, psycopg's
    import alone is about 0.3 s of CPU in each of the first children) and the exchange
    calendar (in every child, recycled ones too). The children inherit both; the fork
    drops the engine's pooled connections (marketq.common.db.engine). Celery logs a
    failure here and goes on: the children then build their own, as before."""
    sessions()
    calendar()


def install() -> None:
    """Prepare from Celery's ``worker_init``: in the main process, before the pool starts."""
    signals.worker_init.connect(
        prepare_before_fork, weak=False, dispatch_uid="marketq.worker.resources.prepare"
    )


def sessions() -> sessionmaker[Session]:
    return get_sessionmaker(settings())


@lru_cache(maxsize=1)
def quota() -> Quota:
    """The shared vendor quota every adapter of this process draws from."""
    return quota_from_settings(settings())


@lru_cache(maxsize=1)
def events() -> EventLog:
    """This process's appender of run events (a pool child makes its own after the fork:
    redis-py's connection pool notices the new pid)."""
    return EventLog(broker_redis(settings()), settings())


@lru_cache(maxsize=1)
def pipelines() -> PipelineEngine:
    """The pipeline engine on this process's Celery app (the worker's)."""
    from celery import current_app

    return PipelineEngine(
        sessions(), current_app._get_current_object(), settings(), on_finished=record_finished
    )
