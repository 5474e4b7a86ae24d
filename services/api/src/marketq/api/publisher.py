"""Publishing runs from the API without Celery's per-call overhead.

``apply_async`` costs ~0.7 ms of CPU per message here (a Redis client object per publish,
``maybe_declare``, a result-channel subscription), which caps one process near 1,400
publishes/s. This publisher writes the same message Celery's own protocol-2 builder
(``app.amqp.as_task_v2``) would, in kombu's Redis envelope, but builds it from a per-job
skeleton (the constant headers come from ``as_task_v2`` itself, once per job) and skips
``saferepr`` when plain ``repr`` is provably the same string (``kwargs_repr``).

Redis work is one Lua script per round trip (EVALSHA):

- a single submit counts the key's rate limit, claims the Idempotency-Key when given,
  LPUSHes the message and SETs the run record, all in one script; submits that arrive in
  the same event-loop iteration share one EVALSHA (``SubmitCoalescer``), each with its
  own answer (published, rate limited, or the run its Idempotency-Key already names);
- a batch pushes each queue's messages with one variadic LPUSH and sets every record.

A script runs atomically, so a message and its record are both in Redis or neither is,
and a caller hears "published" only after Redis answered: a 202 is never answered for a
message that is not there. If Redis fails, every waiting caller gets the error (503).

tests/integration/test_api_messages.py checks the messages equal Celery's own and that a
real worker runs them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from celery import Celery
from celery.utils.saferepr import saferepr
from redis.asyncio import Redis

from marketq.api.ratelimit import WINDOW_SECONDS, Window
from marketq.common.metrics import count_publish_error, count_published, count_runs
from marketq.common.publish import PreparedRun, publish_span
from marketq.common.routing import PRIORITY_STEPS
from marketq.common.tracing import inject_trace_headers

log = logging.getLogger("marketq.api.publish")

PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport default `sep`
RUN_RECORD_PREFIX = "run:"
ORIGIN = "marketq-api"
# Most submits one EVALSHA carries; more wait for the next one (bounded script size).
MAX_COALESCED = 256


class RandomIds:
    """uuid4 strings from os.urandom fetched 4 KiB at a time: the same randomness as
    uuid.uuid4(), without its getrandom syscall per id (21% of a batch's CPU here)."""

    _CHUNK = 16 * 256

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0

    def __call__(self) -> str:
        if self._offset >= len(self._pool):
            self._pool, self._offset = os.urandom(self._CHUNK), 0
        raw = self._pool[self._offset : self._offset + 16]
        self._offset += 16
        return str(uuid.UUID(bytes=raw, version=4))


_stdlib_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _dumps(value: Any) -> bytes:
    """Compact JSON. orjson refuses integers beyond 64 bits, which params may hold."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _stdlib_dumps(value).encode()


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


@dataclass(frozen=True, slots=True)
class Encoded:
    queue_key: str
    message: bytes
    record: bytes


# One submit = 4 KEYS (rate counter, idempotency key or "" for none, queue list, run
# record) and 5 ARGV (limit, claim value or "", claim ttl, message, record) after the two
# shared ARGV (counter ttl, record ttl). Per submit: 0 published, 1 rate limited, or the
# value its idempotency key already held (nothing published).
_SUBMIT = """
local counter_ttl = tonumber(ARGV[1])
local record_ttl = tonumber(ARGV[2])
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k = i * 4
  local a = 2 + i * 5
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
      out[i + 1] = 0
    end
  end
end
return out
"""

# KEYS: the queue lists, then the run records. ARGV: number of lists, record ttl, the
# number of messages per list, the messages grouped by list, the records. One variadic
# LPUSH per list (in chunks: Lua's unpack has a stack limit), one SET per record.
_BATCH = """
local lists = tonumber(ARGV[1])
local record_ttl = tonumber(ARGV[2])
local pos = 3 + lists
for q = 1, lists do
  local last = pos + tonumber(ARGV[2 + q]) - 1
  while pos <= last do
    local stop = math.min(pos + 999, last)
    redis.call('LPUSH', KEYS[q], unpack(ARGV, pos, stop))
    pos = stop + 1
  end
end
for i = lists + 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[pos], 'EX', record_ttl)
  pos = pos + 1
end
return #KEYS - lists
"""


def queue_key(prefix: str, queue: str, priority: int | None) -> str:
    """The Redis list kombu's transport reads for this queue and priority."""
    step = PRIORITY_STEPS[0]
    for candidate in PRIORITY_STEPS:
        if priority is not None and candidate <= priority:
            step = candidate
    return f"{prefix}{queue}" if step == 0 else f"{prefix}{queue}{PRIORITY_SEPARATOR}{step}"


def _plain(value: Any, depth: int, maxlevels: int) -> bool:
    """True when ``repr(value)`` equals Celery's ``saferepr(value)`` (short enough aside):
    JSON data whose strings repr leaves unescaped, nested no deeper than saferepr shows."""
    kind = type(value)
    if kind is str:
        return value.isprintable() and "'" not in value and "\\" not in value
    if kind is dict:
        return depth < maxlevels and all(
            type(k) is str and _plain(k, depth, maxlevels) and _plain(v, depth + 1, maxlevels)
            for k, v in value.items()
        )
    if kind is list:
        return depth < maxlevels and all(_plain(v, depth + 1, maxlevels) for v in value)
    return value is None or kind in (int, float, bool)


