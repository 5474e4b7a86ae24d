"""The real worker app plus fault injection, for the failure-mode tests only.

Started with ``marketq-worker --app tests.support.chaos_app:app``. Everything of the real
worker is kept (catalog jobs, ledger, delivery settings); this module adds, through
Celery's own signals and environment variables:

- ``CHAOS_PRERUN_SLEEP``: seconds every job sleeps before it runs (keeps jobs in flight);
- an execution log in Redis: ``chaos:started`` / ``chaos:finished`` hashes count how often
  each run id started and ran to completion, ``chaos:pid:<run id>`` names the pool process;
- ``chaos.kill_own_child``: a task that SIGKILLs the pool process running it, every time.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import redis
from celery import signals

from marketq.common.settings import get_settings
from marketq.worker.app import app

STARTED = "chaos:started"
FINISHED = "chaos:finished"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


@signals.task_prerun.connect
def _record_start(task_id: str | None = None, **_: Any) -> None:
    client = _redis()
    client.hincrby(STARTED, task_id or "?", 1)
    client.set(f"chaos:pid:{task_id}", os.getpid(), ex=600)
    delay = float(os.environ.get("CHAOS_PRERUN_SLEEP", "0"))
    if delay:
        time.sleep(delay)


@signals.task_postrun.connect
def _record_finish(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    if state == "SUCCESS":
        _redis().hincrby(FINISHED, task_id or "?", 1)


@app.task(name="chaos.kill_own_child", bind=True, max_retries=2, default_retry_delay=0)
def kill_own_child(self: Any) -> None:
    """Dies like an OOM-killed process would, on every attempt."""
    os.kill(os.getpid(), signal.SIGKILL)
