"""Publishing a job: the one path from "run job X with these params" to a Redis message.

``prepare_run`` validates everything (job name, params against the catalog model,
countdown/ETA, priority, queue, message size) before anything touches Redis;
``send_runs`` publishes prepared runs. Every producer (the API, beat, ``marketq
submit``, pipeline steps, the reconciler) ends here:

- ``RunEncoder`` builds each run's Celery message (``marketq.common.messages``) and its
  run record, which is also the run's QUEUED event;
- one Lua script (``BATCH_SCRIPT``; the API's coalesced single submit uses
  ``SUBMIT_SCRIPT``, which adds the rate limit and the Idempotency-Key) LPUSHes the
  messages, SETs the records and XADDs the QUEUED events: a run's message and its QUEUED
  event are both in Redis or neither is, so a run is visible from acceptance whoever
  published it (docs/delivery.md#run-record).

The API runs the same scripts through its asyncio client (``marketq.api.publisher``).
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Celery
from pydantic import ValidationError

from marketq.common import tracing
from marketq.common.catalog import CATALOG, Catalog, JobSpec
from marketq.common.celery_app import max_countdown_seconds
from marketq.common.messages import MessageBuilder, dumps, queue_key
from marketq.common.metrics import Source, count_runs
from marketq.common.params import JobParams
from marketq.common.queues import Queue
from marketq.common.routing import PRIORITY_STEPS
from marketq.common.run_events import broker_redis, stream_key
from marketq.common.settings import Settings, get_settings

# Message header carrying the publish time (epoch seconds): queue-age metrics and the
# default "as of" of intraday jobs read it, so a redelivered message means the same minute.
ENQUEUED_AT_HEADER = "marketq_enqueued_at"
# No broker message is larger: Redis and every worker's prefetch hold messages whole, and
# a large body turns one LPUSH into the timeout that leaves a submit's outcome unknown.
# Large inputs go to the database first (data_import's uploads) and travel by id.
MAX_MESSAGE_BYTES = 64 * 1024


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


class MessageTooLargeError(PublishError):
    """The run's message would exceed MAX_MESSAGE_BYTES."""


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
    parent_id: str | None = None  # Celery's parent_id header (the run that published it)


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
    parent_id: str | None = None,
) -> PreparedRun:
    """Validate a run request. Raises UnknownJobError or a PublishError naming the field.

    ``run_id`` makes the id deterministic (a pipeline step, a re-publish by the
    reconciler): publishing the same id twice is safe because every ledger write is an
    idempotent upsert and the jobs upsert their data."""
    settings = settings or get_settings()
    job = catalog[job_name]
    validated = validate_params(job, params)
    now = now or datetime.now(UTC)

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

    if countdown is not None and eta is not None:
        raise PublishError("give countdown or eta, not both", "countdown")
    if countdown is not None:
        if countdown < 0:
            raise PublishError("countdown must not be negative", "countdown")
        eta = now + timedelta(seconds=countdown)
    if eta is not None:
        if eta.tzinfo is None:
            raise PublishError("eta must include a UTC offset", "eta")
        limit = max_countdown_seconds(settings, target, catalog)
        if (eta - now).total_seconds() > limit:
            # Beyond this a message waiting for its ETA outlives its queue's visibility
            # timeout and Redis hands it to a second worker: it would run twice.
            raise PublishError(
                f"eta is more than {limit} s ahead on queue {target.value!r}; schedule it "
                "instead (the broker would deliver it more than once)",
                "countdown" if countdown is not None else "eta",
            )
        if eta <= now:
            eta = None

    if priority is not None and not PRIORITY_STEPS[0] <= priority <= PRIORITY_STEPS[-1]:
        raise PublishError(
            f"priority must be between {PRIORITY_STEPS[0]} and {PRIORITY_STEPS[-1]}", "priority"
        )

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
        parent_id=parent_id,
    )


