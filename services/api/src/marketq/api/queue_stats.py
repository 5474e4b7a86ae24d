"""Queue depth, age and reserved work, read from Redis in one round trip.

kombu's Redis transport keeps a queue as one list per priority step (``<prefix><queue>``
for step 0, ``<prefix><queue>\\x06\\x16<step>`` for the others); producers LPUSH at the
head and workers BRPOP from the tail, so the oldest waiting message of a list is its tail
(``LINDEX key -1``). Messages a worker has taken but not acknowledged (prefetched,
running, or held for their ETA) are no longer in any list: they are values of the hash
``<prefix>unacked``, JSON ``[message, exchange, routing_key]``.

``read_queue_stats`` runs one Lua script (a single round trip, atomic, so the numbers of
all queues are of the same instant) that does, for each of the 16 lists, ``LLEN`` and
``LINDEX -1`` and returns only the two headers that date the tail message
(``marketq_enqueued_at`` and ``eta``), never the message itself, which can be large (a
CSV import). Its cost does not grow with queue depth. The unacked hash is counted with
``HLEN``; its values are classified by routing key only while there are at most
``UNACKED_CLASSIFY_LIMIT`` of them (normally: the sum of the workers' prefetch, plus
messages held for an ETA), each by a pattern match on its last bytes. Above the limit
``reserved`` per queue is unknown (``None``) and only the total is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from marketq.common.queues import ALL_QUEUES
from marketq.common.routing import PRIORITY_STEPS

__all__ = [
    "PRIORITY_SEPARATOR",
    "UNACKED_CLASSIFY_LIMIT",
    "QueueSnapshot",
    "QueueStats",
    "QueueStatsReader",
    "list_key",
    "read_queue_stats",
]

PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport default `sep`
UNACKED_CLASSIFY_LIMIT = 1000
"""Most unacked messages whose queue is worked out on a read; above it, only the total."""

# KEYS: the lists, then the unacked hash. ARGV[1]: UNACKED_CLASSIFY_LIMIT.
# Returns per list: length, enqueued_at (string or nil), eta (string or nil); then the
# unacked total; then routing key / count pairs when the total is within the limit.
_READ = r"""
local out = {}
local lists = #KEYS - 1
for i = 1, lists do
  local length = redis.call('LLEN', KEYS[i])
  local enqueued, eta = false, false
  if length > 0 then
    local tail = redis.call('LINDEX', KEYS[i], -1)
    if tail then
      enqueued = string.match(tail, '"marketq_enqueued_at"%s*:%s*([-+%d%.eE]+)') or false
      eta = string.match(tail, '"eta"%s*:%s*"([^"]+)"') or false
    end
  end
  out[#out + 1] = length
  out[#out + 1] = enqueued
  out[#out + 1] = eta
end
local unacked = KEYS[#KEYS]
local total = redis.call('HLEN', unacked)
out[#out + 1] = total
if total > 0 and total <= tonumber(ARGV[1]) then
  local counts = {}
  for _, value in ipairs(redis.call('HVALS', unacked)) do
    local key = string.match(string.sub(value, -512), ',%s*"([^"]*)"%s*%]%s*$') or ''
    counts[key] = (counts[key] or 0) + 1
  end
  for key, count in pairs(counts) do
    out[#out + 1] = key
    out[#out + 1] = count
  end
end
return out
"""


def list_key(prefix: str, queue: str, step: int) -> str:
    """The Redis list kombu uses for ``queue`` at priority step ``step``."""
    return f"{prefix}{queue}" if step == 0 else f"{prefix}{queue}{PRIORITY_SEPARATOR}{step}"


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    length: int  # waiting messages over every priority list
    by_priority: dict[int, int]  # priority step -> waiting messages
    oldest_age_seconds: float | None  # None: nothing waiting, or the tail is undated
    reserved: int | None  # taken by a worker, not yet acknowledged; None: not counted


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    queues: list[QueueStats]
    reserved_total: int  # every unacked message, whatever its queue
    reserved_counted: bool  # whether per-queue ``reserved`` could be worked out
    read_at: datetime


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _epoch(enqueued: object, eta: object) -> float | None:
    """max(enqueued_at, eta) in epoch seconds; None when the enqueue header is missing."""
    raw = _text(enqueued)
    if raw is None:
        return None
    try:
        dated = float(raw)
    except ValueError:
        return None
    eta_text = _text(eta)
    if eta_text:
        try:
            when = datetime.fromisoformat(eta_text)
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            dated = max(dated, when.timestamp())
    return dated


class QueueStatsReader:
    """The read script bound to one client (redis-py sends EVALSHA, loading it once)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._script = redis.register_script(_READ)
        self._keys = [
            list_key(prefix, queue.value, step) for queue in ALL_QUEUES for step in PRIORITY_STEPS
        ]
        self._keys.append(f"{prefix}unacked")

    async def read(self, *, now: float | None = None) -> QueueSnapshot:
        raw = await self._script(keys=self._keys, args=[UNACKED_CLASSIFY_LIMIT])
        at = time.time() if now is None else now
        reply = list(raw)
        per_list = len(PRIORITY_STEPS) * len(ALL_QUEUES)
        lists, rest = reply[: 3 * per_list], reply[3 * per_list :]
        total = int(rest[0])
        counted = total <= UNACKED_CLASSIFY_LIMIT
        reserved: dict[str, int] = {}
        for i in range(1, len(rest) - 1, 2):
            reserved[_text(rest[i]) or ""] = int(rest[i + 1])
        queues: list[QueueStats] = []
        for q_index, queue in enumerate(ALL_QUEUES):
            by_priority: dict[int, int] = {}
            ages: list[float] = []
            for s_index, step in enumerate(PRIORITY_STEPS):
                base = 3 * (q_index * len(PRIORITY_STEPS) + s_index)
                length = int(lists[base])
                by_priority[step] = length
                if length:
                    dated = _epoch(lists[base + 1], lists[base + 2])
                    if dated is not None:
                        ages.append(max(0.0, at - dated))
            queues.append(
                QueueStats(
                    name=queue.value,
                    length=sum(by_priority.values()),
                    by_priority=by_priority,
                    oldest_age_seconds=round(max(ages), 3) if ages else None,
                    reserved=reserved.get(queue.value, 0) if counted else None,
                )
            )
        return QueueSnapshot(
            queues=queues,
            reserved_total=total,
            reserved_counted=counted,
            read_at=datetime.fromtimestamp(at, UTC),
        )


async def read_queue_stats(redis: Redis, prefix: str, *, now: float | None = None) -> QueueSnapshot:
    """Every queue's depth, age and reserved count: one Redis round trip."""
    return await QueueStatsReader(redis, prefix).read(now=now)
