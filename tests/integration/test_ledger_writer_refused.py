"""The ledger writer when PostgreSQL refuses an event's data.

A batch the database refuses for a value (here a run id longer than its column) used to
fail on every retry: the writer re-read the same pending batch for ever, and no run's
transition reached ``task_runs`` again. The writer now writes such a batch one event at a
time and drops, logged and counted, only the event refused. Real redis-server (the test
stack's) and a real PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import TaskRun
from marketq.common.ledger_writer import EVENTS_REFUSED, GROUP, LedgerWriter
from marketq.common.run_events import detail, stream_key
from marketq.common.settings import Settings
from tests.fixtures.workers import Stack

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(120)]

TOO_LONG = "r" * 65  # task_runs.id is VARCHAR(64)


def test_a_refused_event_is_dropped_and_the_rest_of_its_batch_is_written(
    stack: Stack, postgres_shared_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings()
    key = stream_key(settings.redis_key_prefix)
    client = redis.Redis.from_url(settings.redis_url)
    engine = create_db_engine(postgres_shared_db.reset())
    writer = LedgerWriter(client, session_factory(engine), settings, "w1")
    writer.ensure_group()
    for run_id, state in (("good-1", "QUEUED"), (TOO_LONG, "QUEUED"), ("good-2", "SUCCESS")):
        client.xadd(key, {"s": state, "d": detail(run_id, job="health_check", queue="default")})
    refused_before = EVENTS_REFUSED._value.get()
    try:
        assert writer.step(block_ms=100) == 3
        with session_factory(engine)() as session:
            states = {run.id: run.state for run in session.query(TaskRun)}
        assert states == {"good-1": "QUEUED", "good-2": "SUCCESS"}
        assert client.xpending(key, GROUP)["pending"] == 0  # nothing left to fail again
        assert EVENTS_REFUSED._value.get() == refused_before + 1
        assert "dropped the QUEUED event of run rrrr" in caplog.text
        assert "value too long" in caplog.text
        # The next events are written as usual.
        client.xadd(key, {"s": "SUCCESS", "d": detail("good-1")})
        assert writer.step(block_ms=100) == 1
        with session_factory(engine)() as session:
            assert session.get(TaskRun, "good-1").state == "SUCCESS"  # type: ignore[union-attr]
    finally:
        engine.dispose()
        client.close()
