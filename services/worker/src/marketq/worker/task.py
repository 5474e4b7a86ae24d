"""The Celery task class every catalog job runs as."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from marketq.common.catalog import JobSpec
from marketq.common.publish import (
    ENQUEUED_AT_HEADER,
    InvalidParamsError,
    enqueued_at_from_headers,
    revoked_key,
    validate_params,
)
from marketq.worker import resources
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError, TransientJobError
from marketq.worker.metrics import count_outcome
from marketq.worker.registry import JobFunction, JobResult

log = logging.getLogger("marketq.worker.job")


def message_enqueued_at(headers: dict[str, Any] | None) -> datetime | None:
    return enqueued_at_from_headers((headers or {}).get(ENQUEUED_AT_HEADER))


class JobTask(Task):  # type: ignore[misc]
    """Runs one catalog job: validates the message's params, then calls the implementation.

    Class attributes set per job by ``make_task_class``: the catalog's time limits, retry
    policy and rate limit become Celery's own task options, so the worker enforces them.
    """

    spec: JobSpec
    implementation: JobFunction
    typing = False  # kwargs are validated against the catalog model instead
    autoretry_for = (TransientJobError,)
    retry_jitter = True
    throws = (PermanentJobError, InvalidParamsError)  # expected: logged without traceback

    def run(self, **kwargs: Any) -> JobResult:
        if self._revoked(self.request.id):
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
            provider=resources.provider(),
            calendar=resources.calendar(),
            sessions=resources.sessions(),
            log=logging.LoggerAdapter(
                log, {"run_id": run_id, "job_name": self.spec.name, "queue": queue}
            ),
            _progress_sink=self._report_progress,
        )
        return self.implementation(ctx, params)

    def _revoked(self, run_id: str) -> bool:
        client = self.app.backend.client
        return bool(client.exists(revoked_key(resources.settings().redis_key_prefix, run_id)))

    def _report_progress(self, current: int, total: int | None) -> None:
        run_id = self.request.id
        self.update_state(
            task_id=run_id, state="PROGRESS", meta={"current": current, "total": total}
        )
        resources.ledger().progress(run_id, current, total)


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
        # Also the delay before a run whose pool process died is sent again.
        "default_retry_delay": spec.retry.backoff_seconds,
        "rate_limit": spec.rate_limit,
        "__doc__": spec.description,
        "__module__": __name__,
    }
    return type(f"{spec.name.title().replace('_', '')}Task", (JobTask,), attrs)
