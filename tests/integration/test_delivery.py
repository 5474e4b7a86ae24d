"""Delivery under failure: nothing accepted is lost, nothing runs twice where it must not.

Real redis-server, real `marketq-worker` processes running the real worker app with the
fault-injection module of tests/support/chaos_app.py (a sleep before every job, counters
of starts and completions in Redis). The time limits are capped at 5 s so the visibility
timeout the settings derive (2 x 5 + 2 = 12 s) lets a test wait for redelivery.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from marketq.common.celery_app import visibility_timeout
from marketq.common.db import models
from marketq.common.publish import prepare_run, publish, send_run
from marketq.common.queues import Queue
from marketq.common.settings import get_settings
from tests.fixtures.workers import CHAOS_APP, Stack, WorkerProcess
from tests.support.chaos_app import FINISHED, STARTED

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MINUTE0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
def fast(stack: Stack) -> Stack:
    """Short time limits, hence a short visibility timeout and a 1 s restore sweep."""
    caps = {f"MARKETQ_QUEUES__{q.value.upper()}__MAX_TIME_LIMIT_SECONDS": "5" for q in Queue}
    stack.set_env(
        **caps,
        MARKETQ_VISIBILITY_TIMEOUT_MARGIN_SECONDS="2",
        MARKETQ_UNACKED_RESTORE_INTERVAL_SECONDS="1",
    )
    assert visibility_timeout(get_settings()) == 12
    return stack


def counts(stack: Stack, key: str) -> dict[str, int]:
    raw = stack.redis.client().hgetall(key)
    return {k.decode(): int(v) for k, v in raw.items()}


def kill_worker(worker: WorkerProcess) -> None:
    """What a node failure does to a pod: every process of it dies at once."""
    children = worker.children()
    worker.signal(signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait_exit(10)


def quote_runs(stack: Stack, n: int) -> list[str]:
    """n stock_quotes runs with distinct natural keys (symbol, minute)."""
    app = stack.producer()
    return [
        publish(
            app,
            "stock_quotes",
            {"symbols": [f"K{i:03d}"], "as_of": (MINUTE0 + timedelta(minutes=i)).isoformat()},
        ).run_id
        for i in range(n)
    ]


def quote_keys(stack: Stack) -> list[tuple[str, int]]:
    with stack.sessions()() as session:
        rows = session.execute(
            select(models.QuoteRow.symbol, func.count()).group_by(models.QuoteRow.symbol)
        ).all()
    return [(symbol, count) for symbol, count in rows]


def test_sigkilled_worker_loses_none_of_50_jobs_in_flight(fast: Stack) -> None:
    env = {"CHAOS_PRERUN_SLEEP": "0.3"}
    doomed = fast.start_worker(
        "market_hours", name="doomed@x", app=CHAOS_APP, extra_env=env, wait_ready=False
    )
    survivor = fast.start_worker(
        "market_hours", name="survivor@x", app=CHAOS_APP, extra_env=env, wait_ready=False
    )
    doomed.wait_ready()
    survivor.wait_ready()
    runs = quote_runs(fast, 60)

    # Kill the worker while it holds work: running and prefetched messages.
    fast.wait_for(
        lambda: (
            sum(
                1
                for r in fast.runs().values()
                if r.worker == doomed.hostname and r.state in {"STARTED", "RECEIVED"}
            )
            >= 2
        ),
        timeout=30,
        what="the doomed worker to hold running jobs",
        interval=0.05,
    )
    kill_worker(doomed)
    client = fast.redis.client()
    assert client.hlen("marketq:unacked") >= 1, "the killed worker held no message"

    finished = fast.wait_for_states(runs, {"SUCCESS", "FAILURE"}, timeout=90)
    assert all(finished[r].state == "SUCCESS" for r in runs)
    keys = quote_keys(fast)
    assert len(keys) == 60 and all(count == 1 for _symbol, count in keys)
    assert client.hlen("marketq:unacked") == 0
    assert client.llen("marketq:market_hours") == 0
    # What the killed worker held came back through the survivor.
    redelivered = [r for r in runs if finished[r].attempts > 1]
    assert redelivered and all(finished[r].worker == survivor.hostname for r in redelivered)


def test_killed_pool_child_has_its_job_run_again(fast: Stack) -> None:
    fast.start_worker(
        "market_hours", name="oom@x", app=CHAOS_APP, extra_env={"CHAOS_PRERUN_SLEEP": "2"}
    )
    [run_id] = quote_runs(fast, 1)
    client = fast.redis.client()
    pid = fast.wait_for(lambda: client.get(f"chaos:pid:{run_id}"), 30, "the job to start")
    os.kill(int(pid), signal.SIGKILL)  # an OOM kill of the pool process

    # The ledger shows the retry (stock_quotes backs off 5 s before the next attempt).
    retrying = fast.wait_for_states([run_id], {"RETRY"}, timeout=30)
    assert "WorkerLostError" in retrying[run_id].error
    finished = fast.wait_for_states([run_id], {"SUCCESS", "FAILURE"}, timeout=60)
    assert finished[run_id].state == "SUCCESS"
    assert finished[run_id].attempts == 2
    assert counts(fast, STARTED)[run_id] == 2
    assert counts(fast, FINISHED)[run_id] == 1
    assert quote_keys(fast) == [("K000", 1)]


def test_job_that_always_kills_its_child_fails_after_max_retries(fast: Stack) -> None:
    fast.start_worker("default", name="loop@x", app=CHAOS_APP)
    app = fast.producer()
    result = app.send_task("chaos.kill_own_child", queue="default")
    fast.wait_for(lambda: result.state == "FAILURE", 60, "the run to end in FAILURE")
    assert result.result.__class__.__name__ == "WorkerLostError"
    starts = counts(fast, STARTED)[result.id]
    assert starts == 3  # the first attempt and max_retries=2 more
    time.sleep(3)  # and then it stays down: no further attempt
    assert counts(fast, STARTED)[result.id] == 3


def test_sigterm_on_busy_worker_loses_nothing_and_runs_nothing_twice(fast: Stack) -> None:
    env = {"CHAOS_PRERUN_SLEEP": "1", "MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS": "4"}
    leaving = fast.start_worker(
        "market_hours", name="leaving@x", app=CHAOS_APP, extra_env=env, wait_ready=False
    )
    staying = fast.start_worker(
        "market_hours", name="staying@x", app=CHAOS_APP, extra_env=env, wait_ready=False
    )
    leaving.wait_ready()
    staying.wait_ready()
    runs = quote_runs(fast, 20)
    fast.wait_for(
        lambda: any(
            r.worker == leaving.hostname and r.state == "STARTED" for r in fast.runs().values()
        ),
        timeout=30,
        what="the leaving worker to be busy",
        interval=0.05,
    )
    leaving.signal(signal.SIGTERM)  # what Kubernetes sends first
    assert leaving.wait_exit(20) == 0

    finished = fast.wait_for_states(runs, {"SUCCESS", "FAILURE"}, timeout=90)
    assert all(finished[r].state == "SUCCESS" for r in runs)
    assert counts(fast, STARTED) == {r: 1 for r in runs}
    assert counts(fast, FINISHED) == {r: 1 for r in runs}
    assert fast.redis.client().hlen("marketq:unacked") == 0


def test_connection_reset_mid_job_gives_one_full_execution(fast: Stack) -> None:
    worker = fast.start_worker(
        "market_hours", name="reset@x", app=CHAOS_APP, extra_env={"CHAOS_PRERUN_SLEEP": "3"}
    )
    [run_id] = quote_runs(fast, 1)
    client = fast.redis.client()
    fast.wait_for(lambda: client.get(f"chaos:pid:{run_id}"), 30, "the job to start")
    killed = client.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1

    fast.wait_for(
        lambda: counts(fast, FINISHED).get(run_id, 0) >= 1, 60, "the run to complete once"
    )
    time.sleep(2)  # nothing else may complete it again
    assert counts(fast, FINISHED)[run_id] == 1
    assert quote_keys(fast) == [("K000", 1)]

    # The worker reconnected and keeps consuming.
    later = publish(
        fast.producer(), "health_check", {"check_database": False}, queue="market_hours"
    )
    finished = fast.wait_for_states([later.run_id], {"SUCCESS"}, timeout=60)
    assert finished[later.run_id].worker == worker.hostname


DATA_TABLES = [
    models.QuoteRow,
    models.OptionQuoteRow,
    models.DailyBarRow,
    models.TechnicalIndicatorRow,
    models.FundamentalsRow,
    models.DividendRow,
    models.EarningsRow,
    models.EarningsCalendarRow,
    models.EarningsTranscriptRow,
    models.NewsArticleRow,
    models.EconomicIndicatorRow,
    models.EconomicEventRow,
    models.CompanyInfo,
    models.TradingSignal,
]


def snapshot(stack: Stack) -> dict[str, set[tuple[object, ...]]]:
    """Every data row without its surrogate id and write time."""
    tables = {}
    with stack.sessions()() as session:
        for model in DATA_TABLES:
            columns = [c for c in model.__table__.columns if c.name not in {"id", "updated_at"}]
            tables[model.__tablename__] = set(session.execute(select(*columns)).all())
    return tables


def test_every_message_delivered_twice_leaves_the_data_unchanged(stack: Stack) -> None:
    stack.start_queue_workers("dup")
    app = stack.producer()
    data_jobs = [
        "stock_quotes",
        "options_chain",
        "historical_prices",
        "technical_indicators",
        "fundamentals",
        "dividends",
        "earnings",
        "earnings_calendar",
        "earnings_transcripts",
        "news",
        "economic_indicators",
        "economic_events",
        "company_info",
    ]
    prepared = [prepare_run(job, _example(job)) for job in data_jobs]
    for run in prepared:
        send_run(app, run)
    stack.wait_for_states([r.run_id for r in prepared], {"SUCCESS"}, timeout=120)
    signals_run = publish(app, "trading_signals", {"symbols": ["AAPL"]})
    stack.wait_for_states([signals_run.run_id], {"SUCCESS"}, timeout=60)
    before = snapshot(stack)
    assert all(before.values()), [t for t, rows in before.items() if not rows]

    # The same messages again: same run ids, same enqueue time, same params.
    again = [
        *prepared,
        prepare_run(
            "trading_signals",
            {"symbols": ["AAPL"]},
            run_id=signals_run.run_id,
            now=signals_run.enqueued_at,
        ),
    ]
    for run in again:
        send_run(app, run)
    results = [app.AsyncResult(r.run_id) for r in again]
    deadline = time.monotonic() + 120
    client = stack.redis.client()
    while time.monotonic() < deadline:
        if all(client.llen(f"marketq:{q.value}") == 0 for q in Queue) and not client.hlen(
            "marketq:unacked"
        ):
            break
        time.sleep(0.2)
    assert all(r.state == "SUCCESS" for r in results)
    assert snapshot(stack) == before


def _example(job: str) -> dict[str, object]:
    from marketq.common.catalog import CATALOG

    return dict(CATALOG[job].example)
