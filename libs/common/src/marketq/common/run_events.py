"""Run transitions as events in one Redis Stream, the ledger's only input.

Every transition of a run (QUEUED by the publisher's script, RECEIVED..SUCCESS by the
worker's signal handlers, REVOKED/LOST/re-queued by the API and the reconciler) is one
``XADD`` to ``<prefix>ledger:events`` with two fields: ``s`` the state and ``d`` a JSON
object holding at least ``id`` (the run) and ``at`` (epoch seconds of the transition).
The ledger writer (``marketq.common.ledger_writer``) drains the stream into ``task_runs``
in batches. Appending costs one Redis round trip instead of one SQL transaction, which is
what lets the worker keep up with bare Celery (docs/design.md#run-ledger).

The stream is bounded twice: the writer trims what it has acknowledged, and every XADD
carries ``MAXLEN ~ ledger_stream_max_len`` as the last guard (docs/delivery.md says what
that guard drops).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from marketq.common.messages import dumps
from marketq.common.settings import Settings

log = logging.getLogger(__name__)

STATE_FIELD = "s"
DETAIL_FIELD = "d"
ERROR_MAX_CHARS = 4000


def stream_key(prefix: str) -> str:
    return f"{prefix}ledger:events"


def heartbeats_key(prefix: str) -> str:
    """Hash: worker hostname -> epoch seconds of its main process's last heartbeat."""
    return f"{prefix}ledger:heartbeats"


def terminating_key(prefix: str) -> str:
    """Sorted set: run id -> when a client asked to terminate it (the reconciler ends it
    REVOKED if no process holds it)."""
    return f"{prefix}ledger:terminating"


def detail(run_id: str, at: float | None = None, **fields: Any) -> bytes:
    """The ``d`` field of an event: the run, the instant, and what the transition adds."""
    values = {k: v for k, v in fields.items() if v is not None}
    values["id"] = run_id
    values["at"] = time.time() if at is None else at
    return dumps(values)


class EventLog:
    """Appends transitions from one process. A failed append is logged, never raised into
    a task: the reconciler repairs what a lost event leaves behind."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._client = client
        self._key = stream_key(settings.redis_key_prefix)
        self._maxlen = settings.ledger_stream_max_len

    @property
    def client(self) -> redis.Redis:
        """The broker connection events go to (the run's marks live there too)."""
        return self._client

    @property
    def key(self) -> str:
        """The stream (for scripts that append an event beside other commands)."""
        return self._key

    @property
    def max_len(self) -> int:
        return self._maxlen

    def append(self, run_id: str, state: str, **fields: Any) -> None:
        try:
            self.add_to(self._client, run_id, state, **fields)
        except redis.RedisError:
            log.exception("could not record %s of run %s", state, run_id)

    def add_to(self, target: Any, run_id: str, state: str, **fields: Any) -> None:
        """The event's XADD on ``target``: the client, or a caller's pipeline (then it is
        sent, and fails, with the pipeline's other commands)."""
        target.xadd(
            self._key,
            {STATE_FIELD: state, DETAIL_FIELD: detail(run_id, **fields)},
            maxlen=self._maxlen,
            approximate=True,
        )

    def close(self) -> None:
        self._client.close()


def broker_redis(settings: Settings) -> redis.Redis:
    """A plain Redis client on the broker (kombu's own client prefixes keys itself): the
    server of a redis:// URL or the current master of a sentinel:// one."""
    from marketq.common.redis_client import broker_client

    return broker_client(settings)
