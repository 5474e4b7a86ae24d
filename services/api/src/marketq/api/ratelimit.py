"""Per-API-key request limit: a fixed one-minute window counted in Redis.

Every authenticated request counts. Most routes count in their access dependency (one
small Lua script, one reply); the single-submit route counts inside its publish script
instead, so that a submit is one Redis round trip (``publisher.py``). Over the limit the
answer is 429 with ``Retry-After`` set to the seconds left in the window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from marketq.api.errors import ApiError

WINDOW_SECONDS = 60

# KEYS: counter. ARGV: its ttl. Returns the count after this request.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return count
"""


_scripts: dict[int, AsyncScript] = {}


def _script(redis: Redis) -> AsyncScript:
    """The count script (EVALSHA; redis-py reloads it after a Redis restart)."""
    script = _scripts.get(id(redis))
    if script is None:
        script = _scripts[id(redis)] = redis.register_script(_COUNT)
    return script


@dataclass(frozen=True, slots=True)
class Window:
    """The counter of one key in the current window, and when the window ends."""

    counter: str
    limit: int
    ends_at: float

    def refusal(self, key_name: str) -> ApiError:
        retry_after = max(1, int(self.ends_at - time.time()))
        return ApiError(
            429,
            "rate_limited",
            f"API key {key_name!r} exceeded {self.limit} requests per minute",
            headers={"Retry-After": str(retry_after)},
        )


def window(prefix: str, key_name: str, limit: int) -> Window:
    index = int(time.time() // WINDOW_SECONDS)
    return Window(
        counter=f"{prefix}ratelimit:{key_name}:{index}",
        limit=limit,
        ends_at=(index + 1) * WINDOW_SECONDS,
    )


async def check_rate(redis: Redis, prefix: str, key_name: str, limit: int) -> None:
    """Count one request of ``key_name``; raise the 429 when it is over the limit."""
    current = window(prefix, key_name, limit)
    count = await _script(redis)(keys=[current.counter], args=[WINDOW_SECONDS + 1], client=redis)
    if int(count) > limit:
        raise current.refusal(key_name)


# A route that counts its requests in its own script marks the request with the key's
# name; a request that fails before reaching that script is counted by ``count_deferred``.
_DEFERRED = "marketq_rate_limit_deferred"


def defer(request: Request, key_name: str) -> None:
    setattr(request.state, _DEFERRED, key_name)


def counted(request: Request) -> None:
    """The route's own script counted this request."""
    setattr(request.state, _DEFERRED, None)


async def count_deferred(request: Request, redis: Redis, prefix: str, limit: int) -> None:
    """Count a request whose route deferred counting but failed before its script ran;
    raises the 429 if it is over the limit (a 429 wins over a 4xx, as for other routes)."""
    key_name = getattr(request.state, _DEFERRED, None)
    if key_name is None:
        return
    counted(request)
    await check_rate(redis, prefix, key_name, limit)
