"""Vendor quotas shared by every worker process and replica: one Redis token bucket per
vendor and API key (docs/design.md#vendor-quotas).

An adapter calls ``quota.acquire(vendor, key_id, deadline)`` before each vendor request.
The bucket lives in Redis and is updated by one Lua script, so every process of every
replica draws from the same tokens and no two can take the last one. A call that finds
the bucket empty reserves the next token and sleeps until its turn -- unless that turn
comes after ``deadline`` (the job's soft time limit), in which case nothing is reserved
and ``QuotaDeferredError`` (transient) sends the run back through the retry policy with
the wait as its countdown. Over any window of T seconds a bucket grants at most
``burst + rate * T`` calls, whichever process asks.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import redis

from marketq.providers import metrics
from marketq.providers.errors import TransientProviderError

if TYPE_CHECKING:
    from marketq.common.settings import Settings

__all__ = [
    "NoQuota",
    "Quota",
    "QuotaDeferredError",
    "RedisTokenBucket",
    "VendorLimit",
    "deadline_scope",
    "key_id_for",
    "quota_from_settings",
]

# KEYS[1]: the bucket (a hash: tokens, at_us). ARGV: rate per second, burst, longest wait
# the caller accepts (seconds, may be "inf"). Redis' own clock is the one clock, so hosts
# whose clocks disagree still share one rate. Returns {granted 0/1, tokens left, wait}.
# Floats travel as strings: Redis truncates Lua numbers in replies to integers.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at_us')
local tokens = tonumber(state[1])
local at_us = tonumber(state[2])
if tokens == nil or at_us == nil then
  tokens = burst
  at_us = now_us
end
local elapsed = math.max(0, now_us - at_us) / 1000000
tokens = math.min(burst, tokens + elapsed * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait > max_wait then
  return {0, tostring(tokens), tostring(wait)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at_us', tostring(now_us))
-- Expire when the bucket would be full again: a missing key means exactly that.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {1, tostring(tokens), tostring(wait)}
"""

_job_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "marketq_job_deadline", default=None
)


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Calls inside wait for tokens no later than ``deadline`` (``time.monotonic()``)
    unless they pass their own. The worker sets it from the job's soft time limit."""
    token = _job_deadline.set(deadline)
    try:
        yield
    finally:
        _job_deadline.reset(token)


def key_id_for(api_key: str | None) -> str:
    """A stable, non-secret id of an API key for bucket names (never the key itself)."""
    if not api_key:
        return "anonymous"
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class QuotaDeferredError(TransientProviderError):
    """The vendor's next token comes after the job's deadline: retry the run later."""


class Quota(Protocol):
    def acquire(self, vendor: str, key_id: str, deadline: float | None = None) -> None:
        """Block until one call to ``vendor`` with ``key_id`` may be made.

        ``deadline`` is a ``time.monotonic()`` instant (the job's by default); raises
        ``QuotaDeferredError`` instead of waiting past it.
        """
        ...


class NoQuota:
    """No limit: calls are counted, never delayed (tests, one-off tools)."""

    def acquire(self, vendor: str, key_id: str, deadline: float | None = None) -> None:
        metrics.observe_wait(vendor, 0.0)
        metrics.count_call(vendor)


@dataclass(frozen=True)
class VendorLimit:
    rate_per_second: float
    burst: int


class RedisTokenBucket:
    """The shared quota: one bucket per vendor and key in Redis, updated atomically.

    Vendors without a configured limit are counted but not limited.
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: Mapping[str, VendorLimit],
        *,
        key_prefix: str,
        max_wait_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._limits = dict(limits)
        self._key_prefix = key_prefix
        self._max_wait = max_wait_seconds
        self._sleep = sleep
        self._clock = clock
        self._script = client.register_script(_BUCKET_LUA)

    def bucket_key(self, vendor: str, key_id: str) -> str:
        return f"{self._key_prefix}quota:{vendor}:{key_id}"

    def acquire(self, vendor: str, key_id: str, deadline: float | None = None) -> None:
        limit = self._limits.get(vendor)
        if limit is None:
            metrics.observe_wait(vendor, 0.0)
            metrics.count_call(vendor)
            return
        if deadline is None:
            deadline = _job_deadline.get()
        longest = self._max_wait
        if deadline is not None:
            longest = min(longest, max(0.0, deadline - self._clock()))
        granted, tokens, wait = self._script(
            keys=[self.bucket_key(vendor, key_id)],
            args=[repr(limit.rate_per_second), limit.burst, repr(longest)],
        )
        tokens_left, wait_seconds = float(tokens), float(wait)
        metrics.set_tokens(vendor, tokens_left)
        if not int(granted):
            metrics.count_deferred(vendor)
            raise QuotaDeferredError(
                f"{vendor} quota: next token in {wait_seconds:.1f} s, after this attempt's "
                f"deadline ({longest:.1f} s away)",
                vendor=vendor,
                retry_after=math.ceil(wait_seconds),
            )
        metrics.observe_wait(vendor, wait_seconds)
        if wait_seconds > 0:
            self._sleep(wait_seconds)
        metrics.count_call(vendor)


def quota_from_settings(settings: Settings) -> Quota:
    """The quota every adapter of this process shares, as configured."""
    if not settings.quota_enabled:
        return NoQuota()
    from marketq.common.redis_client import redis_client

    url = settings.quota_redis_url or settings.redis_url
    client = redis_client(
        url,
        settings,
        socket_timeout=settings.broker_socket_timeout_seconds,
        socket_connect_timeout=settings.broker_connect_timeout_seconds,
    )
    limits = {
        vendor: VendorLimit(options.rate_per_second, options.burst)
        for vendor, options in settings.quotas.items()
    }
    return RedisTokenBucket(
        client,
        limits,
        key_prefix=settings.redis_key_prefix,
        max_wait_seconds=settings.quota_max_wait_seconds,
    )
