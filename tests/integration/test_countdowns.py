"""Runs with a countdown are executed once, even when the pool is busy long past their ETA.

Real redis-server and two `marketq-worker` processes (the chaos app: every run sleeps
1 s first, executions journalled to a file). Time limits are capped at 5 s, so the
visibility timeout is 12 s and the longest countdown accepted is 6 s; the 52 runs keep
the two pool slots busy for about 30 s, far longer than the visibility timeout.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from marketq.common.celery_app import max_countdown_seconds
from marketq.common.publish import publish
from marketq.common.queues import Queue
from marketq.common.settings import get_settings
from tests.fixtures.workers import CHAOS_APP, Stack
from tests.support.chaos_app import read_journal

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

MINUTE0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_countdowns_under_a_backlog_larger_than_the_pool_run_once(
    stack: Stack, tmp_path: Path
) -> None:
    caps = {f"MARKETQ_QUEUES__{q.value.upper()}__MAX_TIME_LIMIT_SECONDS": "5" for q in Queue}
    journal = tmp_path / "journal"
    stack.set_env(
        **caps,
        MARKETQ_VISIBILITY_TIMEOUT_MARGIN_SECONDS="2",
        MARKETQ_UNACKED_RESTORE_INTERVAL_SECONDS="1",
        CHAOS_JOURNAL=str(journal),
    )
    ceiling = max_countdown_seconds(get_settings(), Queue.MARKET_HOURS)
    assert ceiling == 6
    env = {"CHAOS_PRERUN_SLEEP": "1"}
    workers = [
        stack.start_worker(
            "market_hours", name=f"busy{i}@x", app=CHAOS_APP, concurrency=1, extra_env=env,
            wait_ready=False,
        )
        for i in range(2)
    ]  # fmt: skip
    for worker in workers:
        worker.wait_ready(timeout=180)

    app = stack.producer()
    counter = iter(range(1000))

    def quote(countdown: float | None = None) -> str:
        i = next(counter)
        params = {"symbols": [f"C{i:03d}"], "as_of": (MINUTE0 + timedelta(minutes=i)).isoformat()}
        return publish(app, "stock_quotes", params, countdown=countdown).run_id

    # Countdowns first: a worker takes every message with an ETA at once, beyond its
    # prefetch, so these wait in the workers while the backlog keeps the pool busy.
    soon = [quote(1) for _ in range(14)]
    at_ceiling = [quote(ceiling) for _ in range(8)]
    backlog = [quote() for _ in range(30)]
    runs = soon + at_ceiling + backlog

    finished = stack.wait_for_states(runs, {"SUCCESS", "FAILURE", "REVOKED"}, timeout=180)
    assert {r: finished[r].state for r in runs if finished[r].state != "SUCCESS"} == {}
    # Let any stray copy surface: one more sweep, well past the visibility timeout.
    stack.wait_for(lambda: not stack.redis.client().hlen("marketq:unacked"), 30, "no held message")
    executions = read_journal(str(journal))["started"]
    assert {r: executions.get(r, 0) for r in runs if executions.get(r, 0) != 1} == {}
    assert all(finished[r].attempts == 1 for r in runs)
    # A countdown run did not start before its ETA.
    for run_id in soon + at_ceiling:
        run = finished[run_id]
        assert run.started_at is not None and run.eta is not None
        assert run.started_at >= run.eta - timedelta(seconds=0.5)
