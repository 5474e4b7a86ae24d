"""Follow every run through Celery's signals: each transition is one run event.

RECEIVED and REVOKED fire in the worker's main process, the rest in the pool child that
runs the task, except when a pool child dies: then RETRY or FAILURE fire in the main
process. Each handler appends one event to the run-event stream (one Redis round trip);
the ledger writer puts it in SQL in a batch (marketq.common.ledger_writer). Only catalog
jobs are recorded. STARTED goes in the round trip that also reads the run's cancel and
webhook marks (``JobTask.record_start``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import signals

from marketq.common.catalog import CATALOG
from marketq.worker import resources
from marketq.worker.task import JobTask, message_enqueued_at

log = logging.getLogger(__name__)


def _is_job(name: str | None) -> bool:
    return name is not None and name in CATALOG


def _describe(exc: BaseException | Any) -> str:
    if isinstance(exc, BaseException):
        text = str(exc)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return str(exc)


def _on_received(request: Any = None, **_: Any) -> None:
    if request is None or not _is_job(request.name):
        return
    headers = request.message.headers if request.message is not None else {}
    delivery = request.delivery_info or {}
    enqueued = message_enqueued_at(headers)
    eta = request.eta
    resources.events().append(
        request.id,
        "RECEIVED",
        job=request.name,
        queue=delivery.get("routing_key"),
        params=request.kwargs or {},
        worker=request.hostname,
        # Messages from producers that add no enqueue header sort by their arrival.
        enqueued_at=enqueued.timestamp() if enqueued is not None else time.time(),
        eta=eta.isoformat() if hasattr(eta, "isoformat") else eta,
        parent_id=headers.get("parent_id"),
    )


def _on_prerun(task_id: str | None = None, task: Any = None, kwargs: Any = None, **_: Any) -> None:
    if task_id is None or not isinstance(task, JobTask):
        return
    task.record_start(task_id, kwargs or {})


def _on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if sender is None or not _is_job(sender.name):
        return
    resources.events().append(
        sender.request.id, "SUCCESS", result=result if isinstance(result, dict) else {}
    )


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
