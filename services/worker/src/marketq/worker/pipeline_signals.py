"""Advance a pipeline run as soon as one of its steps ends.

Connected after the ledger's handlers, so the step's own transition is written first;
the state this handler saw is also passed on, for a ledger that writes later. A run
that is not a pipeline step (its id is not a version-5 uuid) costs no database read. A
missed advance (a crash in between) is made by the ``advance_pipelines`` sweep.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from marketq.common.catalog import CATALOG
from marketq.common.db.models import RunState
from marketq.common.pipeline_runs import is_step_run_id
from marketq.worker import resources

log = logging.getLogger(__name__)


def _advance(run_id: str | None, state: RunState) -> None:
    if not run_id or not is_step_run_id(run_id):
        return
    try:
        engine = resources.pipelines()
        parent = engine.pipeline_run_of(run_id)
        if parent is not None:
            engine.advance(parent, known={run_id: state.value})
    except Exception:
        log.exception("advancing the pipeline of run %s failed; the sweep will", run_id)


def _on_success(sender: Any = None, **_: Any) -> None:
    if sender is not None and sender.name in CATALOG:
        _advance(sender.request.id, RunState.SUCCESS)


def _on_failure(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    if sender is not None and sender.name in CATALOG:
        _advance(task_id, RunState.FAILURE)


def _on_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    if sender is not None and request is not None and getattr(sender, "name", None) in CATALOG:
        _advance(request.id, RunState.REVOKED)


def connect_pipeline_signals() -> None:
    for signal, handler in (
        (signals.task_success, _on_success),
        (signals.task_failure, _on_failure),
        (signals.task_revoked, _on_revoked),
    ):
        signal.connect(handler, weak=False, dispatch_uid=f"marketq.pipelines.{handler.__name__}")
