"""The Redis result backend marketq configures.

Celery's Redis backend subscribes to a pub/sub channel for every task a process sends, so
that a later ``AsyncResult.get()`` returns quickly. marketq's producers (API, beat, CLI)
follow runs through the ledger and the stored state instead, and the subscription costs a
round trip per publish, accumulates channels in long-lived producers, and during a Redis
outage made a publish block ~19 s (docs/design.md#result-backend). ``AsyncResult.get()``
still works: it subscribes when it is called.

A run's success is stored together with its ledger event. Celery stores a result in two
round trips (a GET, so that a late duplicate never overwrites a SUCCESS, then SET and
PUBLISH); the worker then appended SUCCESS to the run-event stream in a third. Where the
worker installs ``end_event`` and results live on the broker's Redis, one script does all
of it: the same check, the same SET and PUBLISH, and the XADD, atomically, so a stored
success always has its event and a retried store (a dropped connection) never adds a
second one (docs/design.md#run-ledger).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from celery import states
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.exceptions import BackendStoreError

from marketq.common.run_events import DETAIL_FIELD, STATE_FIELD

RESULT_BACKEND_CLASS = "marketq.common.results:MarketqRedisBackend"
# The same behaviour on the current master of a group of Redis Sentinels (sentinel:// URL).
SENTINEL_BACKEND_CLASS = "marketq.common.results:MarketqSentinelBackend"


class EndEvent(NamedTuple):
    """A ledger event to append with a stored result (marketq.common.run_events)."""

    stream: str
    max_len: int
    state: str
    detail: bytes


# (task id, state, result, task request) -> the event, or None to store as Celery does.
EndEventHook = Callable[[str, str, Any, Any], EndEvent | None]

# KEYS: the result's key, the run-event stream. ARGV: encoded meta (JSON), expiry seconds
# (0: none), the stream's MAXLEN ~, then the event's two fields as name, value, name,
# value. Returns 1 when stored, 0 when an earlier execution's SUCCESS is kept (Celery's
# own rule).
_STORE_WITH_EVENT = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return 1
"""


class _StoreWithEvent:
    """Mixin for Celery's Redis backends: a SUCCESS stored with its ledger event."""

    # Installed by the worker (marketq.worker.ledger_signals); producers leave it unset.
    end_event: ClassVar[EndEventHook | None] = None

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Do not subscribe to the result channel at publish time."""

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: Any = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        backend: Any = self
        hook = type(self).end_event
        event = hook(task_id, state, result, request) if hook is not None else None
        if event is None or state != states.SUCCESS or backend.serializer != "json":
            return super()._store_result(  # type: ignore[misc]
                task_id, result, state, traceback=traceback, request=request, **kwargs
            )
        meta = backend._get_result_meta(
            result=result, state=state, traceback=traceback, request=request
        )
        meta["task_id"] = task_id.decode() if isinstance(task_id, bytes) else task_id
        value = backend.encode(meta)
        if len(value) > backend._MAX_STR_VALUE_SIZE:
            raise BackendStoreError(
                "value too large for Redis backend", state=state, task_id=task_id
            )
        key = backend.get_key_for_task(task_id)
        stored = backend.ensure(self._run_script, (key, value, event))
        if request is not None:
            # The task_success handler then appends nothing; when an earlier execution's
            # SUCCESS was kept, this one's event is appended there as before.
            request.marketq_end_recorded = bool(stored)
        return result

    def _run_script(self, key: Any, value: Any, event: EndEvent) -> int:
        backend: Any = self
        script = backend.__dict__.get("_marketq_store_script")
        if script is None:
            script = backend._marketq_store_script = backend.client.register_script(
                _STORE_WITH_EVENT
            )
        expires = int(backend.expires or 0)
        return int(
            script(
                keys=[key, event.stream],
                args=[
                    value,
                    expires,
                    event.max_len,
                    STATE_FIELD,
                    event.state,
                    DETAIL_FIELD,
                    event.detail,
                ],
                client=backend.client,
            )
        )


class MarketqRedisBackend(_StoreWithEvent, RedisBackend):  # type: ignore[misc]
    pass


class MarketqSentinelBackend(_StoreWithEvent, SentinelBackend):  # type: ignore[misc]
    """Celery's Sentinel backend with the same behaviour as the plain one."""
