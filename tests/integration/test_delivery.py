"""Delivery under failure: nothing accepted is lost, nothing runs twice where it must not.

Real redis-server, real `marketq-worker` processes running the real worker app with the
fault-injection module of tests/support/chaos_app.py (a sleep before every job, counters
of starts and completions in Redis). The time limits are capped at 5 s so the visibility
timeout the settings derive (2 x 5 + 2 = 12 s) lets a test wait for redelivery.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from marketq.common.catalog import CATALOG
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


def started_by(stack: Stack, worker: WorkerProcess, run_ids: list[str]) -> list[str]:
    """Those of ``run_ids`` a pool process of ``worker`` has started (chaos_app's pid mark)."""
    pool = {str(pid) for pid in worker.children()}
    client = stack.redis.client()
    marks = client.mget([f"chaos:pid:{run_id}" for run_id in run_ids])
    return [r for r, pid in zip(run_ids, marks, strict=True) if pid and pid.decode() in pool]


def held_run_ids(stack: Stack) -> set[str]:
    """Run ids of the messages kombu's ``unacked`` hash holds (delivered, not acknowledged)."""
    held = stack.redis.client().hvals("marketq:unacked")
    return {json.loads(raw)[0]["headers"]["id"] for raw in held}


def test_killed_market_hours_worker_is_back_within_its_queues_timeout_not_the_longest(
    stack: Stack,
) -> None:
    # Only market_hours is capped (5 s): its visibility timeout is 2 x 5 + 2 = 12 s, while
    # daily keeps the catalog's limits (2 x 1260 + 2 s). Before per-queue timeouts the
    # longest limit anywhere set one timeout for every queue.
    stack.set_env(
        MARKETQ_QUEUES__MARKET_HOURS__MAX_TIME_LIMIT_SECONDS="5",
        MARKETQ_VISIBILITY_TIMEOUT_MARGIN_SECONDS="2",
        MARKETQ_UNACKED_RESTORE_INTERVAL_SECONDS="1",
    )
    market_hours_timeout, sweep = 2 * 5 + 2, 1
    # What the survivor adds after the restore (a 0.5 s run on a loaded machine) and the
    # ledger writer's lag before the run reads SUCCESS.
    slack = 6.0
    held_quotes = {"CHAOS_PRERUN_SLEEP": "3"}  # below the 4 s soft limit the cap leaves
    doomed = stack.start_worker(
        "market_hours", name="doomed@mh", app=CHAOS_APP, extra_env=held_quotes, wait_ready=False
    )
    doomed_daily = stack.start_worker(
        "daily",
        name="doomed@daily",
        app=CHAOS_APP,
        extra_env={"CHAOS_PRERUN_SLEEP": "60"},
        concurrency=1,
        wait_ready=False,
    )
    survivor = stack.start_worker(
        "market_hours",
        name="survivor@mh",
        app=CHAOS_APP,
        extra_env={"CHAOS_PRERUN_SLEEP": "0.5"},
        wait_ready=False,
    )
    for worker in (doomed, doomed_daily, survivor):
        worker.wait_ready()

    app = stack.producer()
    daily_run = publish(app, "historical_prices", CATALOG["historical_prices"].example).run_id
    stack.wait_for(
        lambda: started_by(stack, doomed_daily, [daily_run]),
        timeout=30,
        what="the doomed daily worker to run its job",
        interval=0.05,
    )
    quotes = quote_runs(stack, 6)
    stack.wait_for(
        lambda: started_by(stack, doomed, quotes),
        timeout=30,
        what="the doomed market_hours worker to run quotes",
        interval=0.05,
    )
    held = started_by(stack, doomed, quotes)
    kill_worker(doomed)
    killed_at = time.monotonic()
    kill_worker(doomed_daily)
    assert held and set(held) <= held_run_ids(stack), "the killed worker held no quote"
    assert daily_run in held_run_ids(stack)

    finished = stack.wait_for_states(quotes, {"SUCCESS", "FAILURE"}, timeout=40)
    back_after = time.monotonic() - killed_at
    assert all(finished[r].state == "SUCCESS" for r in quotes)
    assert all(finished[r].worker == survivor.hostname for r in held)
    assert back_after <= market_hours_timeout + sweep + slack, back_after
    # The daily run the same sweeps looked at is still held: its timeout is the daily
    # queue's, not market_hours'.
    assert daily_run in held_run_ids(stack)
    assert stack.redis.client().llen("marketq:daily") == 0
    assert stack.runs()[daily_run].state in {"RECEIVED", "STARTED"}


def test_probe_sent_to_a_capped_queue_runs_under_that_queues_limits(stack: Stack) -> None:
    # health_check (180 s on its own queue) sent to market_hours, capped at 5 s: it must
    # stop within that queue's limits, or it would outlast market_hours' 12 s visibility
    # timeout and be handed to a second worker.
    stack.set_env(MARKETQ_QUEUES__MARKET_HOURS__MAX_TIME_LIMIT_SECONDS="5")
    stack.start_worker("market_hours", name="capped@mh")
    started = time.monotonic()
    run = publish(
        stack.producer(),
        "health_check",
        {"sleep_seconds": 30, "check_database": False},
        queue=Queue.MARKET_HOURS,
    ).run_id
    finished = stack.wait_for_states([run], {"SUCCESS", "FAILURE"}, timeout=25)[run]
    assert finished.state == "FAILURE" and "SoftTimeLimitExceeded" in (finished.error or "")
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("job", "params"),
    [
        ("stock_quotes", {"symbols": ["K000"], "as_of": MINUTE0.isoformat()}),
        # No retries for failures, yet a lost process is not the probe's failure.
        ("health_check", {"check_database": True}),
    ],
)
def test_killed_pool_child_has_its_run_sent_again_within_5_seconds(
    stack: Stack, job: str, params: dict[str, object]
) -> None:
    # Limits well above the 2 s the run sleeps, so a slow machine does not reach the
    # soft limit before the kill; no visibility timeout is waited for here.
    caps = {f"MARKETQ_QUEUES__{q.value.upper()}__MAX_TIME_LIMIT_SECONDS": "30" for q in Queue}
    stack.set_env(**caps)
    queue = "market_hours"
    # Two pool processes: the re-sent run need not wait for the killed one's replacement.
    worker = stack.start_worker(
        queue, name="oom@x", app=CHAOS_APP, concurrency=2, extra_env={"CHAOS_PRERUN_SLEEP": "2"}
    )
    run_id = publish(stack.producer(), job, params, queue=queue).run_id
    client = stack.redis.client()
    pid = stack.wait_for(lambda: client.get(f"chaos:pid:{run_id}"), 30, "the job to start")
    os.kill(int(pid), signal.SIGKILL)  # an OOM kill of the pool process
    # The worker retries once it notices the process died (a second or more on a loaded
    # machine), and with no countdown: not after the job's backoff (5 s for stock_quotes,
    # 10 s for health_check before the fix). Celery's own log line says which.
    stack.wait_for(
        lambda: counts(stack, STARTED).get(run_id, 0) >= 2, 30, "the run to start again", 0.05
    )
    [retry_line] = [line for line in worker.log_text().splitlines() if f"[{run_id}] retry:" in line]
    assert "Retry in 0s" in retry_line and "WorkerLostError" in retry_line, retry_line
    finished = stack.wait_for_states([run_id], {"SUCCESS", "FAILURE"}, timeout=60)
    assert finished[run_id].state == "SUCCESS"
    # Counted as a retry: the ledger shows both attempts, the data one row.
    assert finished[run_id].attempts == 2
    assert counts(stack, STARTED)[run_id] == 2
    assert counts(stack, FINISHED)[run_id] == 1
    if job == "stock_quotes":
        assert quote_keys(stack) == [("K000", 1)]


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


