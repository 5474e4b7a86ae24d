"""Every catalog job runs to SUCCESS on the worker of its own queue, and writes its data.

Four real `marketq-worker --queue <name>` processes (as the containers run them) consume
one queue each from a real redis-server; the test publishes every catalog job through
the one publish path and follows the runs in the ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from marketq.common.catalog import CATALOG
from marketq.common.db import models
from marketq.common.publish import publish
from marketq.common.queues import Queue
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

# The table each job writes (jobs without one are checked through their result).
WRITES = {
    "stock_quotes": models.QuoteRow,
    "options_chain": models.OptionQuoteRow,
    "historical_prices": models.DailyBarRow,
    "technical_indicators": models.TechnicalIndicatorRow,
    "fundamentals": models.FundamentalsRow,
    "dividends": models.DividendRow,
    "earnings_transcripts": models.EarningsTranscriptRow,
    "economic_indicators": models.EconomicIndicatorRow,
    "earnings": models.EarningsRow,
    "earnings_calendar": models.EarningsCalendarRow,
    "news": models.NewsArticleRow,
    "economic_events": models.EconomicEventRow,
    "company_info": models.CompanyInfo,
    "portfolio_snapshot": models.PortfolioSnapshot,
    "portfolio_report": models.PortfolioReport,
    "data_import": models.DataImport,
}


def seed_portfolio(stack: Stack) -> int:
    now = datetime.now(UTC)
    with stack.sessions().begin() as session:
        portfolio = models.Portfolio(name="integration", created_at=now, updated_at=now)
        session.add(portfolio)
        session.flush()
        for symbol, quantity, cost in (("AAPL", 10, 1500.0), ("MSFT", 5, 1800.0)):
            session.add(
                models.Position(
                    portfolio_id=portfolio.id,
                    symbol=symbol,
                    quantity=quantity,
                    cost_basis=cost,
                    updated_at=now,
                )
            )
        return portfolio.id


def test_every_job_runs_on_the_worker_of_its_catalog_queue(stack: Stack) -> None:
    portfolio_id = seed_portfolio(stack)
    workers = stack.start_queue_workers("itest")
    app = stack.producer()

    runs = {}
    for job in CATALOG.values():
        params = dict(job.example)
        if job.name == "portfolio_report":
            params["portfolio_id"] = portfolio_id
        if job.name == "news":
            # The example's 24 hours can fall on a weekend, when the synthetic feed has
            # about one article a day and none at all ~30% of the time; a week always
            # holds trading-day hours, so the table check cannot depend on the weekday.
            params["lookback_hours"] = 168
        runs[job.name] = publish(app, job.name, params).run_id

    finished = stack.wait_for_states(list(runs.values()), {"SUCCESS", "FAILURE"}, timeout=120)

    for name, run_id in runs.items():
        run = finished[run_id]
        job = CATALOG[name]
        assert run.state == "SUCCESS", f"{name}: {run.error}"
        assert run.worker == workers[job.queue.value].hostname, f"{name} ran on {run.worker}"
        assert run.queue == job.queue.value
        assert run.attempts == 1
        assert run.enqueued_at is not None and run.started_at is not None
        assert run.enqueued_at <= run.started_at <= run.finished_at

    with stack.sessions()() as session:
        for name, model in WRITES.items():
            count = session.scalar(select(func.count()).select_from(model))
            assert count, f"{name} wrote no {model.__tablename__} rows"

    # start_pipeline's example starts an end_of_day run (and research_daily after it):
    # its steps are runs too, so let every pipeline run end before looking at the queues.
    def pipelines_ended() -> bool:
        with stack.sessions()() as session:
            states = set(session.scalars(select(models.PipelineRun.state)))
        return bool(states) and states <= {"SUCCESS", "FAILED", "REVOKED"}

    stack.wait_for(pipelines_ended, 300, "the example's pipeline runs to end")

    # Nothing is left behind in Redis once every run finished.
    client = stack.redis.client()
    for queue in Queue:
        assert client.llen(f"marketq:{queue.value}") == 0
    assert client.hlen("marketq:unacked") == 0


def test_health_check_reaches_the_worker_of_whichever_queue_it_is_sent_to(stack: Stack) -> None:
    workers = stack.start_queue_workers("probe")
    app = stack.producer()
    runs = {q: publish(app, "health_check", {}, queue=q).run_id for q in Queue}
    finished = stack.wait_for_states(list(runs.values()), {"SUCCESS", "FAILURE"}, timeout=60)
    for queue, run_id in runs.items():
        run = finished[run_id]
        assert run.state == "SUCCESS", run.error
        assert run.worker == workers[queue.value].hostname
        assert run.result["queue"] == queue.value
        assert run.result["database"] == "ok"


def test_progress_is_visible_in_the_result_store_and_the_ledger(stack: Stack) -> None:
    stack.start_worker("daily", name="daily@progress")
    app = stack.producer()
    symbols = [f"P{i:03d}" for i in range(40)]
    run = publish(app, "historical_prices", {"symbols": symbols, "lookback_days": 5})
    finished = stack.wait_for_states([run.run_id], {"SUCCESS", "FAILURE"}, timeout=60)
    row = finished[run.run_id]
    assert row.state == "SUCCESS", row.error
    assert (row.progress_current, row.progress_total) == (40, 40)
    assert app.AsyncResult(run.run_id).state == "SUCCESS"


def test_a_failing_job_is_recorded_with_the_reason_and_not_retried(stack: Stack) -> None:
    stack.start_worker("default", name="default@fail")
    app = stack.producer()
    bad_csv = "symbol,date,open,high,low,close,volume\nAAPL,2026-11-20,10,9,8,9.5,100\n"
    run = publish(app, "data_import", {"dataset": "daily_bars", "content": bad_csv})
    finished = stack.wait_for_states([run.run_id], {"SUCCESS", "FAILURE"}, timeout=60)
    row = finished[run.run_id]
    assert row.state == "FAILURE"
    assert row.attempts == 1
    assert "row 2" in row.error and "high" in row.error
    with stack.sessions()() as session:
        assert session.scalar(select(func.count()).select_from(models.DailyBarRow)) == 0
        assert session.scalar(select(func.count()).select_from(models.DataImport)) == 0


def test_revoked_runs_are_recorded_whether_waiting_or_running(stack: Stack) -> None:
    stack.start_worker("default", name="default@revoke")
    app = stack.producer()
    waiting = publish(app, "health_check", {}, countdown=8)
    running = publish(app, "health_check", {"sleep_seconds": 60})
    client = stack.redis.client()
    # A countdown run waits in Redis, not in the worker (marketq.worker.delayed).
    stack.wait_for(lambda: client.zcard("marketq:delayed") == 1, 30, "the run to wait for its ETA")
    stack.wait_for_states([running.run_id], {"STARTED"}, timeout=30)

    app.control.revoke(waiting.run_id)
    app.control.revoke(running.run_id, terminate=True, signal="SIGKILL")

    finished = stack.wait_for_states(
        [waiting.run_id, running.run_id], {"REVOKED", "SUCCESS", "FAILURE"}, timeout=40
    )
    assert finished[running.run_id].state == "REVOKED"
    assert "terminated" in finished[running.run_id].error
    assert finished[waiting.run_id].state == "REVOKED"
    assert finished[waiting.run_id].started_at is None  # it never ran
