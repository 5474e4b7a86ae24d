"""Per-API-key request limit: a fixed one-minute window counted in Redis.

One INCR + EXPIRE in a single round trip per request; over the limit the answer is 429
with ``Retry-After`` set to the seconds left in the window.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from marketq.api.errors import ApiError

WINDOW_SECONDS = 60


async def check_rate(redis: Redis, prefix: str, key_name: str, limit: int) -> None:
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    counter = f"{prefix}ratelimit:{key_name}:{window}"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(counter)
        pipe.expire(counter, WINDOW_SECONDS + 1)
        count, _ = await pipe.execute()
    if int(count) > limit:
        retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now))
        raise ApiError(
            429,
            "rate_limited",
            f"API key {key_name!r} exceeded {limit} requests per minute",
            headers={"Retry-After": str(retry_after)},
        )
