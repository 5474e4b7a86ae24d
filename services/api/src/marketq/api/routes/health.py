"""Probes: liveness (the process answers) and readiness (Redis and the database answer)."""

from __future__ import annotations

import asyncio
import time

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from marketq.api.state import State

router = APIRouter(tags=["health"])


class Check(BaseModel):
    ok: bool
    seconds: float
    error: str | None = None


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]


@router.get("/livez", summary="Liveness: the process serves requests")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


async def _timed(name: str, check: object, timeout: float) -> tuple[str, Check]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check, timeout)  # type: ignore[arg-type]
        return name, Check(ok=True, seconds=round(time.monotonic() - started, 4))
    except Exception as exc:  # any failure means "not ready", reported, never raised
        return name, Check(
            ok=False, seconds=round(time.monotonic() - started, 4), error=type(exc).__name__
        )


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: Redis and the database",
    responses={503: {"model": Readiness, "description": "A dependency is down."}},
)
async def readyz(state: State) -> JSONResponse:
    def query_database() -> None:
        with state.sessions() as session:
            session.execute(text("SELECT 1"))

    timeout = state.settings.api_redis_timeout_seconds
    results = await asyncio.gather(
        _timed("redis", state.redis.ping(), timeout),
        _timed("database", to_thread.run_sync(query_database), timeout * 2),
    )
    checks = dict(results)
    ready = all(c.ok for c in checks.values())
    body = Readiness(ready=ready, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
