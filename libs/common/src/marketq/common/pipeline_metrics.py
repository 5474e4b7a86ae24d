"""Pipeline outcome metrics, recorded by whichever process ends a pipeline run.

Every advance runs under the run's row lock and counts a run's end once
(``pipeline_runs.outcome_counted``), so a run is counted once whichever worker, sweep
or API request ended it. Whether a scheduled run is overdue is read from the database
by the API (``marketq_pipeline_overdue_runs``), whichever process is up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from marketq.common.db.models import PipelineRun

PIPELINE_RUNS = Counter(
    "marketq_pipeline_runs",
    "Pipeline runs that ended, by pipeline and outcome (SUCCESS, FAILED, REVOKED).",
    ["pipeline", "outcome"],
)
PIPELINE_DURATION = Histogram(
    "marketq_pipeline_duration_seconds",
    "Time from a pipeline run's creation to its end, by pipeline and outcome.",
    ["pipeline", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)


def record_finished(run: PipelineRun) -> None:
    PIPELINE_RUNS.labels(run.pipeline, run.state).inc()
    if run.finished_at is not None:
        PIPELINE_DURATION.labels(run.pipeline, run.state).observe(
            max((run.finished_at - run.created_at).total_seconds(), 0.0)
        )
