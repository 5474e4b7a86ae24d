"""Publishing a job: the one path from "run job X with these params" to a Redis message.

``prepare_run`` validates everything (job name, params against the catalog model,
countdown/ETA, priority, queue) before anything touches Redis; ``send_run`` publishes a
prepared run through Celery. Producers with their own transport (a pipelined batch
publisher, say) reuse ``prepare_run`` so validation never differs between them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from pydantic import ValidationError

from marketq.common import tracing
from marketq.common.catalog import CATALOG, Catalog, JobSpec
from marketq.common.celery_app import max_countdown_seconds
from marketq.common.metrics import Source, count_publish_error, count_published
from marketq.common.params import JobParams
from marketq.common.queues import Queue
from marketq.common.routing import PRIORITY_STEPS
from marketq.common.settings import Settings, get_settings

# Message header carrying the publish time (epoch seconds): queue-age metrics and the
# default "as of" of intraday jobs read it, so a redelivered message means the same minute.
ENQUEUED_AT_HEADER = "marketq_enqueued_at"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # dotted path, e.g. "symbols.2"
    message: str
    type: str


class PublishError(ValueError):
    """A request that cannot be published as given; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidParamsError(PublishError):
    def __init__(self, job: str, errors: list[FieldError]) -> None:
        listed = "; ".join(f"{e.field or '(params)'}: {e.message}" for e in errors)
        super().__init__(f"invalid params for job {job!r}: {listed}", errors[0].field)
        self.job = job
        self.errors = errors


def field_errors(error: ValidationError) -> list[FieldError]:
    """Pydantic errors as (dotted field, message, type) triples."""
    return [
        FieldError(
            field=".".join(str(part) for part in err["loc"]),
            message=err["msg"],
            type=err["type"],
        )
        for err in error.errors(include_url=False)
    ]