# One script per publish call. KEYS: the event stream, the queue lists, the run records.
# ARGV: number of lists, record ttl, stream max length, the number of messages per list,
# the messages grouped by list, the records (each record is also its run's QUEUED event).
# One variadic LPUSH per list (in chunks: Lua's unpack has a stack limit), one SET and
# one XADD per run.
BATCH_SCRIPT = """
local lists = tonumber(ARGV[1])
local record_ttl = tonumber(ARGV[2])
local maxlen = ARGV[3]
local pos = 4 + lists
for q = 1, lists do
  local last = pos + tonumber(ARGV[3 + q]) - 1
  while pos <= last do
    local stop = math.min(pos + 999, last)
    redis.call('LPUSH', KEYS[1 + q], unpack(ARGV, pos, stop))
    pos = stop + 1
  end
end
for i = lists + 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[pos], 'EX', record_ttl)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 's', 'QUEUED', 'd', ARGV[pos])
  pos = pos + 1
end
return #KEYS - lists - 1
"""

# The API's single submit. KEYS[1] the event stream, then 4 KEYS per submit (rate
# counter, idempotency key or "" for none, queue list, run record); ARGV: counter ttl,
# record ttl, stream max length, then 5 per submit (limit, claim value or "", claim ttl,
# message, record). Per submit: 0 published, 1 rate limited, or the value its
# idempotency key already held (nothing published).
SUBMIT_SCRIPT = """
local counter_ttl = tonumber(ARGV[1])
local record_ttl = tonumber(ARGV[2])
local maxlen = ARGV[3]
local out = {}
for i = 0, (#KEYS - 1) / 4 - 1 do
  local k = 1 + i * 4
  local a = 3 + i * 5
  local count = redis.call('INCR', KEYS[k + 1])
  redis.call('EXPIRE', KEYS[k + 1], counter_ttl)
  if count > tonumber(ARGV[a + 1]) then
    out[i + 1] = 1
  else
    local existing = false
    if ARGV[a + 2] ~= '' then
      existing = redis.call('GET', KEYS[k + 2])
      if not existing then
        redis.call('SET', KEYS[k + 2], ARGV[a + 2], 'EX', tonumber(ARGV[a + 3]))
      end
    end
    if existing then
      out[i + 1] = existing
    else
      redis.call('LPUSH', KEYS[k + 3], ARGV[a + 4])
      redis.call('SET', KEYS[k + 4], ARGV[a + 5], 'EX', record_ttl)
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 's', 'QUEUED', 'd', ARGV[a + 5])
      out[i + 1] = 0
    end
  end
end
return out
"""

RUN_RECORD_PREFIX = "run:"


def record_key(prefix: str, run_id: str) -> str:
    """The run's record in Redis: what GET /runs/{id} answers before the ledger has it."""
    return f"{prefix}{RUN_RECORD_PREFIX}{run_id}"


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None


@dataclass(frozen=True, slots=True)
class Encoded:
    queue_key: str
    message: bytes
    record: bytes  # the run record, also the detail of its QUEUED event


