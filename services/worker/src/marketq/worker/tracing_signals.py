"""Traces in the worker: one tracer provider per prefork child, the task span from the
message's W3C headers.

The provider is set up in ``worker_process_init`` (the batch processor's export thread
does not survive a fork) and flushed in ``worker_process_shutdown``. The task side is
OpenTelemetry's Celery instrumentation: ``task_prerun`` extracts ``traceparent`` from
``task.request`` (Celery copies every message header there, whoever published it: the
API's pipelined publisher, beat, the CLI) and opens a ``run/<job>`` CONSUMER span;
``task_postrun`` closes it; Celery links the task publishes become child spans. When
tracing is off none of this is connected or imported: no per-task work.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from marketq.common import tracing


def _queues(app: Celery) -> str:
    # The worker main process selected its queues (--queues) before forking the pool.
    selected = getattr(app.amqp.queues, "consume_from", None) or {}
    return ",".join(sorted(selected))


def connect_tracing_signals(app: Celery) -> None:
    def _process_init(**_: Any) -> None:
        queue = _queues(app)
        attributes = {"marketq.component": "worker"}
        if queue:
            attributes["marketq.queue"] = queue
        if tracing.setup_tracing("marketq-worker", attributes):
            from opentelemetry.instrumentation.celery import CeleryInstrumentor

            CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]

    def _process_shutdown(**_: Any) -> None:
        tracing.shutdown_tracing()

    signals.worker_process_init.connect(
        _process_init, weak=False, dispatch_uid="marketq.tracing.process_init"
    )
    signals.worker_process_shutdown.connect(
        _process_shutdown, weak=False, dispatch_uid="marketq.tracing.process_shutdown"
    )
