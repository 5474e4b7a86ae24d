"""The job catalog is the single source of truth, and it matches the product brief."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketq.common.catalog import CATALOG, Catalog, JobSpec, Schedule, UnknownJobError
from marketq.common.params import HealthCheckParams
from marketq.common.queues import Queue
from marketq.common.reference_docs import extract, render_jobs_table
from marketq.common.routing import task_routes
from marketq.worker.registry import CatalogMismatchError, check_against_catalog, implementations

# The job table of DESIGN.md: job -> (queue, cron or "after X", market hours only).
DESIGN_TABLE = {
    "stock_quotes": ("market_hours", "* * * * *", True),
    "options_chain": ("market_hours", "*/5 * * * *", True),
    "historical_prices": ("daily", "30 17 * * *", False),
    "fundamentals": ("daily", "0 18 * * *", False),
    "dividends": ("daily", "0 19 * * *", False),
    "earnings_transcripts": ("daily", "0 20 * * *", False),
    "economic_indicators": ("daily", "0 21 * * *", False),
    "portfolio_snapshot": ("daily", "30 16 * * *", False),
    "technical_indicators": ("daily", "after historical_prices", False),
    "trading_signals": ("daily", "after technical_indicators", False),
    "earnings": ("periodic", "0 */6 * * *", False),
    "earnings_calendar": ("periodic", "0 */12 * * *", False),
    "news": ("periodic", "*/30 * * * *", False),
    "economic_events": ("periodic", "0 */12 * * *", False),
    "company_info": ("periodic", "0 22 * * 0", False),
    "expire_signals": ("periodic", "5 * * * *", False),
    "cleanup": ("periodic", "15 3 * * *", False),
    "health_check": ("default", None, False),
    "data_import": ("default", None, False),
    "portfolio_report": ("default", None, False),
}


def test_catalog_holds_exactly_the_jobs_of_the_design_table() -> None:
    assert set(CATALOG) == set(DESIGN_TABLE)


@pytest.mark.parametrize("name", sorted(DESIGN_TABLE))
def test_each_job_has_the_queue_schedule_and_market_hours_flag_of_the_design(name: str) -> None:
    queue, schedule, market_hours_only = DESIGN_TABLE[name]
    job = CATALOG[name]
    assert job.queue.value == queue
    assert job.market_hours_only is market_hours_only
    if schedule is None:
        assert job.schedule is None
    elif schedule.startswith("after "):
        assert job.schedule is not None and job.schedule.after == schedule.removeprefix("after ")
    else:
        assert job.schedule is not None and job.schedule.cron == schedule


def test_trading_day_jobs_are_marked_as_such() -> None:
    on_trading_days = {
        j.name for j in CATALOG.values() if j.schedule and j.schedule.trading_days_only
    }
    assert on_trading_days == {"historical_prices", "portfolio_snapshot"}


@pytest.mark.parametrize("job", list(CATALOG.values()), ids=lambda j: j.name)
def test_every_example_is_valid_for_its_params_model(job: JobSpec) -> None:
    job.params.model_validate(dict(job.example))


@pytest.mark.parametrize("job", list(CATALOG.values()), ids=lambda j: j.name)
def test_limits_and_retries_are_sane(job: JobSpec) -> None:
    assert 0 < job.soft_time_limit < job.time_limit
    assert job.retry.max_retries >= 0
    assert job.retry.backoff_seconds <= job.retry.backoff_max_seconds
    if job.market_hours_only and job.schedule and job.schedule.cron == "* * * * *":
        # A per-minute job must finish before the next one fires.
        assert job.time_limit < 60
        assert job.expires_seconds is not None and job.expires_seconds <= 180


def test_routes_come_from_the_catalog_only() -> None:
    routes = task_routes()
    assert set(routes) == set(CATALOG)
    for name, route in routes.items():
        assert route["queue"] == CATALOG[name].queue.value
    assert {r["queue"] for r in routes.values()} == {q.value for q in Queue}


def test_unknown_job_error_lists_the_known_jobs() -> None:
    with pytest.raises(UnknownJobError, match=r"unknown job .stock_quote.*stock_quotes"):
        CATALOG["stock_quote"]


def test_catalog_rejects_inconsistent_declarations() -> None:
    with pytest.raises(ValueError, match="soft_time_limit"):
        JobSpec("x", Queue.DEFAULT, HealthCheckParams, "x", soft_time_limit=10, time_limit=10)
    with pytest.raises(ValueError, match="market_hours queue"):
        JobSpec("x", Queue.DAILY, HealthCheckParams, "x", market_hours_only=True)
    with pytest.raises(ValueError, match="either a cron"):
        Schedule(cron="* * * * *", after="x")
    with pytest.raises(ValueError, match="five fields"):
        Schedule(cron="* * * *")
    with pytest.raises(ValueError, match="unknown job"):
        Catalog(
            (
                JobSpec(
                    "a", Queue.DEFAULT, HealthCheckParams, "a", schedule=Schedule(after="missing")
                ),
            )
        )


def test_every_catalog_job_has_an_implementation_and_every_implementation_a_job() -> None:
    check_against_catalog()
    assert set(implementations()) == set(CATALOG)


def test_the_check_names_what_is_missing_on_either_side() -> None:
    extra = JobSpec("not_implemented", Queue.DEFAULT, HealthCheckParams, "x")
    only_some = Catalog((CATALOG["health_check"], extra))
    with pytest.raises(CatalogMismatchError) as error:
        check_against_catalog(only_some)
    message = str(error.value)
    assert "without an implementation: not_implemented" in message
    assert "not in the catalog: " in message and "stock_quotes" in message


def test_jobs_doc_is_generated_from_the_catalog() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "jobs.md").read_text("utf-8")
    assert extract(text, "jobs-table") == render_jobs_table(), "docs/jobs.md is stale: make docs"
    for name in CATALOG:
        assert f"`{name}`" in text
