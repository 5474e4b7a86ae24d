"""The Celery task class every catalog job runs as."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

from celery import Task, states
from celery.exceptions import Ignore

from marketq.common.catalog import JobSpec
from marketq.common.celery_app import max_countdown_seconds
from marketq.common.publish import (
    ENQUEUED_AT_HEADER,
    InvalidParamsError,
    enqueued_at_from_headers,
    revoked_key,
    validate_params,
)
from marketq.common.queues import Queue
from marketq.common.run_events import DETAIL_FIELD, STATE_FIELD, detail
from marketq.common.webhooks import notify_key
from marketq.providers import metrics as vendor_metrics
from marketq.providers.quota import QuotaDeferredError, deadline_scope
from marketq.providers.validation import RecordValidator
from marketq.worker import resources
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError, TransientJobError
from marketq.worker.failures import Failure, classify, retry_countdown
from marketq.worker.metrics import count_execution_after_end, count_outcome
from marketq.worker.registry import JobFunction, JobResult

log = logging.getLogger("marketq.worker.job")

# The request attribute under which the worker's main process sends a run's receipt to
# the pool child (marketq.worker.ledger_signals); STARTED carries it.
RECEIPT_KEY = "marketq_receipt"


def message_enqueued_at(headers: dict[str, Any] | None) -> datetime | None:
    return enqueued_at_from_headers((headers or {}).get(ENQUEUED_AT_HEADER))


class JobTask(Task):  # type: ignore[misc]
    """Runs one catalog job: validates the message's params, then calls the implementation.

    Class attributes set per job by ``make_task_class``: the catalog's time limits, retry
    policy and rate limit become Celery's own task options, so the worker enforces them.
    An exception from the job is classified once (``marketq.worker.failures``): transient
    ones are retried with the job's backoff (a vendor's Retry-After honoured), permanent
    ones fail the run at once with their reason.
    """

    spec: JobSpec
    implementation: JobFunction
    typing = False  # kwargs are validated against the catalog model instead
    retry_jitter = True
    # Expected outcomes, logged without a traceback (a transient error that outlived its
    # retries is re-raised as TransientJobError).
    throws = (PermanentJobError, TransientJobError, InvalidParamsError)
    # Vendor calls stop waiting for quota tokens this long before the soft time limit.
    deadline_margin_seconds = 1.0
    # Cancels on a lost broker; a probe gets the time limits of the queue it was sent to.
    Request = "marketq.worker.queue_limits:JobRequest"
    Strategy = "marketq.worker.delayed:strategy"  # runs not yet due wait in Redis

    def run(self, **kwargs: Any) -> JobResult:
        if not hasattr(self.request, "marketq_revoked"):  # no prerun handler connected
            self.record_start(self.request.id, kwargs)
        revoked, ended_before = self.request.marketq_revoked, self.request.marketq_ended
        if ended_before:
            # A second execution of a run that already ended (a redelivery the broker
            # made): its effect is an idempotent upsert, but it is counted so a duplicate
            # is visible as a metric and an alert (docs/delivery.md).
            queue = (self.request.delivery_info or {}).get("routing_key") or self.spec.queue.value
            log.warning(
                "run %s (%s) started again after it had ended", self.request.id, self.spec.name
            )
            count_execution_after_end(queue, self.spec.name)
        if revoked:
            # Cancelled while queued: a broadcast revoke only reaches workers that were
            # up at the time, so the canceller also leaves this mark in Redis.
            log.info("run %s was cancelled before it started; discarded", self.request.id)
            self.backend.mark_as_revoked(self.request.id, "revoked", request=self.request)
            queue = (self.request.delivery_info or {}).get("routing_key") or self.spec.queue.value
            count_outcome(queue, self.spec.name, "revoked")
            raise Ignore()
        try:
            params = validate_params(self.spec, kwargs)
        except InvalidParamsError as exc:
            # A message from a producer that skipped validation: retrying cannot help.
            raise PermanentJobError(str(exc)) from None
        request = self.request
        run_id: str = request.id
        queue = (request.delivery_info or {}).get("routing_key")
        as_of = message_enqueued_at(request.headers) or datetime.now(UTC)
        ctx = JobContext(
            run_id=run_id,
            job=self.spec.name,
            queue=queue,
            worker=request.hostname,
            as_of=as_of,
            settings=resources.settings(),
            provider=resources.providers().for_job(
                self.spec.name,
                RecordValidator(resources.calendar().is_trading_day, lambda: datetime.now(UTC)),
            ),
            calendar=resources.calendar(),
            sessions=resources.sessions(),
            log=logging.LoggerAdapter(
                log, {"run_id": run_id, "job_name": self.spec.name, "queue": queue}
            ),
            _progress_sink=self._report_progress,
        )
        try:
            with deadline_scope(self._deadline()):
                return self.implementation(ctx, params)
        except Exception as exc:
            self._fail_or_retry(exc)

    def _deadline(self) -> float | None:
        """When vendor calls of this attempt must stop waiting (``time.monotonic()``)."""
        limits = self.request.timelimit or (None, None)
        soft = limits[1] if len(limits) > 1 and limits[1] else self.soft_time_limit
        if not soft:
            return None
        return time.monotonic() + max(0.0, float(soft) - self.deadline_margin_seconds)

    def _fail_or_retry(self, exc: Exception) -> NoReturn:
        failure = classify(exc)
        if failure is None or isinstance(exc, PermanentJobError):
            raise exc  # a defect keeps its traceback; a job's own reason stays as it was
        if failure.vendor and not isinstance(exc, QuotaDeferredError | TransientJobError):
            # An answer the vendor gave (our own quota deferral is counted by the quota).
            vendor_metrics.count_error(failure.vendor, failure.kind, failure.reason)
        if failure.transient:
            raise self._retry(failure) from exc
        raise PermanentJobError(failure.describe()) from exc

    def _retry(self, failure: Failure) -> Exception:
        countdown = retry_countdown(
            retries=self.request.retries,
            # Celery's own knobs, set from the catalog's retry policy by make_task_class.
            backoff_seconds=float(self.retry_backoff),
            backoff_max_seconds=float(self.retry_backoff_max),
            ceiling_seconds=max_countdown_seconds(resources.settings(), self._queue()),
            retry_after=failure.retry_after,
            jitter=self.retry_jitter,
        )
        attempt = self.request.retries + 1
        message = f"{failure.describe()} [attempt {attempt} of {self.max_retries + 1}]"
        log.warning("run %s: %s; next attempt in %.1f s", self.request.id, message, countdown)
        # Past max_retries Celery raises the exception given here: the run fails with it.
        retry: Exception = self.retry(exc=TransientJobError(message), countdown=countdown)
        return retry

    def _queue(self) -> Queue:
        """The queue this run was delivered on (a probe may be sent to any queue)."""
        routing_key = (self.request.delivery_info or {}).get("routing_key")
        try:
            return Queue(str(routing_key))
        except ValueError:
            return self.spec.queue

    def record_start(self, run_id: str, kwargs: dict[str, Any]) -> None:
        """Record STARTED and read what earlier parties left about the run, kept on the
        request: cancelled while queued (``marketq_revoked``), already ended
        (``marketq_ended``), has webhook subscribers (``marketq_notify``, for its end).
        Called by the ledger's ``task_prerun`` handler, so STARTED is recorded before
        anything else of the run happens.

        One script on the broker, where the API and the pipeline engine leave the cancel
        and subscription marks, when the result backend is the same Redis (the default);
        a second round trip to the backend for the stored result otherwise. Each Redis
        round trip is a measurable share of a short run's cost (docs/performance.md).
        STARTED is appended only when the run is not cancelled: a run cancelled while
        queued is discarded, and its row must not say it started."""
        settings = resources.settings()
        events = resources.events()
        backend = self.app.backend
        request = self.request
        meta_key = backend.get_key_for_task(run_id)
        shared = settings.effective_result_backend_url == settings.effective_broker_url
        started = detail(
            run_id,
            job=self.name,
            queue=(request.delivery_info or {}).get("routing_key"),
            params=kwargs,
            worker=request.hostname or "",
            # The receipt the main process sent along (marketq.worker.ledger_signals):
            # a run that started at once has no RECEIVED event of its own.
            **(getattr(request, RECEIPT_KEY, None) or {}),
        )
        keys = [
            revoked_key(settings.redis_key_prefix, run_id),
            notify_key(settings.redis_key_prefix, run_id),
            events.key,
        ]
        if shared:
            keys.append(meta_key)
        revoked, notify, *rest = start_script(events.client)(
            keys=keys,
            args=[events.max_len, STATE_FIELD, "STARTED", DETAIL_FIELD, started],
            client=events.client,
        )
        meta = rest[0] if rest else (None if shared else backend.client.get(meta_key))
        ended = False
        if meta:
            ended = backend.decode_result(meta).get("status") in states.READY_STATES
        request.marketq_revoked, request.marketq_ended = bool(revoked), ended
        request.marketq_notify = bool(notify)

    def _report_progress(self, current: int, total: int | None) -> None:
        run_id = self.request.id
        self.update_state(
            task_id=run_id, state="PROGRESS", meta={"current": current, "total": total}
        )
        resources.events().append(run_id, "PROGRESS", current=current, total=total)


# KEYS: the run's cancel mark, its webhook mark, the run-event stream, and its stored
# result when results live on the broker. ARGV: the stream's MAXLEN ~, then STARTED's
# fields as name, value, name, value. Returns {cancelled, notify, stored result}; a
# missing result ends the reply early (Lua's nil).
_START = """
local revoked = redis.call('EXISTS', KEYS[1])
if revoked == 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', ARGV[2], ARGV[3], ARGV[4], ARGV[5])
end
local meta = false
if KEYS[4] then meta = redis.call('GET', KEYS[4]) end
return {revoked, redis.call('EXISTS', KEYS[2]), meta}
"""
_start_script: Any = None


def start_script(client: Any) -> Any:
    """The start script (redis-py sends its SHA, and the text once per server that lacks
    it); every call passes the client to run it on."""
    global _start_script
    if _start_script is None:
        _start_script = client.register_script(_START)
    return _start_script


def make_task_class(
    spec: JobSpec, implementation: JobFunction, soft_time_limit: int, time_limit: int
) -> type[JobTask]:
    attrs: dict[str, Any] = {
        "name": spec.name,
        "spec": spec,
        "implementation": staticmethod(implementation),
        "soft_time_limit": soft_time_limit,
        "time_limit": time_limit,
        "max_retries": spec.retry.max_retries,
        "retry_backoff": spec.retry.backoff_seconds,
        "retry_backoff_max": spec.retry.backoff_max_seconds,
        # Celery sends a run whose pool process died (an OOM kill) again after this
        # delay; nothing about the job failed, so at once. Transient failures back off
        # through retry_backoff, which does not read it.
        "default_retry_delay": 0,
        "rate_limit": spec.rate_limit,
        "__doc__": spec.description,
        "__module__": __name__,
    }
    return type(f"{spec.name.title().replace('_', '')}Task", (JobTask,), attrs)
