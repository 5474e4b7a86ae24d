"""A run's marks (cancelled while queued, has webhook subscribers) live on the broker,
where the API and the pipeline engine leave them, and the worker reads them there, also
when the result backend is another Redis (``MARKETQ_RESULT_BACKEND_URL``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketq.common.publish import publish, revoked_key
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import own_stack

pytestmark = pytest.mark.integration


def test_a_cancel_mark_on_the_broker_holds_with_results_in_another_redis_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RedisServer(tmp_path / "redis")
    results_url = f"redis://127.0.0.1:{server.port}/1"
    with own_stack(server, tmp_path, monkeypatch, MARKETQ_RESULT_BACKEND_URL=results_url) as stack:
        producer = stack.producer()
        run = publish(producer, "health_check", {"check_database": False}, queue="default")
        # What DELETE /api/v1/runs/{id} leaves for a worker that missed the broadcast.
        broker = stack.redis.client()
        broker.set(revoked_key("marketq:", run.run_id), "1", ex=600)

        stack.start_worker("default", name="late@marks")
        stack.wait_for(
            lambda: broker.llen("marketq:default") == 0 and not broker.hlen("marketq:unacked"),
            30,
            "the worker to take the message",
        )
        result = producer.AsyncResult(run.run_id)
        stack.wait_for(lambda: result.state != "PENDING", 30, "the run's outcome")
        assert result.state == "REVOKED"  # not SUCCESS: the job body never ran
