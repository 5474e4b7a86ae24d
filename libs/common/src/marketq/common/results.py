"""The Redis result backend marketq configures.

Celery's Redis backend subscribes to a pub/sub channel for every task a process sends, so
that a later ``AsyncResult.get()`` returns quickly. marketq's producers (API, beat, CLI)
follow runs through the ledger and the stored state instead, and the subscription costs a
round trip per publish, accumulates channels in long-lived producers, and during a Redis
outage made a publish block ~19 s (docs/design.md#result-backend). ``AsyncResult.get()``
still works: it subscribes when it is called.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend, SentinelBackend

RESULT_BACKEND_CLASS = "marketq.common.results:MarketqRedisBackend"
# The same behaviour on the current master of a group of Redis Sentinels (sentinel:// URL).
SENTINEL_BACKEND_CLASS = "marketq.common.results:MarketqSentinelBackend"


class MarketqRedisBackend(RedisBackend):  # type: ignore[misc]
    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Do not subscribe to the result channel at publish time."""


class MarketqSentinelBackend(SentinelBackend):  # type: ignore[misc]
    """Celery's Sentinel backend with the same publish-time behaviour as the plain one."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Do not subscribe to the result channel at publish time."""
