"""The four queues marketq runs, one worker Deployment each."""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    MARKET_HOURS = "market_hours"
    DAILY = "daily"
    PERIODIC = "periodic"
    DEFAULT = "default"


ALL_QUEUES: tuple[Queue, ...] = tuple(Queue)
