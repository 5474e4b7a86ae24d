"""The shared vendor quota against a real redis-server: the Lua token bucket paces every
caller to ``burst + rate * T`` calls in any window of T seconds, waits instead of failing,
defers (without spending a token) when the wait would pass the deadline, and leaves only
prefixed keys that expire."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from prometheus_client import REGISTRY

from marketq.common.settings import Settings
from marketq.providers.quota import (
    NoQuota,
    QuotaDeferredError,
    RedisTokenBucket,
    VendorLimit,
    deadline_scope,
    key_id_for,
    quota_from_settings,
)

pytestmark = pytest.mark.integration


def bucket(url: str, limits: dict[str, VendorLimit], max_wait: float = 30) -> RedisTokenBucket:
    return RedisTokenBucket(
        redis.Redis.from_url(url), limits, key_prefix="mq-test:", max_wait_seconds=max_wait
    )


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def sample(name: str, vendor: str) -> float:
    return REGISTRY.get_sample_value(name, {"vendor": vendor}) or 0.0


def test_concurrent_callers_never_exceed_burst_plus_rate(redis_url: str) -> None:
    rate, burst, calls_per_thread, threads = 20.0, 2, 8, 4
    quota = bucket(redis_url, {"v": VendorLimit(rate, burst)})
    granted: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(calls_per_thread):
            quota.acquire("v", "k")
            with lock:
                granted.append(time.monotonic())

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    elapsed = time.monotonic() - started
    total = calls_per_thread * threads
    assert len(granted) == total  # everyone waited, nobody failed
    # 32 calls at 20/s with 2 up front: at least (32 - 2) / 20 = 1.5 s.
    assert elapsed >= (total - burst) / rate - 0.05
    # Small slack for the time between Redis' grant and our clock read.
    assert most_in_any_window(granted, 0.5) <= burst + rate * 0.5 + 1


def test_wait_past_deadline_defers_without_spending_a_token(redis_url: str) -> None:
    quota = bucket(redis_url, {"slow": VendorLimit(rate_per_second=0.5, burst=1)})
    quota.acquire("slow", "k")  # the one token of the burst
    deferred_before = sample("marketq_vendor_quota_deferred_total", "slow")
    with deadline_scope(time.monotonic() + 0.5), pytest.raises(QuotaDeferredError) as raised:
        quota.acquire("slow", "k")
    assert raised.value.retry_after == 2  # (1 token) / (0.5 tokens/s), rounded up
    assert raised.value.vendor == "slow"
    assert sample("marketq_vendor_quota_deferred_total", "slow") == deferred_before + 1
    # Nothing was reserved by the refusal: the next token is still ~2 s after the first.
    started = time.monotonic()
    quota.acquire("slow", "k", deadline=time.monotonic() + 5)
    assert 1.0 < time.monotonic() - started < 2.5


def test_a_caller_that_must_wait_waits_and_the_wait_is_measured(redis_url: str) -> None:
    quota = bucket(redis_url, {"w": VendorLimit(rate_per_second=4, burst=1)})
    waits_before = sample("marketq_vendor_throttle_wait_seconds_sum", "w")
    calls_before = sample("marketq_vendor_calls_total", "w")
    started = time.monotonic()
    for _ in range(3):
        quota.acquire("w", "k", deadline=time.monotonic() + 10)
    assert time.monotonic() - started >= 0.45  # two waits of 0.25 s
    assert sample("marketq_vendor_calls_total", "w") == calls_before + 3
    assert sample("marketq_vendor_throttle_wait_seconds_sum", "w") - waits_before >= 0.45
    assert sample("marketq_vendor_tokens", "w") < 0.5


def test_buckets_are_per_vendor_and_key_prefixed_and_expire(redis_url: str) -> None:
    quota = bucket(redis_url, {"a": VendorLimit(1.0, 1), "b": VendorLimit(1.0, 1)})
    started = time.monotonic()
    quota.acquire("a", "key1")
    quota.acquire("a", "key2")  # another API key: its own bucket
    quota.acquire("b", "key1")  # another vendor: its own bucket
    quota.acquire("unlimited", "key1")  # no configured limit: not paced
    quota.acquire("unlimited", "key1")
    assert time.monotonic() - started < 0.5
    client = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in client.keys("*"))
    assert keys == ["mq-test:quota:a:key1", "mq-test:quota:a:key2", "mq-test:quota:b:key1"]
    for key in keys:
        ttl_ms = client.pttl(key)
        # Full again after (burst - tokens) / rate = 1 s; the key lives that plus 1 s.
        assert 0 < ttl_ms <= 2000


def test_quota_from_settings(redis_url: str) -> None:
    assert isinstance(quota_from_settings(Settings(quota_enabled=False)), NoQuota)
    configured = quota_from_settings(Settings(redis_url=redis_url, redis_key_prefix="p:"))
    assert isinstance(configured, RedisTokenBucket)
    assert configured.bucket_key("edgar", key_id_for("secret")).startswith("p:quota:edgar:")
    assert "secret" not in configured.bucket_key("edgar", key_id_for("secret"))
