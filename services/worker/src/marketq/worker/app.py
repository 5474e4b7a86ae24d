"""The worker's Celery app: the shared factory plus every catalog job registered on it.

Started by ``marketq-worker --queue <name>`` as ``celery -A marketq.worker.app worker``.
"""

from __future__ import annotations

from celery import Celery

from marketq.common.catalog import CATALOG, Catalog
from marketq.common.celery_app import create_celery_app, effective_time_limits
from marketq.common.logs import connect_celery_logging
from marketq.common.settings import get_settings
from marketq.worker import ledger_service, observability, resources, shutdown
from marketq.worker.broker_transport import transport_path
from marketq.worker.connection_loss import RestoreHeldMessages
from marketq.worker.delayed import ReleaseDueRuns
from marketq.worker.ledger_signals import RecordWaitingRuns, connect_ledger_signals
from marketq.worker.pipeline_signals import connect_pipeline_signals
from marketq.worker.registry import check_against_catalog, implementations
from marketq.worker.task import make_task_class
from marketq.worker.tracing_signals import connect_tracing_signals
from marketq.worker.webhook_signals import connect_webhook_signals


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
    app.conf.broker_transport = transport_path(get_settings().effective_broker_url)
    register_jobs(app)
    connect_ledger_signals()
    app.steps["consumer"].add(RecordWaitingRuns)
    app.steps["consumer"].add(RestoreHeldMessages)
    app.steps["consumer"].add(ReleaseDueRuns)
    connect_pipeline_signals()  # after the ledger's: the step's end is written first
    connect_webhook_signals()
    observability.install(app)
    ledger_service.install(app)
    shutdown.install(app)
    connect_celery_logging()
    connect_tracing_signals(app)
    resources.install()
    return app


app = create_worker_app()
