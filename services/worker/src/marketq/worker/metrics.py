"""Task metrics of a worker, recorded from Celery's signals.

Most signals fire in the pool child that runs the task (prerun, postrun, success,
failure, retry); revoked, and the failure/retry of a run whose child died, fire in the
main process. With ``PROMETHEUS_MULTIPROC_DIR`` set (``marketq-worker`` sets it before
exec) every process writes its own files and the main process serves their sum
(``marketq.worker.multiproc``). Labels are the queue and the catalog job (``job_name``);
never a hostname or pid.

Hot-path cost: a dict lookup for an already bound child and one mmap write per value.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from celery import signals
from prometheus_client import Counter, Histogram

from marketq.common.catalog import CATALOG
from marketq.common.celery_app import effective_time_limits
from marketq.common.metrics import count_published
from marketq.common.publish import ENQUEUED_AT_HEADER, enqueued_at_from_headers
from marketq.common.settings import get_settings

OUTCOMES = ("succeeded", "failed", "retried", "rejected", "revoked")

TASK_OUTCOMES = Counter(
    "marketq_task_outcomes",
    "Finished task attempts by outcome: succeeded, failed, retried (will run again), "
    "rejected (the task rejected its message), revoked (cancelled or expired).",
    ["queue", "job_name", "outcome"],
)
EXECUTIONS_AFTER_END = Counter(
    "marketq_task_executions_after_end",
    "Executions that started after their run had already ended (SUCCESS, FAILURE or "
    "REVOKED): a run executed twice. Delivery is designed to make this 0.",
    ["queue", "job_name"],
)
TASK_FAILURES = Counter(
    "marketq_task_failures",
    "Failed task attempts by exception class name.",
    ["queue", "job_name", "exception"],
)
_RUNTIME_BASE_BUCKETS = (
    0.005,
    0.025,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1200,
    3600,
)


def runtime_buckets() -> tuple[float, ...]:
    """The base buckets plus every job's soft time limit and 80% of it: the runtime alert
    compares p95 with 0.8 x the soft limit, which interpolation inside a wide bucket
    would otherwise blur (runs of 130 s in a 120..300 s bucket read as p95 near 300 s)."""
    edges = set(_RUNTIME_BASE_BUCKETS)
    for soft, _hard in effective_time_limits(get_settings(), CATALOG).values():
        edges.update((float(soft), 0.8 * soft))
    return tuple(sorted(edges))


TASK_RUNTIME = Histogram(
    "marketq_task_runtime_seconds",
    "Time a pool process spent running a task (every outcome).",
    ["queue", "job_name"],
    buckets=runtime_buckets(),
)
TASK_QUEUE_WAIT = Histogram(
    "marketq_task_queue_wait_seconds",
    "Time from when a run was due (max of enqueue time and ETA) to when it started.",
    ["queue", "job_name"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

_outcomes: dict[tuple[str, str, str], Counter] = {}
_failures: dict[tuple[str, str, str], Counter] = {}
_runtime: dict[tuple[str, str], Histogram] = {}
_wait: dict[tuple[str, str], Histogram] = {}
# task id -> perf_counter at prerun; a pool process runs one task at a time.
_started: dict[str, float] = {}


def _queue_of(request: Any, job_name: str) -> str:
    delivery = getattr(request, "delivery_info", None) or {}
    queue = delivery.get("routing_key")
    return str(queue) if queue else CATALOG[job_name].queue.value


def count_execution_after_end(queue: str, job_name: str) -> None:
    EXECUTIONS_AFTER_END.labels(queue, job_name).inc()


def count_outcome(queue: str, job_name: str, outcome: str) -> None:
    key = (queue, job_name, outcome)
    child = _outcomes.get(key)
    if child is None:
        child = _outcomes[key] = TASK_OUTCOMES.labels(*key)
    child.inc()


def _count_failure(queue: str, job_name: str, exception: str) -> None:
    key = (queue, job_name, exception)
    child = _failures.get(key)
    if child is None:
        child = _failures[key] = TASK_FAILURES.labels(*key)
    child.inc()


def _histogram(
    cache: dict[tuple[str, str], Histogram], family: Histogram, queue: str, job: str
) -> Histogram:
    child = cache.get((queue, job))
    if child is None:
        child = cache[(queue, job)] = family.labels(queue, job)
    return child


def due_at(request: Any) -> float | None:
    """max(enqueued_at, eta) of the message being run, epoch seconds."""
    raw = getattr(request, ENQUEUED_AT_HEADER, None)
    if raw is None:
        raw = (getattr(request, "headers", None) or {}).get(ENQUEUED_AT_HEADER)
    enqueued = enqueued_at_from_headers(raw)
    if enqueued is None:
        return None
    due = enqueued.timestamp()
    eta = getattr(request, "eta", None)
    if isinstance(eta, str):
        try:
            eta = datetime.fromisoformat(eta)
        except ValueError:
            eta = None
    if isinstance(eta, datetime) and eta.tzinfo is not None:
        due = max(due, eta.timestamp())
    return due


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task is None or task_id is None or task.name not in CATALOG:
        return
    _started[task_id] = time.perf_counter()
    due = due_at(task.request)
    if due is not None:
        queue = _queue_of(task.request, task.name)
        wait = max(0.0, time.time() - due)
        _histogram(_wait, TASK_QUEUE_WAIT, queue, task.name).observe(wait)


def _on_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    if task is None or task_id is None or task.name not in CATALOG:
        return
    started = _started.pop(task_id, None)
    queue = _queue_of(task.request, task.name)
    if started is not None:
        _histogram(_runtime, TASK_RUNTIME, queue, task.name).observe(time.perf_counter() - started)
    if state == "REJECTED":
        count_outcome(queue, task.name, "rejected")


def _on_success(sender: Any = None, **_: Any) -> None:
    if sender is None or sender.name not in CATALOG:
        return
    count_outcome(_queue_of(sender.request, sender.name), sender.name, "succeeded")


def _on_failure(sender: Any = None, exception: Any = None, **_: Any) -> None:
    if sender is None or sender.name not in CATALOG:
        return
    # In the main process (a pool child died) the sender's request is not the run's;
    # the catalog's queue is then the best label there is.
    queue = _queue_of(sender.request, sender.name)
    count_outcome(queue, sender.name, "failed")
    _count_failure(queue, sender.name, type(exception).__name__ if exception else "Unknown")


def _on_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
    if sender is None or sender.name not in CATALOG:
        return
    count_outcome(_queue_of(request, sender.name), sender.name, "retried")


def _on_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    name = getattr(sender, "name", None)
    if not isinstance(name, str) or name not in CATALOG:
        return
    count_outcome(_queue_of(request, name), name, "revoked")


def _on_published(sender: str | None = None, headers: Any = None, **_: Any) -> None:
    """A worker publishes two kinds of message: retries of a run (``Task.retry``, or the
    main process re-sending a run whose pool process died; their ``retries`` header is
    above 0 and they are not new runs) and the Celery links of a run that succeeded, which
    a plain Celery client may set (new runs: ``source="chain"``)."""
    if sender is None or sender not in CATALOG:
        return
    if (headers or {}).get("retries"):
        return
    count_published(CATALOG[sender].queue.value, sender, "chain")


def connect_metric_signals() -> None:
    """Wire the handlers above to Celery's signals (idempotent: dispatch_uid)."""
    handlers = {
        signals.task_prerun: _on_prerun,
        signals.task_postrun: _on_postrun,
        signals.task_success: _on_success,
        signals.task_failure: _on_failure,
        signals.task_retry: _on_retry,
        signals.task_revoked: _on_revoked,
        signals.after_task_publish: _on_published,
    }
    for signal, handler in handlers.items():
        signal.connect(handler, weak=False, dispatch_uid=f"marketq.metrics.{handler.__name__}")


def init_series(queue: str) -> None:
    """Zero series for every job of the worker's queue, created in the main process
    before the pool forks, so ``rate()`` sees the first event of each."""
    for spec in CATALOG.values():
        if spec.queue.value != queue and not spec.any_queue:
            continue
        for outcome in OUTCOMES:
            count_key = (queue, spec.name, outcome)
            if count_key not in _outcomes:
                _outcomes[count_key] = TASK_OUTCOMES.labels(*count_key)
        _histogram(_runtime, TASK_RUNTIME, queue, spec.name)
        _histogram(_wait, TASK_QUEUE_WAIT, queue, spec.name)
        EXECUTIONS_AFTER_END.labels(queue, spec.name)


WEBHOOK_DELIVERIES = Counter(
    "marketq_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered (2xx), retried (5xx, 429, timeout or "
    "connection error; tried again), failed (refused URL, other 4xx, or out of time).",
    ["outcome"],
)