def test_sigterm_waits_only_while_jobs_run(fast: Stack) -> None:
    # The chart sizes the soft shutdown to cover a queue's longest hard time limit (up to
    # 15 minutes). A worker leaving must still go as soon as its running job ends, and at
    # once when idle, or every rollout and scale-in would wait the whole timeout.
    env = {"CHAOS_PRERUN_SLEEP": "2", "MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS": "120"}
    busy = fast.start_worker("market_hours", name="busy@x", app=CHAOS_APP, extra_env=env)
    idle = fast.start_worker("daily", name="idle@x", app=CHAOS_APP, extra_env=env)
    [run_id] = quote_runs(fast, 1)
    client = fast.redis.client()
    fast.wait_for(lambda: client.get(f"chaos:pid:{run_id}"), 30, "the job to start")
    busy.signal(signal.SIGTERM)
    idle.signal(signal.SIGTERM)
    assert idle.wait_exit(30) == 0
    assert busy.wait_exit(60) == 0
    assert counts(fast, STARTED) == {run_id: 1}
    assert counts(fast, FINISHED) == {run_id: 1}  # it ran to its end before the exit
    assert client.hlen("marketq:unacked") == 0
    assert client.llen("marketq:market_hours") == 0  # acknowledged, not re-queued


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


# Jobs that compute from other jobs' stored rows, by the wave after their inputs; every
# other catalog job is wave 0. portfolio_performance and technical_indicators back-fill the
# daily bars they lack, so the other readers of bars come after them.
READS_OUTPUT_OF_WAVE = {
    "portfolio_performance": 1,  # bars (and writes the ones missing)
    "technical_indicators": 1,  # bars (and writes the ones missing)
    "portfolio_snapshot": 2,  # quotes and bars
    "rebuild_universe": 2,  # bars
    "trading_signals": 2,  # indicators
    "portfolio_report": 3,  # snapshots, company info
    "build_features": 3,  # the universe and bars
    "train_and_predict": 4,  # features
    "run_backtest": 5,  # predictions
    "generate_trades": 5,  # predictions and fundamentals
    "sync_broker": 6,  # proposed orders
    # Its steps are the jobs above: it starts once they have all run, and the snapshot
    # waits for it to end.
    "start_pipeline": 7,
}
# data_import's example writes AAPL's 2026-11-20 bar, which historical_prices fetches
# too: two writers of one key end in whichever ran last. Here it imports a symbol no
# other job fetches, so its replay is compared with itself alone.
IMPORTED_SYMBOL = "IMPT"
# The ledger counts deliveries (attempts, states): it is meant to differ.
NOT_DATA = {models.TaskRun.__tablename__}
# Columns that say when a row was written, not what it holds.
WRITE_TIMES = {"id", "updated_at", "created_at", "fetched_at"}


