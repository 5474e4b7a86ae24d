"""A JobContext built the way ``marketq.worker.task`` builds one, for in-process job tests."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Engine

from marketq.common.db.engine import session_factory
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers.base import MarketDataProvider
from marketq.providers.routing import RoutedProvider
from marketq.providers.validation import RecordValidator
from marketq.worker.context import JobContext


class _PinnedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def job_context(
    engine: Engine,
    *,
    as_of: datetime,
    provider: MarketDataProvider,
    calendar: MarketCalendar,
    settings: Settings,
    now: datetime | None = None,
    job: str = "under_test",
) -> JobContext:
    """A context whose run time is ``as_of`` and whose wall clock reads ``now`` (default:
    ``as_of``), so a simulated day's runs see the time they would see in production.

    A bare provider is routed and validated as the worker does it, against that clock."""
    clock = _PinnedClock(now or as_of)
    if not isinstance(provider, RoutedProvider):
        provider = RoutedProvider.over(provider, RecordValidator(calendar.is_trading_day, clock))
    context = JobContext(
        run_id=f"run-{job}-{as_of.isoformat()}",
        job=job,
        queue="daily",
        worker="tests@localhost",
        as_of=as_of,
        settings=settings,
        provider=provider,
        calendar=calendar,
        sessions=session_factory(engine),
        log=logging.LoggerAdapter(logging.getLogger("tests.jobs"), {}),
        _progress_sink=lambda current, total: None,
    )
    # JobContext.now is a staticmethod over the wall clock; an instance attribute wins.
    object.__setattr__(context, "now", clock)
    return context
