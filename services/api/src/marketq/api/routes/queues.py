"""Queue backlog: depth per priority, age of the oldest waiting message, reserved work."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from marketq.api.access import Read
from marketq.api.queue_stats import UNACKED_CLASSIFY_LIMIT, read_queue_stats
from marketq.api.routes.runs import ERRORS
from marketq.api.routes.workers import workers_snapshot
from marketq.api.state import State

router = APIRouter(prefix="/api/v1", tags=["observe"])


class QueueInfo(BaseModel):
    name: str
    length: int = Field(description="Messages waiting, over every priority list.")
    by_priority: dict[int, int] = Field(
        description="Messages waiting per priority step (0 is served first)."
    )
    oldest_age_seconds: float | None = Field(
        description="Seconds since the oldest waiting message was due (max of its enqueue "
        "time and ETA); null when nothing waits or the message carries no enqueue time."
    )
    reserved: int | None = Field(
        description="Messages taken by a worker and not yet acknowledged (prefetched, "
        f"running, held for an ETA); null when more than {UNACKED_CLASSIFY_LIMIT} are "
        "unacknowledged in all (see reserved_total)."
    )
    consumers: int | None = Field(
        description="Workers online consuming the queue; only with ?consumers=true, else null."
    )


class QueuesResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "queues": [
                        {
                            "name": "market_hours",
                            "length": 12,
                            "by_priority": {"0": 10, "3": 0, "6": 2, "9": 0},
                            "oldest_age_seconds": 41.2,
                            "reserved": 2,
                            "consumers": None,
                        },
                        {
                            "name": "daily",
                            "length": 0,
                            "by_priority": {"0": 0, "3": 0, "6": 0, "9": 0},
                            "oldest_age_seconds": None,
                            "reserved": 0,
                            "consumers": None,
                        },
                    ],
                    "reserved_total": 2,
                    "read_at": "2026-11-27T15:02:11.304Z",
                }
            ]
        }
    )

    queues: list[QueueInfo]
    reserved_total: int = Field(description="Unacknowledged messages of every queue.")
    read_at: datetime = Field(description="When Redis was read (one atomic read for all).")


@router.get(
    "/queues",
    response_model=QueuesResponse,
    summary="Backlog of every queue",
    responses=ERRORS,
)
async def list_queues(
    *,
    consumers: Annotated[
        bool,
        Query(
            description="Also count the workers consuming each queue (from GET /workers: "
            "cached, but an uncached call waits for the workers' replies)."
        ),
    ] = False,
    _principal: Read,
    state: State,
) -> QueuesResponse:
    """Per queue: messages waiting (in total and per priority step), the age of the
    oldest waiting one, and messages reserved by workers.

    One atomic Redis read for all queues whose cost does not grow with queue depth. The
    age is measured from the message's enqueue time, or its ETA when that is later, so a
    message waiting for its ETA is not counted as late. ``length + reserved`` is the work
    not yet done; ``length`` alone under-counts it while workers hold prefetched messages.
    """
    snapshot = await read_queue_stats(state.redis, state.settings.redis_key_prefix)
    online: dict[str, int] = {}
    if consumers:
        workers = await workers_snapshot(state)
        online = {queue.name: queue.workers for queue in workers.queues}
    return QueuesResponse(
        queues=[
            QueueInfo(
                name=q.name,
                length=q.length,
                by_priority=q.by_priority,
                oldest_age_seconds=q.oldest_age_seconds,
                reserved=q.reserved,
                consumers=online.get(q.name, 0) if consumers else None,
            )
            for q in snapshot.queues
        ],
        reserved_total=snapshot.reserved_total,
        read_at=snapshot.read_at,
    )
