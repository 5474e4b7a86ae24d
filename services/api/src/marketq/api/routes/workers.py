"""Workers online: Celery's remote inspection, cached and shared between requests.

Asking the workers costs a broadcast per question and a wait of
``MARKETQ_API_INSPECT_TIMEOUT_SECONDS`` for their replies (Celery cannot know how many
will answer). The four questions (active_queues, stats, active, reserved) are asked in
parallel from worker threads, so the event loop never blocks and a refresh takes about
one timeout. The answer is reused for ``MARKETQ_API_WORKERS_CACHE_SECONDS``; requests
that arrive during a refresh wait for it instead of starting their own (an asyncio.Lock
in ``ApiState.cache``), so the broadcast rate is bounded per API process whatever the
request rate. ``marketq_api_worker_inspections_total`` counts the refreshes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from kombu.exceptions import OperationalError as BrokerOperationalError
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from marketq.api.access import Read
from marketq.api.errors import ApiError
from marketq.api.routes.runs import ERRORS
from marketq.api.state import ApiState, State
from marketq.common.queues import ALL_QUEUES

router = APIRouter(prefix="/api/v1", tags=["observe"])

CACHE_KEY = "workers"
LOCK_KEY = "workers:lock"
INSPECT_COMMANDS = ("active_queues", "stats", "active", "reserved")
BROKER_ERRORS = (BrokerOperationalError, RedisConnectionError, RedisTimeoutError, OSError)

INSPECTIONS = Counter(
    "marketq_api_worker_inspections_total",
    "Worker inspections (one broadcast per question) made by this API process for "
    "GET /api/v1/workers; cached answers are not counted.",
)


class WorkerInfo(BaseModel):
    name: str = Field(description="Celery node name, <queue>@<host>.")
    queues: list[str] = Field(description="Queues the worker consumes.")
    pool_size: int | None = Field(description="Pool processes (stats.pool.max-concurrency).")
    active: int = Field(description="Tasks running now.")
    reserved: int = Field(description="Tasks prefetched, waiting for a pool process or ETA.")
    uptime_seconds: int | None
    pid: int | None = Field(description="PID of the worker's main process on its host.")
    processed: int | None = Field(description="Tasks the worker has received since it started.")


class QueueWorkers(BaseModel):
    name: str
    workers: int = Field(description="Workers online that consume this queue.")
    pool_size: int = Field(description="Pool processes of those workers, summed.")
    worker_names: list[str]


class WorkersResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "workers": [
                        {
                            "name": "daily@worker-daily-7c9f",
                            "queues": ["daily"],
                            "pool_size": 2,
                            "active": 1,
                            "reserved": 0,
                            "uptime_seconds": 5400,
                            "pid": 1,
                            "processed": 118,
                        }
                    ],
                    "queues": [
                        {
                            "name": "daily",
                            "workers": 1,
                            "pool_size": 2,
                            "worker_names": ["daily@worker-daily-7c9f"],
                        },
                        {"name": "default", "workers": 0, "pool_size": 0, "worker_names": []},
                    ],
                    "fetched_at": "2026-11-27T17:31:02.114Z",
                    "cache_seconds": 5.0,
                }
            ]
        }
    )

    workers: list[WorkerInfo] = Field(description="Every worker that answered, by name.")
    queues: list[QueueWorkers] = Field(description="Per queue: the workers consuming it.")
    fetched_at: datetime = Field(
        description="When the workers were asked; equal across answers served from the cache."
    )
    cache_seconds: float = Field(description="How long an answer is reused.")


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def build_response(
    replies: dict[str, dict[str, Any] | None], cache_seconds: float
) -> WorkersResponse:
    """Merge the per-command replies ({worker: reply}) into one answer."""
    by_command = {command: replies.get(command) or {} for command in INSPECT_COMMANDS}
    names = sorted(set().union(*(reply.keys() for reply in by_command.values())))
    workers: list[WorkerInfo] = []
    for name in names:
        stats = by_command["stats"].get(name)
        stats = stats if isinstance(stats, dict) else {}
        pool = stats.get("pool")
        totals = stats.get("total")
        consumed = by_command["active_queues"].get(name)
        workers.append(
            WorkerInfo(
                name=name,
                queues=sorted(
                    str(q["name"])
                    for q in (consumed if isinstance(consumed, list) else [])
                    if isinstance(q, dict) and "name" in q
                ),
                pool_size=_int(pool.get("max-concurrency")) if isinstance(pool, dict) else None,
                active=_count(by_command["active"].get(name)),
                reserved=_count(by_command["reserved"].get(name)),
                uptime_seconds=_int(stats.get("uptime")),
                pid=_int(stats.get("pid")),
                processed=sum(int(v) for v in totals.values())
                if isinstance(totals, dict)
                else None,
            )
        )
    queues = [
        QueueWorkers(
            name=queue.value,
            workers=len(consumers := [w for w in workers if queue.value in w.queues]),
            pool_size=sum(w.pool_size or 0 for w in consumers),
            worker_names=[w.name for w in consumers],
        )
        for queue in ALL_QUEUES
    ]
    return WorkersResponse(
        workers=workers,
        queues=queues,
        fetched_at=datetime.now(UTC),
        cache_seconds=cache_seconds,
    )


async def _inspect(state: ApiState) -> WorkersResponse:
    timeout = state.settings.api_inspect_timeout_seconds
    replies: dict[str, dict[str, Any] | None] = {}

    def ask(command: str) -> dict[str, Any] | None:
        inspector = state.celery.control.inspect(timeout=timeout)
        reply: dict[str, Any] | None = getattr(inspector, command)()
        return reply

    INSPECTIONS.inc()
    outcomes = await asyncio.gather(
        *(to_thread.run_sync(ask, command) for command in INSPECT_COMMANDS),
        return_exceptions=True,
    )
    for command, outcome in zip(INSPECT_COMMANDS, outcomes, strict=True):
        if isinstance(outcome, BROKER_ERRORS):
            raise ApiError(
                503,
                "broker_unavailable",
                "the message broker is unavailable; retry shortly",
                headers={"Retry-After": "2"},
            ) from outcome
        if isinstance(outcome, BaseException):
            raise outcome
        replies[command] = outcome
    return build_response(replies, state.settings.api_workers_cache_seconds)


async def workers_snapshot(state: ApiState) -> WorkersResponse:
    """The cached answer while fresh; otherwise one refresh shared by concurrent callers."""
    ttl = state.settings.api_workers_cache_seconds
    asked_at = time.monotonic()

    def fresh() -> WorkersResponse | None:
        cached = state.cache.get(CACHE_KEY)
        if cached is None:
            return None
        stored_at, answer = cached
        # A refresh that finished after this request arrived is as fresh as one it
        # would make itself, even with a zero cache time.
        if stored_at >= asked_at or time.monotonic() - stored_at < ttl:
            return answer if isinstance(answer, WorkersResponse) else None
        return None

    answer = fresh()
    if answer is not None:
        return answer
    lock_entry = state.cache.get(LOCK_KEY)
    if lock_entry is None or not isinstance(lock_entry[1], asyncio.Lock):
        lock_entry = state.cache[LOCK_KEY] = (0.0, asyncio.Lock())
    lock: asyncio.Lock = lock_entry[1]
    async with lock:
        answer = fresh()
        if answer is None:
            answer = await _inspect(state)
            state.cache[CACHE_KEY] = (time.monotonic(), answer)
        return answer


@router.get(
    "/workers",
    response_model=WorkersResponse,
    summary="Workers online, their queues, pools and load",
    responses=ERRORS,
)
async def list_workers(_principal: Read, state: State) -> WorkersResponse:
    """Every worker that answers Celery's inspection: the queues it consumes, its pool
    size, running and prefetched tasks, uptime and PID; and per queue, how many workers
    consume it (0 means nothing will run what is queued there).

    Answers are cached for ``MARKETQ_API_WORKERS_CACHE_SECONDS`` (see ``fetched_at``): a
    worker that stopped disappears once the cache expires. No worker online is an empty
    list, not an error. A refresh waits ``MARKETQ_API_INSPECT_TIMEOUT_SECONDS`` for
    replies, so an uncached call takes about that long.
    """
    return await workers_snapshot(state)
