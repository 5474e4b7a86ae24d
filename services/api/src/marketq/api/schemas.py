"""Request and response bodies of the jobs and runs endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from marketq.api.errors import ErrorBody

# A schema-level ceiling far above any limit the settings allow (the real one is half the
# visibility timeout of the run's queue, checked by prepare_run) and far below where
# datetime overflows.
COUNTDOWN_CEILING = 366 * 86_400

RunStateName = Literal[
    "QUEUED", "RECEIVED", "STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "LOST"
]


class JobInfo(BaseModel):
    name: str
    queue: str
    description: str
    params_schema: dict[str, Any] = Field(description="JSON Schema of the job's params.")
    example: dict[str, Any]
    schedule: str | None = Field(description="cron (exchange time), 'after <job>' or null.")
    trading_days_only: bool
    market_hours_only: bool
    soft_time_limit: int
    time_limit: int
    max_retries: int


class NotifyRequest(BaseModel):
    """Tell a URL when the run ends (docs/webhooks.md)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, max_length=2048, description="Receiver; its host must be allowed."
    )
    target: str | None = Field(
        default=None, max_length=64, description="A webhook target configured for the API key."
    )
    events: list[str] | None = Field(
        default=None,
        min_length=1,
        description="End states to announce; all of them if omitted (runs: SUCCESS, "
        "FAILURE, REVOKED; pipeline runs: SUCCESS, FAILED, REVOKED).",
    )


class RunRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"params": {"symbols": ["AAPL", "MSFT"]}}]},
    )

    params: dict[str, Any] = Field(
        default_factory=dict, description="The job's parameters (see GET /jobs)."
    )
    countdown: float | None = Field(
        default=None,
        ge=0,
        le=COUNTDOWN_CEILING,
        allow_inf_nan=False,
        description="Seconds to wait before running (bounded; the job's limit applies).",
    )
    eta: datetime | None = Field(default=None, description="When to run (with a UTC offset).")
    priority: int | None = Field(default=None, ge=0, le=9, description="0 is the highest.")
    queue: str | None = Field(default=None, description="Another queue (health_check only).")
    notify: NotifyRequest | None = Field(
        default=None, description="A webhook to call when the run ends."
    )


class RunAccepted(BaseModel):
    run_id: str
    job: str
    queue: str
    state: Literal["QUEUED"] = "QUEUED"
    enqueued_at: datetime
    eta: datetime | None = None
    status_url: str


class BatchItem(RunRequest):
    job: str = Field(description="Catalog job name.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "runs": [
                        {"job": "stock_quotes", "params": {"symbols": ["AAPL", "MSFT"]}},
                        {"job": "historical_prices", "params": {"symbols": ["AAPL"]}},
                    ]
                }
            ]
        },
    )

    runs: list[BatchItem] = Field(min_length=1, description="Runs to publish, in order.")


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="202 accepted, or the 4xx this item alone would get.")
    run: RunAccepted | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItemResult]


class Progress(BaseModel):
    current: int | None
    total: int | None


class RunStatus(BaseModel):
    run_id: str
    job: str
    queue: str
    state: RunStateName
    params: dict[str, Any]
    progress: Progress | None = None
    result: Any = None
    error: str | None = None
    attempts: int = 0
    worker: str | None = None
    enqueued_at: datetime | None = None
    received_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    eta: datetime | None = None


class RunPage(BaseModel):
    runs: list[RunStatus]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


# --- pipelines --------------------------------------------------------------------------

PipelineStateName = Literal["QUEUED", "RUNNING", "SUCCESS", "FAILED", "REVOKED"]
StepStateName = Literal["PENDING", "QUEUED", "RUNNING", "SUCCESS", "FAILED", "REVOKED"]


class PipelineInfo(BaseModel):
    name: str
    description: str
    steps: list[dict[str, Any]] = Field(description="Each step: name, job, params, after.")
    schedule: str | None = Field(description="cron (exchange time) or null (on demand).")
    trading_days_only: bool
    deadline_minutes: int | None
    follows: str | None = Field(description="Started when a run of this pipeline succeeds.")
    accepted_params: list[str] = Field(description="Run params some step takes.")


class PipelineRunRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"params": {"symbols": ["AAPL", "MSFT"]}}]},
    )

    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Flow into every step whose job takes the field (and does not fix it).",
    )
    notify: NotifyRequest | None = Field(
        default=None, description="A webhook to call when the pipeline run ends."
    )


class PipelineStepStatus(BaseModel):
    name: str
    job: str
    after: list[str]
    state: StepStateName
    attempt: int = Field(description="1, then one more per retry of the pipeline run.")
    run_id: str | None = Field(description="The step's current run (GET /runs/{run_id}).")
    attempts: int = Field(description="Executions of the current run (its Celery retries).")
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class PipelineRunStatus(BaseModel):
    pipeline_run_id: str
    pipeline: str
    state: PipelineStateName
    progress: Progress
    params: dict[str, Any]
    trigger: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime | None
    cancel_requested: bool
    steps: list[PipelineStepStatus]
    status_url: str


class WebhookDeliveryStatus(BaseModel):
    event_id: str = Field(description="The id receivers deduplicate on (Marketq-Event-Id).")
    event_type: str
    url: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
