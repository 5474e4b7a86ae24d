"""What a run costs the worker in Redis round trips beyond bare Celery's.

A success is stored with its ledger event in one script (marketq.common.results), where
Celery's rule that a stored SUCCESS is never overwritten still holds and a retried or
duplicate store adds no second event. RECEIVED is held back in the consumer loop: a run
that starts at once carries its receipt in STARTED, and only a run that waits (here:
behind a job's rate limit) gets a RECEIVED event (marketq.worker.ledger_signals)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from celery import states
from celery.app.task import Context

from marketq.common.celery_app import create_celery_app
from marketq.common.publish import publish, revoked_key
from marketq.common.results import EndEvent, MarketqRedisBackend
from marketq.common.run_events import DETAIL_FIELD, STATE_FIELD, detail, stream_key
from marketq.common.settings import Settings
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import Stack, own_stack

pytestmark = pytest.mark.integration

STREAM = stream_key("test:")


def _hook(task_id: str, state: str, result: Any, request: Any) -> EndEvent | None:
    if state != states.SUCCESS:
        return None
    return EndEvent(STREAM, 1000, state, detail(task_id, result=result))


@pytest.fixture
def backend(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(MarketqRedisBackend, "end_event", staticmethod(_hook))
    settings = Settings(redis_url=redis_server.url, result_expires_seconds=600)
    app = create_celery_app("results-test", settings=settings)
    redis_server.client().delete(STREAM)
    yield app.backend
    app.close()


def _events(redis_server: RedisServer) -> list[tuple[Any, Any]]:
    entries: Any = redis_server.client().xrange(STREAM)
    return [(fields[STATE_FIELD.encode()], fields[DETAIL_FIELD.encode()]) for _, fields in entries]


def test_a_success_is_stored_with_one_event_and_never_overwritten(
    backend: Any, redis_server: RedisServer
) -> None:
    first, again = Context(id="run-1"), Context(id="run-1")
    backend.store_result("run-1", {"rows": 3}, states.SUCCESS, request=first)
    assert first.marketq_end_recorded is True
    meta = backend.get_task_meta("run-1")
    assert meta["status"] == states.SUCCESS and meta["result"] == {"rows": 3}
    # Stored as Celery stores it: the same expiry, readable by AsyncResult.
    assert 0 < redis_server.client().ttl(backend.get_key_for_task("run-1")) <= 600

    # A late duplicate's success and a failure after it change nothing (Celery's rule).
    backend.store_result("run-1", {"rows": 99}, states.SUCCESS, request=again)
    backend.store_result("run-1", RuntimeError("late"), states.FAILURE)
    assert again.marketq_end_recorded is False  # its task_success handler appends instead
    assert backend.get_task_meta("run-1")["result"] == {"rows": 3}
    events = _events(redis_server)
    assert len(events) == 1 and events[0][0] == b"SUCCESS" and b'"rows":3' in events[0][1]


def test_states_the_hook_declines_are_stored_as_celery_stores_them(
    backend: Any, redis_server: RedisServer
) -> None:
    backend.store_result("run-2", {"current": 1}, "PROGRESS")
    backend.store_result("run-2", {"done": True}, states.SUCCESS, request=Context(id="run-2"))
    assert backend.get_task_meta("run-2")["result"] == {"done": True}
    assert [state for state, _ in _events(redis_server)] == [b"SUCCESS"]


def _monitored(stack: Stack, log: Path) -> subprocess.Popen[bytes]:
    """redis-cli MONITOR: every command Redis runs, a script's own shown as ``[0 lua]``."""
    monitor = subprocess.Popen(
        ["redis-cli", "-p", str(stack.redis.port), "monitor"], stdout=log.open("wb")
    )
    stack.wait_for(lambda: log.read_text().startswith("OK"), 10, "MONITOR to start")
    return monitor


def _client_sent(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if " lua] " not in line]


def _events_sent(lines: list[str], state: str) -> list[str]:
    return [line for line in lines if '"XADD"' in line.upper() and f'"{state}"' in line]


