"""The job catalog, as services see it."""

from __future__ import annotations

from fastapi import APIRouter

from marketq.api.access import Read
from marketq.api.routes.runs import ERRORS
from marketq.api.schemas import JobInfo
from marketq.common.catalog import CATALOG, JobSpec

router = APIRouter(prefix="/api/v1", tags=["jobs"])


def job_info(job: JobSpec) -> JobInfo:
    schedule = job.schedule
    return JobInfo(
        name=job.name,
        queue=job.queue.value,
        description=job.description,
        params_schema=job.params.model_json_schema(),
        example=dict(job.example),
        schedule=schedule.cron if schedule else None,
        trading_days_only=bool(schedule and schedule.trading_days_only),
        market_hours_only=job.market_hours_only,
        soft_time_limit=job.soft_time_limit,
        time_limit=job.time_limit,
        max_retries=job.retry.max_retries,
    )


JOBS = [job_info(job) for job in CATALOG.values()]


@router.get("/jobs", response_model=list[JobInfo], summary="The job catalog", responses=ERRORS)
async def list_jobs(_principal: Read) -> list[JobInfo]:
    """Every job: queue, params JSON Schema with an example, schedule, limits."""
    return JOBS
