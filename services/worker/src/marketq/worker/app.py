"""The worker's Celery app: the shared factory plus every catalog job registered on it.

Started by ``marketq-worker --queue <name>`` as ``celery -A marketq.worker.app worker``.
"""

from __future__ import annotations

from celery import Celery

from marketq.common.catalog import CATALOG, Catalog
from marketq.common.celery_app import create_celery_app, effective_time_limits
from marketq.common.logs import connect_celery_logging
from marketq.common.settings import get_settings
from marketq.worker import observability
from marketq.worker.ledger_signals import connect_ledger_signals
from marketq.worker.registry import check_against_catalog, implementations
from marketq.worker.task import make_task_class
from marketq.worker.tracing_signals import connect_tracing_signals


def register_jobs(app: Celery, catalog: Catalog = CATALOG) -> None:
    """Register one task per catalog job; refuse to start if the two disagree."""
    check_against_catalog(catalog)
    limits = effective_time_limits(get_settings(), catalog)
    found = implementations()
    for spec in catalog.values():
        soft, hard = limits[spec.name]
        task_class = make_task_class(spec, found[spec.name], soft, hard)
        app.register_task(task_class())


def create_worker_app() -> Celery:
    app = create_celery_app("marketq-worker")
    register_jobs(app)
    connect_ledger_signals()
    observability.install(app)
    connect_celery_logging()
    connect_tracing_signals(app)
    return app


app = create_worker_app()