def _hashable(value: object) -> object:
    if isinstance(value, dict | list):  # JSON columns
        return json.dumps(value, sort_keys=True, default=str)
    return value


def snapshot(stack: Stack) -> dict[str, set[tuple[object, ...]]]:
    """Every row of every data table, without surrogate ids and write times."""
    tables = {}
    with stack.sessions()() as session:
        for table in models.Base.metadata.sorted_tables:
            if table.name in NOT_DATA:
                continue
            columns = [c for c in table.columns if c.name not in WRITE_TIMES]
            rows = session.execute(select(*columns)).all()
            tables[table.name] = {tuple(_hashable(v) for v in row) for row in rows}
    return tables


def pipelines_ended(stack: Stack) -> bool:
    with stack.sessions()() as session:
        states = session.scalars(select(models.PipelineRun.state)).all()
    return all(state in ("SUCCESS", "FAILED", "REVOKED") for state in states)


def test_every_catalog_message_delivered_twice_leaves_every_table_unchanged(
    stack: Stack,
) -> None:
    from tests.integration.test_jobs_on_queues import seed_portfolio

    portfolio_id = seed_portfolio(stack)
    stack.start_queue_workers("dup")
    app = stack.producer()
    prepared = []
    for job in CATALOG.values():
        params = dict(job.example)
        if "portfolio_id" in params:
            params["portfolio_id"] = portfolio_id
        if job.name == "data_import":
            params["content"] = params["content"].replace("AAPL,", f"{IMPORTED_SYMBOL},")
        prepared.append(prepare_run(job.name, params))
    # In waves, so a job that reads another job's rows runs after it, as its schedule has
    # it. Each wave's messages are delivered twice back to back, as a redelivery comes:
    # the second delivery sees the inputs the first one saw, and must change nothing.
    client = stack.redis.client()

    def drained() -> bool:
        return all(client.llen(f"marketq:{q.value}") == 0 for q in Queue) and not client.hlen(
            "marketq:unacked"
        )

    changed: dict[str, dict[str, list[str]]] = {}
    waves = sorted({READS_OUTPUT_OF_WAVE.get(r.job.name, 0) for r in prepared})
    for wave in waves:
        batch = [r for r in prepared if READS_OUTPUT_OF_WAVE.get(r.job.name, 0) == wave]
        for run in batch:
            send_run(app, run)
        first = stack.wait_for_states(
            [r.run_id for r in batch], {"SUCCESS", "FAILURE"}, timeout=180
        )
        failed = {
            r.job.name: first[r.run_id].error for r in batch if first[r.run_id].state != "SUCCESS"
        }
        assert failed == {}
        stack.wait_for(lambda: pipelines_ended(stack), 180, "the started pipeline to end")
        before = snapshot(stack)

        # The same messages again: same run ids, same enqueue time, same params.
        for run in batch:
            send_run(app, run)
        stack.wait_for(drained, 180, f"wave {wave}'s second deliveries to run")
        # The ledger is written from run events a moment after each run ends.
        stack.wait_for(
            lambda batch=batch: all(
                (row := stack.runs()[r.run_id]).attempts == 2 and row.state == "SUCCESS"
                for r in batch
            ),
            60,
            f"the ledger to count wave {wave}'s second deliveries",
        )
        stack.wait_for(lambda: pipelines_ended(stack), 180, "the pipeline's replay to end")
        after = snapshot(stack)
        changed |= {
            f"{table} (wave {wave}: {', '.join(r.job.name for r in batch)})": {
                "before only": sorted(map(str, before[table] - rows))[:2],
                "after only": sorted(map(str, rows - before[table]))[:2],
            }
            for table, rows in after.items()
            if rows != before[table]
        }
    assert not changed, "\n".join(f"{table}: {diff}" for table, diff in changed.items())
