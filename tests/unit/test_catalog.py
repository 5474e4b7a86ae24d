"""The job catalog is the single source of truth: routes, docs and implementations follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketq.common.catalog import CATALOG, Catalog, JobSpec, Schedule, UnknownJobError
from marketq.common.params import HealthCheckParams
from marketq.common.pipelines import PIPELINES
from marketq.common.queues import Queue
from marketq.common.reference_docs import extract, render_jobs_table
from marketq.common.routing import task_routes
from marketq.worker.registry import CatalogMismatchError, check_against_catalog, implementations

# Expectations derive from the catalog itself: adding a job touches the catalog, one
# implementation (and a migration if it stores data), never a copy of the job list here.


def test_a_schedule_is_a_five_field_cron() -> None:
    # Jobs that run after another job are a pipeline (marketq.common.pipelines), not a
    # schedule of their own.
    for job in CATALOG.scheduled():
        assert job.schedule is not None and len(job.schedule.cron.split()) == 5


def test_trading_days_only_is_set_on_jobs_outside_market_hours() -> None:
    # A market-hours job is gated by the session already.
    for job in CATALOG.values():
        if job.schedule is not None and job.schedule.trading_days_only:
            assert not job.market_hours_only, job.name


def test_trading_day_jobs_are_marked_as_such() -> None:
    on_trading_days = {
        j.name for j in CATALOG.values() if j.schedule and j.schedule.trading_days_only
    }
    assert on_trading_days == {"portfolio_snapshot"}
    end_of_day = PIPELINES["end_of_day"].schedule
    assert end_of_day is not None and end_of_day.cron == "30 17 * * *"
    assert end_of_day.trading_days_only


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
    with pytest.raises(ValueError, match="five fields"):
        Schedule(cron="* * * *")
    every_minute = Schedule(cron="* * * * *")
    named_a = Schedule(cron="0 * * * *", name="a")  # the job's own entry's name
    extra = (named_a,)
    job = JobSpec(
        "a", Queue.DEFAULT, HealthCheckParams, "a", schedule=every_minute, extra_schedules=extra
    )
    with pytest.raises(ValueError, match="duplicate schedule entry"):
        Catalog((job,))


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
