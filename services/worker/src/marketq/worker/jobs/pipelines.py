"""Pipeline housekeeping jobs: starting a scheduled run, sweeping for missed advances."""

from __future__ import annotations

import uuid

from marketq.common.params import AdvancePipelinesParams, StartPipelineParams
from marketq.common.pipeline_runs import STEP_NAMESPACE
from marketq.common.pipelines import UnknownPipelineError
from marketq.common.publish import PublishError
from marketq.worker import resources
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.registry import JobResult, implements


@implements("start_pipeline")
def start_pipeline(ctx: JobContext, params: StartPipelineParams) -> JobResult:
    # One pipeline run per message: a redelivered start finds the run it created.
    run_id = str(uuid.uuid5(STEP_NAMESPACE, f"start:{ctx.run_id}"))
    try:
        view = resources.pipelines().start(
            params.pipeline,
            params.params,
            run_id=run_id,
            trigger="schedule",
            scheduled_for=ctx.as_of,
        )
    except (UnknownPipelineError, PublishError) as exc:
        raise PermanentJobError(str(exc)) from None
    return {"pipeline": params.pipeline, "pipeline_run_id": view.run.id, "state": view.run.state}


@implements("advance_pipelines")
def advance_pipelines(ctx: JobContext, params: AdvancePipelinesParams) -> JobResult:
    engine = resources.pipelines()
    unfinished = engine.unfinished()
    ended = 0
    for done, run_id in enumerate(unfinished, start=1):
        if engine.advance(run_id).run.state in ("SUCCESS", "FAILED", "REVOKED"):
            ended += 1
        ctx.progress(done, len(unfinished))
    return {"unfinished": len(unfinished), "ended": ended}
