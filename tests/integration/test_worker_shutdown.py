"""SIGTERM on a real worker: idle, it stops at once; holding work, it takes its soft
shutdown to finish or re-queue (tests/integration/test_delivery.py has the busy cases);
a countdown run is never held (services/worker/src/marketq/worker/delayed.py)."""

from __future__ import annotations

import signal
import time

import pytest

from marketq.common.publish import publish
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

LONG_SOFT_SHUTDOWN = {"MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS": "20"}


def test_an_idle_worker_stops_without_waiting_out_its_soft_shutdown(stack: Stack) -> None:
    worker = stack.start_worker("default", name="idle@x", extra_env=LONG_SOFT_SHUTDOWN)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(30) == 0
    took = time.monotonic() - started
    assert took < 12, f"an idle worker took {took:.1f} s to stop (soft shutdown 20 s)"
    assert "Initiating Soft Shutdown" not in worker.log_text()


def test_a_countdown_run_waits_in_redis_so_a_stopping_worker_holds_nothing(
    stack: Stack,
) -> None:
    # A run with a countdown is not kept by the worker that received it (it would stay
    # unacknowledged, and be handed out twice once the visibility clock ran out): it
    # waits in the delayed set, so SIGTERM finds the worker idle and the run stays put.
    worker = stack.start_worker("default", name="holding@x", extra_env=LONG_SOFT_SHUTDOWN)
    run = publish(stack.producer(), "health_check", {"check_database": False}, countdown=8)
    client = stack.redis.client()
    stack.wait_for(lambda: client.zcard("marketq:delayed") == 1, 30, "the run to wait in Redis")
    assert client.hlen("marketq:unacked") == 0
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(30) == 0
    assert time.monotonic() - started < 12, "the worker waited as if it held the run"
    assert client.zcard("marketq:delayed") == 1
    # Any worker releases it once it is due, and it runs once.
    stack.start_worker("default", name="after@x")
    finished = stack.wait_for_states([run.run_id], {"SUCCESS", "FAILURE"}, timeout=60)
    assert finished[run.run_id].state == "SUCCESS" and finished[run.run_id].attempts == 1
