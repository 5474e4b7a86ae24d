"""A probe sent to another queue runs under that queue's time limits.

Celery registers one task per job, with the time limits of the job's own queue. A probe
(an any-queue job such as ``health_check``) may be sent to any queue, and each queue's
visibility timeout is derived from the longest limit of what runs there
(``celery_app.time_limits_on``): a probe running to its own queue's longer limit would
outlast a shorter queue's timeout and be handed to a second worker. So the request of a
run delivered on another queue than its job's carries that queue's limits, exactly as if
the producer had set Celery's ``timelimit`` header; the task and its retries see them too.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from marketq.common.catalog import CATALOG
from marketq.common.celery_app import time_limits_on
from marketq.common.queues import Queue
from marketq.common.settings import get_settings
from marketq.worker.connection_loss import JobRequest as ConnectionLossRequest


@cache
def _limits_on(queue: Queue) -> dict[str, tuple[int, int]]:
    return time_limits_on(queue, get_settings())


def limits_for_delivery(job_name: str, routing_key: str | None) -> tuple[int, int] | None:
    """(soft, hard) of a run of ``job_name`` delivered with ``routing_key``, when that
    queue is not the job's own (None: the task's registered limits apply)."""
    if job_name not in CATALOG or routing_key is None:
        return None
    try:
        queue = Queue(routing_key)
    except ValueError:
        return None
    if queue is CATALOG[job_name].queue:
        return None
    return _limits_on(queue).get(job_name)


class JobRequest(ConnectionLossRequest):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if any(self._request_dict.get("timelimit") or ()):
            return  # the producer chose the limits
        limits = limits_for_delivery(self.name, self._delivery_info.get("routing_key"))
        if limits is not None:
            soft, hard = limits
            # Celery's order: (hard, soft). The pool enforces ``time_limits``; the request
            # dict becomes the task's ``request.timelimit`` (its deadline, its retries).
            self.time_limits = (hard, soft)
            self._request_dict["timelimit"] = (hard, soft)
