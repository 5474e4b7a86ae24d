"""The API's publisher: the common publish scripts through the asyncio Redis client.

Messages, records and QUEUED events are built by ``marketq.common.publish.RunEncoder``
(the one encoder every producer uses). Redis work is one Lua script per round trip:

- a single submit (``SUBMIT_SCRIPT``) counts the key's rate limit, claims the
  Idempotency-Key when given, LPUSHes the message, SETs the run record and XADDs its
  QUEUED event; submits that arrive in the same event-loop iteration share one EVALSHA
  (``SubmitCoalescer``), each with its own answer (published, rate limited, or the run
  its Idempotency-Key already names);
- a batch (``BATCH_SCRIPT``) pushes each queue's messages with one variadic LPUSH.

A script runs atomically, so a message and its record are both in Redis or neither is,
and a caller hears "published" only after Redis answered. If Redis refuses the call,
nothing was published (503 broker_unavailable); if the call times out, the script may
have run all the same (503 outcome_unknown: retry with the same Idempotency-Key).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from redis.asyncio import Redis

from marketq.api.ratelimit import WINDOW_SECONDS, Window
from marketq.common.messages import stdlib_dumps
from marketq.common.metrics import count_publish_error, count_published, count_runs
from marketq.common.publish import (
    BATCH_SCRIPT,
    SUBMIT_SCRIPT,
    Encoded,
    PreparedRun,
    RunEncoder,
    publish_span,
    record_key,
)
from marketq.common.run_events import stream_key
from marketq.common.settings import Settings

log = logging.getLogger("marketq.api.publish")

ORIGIN = "marketq-api"
# Most submits one EVALSHA carries; more wait for the next one (bounded script size).
MAX_COALESCED = 256


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    key: str  # full Redis key
    fingerprint: str  # hash of the request it protects
    ttl_seconds: int


@dataclass(frozen=True, slots=True)
class ExistingRun:
    """What an idempotency key already points at."""

    run_id: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class RateLimited:
    window: Window


Outcome = None | RateLimited | ExistingRun  # None: published


@dataclass(slots=True)
class _Submit:
    encoded: Encoded
    record_key: str
    window: Window
    claim: IdempotencyClaim | None
    claim_value: str
    done: asyncio.Future[Outcome]


def _fresh(exc: BaseException) -> BaseException:
    """A copy of ``exc`` for each waiter (one exception object raised in many tasks would
    share and grow one traceback)."""
    try:
        return type(exc)(*exc.args)
    except Exception:  # an exception type with another constructor
        return exc


class SubmitCoalescer:
    """Single submits arriving in the same event-loop iteration go to Redis in one
    EVALSHA; each waiter is woken with its own outcome once Redis has answered, or with
    the Redis error if the call failed."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._record_ttl = settings.result_expires_seconds
        self._stream = stream_key(settings.redis_key_prefix)
        self._maxlen = settings.ledger_stream_max_len
        self._script = redis.register_script(SUBMIT_SCRIPT)
        self._pending: list[_Submit] = []
        self._sending: set[asyncio.Task[None]] = set()  # strong refs until done

    async def submit(self, item: _Submit) -> Outcome:
        self._pending.append(item)
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await item.done

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        live = [item for item in pending if not item.done.done()]  # drop cancelled requests
        for start in range(0, len(live), MAX_COALESCED):
            task = asyncio.ensure_future(self._send(live[start : start + MAX_COALESCED]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, items: list[_Submit]) -> None:
        keys: list[str] = [self._stream]
        args: list[bytes | str | int] = [WINDOW_SECONDS + 1, self._record_ttl, self._maxlen]
        for item in items:
            claim = item.claim
            claim_key = claim.key if claim else ""
            keys += [item.window.counter, claim_key, item.encoded.queue_key, item.record_key]
            args += [
                item.window.limit,
                item.claim_value,
                claim.ttl_seconds if claim else 0,
                item.encoded.message,
                item.encoded.record,
            ]
        try:
            replies = await self._script(keys=keys, args=args)
        except BaseException as exc:
            for item in items:
                if not item.done.done():
                    item.done.set_exception(_fresh(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for item, reply in zip(items, replies, strict=True):
            if item.done.done():
                continue  # the request went away; its run was published all the same
            if reply == 0:
                item.done.set_result(None)
            elif reply == 1:
                item.done.set_result(RateLimited(item.window))
            else:
                stored = json.loads(reply)
                item.done.set_result(ExistingRun(stored["run_id"], stored["fingerprint"]))


def _log_fields(run: PreparedRun) -> dict[str, str]:
    return {"run_id": run.run_id, "job_name": run.job.name, "queue": run.queue.value}


class RunPublisher:
    def __init__(self, app: Celery, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._prefix = settings.redis_key_prefix
        self.encoder = RunEncoder(app, self._prefix, ORIGIN)
        self.messages = self.encoder.messages
        self._batch = redis.register_script(BATCH_SCRIPT)
        self._coalescer = SubmitCoalescer(redis, settings)

    def record_key(self, run_id: str) -> str:
        return record_key(self._prefix, run_id)

    def encode(self, run: PreparedRun) -> Encoded:
        return self.encoder.encode(run)

    async def submit(
        self, run: PreparedRun, window: Window, claim: IdempotencyClaim | None = None
    ) -> Outcome:
        """Count the request, claim its Idempotency-Key and publish, in one script shared
        with the other submits of this loop iteration. Returns None once the run is in
        Redis; RateLimited or the ExistingRun of the key when nothing was published."""
        value = ""
        if claim is not None:
            value = stdlib_dumps({"run_id": run.run_id, "fingerprint": claim.fingerprint})
        with publish_span([run]):
            item = _Submit(
                encoded=self.encode(run),
                record_key=self.record_key(run.run_id),
                window=window,
                claim=claim,
                claim_value=value,
                done=asyncio.get_running_loop().create_future(),
            )
            try:
                outcome = await self._coalescer.submit(item)
            except Exception:
                count_publish_error(run.queue.value, run.job.name, "api")
                raise
        if outcome is None:
            count_published(run.queue.value, run.job.name, "api")
            if log.isEnabledFor(logging.DEBUG):
                log.debug("published run %s", run.run_id, extra=_log_fields(run))
        return outcome

    async def publish(self, runs: Sequence[PreparedRun]) -> None:
        """Publish every run in one script: all are in Redis, or the call raises."""
        with publish_span(runs):
            keys, args = self.encoder.batch_call(runs, self._settings)
            try:
                await self._batch(keys=keys, args=args)
            except Exception:
                count_runs(((r.queue.value, r.job.name) for r in runs), "api", failed=True)
                raise
        count_runs(((r.queue.value, r.job.name) for r in runs), "api")
        if log.isEnabledFor(logging.DEBUG):
            for run in runs:
                log.debug("published run %s", run.run_id, extra=_log_fields(run))

    async def record(self, run_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self.record_key(run_id))
        return None if raw is None else dict(json.loads(raw))