def test_a_run_that_starts_at_once_costs_the_worker_two_scripts_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond kombu's and Celery's own commands, a run costs the worker two scripts: the
    start (STARTED, the run's marks, its stored result) and the store (result, SUCCESS).
    No event and no read of the result goes outside them, and the ledger still has every
    instant of the run."""
    runs = 20
    server = RedisServer(tmp_path / "redis")
    with own_stack(server, tmp_path, monkeypatch) as stack:
        producer = stack.producer()
        ids = [
            publish(producer, "health_check", {"check_database": False}, queue="default").run_id
            for _ in range(runs)
        ]
        log = tmp_path / "monitor.log"
        monitor = _monitored(stack, log)
        try:
            stack.start_worker("default", name="store@end")
            ended = stack.wait_for_states(ids, {"SUCCESS"}, 120)
        finally:
            monitor.terminate()
            monitor.wait(10)
        sent = _client_sent(log)
        scripted = [line for line in log.read_text().splitlines() if " lua] " in line]
        assert [line for line in sent if '"XADD"' in line.upper()] == []
        assert [line for line in sent if "celery-task-meta-" in line and "EVAL" not in line] == []
        assert len(_events_sent(scripted, "STARTED")) == runs
        assert len(_events_sent(scripted, "SUCCESS")) == runs
        for run_id in ids:
            scripts = [line for line in sent if run_id in line and '"EVALSHA"' in line.upper()]
            # Two scripts; a pool process's first call of each is sent twice (NOSCRIPT,
            # then SCRIPT LOAD and again).
            assert len({line.split('"')[3] for line in scripts}) == 2, scripts
            assert 2 <= len(scripts) <= 4, scripts
            run = ended[run_id]
            assert run.result is not None
            instants = [run.enqueued_at, run.received_at, run.started_at, run.finished_at]
            assert None not in instants, instants
            assert instants == sorted(instants), instants  # type: ignore[type-var]


def test_a_run_held_back_by_its_rate_limit_gets_its_received_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fundamentals runs at most 30/min per pool process: of two received together, the
    second waits about 2 s in the worker, long enough for its RECEIVED to be recorded."""
    server = RedisServer(tmp_path / "redis")
    with own_stack(server, tmp_path, monkeypatch) as stack:
        producer = stack.producer()
        ids = [
            publish(producer, "fundamentals", {"symbols": [symbol]}, queue="daily").run_id
            for symbol in ("AAPL", "MSFT")
        ]
        log = tmp_path / "monitor.log"
        monitor = _monitored(stack, log)
        try:
            stack.start_worker("daily", name="limited@daily", concurrency=2)
            ended = stack.wait_for_states(ids, {"SUCCESS"}, 120)
        finally:
            monitor.terminate()
            monitor.wait(10)
        received = _events_sent(_client_sent(log), "RECEIVED")
        waited = max(ids, key=lambda run_id: str(ended[run_id].started_at))
        assert len(received) == 1 and waited in received[0], received
        run = ended[waited]
        assert run.received_at is not None and run.started_at is not None
        assert (run.started_at - run.received_at).total_seconds() >= 0.5


def test_a_run_cancelled_while_queued_is_discarded_without_a_started_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker reads the cancel mark and appends STARTED in one script, STARTED only for
    a run that will run: the ledger never says a discarded run started, whichever batch
    the writer puts the events in."""
    server = RedisServer(tmp_path / "redis")
    with own_stack(server, tmp_path, monkeypatch) as stack:
        producer = stack.producer()
        run_id = publish(producer, "health_check", {"check_database": False}).run_id
        # What DELETE /api/v1/runs/{id} leaves for a worker that missed the broadcast.
        stack.redis.client().set(revoked_key("marketq:", run_id), "1", ex=600)
        log = tmp_path / "monitor.log"
        monitor = _monitored(stack, log)
        try:
            stack.start_worker("default", name="discard@x")
            result = producer.AsyncResult(run_id)
            stack.wait_for(lambda: result.state != "PENDING", 30, "the run's outcome")
        finally:
            monitor.terminate()
            monitor.wait(10)
        assert result.state == "REVOKED"
        lines = log.read_text().splitlines()
        assert [line for line in _events_sent(lines, "STARTED") if run_id in line] == []
