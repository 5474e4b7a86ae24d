"""The real worker app plus fault injection, for the failure-mode tests only.

Started with ``marketq-worker --app tests.support.chaos_app:app``. Everything of the real
worker is kept (catalog jobs, ledger, delivery settings); this module adds, through
Celery's own signals and environment variables:

- ``CHAOS_PRERUN_SLEEP``: seconds every job sleeps before it runs (keeps jobs in flight);
- ``CHAOS_POSTRUN_SLEEP``: seconds a pool process sleeps after a run succeeded (its result
  stored) before the main process hears of it (a run that ended but is not yet acked);
- an execution log in Redis: ``chaos:started`` / ``chaos:finished`` hashes count how often
  each run id started and ran to completion, ``chaos:pid:<run id>`` names the pool process;
- ``CHAOS_JOURNAL``: a file each execution appends ``started <run id>`` and
  ``finished <run id>`` lines to (O_APPEND, so pool processes never interleave a line):
  unlike the Redis hashes it keeps counting while Redis is down. ``recorded <run id>``
  follows when the run's SUCCESS was also stored in the result backend (Celery's
  ``task_success``): Celery reports a run ``finished`` (``task_postrun``, state SUCCESS)
  even when storing its result failed because Redis died in that instant, and such a run,
  ended in no record, is delivered again;
- ``CHAOS_CRASH_ON_RECONNECT`` / ``CHAOS_SHUTDOWN_SLEEP``: the consumer dies of an error
  on its next reconnection, and the main process then lingers in its shutdown;
- ``chaos.kill_own_child``: a task that SIGKILLs the pool process running it, every time.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import redis
from celery import bootsteps, signals

from marketq.common.redis_client import redis_client
from marketq.common.settings import get_settings
from marketq.worker.app import app

STARTED = "chaos:started"
FINISHED = "chaos:finished"


def _redis() -> redis.Redis:
    settings = get_settings()
    return redis_client(settings.redis_url, settings)


def _journal(event: str, task_id: str | None) -> None:
    path = os.environ.get("CHAOS_JOURNAL")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{event} {task_id}\n".encode())
        finally:
            os.close(fd)


def read_journal(path: str) -> dict[str, dict[str, int]]:
    """{"started": {run id: n}, "finished": {run id: n}} from a CHAOS_JOURNAL file."""
    counted: dict[str, dict[str, int]] = {"started": {}, "finished": {}, "recorded": {}}
    if not os.path.exists(path):
        return counted
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            event, _, run_id = line.strip().partition(" ")
            counted[event][run_id] = counted[event].get(run_id, 0) + 1
    return counted


@signals.task_prerun.connect
def _record_start(task_id: str | None = None, **_: Any) -> None:
    _journal("started", task_id)
    if not os.environ.get("CHAOS_JOURNAL"):
        client = _redis()
        client.hincrby(STARTED, task_id or "?", 1)
        client.set(f"chaos:pid:{task_id}", os.getpid(), ex=600)
    delay = float(os.environ.get("CHAOS_PRERUN_SLEEP", "0"))
    if delay:
        time.sleep(delay)


@signals.task_success.connect
def _record_success(sender: Any = None, **_: Any) -> None:
    """Fired only once the result backend took the SUCCESS (after ``mark_as_done``)."""
    _journal("recorded", getattr(getattr(sender, "request", None), "id", None))


@signals.task_postrun.connect
def _record_finish(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    if state != "SUCCESS":
        return
    _journal("finished", task_id)
    if not os.environ.get("CHAOS_JOURNAL"):
        _redis().hincrby(FINISHED, task_id or "?", 1)
    delay = float(os.environ.get("CHAOS_POSTRUN_SLEEP", "0"))
    if delay:
        time.sleep(delay)


@app.task(name="chaos.kill_own_child", bind=True, max_retries=2, default_retry_delay=0)
def kill_own_child(self: Any) -> None:
    """Dies like an OOM-killed process would, on every attempt."""
    os.kill(os.getpid(), signal.SIGKILL)


class _CrashOnReconnect(bootsteps.StartStopStep):  # type: ignore[misc]
    """``CHAOS_CRASH_ON_RECONNECT``: the consumer raises the AttributeError kombu's Redis
    transport raised on a reconnection, so the consumer dies as it did then."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._starts = 0

    def start(self, consumer: Any) -> None:
        self._starts += 1
        if self._starts > 1 and os.environ.get("CHAOS_CRASH_ON_RECONNECT"):
            raise AttributeError("'NoneType' object has no attribute 'hostname'")


@signals.worker_shutdown.connect
def _linger(**_: Any) -> None:
    """``CHAOS_SHUTDOWN_SLEEP``: a main process that hangs in its shutdown."""
    time.sleep(float(os.environ.get("CHAOS_SHUTDOWN_SLEEP", "0")))


app.steps["consumer"].add(_CrashOnReconnect)
