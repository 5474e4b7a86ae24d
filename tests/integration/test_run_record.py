"""One run record for every producer, and nothing left stuck (issue 11).

Real redis-server, real ``marketq-worker`` (its main process hosts the ledger writer and
the reconciler), real ``marketq-beat`` and ``marketq-api`` processes. The time limits are
capped so the visibility timeout the settings derive is 12 s: a dead worker is judged
within a test's patience.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from marketq.common.celery_app import visibility_timeout
from marketq.common.db.models import TaskRun
from marketq.common.ledger_writer import GROUP
from marketq.common.publish import MAX_MESSAGE_BYTES, prepare_run, send_runs
from marketq.common.queues import Queue
from marketq.common.run_events import stream_key
from marketq.common.settings import get_settings
from tests.fixtures.api import ApiProcess, start_api
from tests.fixtures.beat import BeatFleet, queued_messages, write_schedule
from tests.fixtures.workers import CHAOS_APP, Stack, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def fast(stack: Stack) -> Stack:
    caps = {f"MARKETQ_QUEUES__{q.value.upper()}__MAX_TIME_LIMIT_SECONDS": "5" for q in Queue}
    stack.set_env(
        **caps,
        MARKETQ_VISIBILITY_TIMEOUT_MARGIN_SECONDS="2",
        MARKETQ_UNACKED_RESTORE_INTERVAL_SECONDS="1",
        MARKETQ_RECONCILE_INTERVAL_SECONDS="1",
        MARKETQ_RECONCILE_QUEUED_AFTER_SECONDS="2",
        MARKETQ_WORKER_HEARTBEAT_SECONDS="1",
    )
    assert visibility_timeout(get_settings()) == 12
    return stack


def run_status(api: ApiProcess, run_id: str) -> dict[str, Any] | None:
    with api.client("read") as client:
        answer = client.get(f"/api/v1/runs/{run_id}")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def listed(api: ApiProcess, state: str) -> set[str]:
    with api.client("read") as client:
        answer = client.get("/api/v1/runs", params={"state": state, "limit": 500})
    assert answer.status_code == 200, answer.text
    return {run["run_id"] for run in answer.json()["runs"]}


def submit(api: ApiProcess, job: str, params: dict[str, Any] | None = None) -> str:
    with api.client("trigger") as client:
        answer = client.post(f"/api/v1/jobs/{job}/runs", json={"params": params or {}})
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


def kill_worker(worker: WorkerProcess) -> None:
    children = worker.children()
    worker.signal(signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait_exit(10)


def queued_ids(stack: Stack, queue: str) -> set[str]:
    return {m["headers"]["id"] for m in queued_messages(stack, queue)}


def test_beat_fired_run_is_listed_as_queued(fast: Stack, beats: BeatFleet) -> None:
    path = write_schedule(
        fast.logdir.parent / "schedule.yaml",
        {"probe": {"job": "health_check", "every_seconds": 1}},
    )
    fast.set_env(MARKETQ_SCHEDULE_FILE=str(path))
    # The daily worker never consumes the default queue: beat's runs stay queued, and its
    # main process writes the ledger.
    fast.start_worker("daily", name="writer@x")
    api = start_api(fast)
    try:
        beats.start("a")
        fired = fast.wait_for(lambda: queued_ids(fast, "default"), 30, "a fire of the probe")
        run_id = sorted(fired)[0]
        status = fast.wait_for(lambda: run_status(api, run_id), 15, "the fired run by id")
        assert status["state"] == "QUEUED" and status["job"] == "health_check"
        fast.wait_for(lambda: run_id in listed(api, "QUEUED"), 15, "the run in ?state=QUEUED")
    finally:
        api.stop()


@pytest.mark.parametrize("action", ["republish", "lost"])
def test_run_survives_flushall(fast: Stack, action: str) -> None:
    fast.set_env(MARKETQ_RECONCILE_QUEUED_ACTION=action)
    fast.start_worker("daily", name="writer@x")
    api = start_api(fast)
    try:
        run_id = submit(api, "health_check")
        fast.wait_for(lambda: run_id in listed(api, "QUEUED"), 15, "the run in the ledger")
        fast.redis.client().flushall()
        assert run_id not in queued_ids(fast, "default")
        if action == "republish":
            fast.wait_for(lambda: run_id in queued_ids(fast, "default"), 30, "the re-publish")
            assert run_status(api, run_id)["state"] == "QUEUED"  # type: ignore[index]
            fast.start_worker("default", name="default@x")
            fast.wait_for_states([run_id], {"SUCCESS"}, timeout=30)
        else:
            runs = fast.wait_for_states([run_id], {"LOST"}, timeout=30)
            assert "message" in (runs[run_id].error or "")
            assert run_status(api, run_id)["state"] == "LOST"  # type: ignore[index]
    finally:
        api.stop()


def _hold_one_started_run(fast: Stack, api: ApiProcess) -> tuple[WorkerProcess, str]:
    doomed = fast.start_worker(
        "default", name="doomed@x", app=CHAOS_APP, extra_env={"CHAOS_PRERUN_SLEEP": "4"}
    )
    run_id = submit(api, "health_check")
    fast.wait_for(
        lambda: (run_status(api, run_id) or {}).get("state") == "STARTED",
        20,
        "the run STARTED on the doomed worker",
        interval=0.05,
    )
    kill_worker(doomed)
    return doomed, run_id


def test_sigkilled_workers_started_run_is_reconciled(fast: Stack) -> None:
    fast.start_worker("daily", name="writer@x")
    api = start_api(fast)
    try:
        _doomed, run_id = _hold_one_started_run(fast, api)
        # Within the visibility timeout the run may still come back; past it, the
        # reconciler decides: re-queued (its message is back in the queue) or LOST.
        status = fast.wait_for(
            lambda: (s := run_status(api, run_id)) and s["state"] in {"QUEUED", "LOST"} and s,
            45,
            "the reconciler to settle the dead worker's run",
        )
        if status["state"] == "QUEUED":
            assert run_id in queued_ids(fast, "default")
        fast.start_worker("default", name="survivor@x")
        if status["state"] == "QUEUED":
            fast.wait_for_states([run_id], {"SUCCESS"}, timeout=30)
    finally:
        api.stop()


def test_cancel_terminate_on_a_run_no_process_holds_ends_revoked(fast: Stack) -> None:
    fast.start_worker("daily", name="writer@x")
    api = start_api(fast)
    try:
        _doomed, run_id = _hold_one_started_run(fast, api)
        with api.client("trigger") as client:
            answer = client.post(f"/api/v1/runs/{run_id}/cancel", params={"terminate": "true"})
        assert answer.status_code == 202, answer.text
        fast.wait_for_states([run_id], {"REVOKED"}, timeout=20)
        # Its message comes back after the visibility timeout; it must not run again.
        fast.start_worker("default", name="survivor@x")
        time.sleep(15)
        assert fast.runs()[run_id].state == "REVOKED"
    finally:
        api.stop()


BUSY_SCRIPT = """
local start = redis.call('TIME')
local began = start[1] * 1000000 + start[2]
while true do
  local now = redis.call('TIME')
  if now[1] * 1000000 + now[2] - began > tonumber(ARGV[1]) then return 1 end
