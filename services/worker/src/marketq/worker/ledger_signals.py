"""Follow every run through Celery's signals: each transition is one run event.

RECEIVED and REVOKED fire in the worker's main process, the rest in the pool child that
runs the task, except when a pool child dies: then RETRY or FAILURE fire in the main
process. Each handler appends one event to the run-event stream (one Redis round trip);
the ledger writer puts it in SQL in a batch (marketq.common.ledger_writer). Only catalog
jobs are recorded. STARTED goes in the round trip that also reads the run's cancel and
webhook marks (``JobTask.record_start``); SUCCESS goes in the script that stores the
result, when results live on the broker's Redis (``marketq.common.results``).

RECEIVED is held back: the consumer loop is the worker's one serial path, and a run almost
always starts within milliseconds of its receipt (no prefetch beyond the pool, no ETA
runs held here: marketq.worker.delayed). The receipt travels to the pool child with the
request and its STARTED event carries it; a run still not started ``RECEIVED_AFTER_SECONDS``
after its receipt (rate-limited, or the pool busy) gets its RECEIVED event then, several
in one round trip, from a timer of the consumer loop (docs/design.md#run-ledger).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import bootsteps, signals

from marketq.common.catalog import CATALOG
from marketq.common.results import EndEvent, MarketqRedisBackend, MarketqSentinelBackend
from marketq.common.run_events import detail, stream_key
from marketq.worker import resources
from marketq.worker.task import RECEIPT_KEY, JobTask, message_enqueued_at

log = logging.getLogger(__name__)


def _is_job(name: str | None) -> bool:
    return name is not None and name in CATALOG


def _describe(exc: BaseException | Any) -> str:
    if isinstance(exc, BaseException):
        text = str(exc)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return str(exc)


# A run that starts sooner after its receipt has no RECEIVED event of its own.
RECEIVED_AFTER_SECONDS = 0.5
FLUSH_INTERVAL_SECONDS = 0.25


@dataclass
class _Waiting:
    """Received runs whose RECEIVED event is held back, by run id: (monotonic time of
    receipt, the worker's request, the event's fields). Used by the consumer loop only."""

    runs: dict[str, tuple[float, Any, dict[str, Any]]] = field(default_factory=dict)
    held: bool = False  # a timer flushes (RecordWaitingRuns); otherwise append at once


_WAITING = _Waiting()


def _receipt(request: Any, received: float) -> dict[str, Any]:
    headers = request.message.headers if request.message is not None else {}
    enqueued = message_enqueued_at(headers)
    eta = request.eta
    return {
        "received_at": received,
        # Messages from producers that add no enqueue header sort by their arrival.
        "enqueued_at": enqueued.timestamp() if enqueued is not None else received,
        "eta": eta.isoformat() if hasattr(eta, "isoformat") else eta,
        "parent_id": headers.get("parent_id"),
    }


def _on_received(request: Any = None, **_: Any) -> None:
    if request is None or not _is_job(request.name):
        return
    received = time.time()
    receipt = _receipt(request, received)
    request.request_dict[RECEIPT_KEY] = receipt  # sent to the pool child with the run
    fields = {
        "job": request.name,
        "queue": (request.delivery_info or {}).get("routing_key"),
        "params": request.kwargs or {},
        "worker": request.hostname,
        "at": received,
        **receipt,
    }
    if _WAITING.held:
        _WAITING.runs[request.id] = (time.monotonic(), request, fields)
    else:
        resources.events().append(request.id, "RECEIVED", **fields)


def record_waiting_runs() -> int:
    """RECEIVED for each held-back run not started within RECEIVED_AFTER_SECONDS, in one
    round trip; forget runs that started or ended."""
    now = time.monotonic()
    due: list[tuple[str, dict[str, Any]]] = []
    for run_id, (since, request, fields) in list(_WAITING.runs.items()):
        if request.worker_pid is not None or request.acknowledged:
            del _WAITING.runs[run_id]  # started (its STARTED has the receipt) or done
        elif now - since >= RECEIVED_AFTER_SECONDS:
            del _WAITING.runs[run_id]
            due.append((run_id, fields))
    if not due:
        return 0
    events = resources.events()
    try:
        pipe = events.client.pipeline(transaction=False)
        for run_id, fields in due:
            events.add_to(pipe, run_id, "RECEIVED", **fields)
        pipe.execute()
    except redis.RedisError as exc:
        # Their STARTED (or the reconciler) still records them; RECEIVED is a waypoint.
        log.warning("could not record RECEIVED of %d waiting run(s): %s", len(due), exc)
        return 0
    return len(due)


class RecordWaitingRuns(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: while the consumer runs, RECEIVED events are held back and a
    timer of its loop records those of runs that wait."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timer: Any = None

    def start(self, consumer: Any) -> None:
        if consumer.timer is None:
            return
        self._timer = consumer.timer.call_repeatedly(FLUSH_INTERVAL_SECONDS, record_waiting_runs)
        _WAITING.held = True

    def stop(self, consumer: Any) -> None:
        # The consumer stops (connection lost, shutdown): runs it had not started go back
        # to their queue with their messages, so QUEUED, which the ledger still says, is
        # right for them.
        _WAITING.held = False
        _WAITING.runs.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def shutdown(self, consumer: Any) -> None:
        self.stop(consumer)


def _on_prerun(task_id: str | None = None, task: Any = None, kwargs: Any = None, **_: Any) -> None:
    if task_id is None or not isinstance(task, JobTask):
        return
    task.record_start(task_id, kwargs or {})


def _success_event(task_id: str, state: str, result: Any, request: Any) -> EndEvent | None:
    """The SUCCESS event the result backend stores with a catalog job's result, when the
    results live on the broker's Redis, where the run-event stream is."""
    if state != "SUCCESS" or not _is_job(getattr(request, "task", None)):
        return None
    settings = resources.settings()
    if settings.effective_result_backend_url != settings.effective_broker_url:
        return None
    return EndEvent(
        stream=stream_key(settings.redis_key_prefix),
        max_len=settings.ledger_stream_max_len,
        state="SUCCESS",
        detail=detail(task_id, result=_result_summary(result)),
    )