class RunEncoder:
    """Queue list, message and record of a run (the same for every producer)."""

    def __init__(self, app: Celery, prefix: str, origin: str) -> None:
        self.prefix = prefix
        self.messages = MessageBuilder(app, origin)

    def encode(self, run: PreparedRun) -> Encoded:
        message = self.messages.message(run)
        if len(message) > MAX_MESSAGE_BYTES:
            raise MessageTooLargeError(
                f"the run's message would be {len(message)} bytes, over the broker's limit "
                f"of {MAX_MESSAGE_BYTES}; pass large inputs by reference (docs/api.md#limits)",
                "params",
            )
        record = {
            "id": run.run_id,
            "at": run.enqueued_at.timestamp(),
            "job": run.job.name,
            "queue": run.queue.value,
            "params": run.params,
            "state": "QUEUED",
            "enqueued_at": run.enqueued_at.isoformat(),
            "eta": _iso(run.eta),
            "priority": run.priority,
            "parent_id": run.parent_id,
        }
        return Encoded(
            queue_key=queue_key(self.prefix, run.queue.value, run.priority),
            message=message,
            record=dumps(record),
        )

    def batch_call(
        self, runs: Sequence[PreparedRun], settings: Settings
    ) -> tuple[list[str], list[bytes | str | int]]:
        """KEYS and ARGV of BATCH_SCRIPT publishing ``runs``."""
        by_list: dict[str, list[bytes]] = {}
        record_keys: list[str] = []
        records: list[bytes] = []
        for run in runs:
            encoded = self.encode(run)
            by_list.setdefault(encoded.queue_key, []).append(encoded.message)
            record_keys.append(record_key(self.prefix, run.run_id))
            records.append(encoded.record)
        args: list[bytes | str | int] = [
            len(by_list),
            settings.result_expires_seconds,
            settings.ledger_stream_max_len,
        ]
        args += [len(messages) for messages in by_list.values()]
        for messages in by_list.values():
            args += messages
        args += records
        return [stream_key(self.prefix), *by_list, *record_keys], args


class _Producer:
    """A process's synchronous publisher for one Celery app: its encoder and one client."""

    def __init__(self, app: Celery, settings: Settings, origin: str) -> None:
        self.settings = settings
        self.encoder = RunEncoder(app, settings.redis_key_prefix, origin)
        self.client = broker_redis(settings)
        self.script = self.client.register_script(BATCH_SCRIPT)


_producers: weakref.WeakKeyDictionary[Celery, _Producer] = weakref.WeakKeyDictionary()
_producers_lock = threading.Lock()


def _producer(app: Celery, source: Source, settings: Settings | None) -> _Producer:
    with _producers_lock:
        producer = _producers.get(app)
        if producer is None:
            settings = settings or get_settings()
            producer = _producers[app] = _Producer(app, settings, f"marketq-{source}")
        return producer


def send_runs(
    app: Celery,
    runs: Sequence[PreparedRun],
    *,
    source: Source = "cli",
    settings: Settings | None = None,
) -> None:
    """Publish prepared runs in one script: all are in Redis with their QUEUED events, or
    the call raises (redis.RedisError; a timeout leaves the outcome unknown).

    Counted in ``marketq_tasks_published_total`` / ``marketq_task_publish_errors_total``
    under ``source``."""
    if not runs:
        return
    producer = _producer(app, source, settings)
    pairs = [(run.queue.value, run.job.name) for run in runs]
    with publish_span(runs):
        try:
            keys, args = producer.encoder.batch_call(runs, producer.settings)
            producer.script(keys=keys, args=args)
        except redis.RedisError:
            count_runs(pairs, source, failed=True)
            raise
    count_runs(pairs, source)


def send_run(
    app: Celery, run: PreparedRun, *, source: Source = "cli", settings: Settings | None = None
) -> None:
    """Publish one prepared run (``send_runs`` of one)."""
    send_runs(app, [run], source=source, settings=settings)


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
    """Validate and publish one run; returns what was published.

    ``kwargs`` are ``prepare_run``'s (``run_id=`` for a deterministic id) plus
    ``source=`` (the producer the metrics count it under; "cli" unless given)."""
    source: Source = kwargs.pop("source", "cli")
    run = prepare_run(job_name, params, **kwargs)
    send_run(app, run, source=source, settings=kwargs.get("settings"))
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
    "BATCH_SCRIPT",
    "ENQUEUED_AT_HEADER",
    "MAX_MESSAGE_BYTES",
    "SUBMIT_SCRIPT",
    "Encoded",
    "FieldError",
    "InvalidParamsError",
    "MessageTooLargeError",
    "PreparedRun",
    "PublishError",
    "RunEncoder",
    "enqueued_at_from_headers",
    "field_errors",
    "prepare_run",
    "publish",
    "publish_span",
    "record_key",
    "revoked_key",
    "send_run",
    "send_runs",
]