end
"""


def busy_redis(stack: Stack, micros: int = 1_500_000) -> threading.Thread:
    """Keep Redis busy (single-threaded: every other command waits) for ``micros``."""
    client = stack.redis.client()
    thread = threading.Thread(target=lambda: client.eval(BUSY_SCRIPT, 0, micros))
    thread.start()
    time.sleep(0.1)
    return thread


def test_redis_timeout_after_the_submit_script_may_have_run_is_outcome_unknown(
    fast: Stack,
) -> None:
    api = start_api(fast, {"MARKETQ_API_REDIS_TIMEOUT_SECONDS": "0.5"})
    try:
        warm = submit(api, "health_check")  # the submit script is loaded: one EVALSHA
        # Redis is busy (one script runs 1.5 s): the API's submit script waits in its socket,
        # the client gives up after 0.5 s, and Redis runs the script afterwards. Nobody can
        # say it was not accepted.
        busy = busy_redis(fast)
        with api.client("trigger") as http:
            first = http.post(
                "/api/v1/jobs/health_check/runs",
                json={"params": {}},
                headers={"Idempotency-Key": "outcome-unknown-1"},
            )
        assert first.status_code == 503, first.text
        assert first.json()["error"]["code"] == "outcome_unknown"
        assert int(first.headers["Retry-After"]) >= 1
        assert "Idempotency-Key" in first.json()["error"]["message"]
        busy.join()
        # The script did run: the message is in the queue, and the retry with the same
        # key answers the run it made.
        ids = fast.wait_for(lambda: queued_ids(fast, "default") - {warm}, 10, "the late publish")
        time.sleep(0.5)
        with api.client("trigger") as http:
            retry = http.post(
                "/api/v1/jobs/health_check/runs",
                json={"params": {}},
                headers={"Idempotency-Key": "outcome-unknown-1"},
            )
        assert retry.status_code == 202, retry.text
        assert retry.json()["run_id"] in ids and len(ids) == 1
    finally:
        api.stop()


def test_submit_without_idempotency_key_on_timeout_is_still_outcome_unknown(
    fast: Stack,
) -> None:
    api = start_api(fast, {"MARKETQ_API_REDIS_TIMEOUT_SECONDS": "0.5"})
    try:
        submit(api, "health_check")
        busy = busy_redis(fast)
        answer = httpx.post(
            f"{api.url}/api/v1/jobs/health_check/runs",
            json={"params": {}},
            headers={"Authorization": "Bearer mq_test_trigger_key"},
            timeout=10,
        )
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "outcome_unknown"
        assert "Retry-After" in answer.headers
        busy.join()
    finally:
        api.stop()


def _pending_of(stack: Stack, consumer: str) -> int:
    key = stream_key(stack.settings().redis_key_prefix)
    try:
        consumers = stack.redis.client().xinfo_consumers(key, GROUP)
    except redis.ResponseError:  # no group yet: no writer has started
        return 0
    for info in consumers:
        if info["name"].decode() == consumer:
            return int(info["pending"])
    return 0


def test_writer_killed_mid_batch_loses_no_transition(fast: Stack) -> None:
    fast.set_env(MARKETQ_LEDGER_BATCH_SIZE="50", MARKETQ_LEDGER_CLAIM_IDLE_SECONDS="2")
    app = fast.producer()
    runs = [prepare_run("health_check", {}, settings=fast.settings()) for _ in range(6000)]
    for start in range(0, len(runs), 1000):
        send_runs(app, runs[start : start + 1000], source="cli")
    doomed = fast.start_worker("daily", name="doomed@x", wait_ready=False)
    # Freeze the writer while it holds events it read and has not acknowledged (between
    # XREADGROUP and XACK), then kill it: those events are mid-batch.
    # Its start-up (imports) can take minutes on a loaded machine: wait that long.
    fast.wait_for(lambda: _pending_of(fast, "doomed@x") > 0, 240, "a batch in flight", 0.002)
    doomed.signal(signal.SIGSTOP)
    held = _pending_of(fast, "doomed@x")
    assert held > 0
    kill_worker(doomed)
    fast.start_worker("daily", name="survivor@x")
    ids = {r.run_id for r in runs}

    def written() -> int:  # a cheap poll: reading every row would hold off the writer
        with fast.sessions()() as session:
            return session.scalar(select(func.count()).select_from(TaskRun)) or 0

    fast.wait_for(lambda: written() >= len(ids), 240, "every run in the ledger", 1.0)
    rows = fast.runs()
    assert set(rows) == ids
    assert all(row.state == "QUEUED" and row.job == "health_check" for row in rows.values())
    key = stream_key(fast.settings().redis_key_prefix)
    client = fast.redis.client()
    fast.wait_for(lambda: client.xpending(key, GROUP)["pending"] == 0, 30, "every event acked")
    # Trimmed after acknowledgement: the stream keeps only what is not yet in SQL.
    fast.wait_for(lambda: client.xlen(key) < 100, 30, "the stream trimmed")


def bars_csv(rows: int) -> str:
    lines = ["symbol,date,open,high,low,close,volume"]
    start = date(2020, 1, 1)
    for i in range(rows):
        day = (start + timedelta(days=i)).isoformat()
        lines.append(f"UPL{i % 7},{day},100.5,101.25,99.75,100.875,{1000 + i}")
    return "\n".join(lines) + "\n"


def test_api_limits_refuse_before_publishing_and_uploads_carry_large_inputs(
    fast: Stack,
) -> None:
    api = start_api(fast, {"MARKETQ_API_MAX_BODY_BYTES": "100000"})
    try:
        with api.client("trigger") as http:
            # Over the body limit: 413 before anything is read or published.
            huge = {"params": {"dataset": "daily_bars", "content": "x" * 120_000}}
            refused = http.post("/api/v1/jobs/data_import/runs", json=huge)
            assert refused.status_code == 413, refused.text
            assert refused.json()["error"]["code"] == "body_too_large"
            # Within the body limit, but the message would exceed 64 KiB (JSON escapes and
            # base64 grow it): 413 naming params, nothing published.
            quoted = {"params": {"dataset": "daily_bars", "content": '"' * 40_000}}
            too_big = http.post("/api/v1/jobs/data_import/runs", json=quoted)
            assert too_big.status_code == 413, too_big.text
            assert too_big.json()["error"]["code"] == "message_too_large"
            assert too_big.json()["error"]["details"][0]["field"] == "params"
            assert queued_messages(fast, "default") == []

            # A 200 KB file goes through an upload and travels by id.
            text = bars_csv(3000)
            assert len(text) > 100_000  # over the body limit: uploads have their own
            stored = http.post(
                "/api/v1/uploads", content=text.encode(), headers={"Content-Type": "text/csv"}
            )
            assert stored.status_code == 201, stored.text
            upload_id = stored.json()["upload_id"]
            run = http.post(
                "/api/v1/jobs/data_import/runs",
                json={"params": {"dataset": "daily_bars", "upload_id": upload_id}},
            )
            assert run.status_code == 202, run.text
        messages = queued_messages(fast, "default")
        assert len(messages) == 1
        raw = fast.redis.client().lrange("marketq:default", 0, -1)
        assert all(len(m) <= MAX_MESSAGE_BYTES for m in raw)
        fast.start_worker("default", name="importer@x")
        rows = fast.wait_for_states([run.json()["run_id"]], {"SUCCESS", "FAILURE"}, timeout=60)
        imported = rows[run.json()["run_id"]]
        assert imported.state == "SUCCESS", imported.error
        assert imported.result["rows"] == 3000  # type: ignore[index]
    finally:
        api.stop()
