"""The peer of `make bench-worker`: a bare Celery app with one no-op task, configured like
the marketq worker where it matters for throughput (prefork, acks_late, prefetch 1, JSON,
a Redis result backend)."""

from __future__ import annotations

import os

from celery import Celery

URL = os.environ.get("BARE_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bare", broker=URL, backend=URL, set_as_current=False)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue="bare",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="noop")
def noop() -> dict[str, bool]:
    return {"ok": True}
