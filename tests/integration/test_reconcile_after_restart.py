"""The reconciler after a Redis restart: runs whose message the restart lost are published
again, runs whose message survived are not (real redis-server and worker processes).

A crash can lose a message while the run's record survives it: with ``appendfsync
everysec`` the last second of writes may be gone, and a message popped for a worker in
the instant Redis dies is in no list and not yet in ``unacked``. The run stays QUEUED (or
RECEIVED/STARTED, when it was a restored message) in the ledger for ever unless the
reconciler looks for it (docs/delivery.md, docs/design.md#redis-restarts). A run whose
end reached the result backend but whose end event was lost with Redis is recorded from
the stored end, not run again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from marketq.common.publish import publish
from marketq.common.run_events import EventLog
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import Stack, own_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

QUEUE_LIST = "marketq:market_hours"  # no worker consumes it here: messages stay put


@pytest.fixture
def aof_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    server = RedisServer(tmp_path / "redis", appendfsync="always")
    with own_stack(
        server,
        tmp_path,
        monkeypatch,
        MARKETQ_RECONCILE_INTERVAL_SECONDS="1",
        MARKETQ_RECONCILE_QUEUED_AFTER_SECONDS="2",
    ) as stack:
        yield stack


def copies(client: redis.Redis, run_id: str) -> int:
    """How many messages of ``run_id`` the queue list holds."""
    raw: list[bytes] = client.lrange(QUEUE_LIST, 0, -1)  # type: ignore[assignment]
    return sum(1 for message in raw if run_id.encode() in message)


def drop_message(client: redis.Redis, run_id: str) -> None:
    """What the crash did: the run's message is gone, its record and events are not."""
    raw: list[bytes] = client.lrange(QUEUE_LIST, 0, -1)  # type: ignore[assignment]
    (message,) = [m for m in raw if run_id.encode() in m]
    assert client.lrem(QUEUE_LIST, 1, message) == 1


def test_runs_whose_message_a_restart_lost_are_published_again_and_no_other(
    aof_stack: Stack,
) -> None:
    stack = aof_stack
    worker = stack.start_worker("daily", name="reconciler@restart")  # hosts the reconciler
    producer = stack.producer()

    def quote(symbol: str) -> str:
        params = {"symbols": [symbol], "as_of": "2026-11-20T15:00:00+00:00"}
        return publish(producer, "stock_quotes", params).run_id

    kept, lost, held, ended = quote("KEPT"), quote("LOST"), quote("HELD"), quote("ENDED")
    # ``held``: a message a worker had received and that was restored to its list (a
    # connection loss), so the ledger says STARTED, not QUEUED.
    events = EventLog(stack.redis.client(), stack.settings())
    for run in (held, ended):
        events.append(
            run, "STARTED", job="stock_quotes", queue="market_hours", worker=worker.hostname
        )
    stack.wait_for(
        lambda: (
            (runs := stack.runs())
            and all(r in runs for r in (kept, lost, held, ended))
            and runs[held].state == runs[ended].state == "STARTED"
        ),
        timeout=30,
        what="the three runs in the ledger",
    )
    time.sleep(1.5)  # Redis's uptime counts whole seconds: start it well after the runs

    stack.redis.stop()
    stack.redis.start()
    client = stack.redis.client()
    drop_message(client, lost)
    drop_message(client, held)
    # ``ended``: its pool process stored SUCCESS and its message was acknowledged, then
    # Redis went away before the SUCCESS event was appended: the ledger says STARTED.
    drop_message(client, ended)
    producer.backend.store_result(ended, {"rows": 1}, "SUCCESS")
    # Queued after this start with its record in place: not a suspect, never scanned for
    # (queued well after it: the start is known from whole seconds of uptime).
    time.sleep(2)
    later = quote("LATER")
    drop_message(client, later)

    stack.wait_for(
        lambda: copies(client, lost) and copies(client, held),
        timeout=60,
        what="the lost runs published again",
    )
    time.sleep(5)  # several more passes: none publishes anything twice
    assert {r: copies(client, r) for r in (kept, lost, held, later)} == {
        kept: 1,
        lost: 1,
        held: 1,
        later: 0,
    }
    assert stack.runs()[held].state == "QUEUED"
    stack.wait_for_states([ended], {"SUCCESS"}, timeout=30)  # recorded, not run again
    assert copies(client, ended) == 0
    assert "republished run" in worker.log_text()
