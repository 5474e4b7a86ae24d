"""Start, follow, cancel and retry pipeline runs (docs/pipelines.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Path, Query, Response

from marketq.api.access import Read, Trigger
from marketq.api.errors import ApiError, ErrorDetail, ErrorResponse
from marketq.api.routes.runs import delivery_statuses, resolve_notify_request
from marketq.api.schemas import (
    PipelineInfo,
    PipelineRunRequest,
    PipelineRunStatus,
    PipelineStepStatus,
    Progress,
    WebhookDeliveryStatus,
)
from marketq.api.state import ApiState, State
from marketq.common.pipeline_runs import PipelineRunError, PipelineView
from marketq.common.pipelines import PIPELINES, PipelineSpec, UnknownPipelineError
from marketq.common.publish import InvalidParamsError, PublishError
from marketq.common.webhooks import subscribe

router = APIRouter(prefix="/api/v1", tags=["pipelines"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No valid API key."},
    403: {"model": ErrorResponse, "description": "The key lacks the scope."},
    503: {"model": ErrorResponse, "description": "Redis or the database is unavailable."},
}
PipelineName = Annotated[str, Path(max_length=64, description="Pipeline name.")]
PipelineRunId = Annotated[str, Path(max_length=64, description="Pipeline run id.")]


def _info(spec: PipelineSpec) -> PipelineInfo:
    return PipelineInfo(
        name=spec.name,
        description=spec.description,
        steps=[
            {"name": s.name, "job": s.job, "params": dict(s.params), "after": list(s.after)}
            for s in spec.steps
        ],
        schedule=spec.schedule.cron if spec.schedule else None,
        trading_days_only=bool(spec.schedule and spec.schedule.trading_days_only),
        deadline_minutes=spec.deadline_minutes,
        follows=spec.follows,
        accepted_params=sorted(spec.accepted_params()),
    )


def _status(view: PipelineView) -> PipelineRunStatus:
    run = view.run
    return PipelineRunStatus(
        pipeline_run_id=run.id,
        pipeline=run.pipeline,
        state=run.state,
        progress=Progress(current=run.steps_done, total=run.steps_total),
        params=run.params,
        trigger=run.trigger,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        deadline_at=run.deadline_at,
        cancel_requested=run.cancel_requested,
        steps=[
            PipelineStepStatus(
                name=step.name,
                job=step.job,
                after=list(step.after),
                state=step.state,
                attempt=step.attempt,
                run_id=step.run_id,
                attempts=step.run.attempts if step.run else 0,
                enqueued_at=step.run.enqueued_at if step.run else None,
                started_at=step.run.started_at if step.run else None,
                finished_at=step.run.finished_at if step.run else None,
                error=step.run.error if step.run else None,
            )
            for step in view.steps
        ],
        status_url=f"/api/v1/pipeline-runs/{run.id}",
    )


@router.get("/pipelines", response_model=list[PipelineInfo], summary="List the pipelines")
async def list_pipelines(*, _principal: Read) -> list[PipelineInfo]:
    return [_info(spec) for spec in PIPELINES.values()]


@router.post(
    "/pipelines/{name}/runs",
    response_model=PipelineRunStatus,
    status_code=202,
    summary="Start a pipeline run",
    responses={
        **ERRORS,
        404: {"model": ErrorResponse, "description": "No such pipeline."},
        422: {"model": ErrorResponse, "description": "Invalid params; names the field."},
    },
)
async def start_pipeline_run(
    *,
    name: PipelineName,
    body: PipelineRunRequest,
    response: Response,
    principal: Trigger,
    state: State,
) -> PipelineRunStatus:
    """Validate every step's params, record the run and publish the steps that wait for
    nothing. The answer's ``status_url`` follows the run as one."""
    try:
        PIPELINES[name]
        state.pipelines.resolve(name, body.params)
    except UnknownPipelineError as exc:
        raise ApiError(404, "unknown_pipeline", str(exc)) from None
    except InvalidParamsError as exc:
        details = [ErrorDetail(field=e.field, message=e.message, type=e.type) for e in exc.errors]
        raise ApiError(422, "invalid_params", str(exc), details) from None
    except PublishError as exc:
        raise ApiError(
            422, "invalid_params", str(exc), [ErrorDetail(field=exc.field, message=str(exc))]
        ) from None
    notify = resolve_notify_request(state, principal, body.notify, "pipeline_run")
    run_id = str(uuid.uuid4())
    if notify is not None:

        def store() -> None:
            with state.sessions.begin() as session:
                subscribe(session, "pipeline_run", run_id, notify, principal.name)

        await to_thread.run_sync(store)
    view = await to_thread.run_sync(lambda: state.pipelines.start(name, body.params, run_id=run_id))
    status = _status(view)
    response.headers["Location"] = status.status_url
    return status