def kwargs_repr(kwargs: dict[str, Any], maxsize: int, maxlevels: int) -> str:
    """Celery's ``kwargsrepr`` header: ``saferepr(kwargs, maxsize, maxlevels)``, computed
    with the builtin ``repr`` (about 20x cheaper) whenever that is the same string."""
    if _plain(kwargs, 0, maxlevels):
        text = repr(kwargs)
        if len(text) < maxsize:
            return text
    return str(saferepr(kwargs, maxsize, maxlevels=maxlevels))


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None


class MessageBuilder:
    """Celery protocol-2 messages in kombu's Redis envelope, from per-job skeletons."""

    def __init__(self, app: Celery) -> None:
        self._amqp = app.amqp
        self._maxsize = app.amqp.kwargsrepr_maxsize
        self._maxlevels = int(app.conf.task_repr_maxlevels)
        self._argsrepr = saferepr((), app.amqp.argsrepr_maxsize, maxlevels=self._maxlevels)
        self._skeletons: dict[str, dict[str, Any]] = {}
        self.new_id = RandomIds()
        self._no_links = self._embed(None)

    @staticmethod
    def _embed(callbacks: list[dict[str, Any]] | None) -> bytes:
        return _dumps({"callbacks": callbacks, "errbacks": None, "chain": None, "chord": None})

    def _skeleton(self, task: str) -> dict[str, Any]:
        """The headers as_task_v2 gives every run of ``task`` (built once, by Celery)."""
        skeleton = self._skeletons.get(task)
        if skeleton is None:
            built = self._amqp.as_task_v2("", task, args=(), kwargs={}, origin=ORIGIN)
            skeleton = self._skeletons[task] = dict(built.headers)
        return skeleton

    def headers(self, run: PreparedRun) -> dict[str, Any]:
        """THE place every API-published message's headers are built."""
        headers = self._skeleton(run.job.name).copy()
        headers["id"] = run.run_id
        headers["root_id"] = run.run_id
        headers["eta"] = _iso(run.eta)
        headers["expires"] = _iso(run.expires)
        headers["argsrepr"] = self._argsrepr
        headers["kwargsrepr"] = kwargs_repr(run.params, self._maxsize, self._maxlevels)
        headers.update(run.headers)  # marketq_enqueued_at
        inject_trace_headers(headers)  # the publish span's W3C context (no-op when off)
        return headers

    def body(self, run: PreparedRun) -> str:
        """base64 of the JSON ``[args, kwargs, embed]`` Celery sends."""
        embed = self._no_links
        if run.links:
            embed = self._embed([dict(link) for link in run.links])
        raw = b"[[]," + _dumps(run.params) + b"," + embed + b"]"
        return base64.b64encode(raw).decode("ascii")

    def message(self, run: PreparedRun) -> bytes:
        return _dumps(
            {
                "body": self.body(run),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": self.headers(run),
                "properties": {
                    "correlation_id": run.run_id,
                    "reply_to": None,
                    "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": run.queue.value},
                    "priority": run.priority or 0,
                    "body_encoding": "base64",
                    "delivery_tag": self.new_id(),
                },
            }
        )


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

    def __init__(self, redis: Redis, record_ttl: int) -> None:
        self._redis = redis
        self._record_ttl = record_ttl
        self._script = redis.register_script(_SUBMIT)
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
        keys: list[str] = []
        args: list[bytes | str | int] = [WINDOW_SECONDS + 1, self._record_ttl]
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
    def __init__(self, app: Celery, redis: Redis, *, key_prefix: str, record_ttl: int) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._record_ttl = record_ttl
        self.messages = MessageBuilder(app)
        self._batch = redis.register_script(_BATCH)
        self._coalescer = SubmitCoalescer(redis, record_ttl)

    def record_key(self, run_id: str) -> str:
        return f"{self._prefix}{RUN_RECORD_PREFIX}{run_id}"

    def encode(self, run: PreparedRun) -> Encoded:
        """Queue list key, kombu message JSON and run record JSON of one run."""
        record = {
            "id": run.run_id,
            "job": run.job.name,
            "queue": run.queue.value,
            "params": run.params,
            "state": "QUEUED",
            "enqueued_at": run.enqueued_at.isoformat(),
            "eta": _iso(run.eta),
            "priority": run.priority,
        }
        return Encoded(
            queue_key=queue_key(self._prefix, run.queue.value, run.priority),
            message=self.messages.message(run),
            record=_dumps(record),
        )

    async def submit(
        self, run: PreparedRun, window: Window, claim: IdempotencyClaim | None = None
    ) -> Outcome:
        """Count the request, claim its Idempotency-Key and publish, in one script shared
        with the other submits of this loop iteration. Returns None once the run is in
        Redis; RateLimited or the ExistingRun of the key when nothing was published."""
        value = ""
        if claim is not None:
            value = _stdlib_dumps({"run_id": run.run_id, "fingerprint": claim.fingerprint})
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
            by_list: dict[str, list[bytes]] = {}
            record_keys: list[str] = []
            records: list[bytes] = []
            for run in runs:
                encoded = self.encode(run)
                by_list.setdefault(encoded.queue_key, []).append(encoded.message)
                record_keys.append(self.record_key(run.run_id))
                records.append(encoded.record)
            args: list[bytes | str | int] = [len(by_list), self._record_ttl]
            args += [len(messages) for messages in by_list.values()]
            for messages in by_list.values():
                args += messages
            args += records
            try:
                await self._batch(keys=[*by_list, *record_keys], args=args)
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
