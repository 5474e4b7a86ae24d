"""The API's scrape-time gauges: queue targets, freshness from the ledger and the data
tables, the schedule's last-due instants and the market's state.

Real uvicorn, Redis, a real worker writing the ledger and a data table (SQLite). Expected
values come from the database read directly, from MarketCalendar and from the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from marketq.common.catalog import CATALOG
from marketq.common.db.models import DailyBarRow
from marketq.common.scheduling.calendar import MarketCalendar
from tests.fixtures.api import start_api
from tests.fixtures.workers import Stack
from tests.integration.test_api_observe import sample, scrape, trigger

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")


def expected_cleanup_due(now: datetime) -> datetime:
    """cleanup runs at 03:15 exchange time every day (no calendar gate)."""
    local = now.astimezone(NY)
    today = local.replace(hour=3, minute=15, second=0, microsecond=0)
    return today if today <= local else (today - timedelta(days=1))


def expected_quotes_due(now: datetime, cal: MarketCalendar) -> datetime:
    """stock_quotes: every minute, only while the market is open."""
    if cal.is_open(now):
        return now.replace(second=0, microsecond=0)
    return cal.last_completed_session(now).close - timedelta(minutes=1)


def test_freshness_schedule_market_and_queue_targets(stack: Stack) -> None:
    stack.start_worker("default", concurrency=1)
    # Cache off so the scrape after the runs sees them (the cache itself: 15 s default).
    api = start_api(
        stack,
        {
            "MARKETQ_METRICS_FRESHNESS_CACHE_SECONDS": "0",
            "MARKETQ_QUEUES__DAILY__TARGET_AGE_SECONDS": "120",
        },
    )
    try:
        before = scrape(api.url)
        assert sample(before, "marketq_freshness_up") == 1
        assert not any(name == "marketq_job_last_success_timestamp_seconds" for name, _ in before)
        with api.client("trigger") as client:
            run_ids = [
                trigger(client, "health_check", {}),
                trigger(client, "data_import", CATALOG["data_import"].example),
            ]
        stack.wait_for_states(run_ids, {"SUCCESS"}, timeout=60)
        t0 = datetime.now(UTC)
        after = scrape(api.url)
        t1 = datetime.now(UTC)
    finally:
        api.stop()

    runs = stack.runs()
    with stack.sessions()() as session:
        newest_bar = session.scalar(select(func.max(DailyBarRow.updated_at)))
    assert newest_bar is not None
    if newest_bar.tzinfo is None:
        newest_bar = newest_bar.replace(tzinfo=UTC)

    assert sample(after, "marketq_freshness_up") == 1
    for run_id in run_ids:
        run = runs[run_id]
        assert run.finished_at is not None
        got = sample(
            after,
            "marketq_job_last_success_timestamp_seconds",
            job_name=run.job,
            queue=run.queue,
        )
        assert got == pytest.approx(run.finished_at.timestamp(), abs=1e-3)
    assert sample(
        after, "marketq_dataset_newest_timestamp_seconds", dataset="daily_bars"
    ) == pytest.approx(newest_bar.timestamp(), abs=1e-3)
    # Empty tables have no series (absent, not a misleading 0).
    assert ("marketq_dataset_newest_timestamp_seconds", (("dataset", "quotes"),)) not in after

    # The API's publishes are counted under source="api".
    for job in ("health_check", "data_import"):
        assert (
            sample(
                after, "marketq_tasks_published_total", queue="default", job_name=job, source="api"
            )
            - sample(
                before, "marketq_tasks_published_total", queue="default", job_name=job, source="api"
            )
            == 1
        )

    cal = MarketCalendar("XNYS")
    due = {
        labels: value
        for (name, labels), value in after.items()
        if name == "marketq_schedule_last_due_timestamp_seconds"
    }
    cleanup = due[(("entry", "cleanup"), ("job_name", "cleanup"))]
    assert cleanup in {expected_cleanup_due(t).timestamp() for t in (t0, t1)}
    quotes = due[(("entry", "stock_quotes"), ("job_name", "stock_quotes"))]
    assert quotes in {expected_quotes_due(t, cal).timestamp() for t in (t0, t1)}
    # A pipeline's step jobs have no entry of their own (the pipeline's entry starts them).
    assert not any(dict(labels)["entry"] == "technical_indicators" for labels in due)

    assert sample(after, "marketq_market_open", exchange="XNYS") in {
        float(cal.is_open(t)) for t in (t0, t1)
    }
    assert sample(after, "marketq_queue_target_age_seconds", queue="market_hours") == 30
    assert sample(after, "marketq_queue_target_age_seconds", queue="daily") == 120
    assert sample(after, "marketq_queue_target_age_seconds", queue="periodic") == 600
    assert sample(after, "marketq_queue_target_age_seconds", queue="default") == 300


def test_freshness_is_down_not_an_error_when_the_database_is_unreadable(stack: Stack) -> None:
    api = start_api(
        stack,
        {
            "MARKETQ_METRICS_FRESHNESS_CACHE_SECONDS": "0",
            "MARKETQ_DATABASE_URL": f"sqlite:///{stack.logdir.parent / 'missing' / 'no.db'}",
        },
    )
    try:
        samples = scrape(api.url)
    finally:
        api.stop()
    assert sample(samples, "marketq_freshness_up") == 0
    assert sample(samples, "marketq_queue_stats_up") == 1
    assert not any(name == "marketq_job_last_success_timestamp_seconds" for name, _ in samples)
