"""The catalog's retry policy fires on every classified transient error, in real processes.

A real ``marketq-worker`` (tests/support/vendor_app.py: the real worker whose quotes and
daily bars come through HTTP from tests/support/scripted_vendor.py) against a real
redis-server. Each transient error -- a 429 with Retry-After, a 500, a read timeout, a
dropped connection, a Redis outage -- ends RETRY then SUCCESS; a permanent one fails at
once with its reason; a database outage mid-run (real PostgreSQL, stopped and started)
ends RETRY then SUCCESS with exactly one row per natural key.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from marketq.common.db import models
from marketq.common.db.migrate import upgrade
from marketq.common.publish import publish
from tests.fixtures.postgres import (
    create_database,
    find_postgres_bindir,
    private_cluster,
    restart_cluster,
    stop_cluster,
)
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import Stack, WorkerProcess
from tests.support.scripted_vendor import ScriptedVendor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VENDOR_APP = "tests.support.vendor_app:app"
MINUTE0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
def vendor() -> Iterator[ScriptedVendor]:
    server = ScriptedVendor(retry_after=3, hang_seconds=3.0, slow_seconds=2.5).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vendor_stack(stack: Stack, vendor: ScriptedVendor) -> Stack:
    stack.set_env(
        MARKETQ_TEST_VENDOR_URL=vendor.url,
        MARKETQ_TEST_VENDOR_TIMEOUT="1.5",
        # Generous: these tests are about failures, not pacing.
        MARKETQ_QUOTAS__TESTVENDOR__RATE_PER_SECOND="100",
        MARKETQ_QUOTAS__TESTVENDOR__BURST="100",
    )
    return stack


def start_worker(stack: Stack, queue: str, concurrency: int) -> WorkerProcess:
    worker = stack.start_worker(queue, app=VENDOR_APP, concurrency=concurrency, wait_ready=False)
    worker.wait_ready(timeout=180)  # a shared CI machine can be slow to import
    return worker


def quote_run(stack: Stack, symbol: str) -> str:
    params = {"symbols": [symbol], "as_of": MINUTE0.isoformat()}
    return publish(stack.producer(), "stock_quotes", params).run_id


def follow(stack: Stack, run_ids: list[str], timeout: float) -> dict[str, list[tuple[str, str]]]:
    """Poll the ledger until every run has finished; the (state, error) each run passed."""
    history: dict[str, list[tuple[str, str]]] = {run_id: [] for run_id in run_ids}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = stack.runs()
        for run_id in run_ids:
            run = runs.get(run_id)
            if run is not None:
                seen = (run.state, run.error or "")
                if not history[run_id] or history[run_id][-1] != seen:
                    history[run_id].append(seen)
        if all(h and h[-1][0] in ("SUCCESS", "FAILURE") for h in history.values()):
            return history
        time.sleep(0.1)
    logs = "\n".join(w.log_text()[-3000:] for w in stack.workers)
    pytest.fail(f"runs did not finish in {timeout} s: {history}\n{logs}")


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def scrape(worker: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(worker.metrics()):
        for sample in family.samples:
            samples[(sample.name, labels(**sample.labels))] = sample.value
    return samples


def states(history: list[tuple[str, str]]) -> list[str]:
    return [state for state, _ in history]


def test_each_transient_vendor_error_is_retried_then_succeeds(
    vendor_stack: Stack, vendor: ScriptedVendor
) -> None:
    stack = vendor_stack
    scripts = {
        "RATE": (429, "rate_limited"),
        "BOOM": (500, "vendor_unavailable"),
        "SLOW": ("hang", "timeout"),
        "DROP": ("drop", "connection"),
    }
    for symbol, (step, _) in scripts.items():
        vendor.script(symbol, step)
    worker = start_worker(stack, "market_hours", concurrency=4)
    run_ids = {symbol: quote_run(stack, symbol) for symbol in scripts}

    history = follow(stack, list(run_ids.values()), timeout=90)

    runs = stack.runs()
    for symbol, (_, reason) in scripts.items():
        run_id = run_ids[symbol]
        seen = history[run_id]
        assert "RETRY" in states(seen), (symbol, seen)
        assert states(seen)[-1] == "SUCCESS", (symbol, seen)
        # While it waited, the ledger named the failure class and the attempt.
        retry_errors = [error for state, error in seen if state == "RETRY"]
        assert any(f"transient failure ({reason}" in e for e in retry_errors), (symbol, seen)
        assert any("[attempt 1 of 3]" in e for e in retry_errors), (symbol, seen)
        assert runs[run_id].attempts == 2
        assert len(vendor.calls(symbol)) == 2
    # The 429's Retry-After (3 s) was honoured, whatever the jittered backoff said.
    first, second = vendor.calls("RATE")
    assert second.at - first.at >= 3.0
    with stack.sessions()() as session:
        rows = dict(
            session.execute(
                select(models.QuoteRow.symbol, func.count()).group_by(models.QuoteRow.symbol)
            ).all()
        )
    assert rows == dict.fromkeys(scripts, 1)
    samples = scrape(worker)
    retried = {"queue": "market_hours", "job_name": "stock_quotes", "outcome": "retried"}
    assert samples.get(("marketq_task_outcomes_total", labels(**retried))) == 4
    for reason in ("rate_limited", "vendor_unavailable"):
        key = labels(vendor="testvendor", error_class="transient", reason=reason)
        assert samples.get(("marketq_vendor_errors_total", key)) == 1, samples
    assert samples.get(("marketq_vendor_calls_total", labels(vendor="testvendor"))) == 8
    # Vendors configured but not called have zero series from the start (rate() sees the
    # first call; alerts and panels name metrics that exist).
    assert samples.get(("marketq_vendor_calls_total", labels(vendor="alphavantage"))) == 0
    unknown_symbol = labels(vendor="edgar", error_class="permanent", reason="unknown_symbol")
    assert samples.get(("marketq_vendor_errors_total", unknown_symbol)) == 0


def test_permanent_errors_fail_at_once_and_exhausted_retries_fail_with_the_last_error(
    vendor_stack: Stack, vendor: ScriptedVendor
) -> None:
    stack = vendor_stack
    vendor.script("NOPE", 404)
    vendor.script("BADKEY", 401)
    vendor.script("DOWN", 503, 503, 503, 503)
    start_worker(stack, "market_hours", concurrency=3)
    run_ids = {symbol: quote_run(stack, symbol) for symbol in ("NOPE", "BADKEY", "DOWN")}

    history = follow(stack, list(run_ids.values()), timeout=90)

    runs = stack.runs()
    for symbol, reason in (("NOPE", "unknown_symbol"), ("BADKEY", "invalid_key")):
        run = runs[run_ids[symbol]]
        assert "RETRY" not in states(history[run.id]), history[run.id]
        assert run.state == "FAILURE"
        assert run.attempts == 1 and len(vendor.calls(symbol)) == 1
        assert run.error is not None
        assert f"permanent failure ({reason} from testvendor)" in run.error
        assert f"symbol {symbol}" in run.error  # the message says what was wrong
    down = runs[run_ids["DOWN"]]
    assert states(history[down.id]).count("RETRY") >= 1
    assert down.state == "FAILURE" and down.attempts == 3  # stock_quotes: 2 retries
    assert len(vendor.calls("DOWN")) == 3
    assert down.error is not None and "vendor_unavailable" in down.error
    assert "[attempt 3 of 3]" in down.error


def test_redis_outage_of_the_quota_store_is_retried(
    vendor_stack: Stack, vendor: ScriptedVendor, tmp_path: Path
) -> None:
    """The quota's Redis (a second server here, so the broker stays up) is down when the
    job asks for a token: the run is retried, and succeeds once Redis is back."""
    stack = vendor_stack
    quota_redis = RedisServer(tmp_path / "quota-redis")
    quota_redis.start()
    try:
        stack.set_env(MARKETQ_QUOTA_REDIS_URL=quota_redis.url)
        start_worker(stack, "market_hours", concurrency=1)
        quota_redis.stop()
        run_id = quote_run(stack, "QRED")
        stack.wait_for(
            lambda: stack.runs().get(run_id) is not None and stack.runs()[run_id].state == "RETRY",
            timeout=60,
            what="the run to wait for its retry",
        )
        error = stack.runs()[run_id].error or ""
        assert "transient failure (redis" in error, error
        quota_redis.start()
        history = follow(stack, [run_id], timeout=60)
    finally:
        quota_redis.stop()
    assert states(history[run_id])[-1] == "SUCCESS", history
    assert stack.runs()[run_id].attempts >= 2
    assert len(vendor.calls("QRED")) == 1  # no token, no call: the vendor saw one


@pytest.mark.postgres
def test_database_outage_mid_run_ends_retry_then_success_with_one_row_per_key(
    vendor_stack: Stack, vendor: ScriptedVendor
) -> None:
    """historical_prices writes symbol by symbol: PGA is committed, then PostgreSQL stops
    while PGB is being fetched. The write of PGB fails (connection refused), the run is
    retried, PostgreSQL comes back, and the second attempt writes both again -- upserts on
    the natural key, so exactly one row per (symbol, day)."""
    stack = vendor_stack
    bindir = find_postgres_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL binaries are needed: apt-get install postgresql")
    with private_cluster(bindir) as cluster:
        url = create_database(cluster.admin_url, "marketq_outage")
        upgrade(url)
        stack.set_env(MARKETQ_DATABASE_URL=url, MARKETQ_TEST_VENDOR_TIMEOUT="10")
        stack.database_url = url
        vendor.script("PGB", "slow")  # keeps attempt 1 in flight for 2.5 s
        start_worker(stack, "daily", concurrency=1)
        params = {"symbols": ["PGA", "PGB"], "start": "2026-11-16", "end": "2026-11-20"}
        producer = stack.producer()
        run_id = publish(producer, "historical_prices", params).run_id
        stack.wait_for(lambda: vendor.calls("PGB"), timeout=60, what="PGB's fetch")
        stop_cluster(cluster)  # the outage: every connection dropped, new ones refused
        result = producer.AsyncResult(run_id)
        stack.wait_for(
            lambda: result.state == "RETRY", timeout=30, what="the run to be RETRY", interval=0.05
        )
        retry_info = str(result.info)
        restart_cluster(cluster)
        history = follow(stack, [run_id], timeout=90)
        run = stack.runs()[run_id]
        with stack.sessions()() as session:
            keys = session.execute(
                select(models.DailyBarRow.symbol, models.DailyBarRow.day, func.count())
                .group_by(models.DailyBarRow.symbol, models.DailyBarRow.day)
                .order_by(models.DailyBarRow.symbol, models.DailyBarRow.day)
            ).all()
        with contextlib.suppress(Exception):
            producer.close()
    assert "transient failure (database" in retry_info, retry_info
    assert states(history[run_id])[-1] == "SUCCESS", history
    assert run.attempts == 2
    assert len(vendor.calls("PGA")) == 2 and len(vendor.calls("PGB")) == 2
    week = [date(2026, 11, d) for d in (16, 17, 18, 19, 20)]
    assert [(s, d) for s, d, _ in keys] == [(s, d) for s in ("PGA", "PGB") for d in week]
    assert all(count == 1 for _, _, count in keys)


def test_a_token_beyond_the_soft_time_limit_defers_the_run_instead_of_failing_it(
    vendor_stack: Stack, vendor: ScriptedVendor
) -> None:
    """One token per 10 s, and stock_quotes capped to a soft limit of 8 s: the second run
    cannot get its token before its deadline, so it makes no call, is retried with the wait
    as its countdown, and then succeeds -- it never runs into its soft time limit."""
    stack = vendor_stack
    stack.set_env(
        MARKETQ_QUOTAS__TESTVENDOR__RATE_PER_SECOND="0.1",
        MARKETQ_QUOTAS__TESTVENDOR__BURST="1",
        MARKETQ_QUEUES__MARKET_HOURS__MAX_TIME_LIMIT_SECONDS="10",  # soft limit 8 s
    )
    start_worker(stack, "market_hours", concurrency=1)
    first, second = quote_run(stack, "TOKA"), quote_run(stack, "TOKB")

    history = follow(stack, [first, second], timeout=90)

    assert states(history[first])[-1] == "SUCCESS"
    assert "RETRY" not in states(history[first])
    assert states(history[second])[-1] == "SUCCESS", history[second]
    retry_errors = [error for state, error in history[second] if state == "RETRY"]
    assert retry_errors and "transient failure (quota_deferred from testvendor)" in retry_errors[0]
    assert "SoftTimeLimitExceeded" not in " ".join(e for _, e in history[second])
    (call_a,) = vendor.calls("TOKA")
    (call_b,) = vendor.calls("TOKB")  # the deferred attempt made no call
    assert call_b.at - call_a.at >= 9.5  # one token per 10 s, shared
