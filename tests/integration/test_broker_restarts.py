"""Redis restarts under load: every accepted run still ends SUCCESS, exactly once.

Real processes throughout: a redis-server with the append-only file on (as the chart
bundles it), stopped by SIGTERM or SIGKILL and started again on the same port and files,
while a producer keeps publishing and two `marketq-worker` processes (the chaos app, see
tests/support/chaos_app.py) run short `stock_quotes` and long `historical_prices` runs.
Executions are journalled to a file, which keeps counting while Redis is down.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketq.common.db import models
from marketq.common.publish import publish
from marketq.common.queues import Queue
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import CHAOS_APP, Stack, own_stack
from tests.support.chaos_app import read_journal

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

RESTARTS = 20
MINUTE0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
BAR_RANGE = {"start": date(2026, 11, 2).isoformat(), "end": date(2026, 11, 13).isoformat()}


@pytest.fixture
def aof_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A stack on its own Redis with AOF on, so a restart keeps queues and unacked runs.

    ``always``: with ``everysec`` Redis may answer writes it has not yet handed to the
    kernel (it postpones the write while a background fsync runs, up to 2 s), and a
    SIGKILL loses them; docs/operations.md#broker-durability has the trade-off."""
    server = RedisServer(tmp_path / "redis", appendfsync="always")
    caps = {f"MARKETQ_QUEUES__{q.value.upper()}__MAX_TIME_LIMIT_SECONDS": "8" for q in Queue}
    with own_stack(
        server,
        tmp_path,
        monkeypatch,
        MARKETQ_VISIBILITY_TIMEOUT_MARGIN_SECONDS="2",
        MARKETQ_UNACKED_RESTORE_INTERVAL_SECONDS="1",
        # Broker data loss is repaired by the reconciler: a QUEUED run whose message is
        # gone is re-published with the same id (docs/delivery.md).
        MARKETQ_RECONCILE_INTERVAL_SECONDS="2",
        MARKETQ_RECONCILE_QUEUED_AFTER_SECONDS="20",
        CHAOS_JOURNAL=str(tmp_path / "journal"),
        **caps,
    ) as stack:
        yield stack


