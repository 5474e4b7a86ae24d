"""What the API process holds for its lifetime, built once in the app's lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from celery import Celery
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.orm import Session, sessionmaker

from marketq.api.auth import KeyRing
from marketq.api.publisher import RunPublisher
from marketq.common.ledger import Ledger
from marketq.common.pipeline_runs import PipelineEngine
from marketq.common.scheduling.schedules import FileEntry
from marketq.common.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    redis: Redis
    celery: Celery
    publisher: RunPublisher
    sessions: sessionmaker[Session]
    ledger: Ledger
    keys: KeyRing
    pipelines: PipelineEngine
    schedule_file: dict[str, FileEntry] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    cache: dict[str, tuple[float, Any]] = field(default_factory=dict)


async def get_state(request: Request) -> ApiState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hop per request.
    state: ApiState = request.app.state.marketq
    return state


State = Annotated[ApiState, Depends(get_state)]
