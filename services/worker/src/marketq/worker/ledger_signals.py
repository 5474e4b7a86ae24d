"""Follow every run in the ledger through Celery's signals.

RECEIVED and REVOKED fire in the worker's main process, the rest in the pool child that
runs the task, except when a pool child dies: then RETRY or FAILURE fire in the main
process. Only catalog jobs are recorded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import signals

from marketq.common.catalog import CATALOG
from marketq.worker import resources
from marketq.worker.task import message_enqueued_at

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
    resources.ledger().received(
        request.id,
        job=request.name,
        queue=delivery.get("routing_key"),
        params=request.kwargs or {},
        worker=request.hostname,
        # Messages from producers that add no enqueue header sort by their arrival.
        enqueued_at=message_enqueued_at(headers) or datetime.now(UTC),
        eta=request.eta if hasattr(request.eta, "tzinfo") else None,
        parent_id=headers.get("parent_id"),
    )


def _on_prerun(task_id: str | None = None, task: Any = None, kwargs: Any = None, **_: Any) -> None:
    if task is None or task_id is None or not _is_job(task.name):
        return
    delivery = task.request.delivery_info or {}
    resources.ledger().started(
        task_id,
        job=task.name,
        queue=delivery.get("routing_key"),
        params=kwargs or {},
        worker=task.request.hostname or "",
    )


def _on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if sender is None or not _is_job(sender.name):
        return
    resources.ledger().succeeded(sender.request.id, result if isinstance(result, dict) else None)


def _on_failure(
    sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any
) -> None:
    if sender is None or task_id is None or not _is_job(sender.name):
        return
    resources.ledger().failed(task_id, _describe(exception))


def _on_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    if sender is None or request is None or not _is_job(sender.name):
        return
    resources.ledger().retry(request.id, _describe(getattr(reason, "exc", None) or reason))


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
    resources.ledger().revoked(request.id, reason)


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
        signals.task_rejected: _on_rejected,
        signals.task_unknown: _on_unknown,
    }
    for signal, handler in handlers.items():
        signal.connect(handler, weak=False, dispatch_uid=f"marketq.ledger.{handler.__name__}")