def test_twenty_redis_restarts_lose_no_run_and_run_none_twice(aof_stack: Stack) -> None:
    stack = aof_stack
    short = stack.start_worker(
        "market_hours",
        name="short@restarts",
        app=CHAOS_APP,
        concurrency=2,
        extra_env={"CHAOS_PRERUN_SLEEP": "0.5"},
        wait_ready=False,
    )
    long = stack.start_worker(
        "daily",
        name="long@restarts",
        app=CHAOS_APP,
        concurrency=2,
        extra_env={"CHAOS_PRERUN_SLEEP": "2"},
        wait_ready=False,
    )
    short.wait_ready(timeout=180)  # a loaded machine imports slowly
    long.wait_ready(timeout=180)
    producer = stack.producer()

    accepted: dict[str, str] = {}  # run id -> job
    long_symbols: list[str] = []
    counter = itertools.count()

    def publish_some(seconds: float) -> None:
        """Steady load: a short run every 0.25 s, a long run every 1.5 s."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            i = next(counter)
            try:
                if i % 6 == 0:
                    symbols = [f"L{i:04d}{k}" for k in "ABCD"]
                    run = publish(producer, "historical_prices", {"symbols": symbols, **BAR_RANGE})
                    long_symbols.extend(symbols)
                    accepted[run.run_id] = "historical_prices"
                else:
                    as_of = (MINUTE0 + timedelta(minutes=i)).isoformat()
                    run = publish(
                        producer, "stock_quotes", {"symbols": [f"S{i:04d}"], "as_of": as_of}
                    )
                    accepted[run.run_id] = "stock_quotes"
            except Exception:  # Redis is down: the producer was told no
                pass
            time.sleep(0.25)

    publish_some(3)
    for restart in range(RESTARTS):
        # Runs are in flight on both workers when Redis goes away.
        if restart % 2:
            stack.redis.kill()
        else:
            stack.redis.stop()
        time.sleep(1)
        stack.redis.start()
        publish_some(3.5)

    run_ids = list(accepted)
    assert len(run_ids) >= 200
    # Runs here last under 8 s and the reconciler re-publishes a lost one after 20 s: a
    # healthy stack ends them all within a minute of the last restart. The bound keeps a
    # failing round from adding minutes to the suite.
    finished = stack.wait_for_states(run_ids, {"SUCCESS", "FAILURE", "REVOKED"}, timeout=120)
    not_successful = {
        r: (finished[r].state, finished[r].error) for r in run_ids if finished[r].state != "SUCCESS"
    }
    assert not not_successful, not_successful

    # Exactly once: every accepted run ran to a recorded completion once, whatever was
    # interrupted. A completion Redis died under before its SUCCESS was stored is in no
    # record (not the result backend, not the ledger), so the run is delivered again: at
    # least once, with one effect (upserts). Such a run completes one more time than it
    # is recorded, never more; a run whose SUCCESS was stored never runs again. The
    # reverse also happens: Redis took the SUCCESS but its reply was lost, and the cancel
    # killed the process while it retried, before it could say so (no ``recorded``, no
    # ``finished``); the stored end is acknowledged and recorded, the run not run again.
    journal = read_journal(stack.env["CHAOS_JOURNAL"])
    recorded = {r: journal["recorded"].get(r, 0) for r in run_ids}
    assert {r: n for r, n in recorded.items() if n > 1} == {}
    unrecorded = {r: journal["finished"].get(r, 0) - recorded[r] for r in run_ids}
    assert {r: n for r, n in unrecorded.items() if n not in (0, 1)} == {}
    interrupted = [r for r in run_ids if journal["started"].get(r, 0) > 1]
    assert interrupted, "no run was in flight across a restart: the test proved nothing"

    # Complete data: one quote per short run, every bar of every long run's symbols.
    with stack.sessions()() as session:
        quotes = session.scalar(select(func.count()).select_from(models.QuoteRow))
        bars = dict(
            session.execute(
                select(models.DailyBarRow.symbol, func.count()).group_by(models.DailyBarRow.symbol)
            ).all()
        )
    assert quotes == sum(1 for job in accepted.values() if job == "stock_quotes")
    accepted_long = {s for s in long_symbols if s in bars}
    assert len(set(bars.values())) == 1, "some symbols were left with part of their bars"
    assert len(accepted_long) == 4 * sum(
        1 for job in accepted.values() if job == "historical_prices"
    )

    # No worker main process exited, and both still consume.
    for worker in (short, long):
        assert worker.process is not None and worker.process.poll() is None, worker.log_text()[
            -3000:
        ]
        assert "Unrecoverable error" not in worker.log_text()
    later = publish(producer, "health_check", {"check_database": False}, queue="daily")
    stack.wait_for_states([later.run_id], {"SUCCESS"}, timeout=30)
    assert stack.redis.client().hlen("marketq:unacked") == 0


def test_run_that_ended_as_redis_died_is_acknowledged_not_run_again(aof_stack: Stack) -> None:
    """The pool process stored the run's SUCCESS, then Redis went away before the main
    process heard of it: the cancel kills a process that had finished, and no failed
    acknowledgement was noted. After the reconnection the run's stored end makes the
    worker acknowledge its message instead of restoring it (connection_loss)."""
    stack = aof_stack
    worker = stack.start_worker(
        "daily",
        name="ended@restarts",
        app=CHAOS_APP,
        concurrency=1,
        extra_env={"CHAOS_POSTRUN_SLEEP": "5"},
    )
    run = publish(stack.producer(), "health_check", {"check_database": False}, queue="daily").run_id
    journal = stack.env["CHAOS_JOURNAL"]
    stack.wait_for(
        lambda: read_journal(journal)["finished"].get(run), timeout=30, what="the run done"
    )
    stack.redis.stop()
    time.sleep(1)
    stack.redis.start()
    stack.wait_for(
        lambda: "after reconnecting" in worker.log_text(), timeout=30, what="a reconnection"
    )
    stack.wait_for_states([run], {"SUCCESS"}, timeout=30)
    time.sleep(3)  # a restored message would be running again by now
    assert read_journal(journal)["finished"].get(run) == 1
    assert "acknowledged 1 finished run(s), restored 0 message(s)" in worker.log_text()
    assert stack.redis.client().hlen("marketq:unacked") == 0
