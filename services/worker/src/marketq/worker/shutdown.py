"""A soft shutdown that lasts as long as the running jobs, at most the timeout.

Celery's soft shutdown sleeps the whole ``worker_soft_shutdown_timeout`` whenever a task
runs (with ``worker_enable_soft_shutdown_on_idle``, even when none does). The chart sizes
that timeout to cover a queue's longest hard time limit, so a running job always gets to
finish when its pod leaves (docs/design.md#scale-in-never-kills-work); sleeping it out
would make every rollout and scale-in wait up to that limit per pod. This worker polls
instead: it goes on to the cold shutdown (re-queueing whatever it still holds) as soon as
no job runs, or when the timeout ends.

Running jobs are counted by the pool processes themselves: the signal handler that runs
the soft shutdown blocks the main process's event loop, so the main process's own request
list does not change while it waits. Each pool process marks the job it runs with a file
(task_prerun creates it, the last task_postrun receiver removes it) in a directory the
main process made before forking them. The pool process hands the result back after
task_postrun, and the main process acknowledges the message only when it reads that
result after this wait: a short settle time after the last marker goes lets the result
reach the pipe, so the cold shutdown acknowledges it instead of cancelling the run and
re-queueing a job that already finished (tests/integration/test_delivery.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from celery import Celery, signals
from celery.apps.worker import Worker

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
SETTLE_SECONDS = 1.0
_running_dir: Path | None = None


def running_jobs() -> int:
    """Jobs the pool processes run right now (0 before the worker started)."""
    if _running_dir is None:
        return 0
    return sum(1 for _ in _running_dir.iterdir())


def _on_worker_init(**_: Any) -> None:
    global _running_dir
    _running_dir = Path(tempfile.mkdtemp(prefix="marketq-running-"))


def _on_worker_shutdown(**_: Any) -> None:
    if _running_dir is not None:
        shutil.rmtree(_running_dir, ignore_errors=True)


def _marker() -> Path | None:
    return None if _running_dir is None else _running_dir / str(os.getpid())


def _on_prerun(**_: Any) -> None:
    marker = _marker()
    if marker is not None:
        marker.touch()


def _on_postrun(**_: Any) -> None:
    marker = _marker()
    if marker is not None:
        marker.unlink(missing_ok=True)


class DrainingWorker(Worker):  # type: ignore[misc]  # celery ships no type hints
    """Celery's worker with the polling soft shutdown."""

    def wait_for_soft_shutdown(self) -> None:
        timeout = float(self.app.conf.worker_soft_shutdown_timeout or 0)
        if timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        running = running_jobs()
        if running:
            logger.warning(
                "soft shutdown: waiting up to %.0f s for %d running job(s)", timeout, running
            )
        waited = False
        while running and time.monotonic() < deadline:
            waited = True
            time.sleep(POLL_SECONDS)
            running = running_jobs()
        if running:
            logger.warning("soft shutdown: %d job(s) still running at the timeout", running)
        elif waited:
            time.sleep(min(SETTLE_SECONDS, max(0.0, deadline - time.monotonic())))


def _on_process_init(**_: Any) -> None:
    # Connected in the pool process, after every module connected its own receivers: the
    # marker goes only when every task_postrun receiver has run.
    signals.task_postrun.connect(_on_postrun, weak=False)


def install(app: Celery) -> None:
    """Use the draining worker for ``celery worker`` and count running jobs."""
    app.Worker = app.subclass_with_self(DrainingWorker)
    signals.worker_init.connect(_on_worker_init, weak=False)
    signals.worker_shutdown.connect(_on_worker_shutdown, weak=False)
    signals.worker_process_init.connect(_on_process_init, weak=False)
    signals.task_prerun.connect(_on_prerun, weak=False)