def _result_summary(result: Any) -> dict[str, Any]:
    return result if isinstance(result, dict) else {}


def _on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if sender is None or not _is_job(sender.name):
        return
    if getattr(sender.request, "marketq_end_recorded", False):
        return  # stored with the result (_success_event)
    resources.events().append(sender.request.id, "SUCCESS", result=_result_summary(result))


def _on_failure(
    sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any
) -> None:
    if sender is None or task_id is None or not _is_job(sender.name):
        return
    resources.events().append(task_id, "FAILURE", error=_describe(exception))


def _on_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    if sender is None or request is None or not _is_job(sender.name):
        return
    reason_text = _describe(getattr(reason, "exc", None) or reason)
    resources.events().append(request.id, "RETRY", error=reason_text)


def _on_revoked(
    sender: Any = None,
    request: Any = None,
    terminated: bool = False,
    signum: Any = None,
    expired: bool = False,
    **_: Any,
) -> None:
    # The request is a worker Request when an expired or revoked message is discarded, a
    # task Context when a running task is terminated; the sender is the task either way.
    if request is None or sender is None or not _is_job(getattr(sender, "name", None)):
        return
    if expired:
        reason = "expired before a worker could start it"
    elif terminated:
        reason = f"terminated (signal {signum})"
    else:
        reason = "revoked"
    resources.events().append(request.id, "REVOKED", error=reason)


def _on_published(
    sender: str | None = None,
    headers: Any = None,
    body: Any = None,
    routing_key: str | None = None,
    **_: Any,
) -> None:
    """A Celery link the worker published after its run succeeded (a plain Celery client
    may send runs with links): QUEUED from the moment it is in Redis, like every other
    run (retries, ``retries`` > 0, are not new)."""
    headers = headers or {}
    if not _is_job(sender) or headers.get("retries") or not headers.get("id"):
        return
    kwargs = body[1] if isinstance(body, (list, tuple)) and len(body) > 1 else {}
    enqueued = message_enqueued_at(headers)
    resources.events().append(
        headers["id"],
        "QUEUED",
        job=sender,
        queue=routing_key,
        params=kwargs if isinstance(kwargs, dict) else {},
        enqueued_at=(enqueued.timestamp() if enqueued is not None else time.time()),
        eta=headers.get("eta"),
        parent_id=headers.get("parent_id"),
    )


def _on_rejected(message: Any = None, exc: Any = None, **_: Any) -> None:
    log.error("rejected a message the worker cannot run: %s", _describe(exc))


def _on_unknown(name: str | None = None, id: str | None = None, **_: Any) -> None:
    log.error("received unknown task %s (run %s); it is not in the catalog", name, id)


def connect_ledger_signals() -> None:
    """Wire the handlers above to Celery's signals (idempotent: dispatch_uid)."""
    handlers = {
        signals.task_received: _on_received,
        signals.task_prerun: _on_prerun,
        signals.task_success: _on_success,
        signals.task_failure: _on_failure,
        signals.task_retry: _on_retry,
        signals.task_revoked: _on_revoked,
        signals.after_task_publish: _on_published,
        signals.task_rejected: _on_rejected,
        signals.task_unknown: _on_unknown,
    }
    for signal, handler in handlers.items():
        signal.connect(handler, weak=False, dispatch_uid=f"marketq.ledger.{handler.__name__}")
    MarketqRedisBackend.end_event = MarketqSentinelBackend.end_event = _success_event
