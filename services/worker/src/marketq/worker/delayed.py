"""Runs with a countdown/ETA wait in Redis, not in a worker, until they are due.

Celery's worker reserves every ETA message it receives, beyond its prefetch, and keeps
it unacknowledged while it waits; once due, the run may still wait for a free pool slot
while the broker's visibility clock keeps running, and the restore sweep then hands the
same message to another worker: one run executed twice (docs/design.md#delayed-runs).

Here a message whose ETA is still ahead never stays in the worker. On receipt it moves,
in one Redis script, from kombu's ``unacked`` hash to the ``delayed`` sorted set (scored
by its ETA), and every worker's consumer releases due members back to the head of their
queue list once a second, again in one script. A message is therefore always in exactly
one place (a list, ``unacked``, or ``delayed``), and a due run is held by a worker only
while that worker can run it, like any other message. The message itself is unchanged;
when it comes back its ETA has passed, and Celery runs it at once.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from celery import bootsteps
from celery.worker.strategy import default as default_strategy
from redis import Redis

from marketq.common.redis_client import redis_client
from marketq.common.settings import get_settings

log = logging.getLogger("marketq.worker.delayed")

DELAYED_KEY = "delayed"  # after the key prefix, beside kombu's "unacked"
RELEASE_INTERVAL_SECONDS = 1.0
RELEASE_BATCH = 500
_SEPARATOR = "\n"  # between the list key and the message; JSON never contains a raw one

# KEYS: unacked hash, unacked index, delayed set. ARGV: delivery tag, due (epoch s), member.
# Only a message still unacknowledged moves (not one the sweep restored meanwhile).
_DEFER = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: delayed set. ARGV: now (epoch s), batch size. RPUSH: the end consumers pop first.
_RELEASE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local cut = string.find(member, '\\n', 1, true)
  redis.call('RPUSH', string.sub(member, 1, cut - 1), string.sub(member, cut + 1))
end
return #due
"""


class DelayedRuns:
    """The two scripts, on a Redis client of the broker's database."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._defer = client.register_script(_DEFER)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_settings(cls) -> DelayedRuns:
        settings = get_settings()
        url = settings.effective_broker_url
        client = redis_client(
            url,
            settings,
            socket_timeout=settings.broker_socket_timeout_seconds,
            socket_connect_timeout=settings.broker_connect_timeout_seconds,
        )
        return cls(client, settings.redis_key_prefix)

    @property
    def key(self) -> str:
        return f"{self._prefix}{DELAYED_KEY}"

    def defer(self, message: Any, due: float) -> bool:
        """Move a received message to the delayed set; False if it was no longer held."""
        tag = message.delivery_tag
        held = self._client.hget(f"{self._prefix}unacked", tag)
        if held is None:
            return False
        envelope, _exchange, routing_key = json.loads(held)
        priority = (message.properties or {}).get("priority")
        queue_list = self._prefix + message.channel._q_for_pri(routing_key, priority)
        member = queue_list + _SEPARATOR + json.dumps(envelope, separators=(",", ":"))
        keys = [f"{self._prefix}unacked", f"{self._prefix}unacked_index", self.key]
        return bool(self._defer(keys=keys, args=[tag, due, member]))

    def release_due(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return int(self._release(keys=[self.key], args=[now, RELEASE_BATCH]))


_runs: DelayedRuns | None = None


def _delayed_runs() -> DelayedRuns:
    global _runs
    if _runs is None:
        _runs = DelayedRuns.from_settings()
    return _runs


def _due(message: Any) -> float | None:
    eta = (message.headers or {}).get("eta")
    if not eta:
        return None
    return datetime.fromisoformat(eta).timestamp()


def strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
    """Celery's default strategy, except that a run not yet due goes back to Redis."""
    handle = default_strategy(task, app, consumer, **kwargs)

    def handle_unless_early(
        message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any
    ) -> Any:
        due = _due(message)
        if due is not None and due > time.time():
            try:
                moved = _delayed_runs().defer(message, due)
            except Exception as exc:  # Redis hiccup: keep Celery's own behaviour
                log.warning("could not defer run %s: %s", message.headers.get("id"), exc)
                moved = False
            if moved:
                message.ack()  # its Redis entries are gone; this drops the local one
                return None
        return handle(message, body, ack, reject, callbacks, **kw)

    return handle_unless_early


class ReleaseDueRuns(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: release due runs once a second while connected."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timer: Any = None

    def start(self, consumer: Any) -> None:
        if consumer.timer is not None:
            self._timer = consumer.timer.call_repeatedly(RELEASE_INTERVAL_SECONDS, _release)

    def stop(self, consumer: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def shutdown(self, consumer: Any) -> None:
        self.stop(consumer)


def _release() -> None:
    try:
        released = _delayed_runs().release_due()
    except Exception as exc:  # the broker is away; the next tick tries again
        log.debug("releasing due runs failed: %s", exc)
        return
    if released:
        log.info("released %d due run(s) to their queues", released)