async def _found(state: ApiState, run_id: str) -> PipelineView:
    view = await to_thread.run_sync(state.pipelines.get, run_id)
    if view is None:
        raise ApiError(404, "unknown_pipeline_run", f"no pipeline run {run_id!r}")
    return view


@router.get(
    "/pipeline-runs",
    response_model=list[PipelineRunStatus],
    summary="The newest pipeline runs, newest first",
    responses=ERRORS,
)
async def list_pipeline_runs(
    *,
    pipeline: Annotated[str | None, Query(max_length=64, description="Only this pipeline.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="How many.")] = 20,
    _principal: Read,
    state: State,
) -> list[PipelineRunStatus]:
    views = await to_thread.run_sync(state.pipelines.recent, pipeline, limit)
    return [_status(view) for view in views]


@router.get(
    "/pipeline-runs/{run_id}",
    response_model=PipelineRunStatus,
    summary="A pipeline run with every step's state, attempts and timings",
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No such run."}},
)
async def get_pipeline_run(
    *, run_id: PipelineRunId, _principal: Read, state: State
) -> PipelineRunStatus:
    return _status(await _found(state, run_id))


CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorResponse, "description": "No such run."},
    409: {"model": ErrorResponse, "description": "The run's state does not allow it."},
}


@router.post(
    "/pipeline-runs/{run_id}/cancel",
    response_model=PipelineRunStatus,
    status_code=202,
    summary="Cancel a pipeline run",
    responses=CHANGE_RESPONSES,
)
async def cancel_pipeline_run(
    *,
    run_id: PipelineRunId,
    terminate: Annotated[bool, Query(description="Also stop the running step.")] = False,
    _principal: Trigger,
    state: State,
) -> PipelineRunStatus:
    """Queued steps are revoked and no further step is published; a running step runs to
    its end unless ``terminate=true`` (its process is killed). The run ends REVOKED."""
    await _found(state, run_id)
    try:
        view = await to_thread.run_sync(lambda: state.pipelines.cancel(run_id, terminate=terminate))
    except PipelineRunError as exc:
        raise ApiError(409, "already_finished", str(exc)) from None
    return _status(view)


@router.post(
    "/pipeline-runs/{run_id}/retry",
    response_model=PipelineRunStatus,
    status_code=202,
    summary="Retry a failed or cancelled pipeline run from the steps that did not succeed",
    responses=CHANGE_RESPONSES,
)
async def retry_pipeline_run(
    *, run_id: PipelineRunId, _principal: Trigger, state: State
) -> PipelineRunStatus:
    """Steps that succeeded are kept; each failed or cancelled step runs again as a new
    attempt (a new run id), and the steps after it follow as usual."""
    await _found(state, run_id)
    try:
        view = await to_thread.run_sync(state.pipelines.retry, run_id)
    except PipelineRunError as exc:
        raise ApiError(409, "not_retryable", str(exc)) from None
    return _status(view)


@router.get(
    "/pipeline-runs/{run_id}/webhooks",
    response_model=list[WebhookDeliveryStatus],
    summary="The webhook deliveries of a pipeline run",
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No such run."}},
)
async def pipeline_run_webhooks(
    *, run_id: PipelineRunId, _principal: Read, state: State
) -> list[WebhookDeliveryStatus]:
    await _found(state, run_id)
    return await to_thread.run_sync(delivery_statuses, state, run_id)
