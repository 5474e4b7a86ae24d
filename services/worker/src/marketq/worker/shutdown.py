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
list does not change while it waits. Each pool process marks the job it runs in its slot
of a shared memory page the main process mapped before forking them: task_prerun writes
the process's pid there, the last task_postrun receiver writes 0. That is a store into
memory, not a system call, so the bookkeeping costs nothing measurable per run (the file
per run it replaced cost about 5% of a pool process's time on a no-op job). A slot whose
pid is no longer alive (a pool process killed mid-job) does not count, and a replacement
process clears its slot when it starts. The pool process hands the result back after
task_postrun, and the main process acknowledges the message only when it reads that
result after this wait: a short settle time after the last marker goes lets the result
reach the pipe, so the cold shutdown acknowledges it instead of cancelling the run and
re-queueing a job that already finished (tests/integration/test_delivery.py).
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import time
from typing import Any

from billiard.process import current_process  # type: ignore[import-untyped]  # no hints
from celery import Celery, signals
from celery.apps.worker import Worker

from marketq.worker.multiproc import process_exists

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
SETTLE_SECONDS = 1.0
# One 8-byte pid per pool process index; billiard numbers pool processes 0..concurrency-1
# and gives a replacement the index of the process it replaces.
SLOTS = 4096
_SLOT = struct.Struct("q")
_running: mmap.mmap | None = None


def running_jobs() -> int:
    """Jobs the pool processes run right now (0 before the worker started)."""
    if _running is None:
        return 0
    pids = (pid for (pid,) in _SLOT.iter_unpack(_running) if pid)
    return sum(1 for pid in pids if process_exists(pid))


def _on_worker_init(**_: Any) -> None:
    global _running
    # Anonymous and shared: the pool processes forked after this write into the same page.
    _running = mmap.mmap(-1, SLOTS * _SLOT.size)


def _on_worker_shutdown(**_: Any) -> None:
    global _running
    if _running is not None:
        _running.close()
        _running = None


def _slot_offset() -> int | None:
    index = getattr(current_process(), "index", 0) or 0
    if _running is None or index >= SLOTS:
        return None
    return int(index) * _SLOT.size


def _mark(pid: int) -> None:
    offset = _slot_offset()
    if offset is not None and _running is not None:
        _SLOT.pack_into(_running, offset, pid)


def _on_prerun(**_: Any) -> None:
    _mark(os.getpid())


def _on_postrun(**_: Any) -> None:
    _mark(0)


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
    # A replacement for a process killed mid-job starts with its slot cleared.
    _mark(0)
    # Connected in the pool process, after every module connected its own receivers: the
    # slot clears only when every task_postrun receiver has run.
    signals.task_postrun.connect(_on_postrun, weak=False)


def install(app: Celery) -> None:
    """Use the draining worker for ``celery worker`` and count running jobs."""
    app.Worker = app.subclass_with_self(DrainingWorker)
    signals.worker_init.connect(_on_worker_init, weak=False)
    signals.worker_shutdown.connect(_on_worker_shutdown, weak=False)
    signals.worker_process_init.connect(_on_process_init, weak=False)
    signals.task_prerun.connect(_on_prerun, weak=False)