def validate_params(job: JobSpec, params: Mapping[str, Any] | JobParams | None) -> JobParams:
    if isinstance(params, job.params):
        return params
    if isinstance(params, JobParams):
        params = params.model_dump()
    if params is not None and not isinstance(params, Mapping):
        raise InvalidParamsError(
            job.name, [FieldError("", "params must be an object", "type_error")]
        )
    try:
        return job.params.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise InvalidParamsError(job.name, field_errors(exc)) from None


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A validated run, ready to publish."""

    run_id: str
    job: JobSpec
    params: dict[str, Any]  # JSON-ready kwargs of the task
    queue: Queue
    priority: int | None
    eta: datetime | None
    expires: datetime | None
    enqueued_at: datetime
    headers: dict[str, Any] = field(default_factory=dict)
    # Celery signatures the worker publishes when this run succeeds (chains).
    links: tuple[Any, ...] = ()


def prepare_run(
    job_name: str,
    params: Mapping[str, Any] | JobParams | None = None,
    *,
    run_id: str | None = None,
    countdown: float | None = None,
    eta: datetime | None = None,
    priority: int | None = None,
    queue: Queue | str | None = None,
    settings: Settings | None = None,
    catalog: Catalog = CATALOG,
    now: datetime | None = None,
) -> PreparedRun:
    """Validate a run request. Raises UnknownJobError or a PublishError naming the field."""
    settings = settings or get_settings()
    job = catalog[job_name]
    validated = validate_params(job, params)
    now = now or datetime.now(UTC)

    if countdown is not None and eta is not None:
        raise PublishError("give countdown or eta, not both", "countdown")
    if countdown is not None:
        if countdown < 0:
            raise PublishError("countdown must not be negative", "countdown")
        eta = now + timedelta(seconds=countdown)
    if eta is not None:
        if eta.tzinfo is None:
            raise PublishError("eta must include a UTC offset", "eta")
        limit = max_countdown_seconds(settings, catalog)
        if (eta - now).total_seconds() > limit:
            # Beyond this a message waiting for its ETA outlives the visibility timeout
            # and Redis hands it to a second worker: it would run twice.
            raise PublishError(
                f"eta is more than {limit} s ahead; schedule it instead (the broker would "
                "deliver it more than once)",
                "countdown" if countdown is not None else "eta",
            )
        if eta <= now:
            eta = None

    if priority is not None and not PRIORITY_STEPS[0] <= priority <= PRIORITY_STEPS[-1]:
        raise PublishError(
            f"priority must be between {PRIORITY_STEPS[0]} and {PRIORITY_STEPS[-1]}", "priority"
        )

    target = job.queue
    if queue is not None:
        try:
            target = Queue(queue)
        except ValueError:
            raise PublishError(
                f"unknown queue {queue!r}; queues: {', '.join(q.value for q in Queue)}", "queue"
            ) from None
        if target is not job.queue and not job.any_queue:
            raise PublishError(f"job {job.name!r} runs only on queue {job.queue.value!r}", "queue")

    expires = None
    if job.expires_seconds is not None:
        expires = (eta or now) + timedelta(seconds=job.expires_seconds)

    return PreparedRun(
        run_id=run_id or str(uuid.uuid4()),
        job=job,
        params=validated.model_dump(mode="json", exclude_none=True),
        queue=target,
        priority=priority,
        eta=eta,
        expires=expires,
        enqueued_at=now,
        headers={ENQUEUED_AT_HEADER: now.timestamp()},
    )


def send_run(
    app: Celery, run: PreparedRun, *, parent_id: str | None = None, source: Source = "cli"
) -> None:
    """Publish a prepared run. Returns once the message is in Redis; raises otherwise.

    Counted in ``marketq_tasks_published_total`` / ``marketq_task_publish_errors_total``
    under ``source`` (the CLI, or beat)."""
    options: dict[str, Any] = {
        "kwargs": run.params,
        "task_id": run.run_id,
        "queue": run.queue.value,
        "routing_key": run.queue.value,
        "retry": False,  # the caller decides: an API answers 503, a CLI exits non-zero
    }
    if run.eta is not None:
        options["eta"] = run.eta
    if run.expires is not None:
        options["expires"] = run.expires
    if run.priority is not None:
        options["priority"] = run.priority
    if parent_id is not None:
        options["parent_id"] = parent_id
    if run.links:
        options["link"] = list(run.links)
    with publish_span([run]):
        headers = dict(run.headers)
        tracing.inject_trace_headers(headers)
        try:
            app.send_task(run.job.name, headers=headers, **options)
        except Exception:
            count_publish_error(run.queue.value, run.job.name, source)
            raise
    count_published(run.queue.value, run.job.name, source)


def publish_span(runs: Sequence[PreparedRun]) -> AbstractContextManager[Any]:
    """The PRODUCER span around publishing ``runs`` (a shared no-op when tracing is off).

    Messages built inside it carry its context (``tracing.inject_trace_headers``), so the
    worker's task span becomes its child.
    """
    if not tracing.enabled() or not runs:
        return tracing.span("")
    first = runs[0]
    attributes: dict[str, Any] = {"messaging.system": "redis", "messaging.operation.type": "send"}
    if all(run.queue is first.queue for run in runs):
        attributes["messaging.destination.name"] = first.queue.value
    if all(run.job is first.job for run in runs):
        attributes["marketq.job_name"] = first.job.name
    if len(runs) == 1:
        attributes["messaging.message.id"] = first.run_id
        return tracing.span(f"publish {first.job.name}", attributes, producer=True)
    attributes["messaging.batch.message_count"] = len(runs)
    return tracing.span("publish batch", attributes, producer=True)


def publish(
    app: Celery,
    job_name: str,
    params: Mapping[str, Any] | JobParams | None = None,
    **kwargs: Any,
) -> PreparedRun:
    """Validate and publish one run; returns what was published."""
    run = prepare_run(job_name, params, **kwargs)
    send_run(app, run)
    return run


def revoked_key(prefix: str, run_id: str) -> str:
    """Redis key marking a run cancelled before it started (checked by the worker)."""
    return f"{prefix}revoked:{run_id}"


def enqueued_at_from_headers(value: Any) -> datetime | None:
    """The publish time carried by a message, if it has one."""
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


__all__ = [
    "ENQUEUED_AT_HEADER",
    "FieldError",
    "InvalidParamsError",
    "PreparedRun",
    "PublishError",
    "enqueued_at_from_headers",
    "field_errors",
    "prepare_run",
    "publish",
    "publish_span",
    "revoked_key",
    "send_run",
]
