"""Announce a run's end to its webhook subscribers (docs/webhooks.md).

Only runs whose request carried ``notify`` have the Redis mark the API sets (on the
broker); the task reads it with its start, in the round trip that records STARTED, so a
run without subscribers costs nothing more at its end. Connected after the ledger's
handlers.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from marketq.common.catalog import CATALOG
from marketq.common.webhooks import announce, notify_key
from marketq.worker import resources

log = logging.getLogger(__name__)


def _announce(sender: Any, run_id: str | None, state: str) -> None:
    if not run_id or getattr(sender, "name", None) not in CATALOG:
        return
    try:
        if not _has_subscribers(sender, run_id):
            return
        announce(
            resources.sessions(),
            sender.app,
            "run",
            run_id,
            state,
            {
                "run_id": run_id,
                "job": sender.name,
                "state": state,
                "status_url": f"/api/v1/runs/{run_id}",
            },
        )
    except Exception:
        log.exception("announcing the end of run %s to its webhooks failed", run_id)


def _has_subscribers(sender: Any, run_id: str) -> bool:
    """The run's notify mark: read with its start by the task in the pool child; asked
    of Redis when the end is recorded elsewhere (the main process, after a child died)."""
    request = getattr(sender, "request", None)
    known = getattr(request, "marketq_notify", None) if request is not None else None
    if known is not None and getattr(request, "id", None) == run_id:
        return bool(known)
    prefix = resources.settings().redis_key_prefix
    return bool(resources.events().client.exists(notify_key(prefix, run_id)))


def _on_success(sender: Any = None, **_: Any) -> None:
    if sender is not None:
        _announce(sender, sender.request.id, "SUCCESS")


def _on_failure(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    _announce(sender, task_id, "FAILURE")


def _on_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    _announce(sender, getattr(request, "id", None), "REVOKED")


def connect_webhook_signals() -> None:
    for signal, handler in (
        (signals.task_success, _on_success),
        (signals.task_failure, _on_failure),
        (signals.task_revoked, _on_revoked),
    ):
        signal.connect(handler, weak=False, dispatch_uid=f"marketq.webhooks.{handler.__name__}")
