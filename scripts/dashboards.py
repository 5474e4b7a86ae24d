"""Grafana dashboards for marketq, generated as JSON into charts/marketq/dashboards/.

    uv run python scripts/dashboards.py          # rewrite the JSON files
    uv run python scripts/dashboards.py --check  # exit 1 if a committed file is stale

One dashboard per file, a fixed ``uid`` each, and a ``datasource`` variable that every
panel and every query uses, so the chart's Grafana ConfigMaps work with any Prometheus
data source. ``tests/observability`` checks the files are current and well formed, and
evaluates every panel query against a real Prometheus scraping the real stack.

Panels that read ``kube_*`` series need kube-state-metrics in the cluster (replicas of
Deployments scaled by KEDA/HPA); everything else comes from marketq's own /metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parents[1] / "charts" / "marketq" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace=~"$namespace"'
NSQ = 'namespace=~"$namespace", queue=~"$queue"'
NSQJ = 'namespace=~"$namespace", queue=~"$queue", job_name=~"$job_name"'
RI = "$__rate_interval"
# Deployments of the chart (all names contain "marketq"); kube-state-metrics series.
DEPLOYMENTS = 'namespace=~"$namespace", deployment=~".*marketq.*"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries, stat, table, bargauge
    description: str = ""
    # (colour, from value) steps; the first step's value is the base (None).
    thresholds: tuple[tuple[str, float | None], ...] = (("green", None),)
    width: int = 12
    height: int = 8
    min: float | None = 0
    max: float | None = None


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[str, ...] = ("namespace",)
    links: tuple[str, ...] = field(default=())


def q(expr: str, legend: str = "", *, instant: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant)


def _variable(name: str) -> dict[str, Any]:
    if name == "datasource":
        return {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        }
    sources = {
        "namespace": ("Namespace", 'label_values(up{job=~"marketq-.*"}, namespace)', False),
        "queue": (
            "Queue",
            'label_values(marketq_queue_length{namespace=~"$namespace"}, queue)',
            True,
        ),
        "job_name": (
            "Job",
            'label_values(marketq_task_outcomes_total{namespace=~"$namespace"}, job_name)',
            True,
        ),
    }
    label, query, multi = sources[name]
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "current": {"selected": True, "text": "All", "value": "$__all"},
        "hide": 0,
        "sort": 1,
        "options": [],
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
        }
        for i, query in enumerate(panel.queries)
    ]
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": colour, "value": value} for colour, value in panel.thresholds],
        },
        "color": {"mode": "thresholds" if panel.kind != "timeseries" else "palette-classic"},
    }
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    options: dict[str, Any] = {}
    if panel.kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}
        options = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind in ("stat", "bargauge"):
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif panel.kind == "table":
        options = {"showHeader": True}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        **({"transformations": [{"id": "merge", "options": {}}]} if panel.kind == "table" else {}),
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, panel_id, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["marketq"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [_variable(v) for v in ("datasource", *dashboard.variables)]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "marketq dashboards",
                "type": "dashboards",
                "tags": ["marketq"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


SUCCESS_RATIO_1H = f"""
sum(increase(marketq_task_outcomes_total{{{NS}, outcome="succeeded"}}[1h]))
/ sum(increase(marketq_task_outcomes_total{{{NS}, outcome=~"succeeded|failed"}}[1h]))
"""
RATIO_STEPS = (("red", None), ("orange", 0.9), ("green", 0.98))

OVERVIEW = Dashboard(
    uid="marketq-overview",
    title="marketq / Overview",
    description="Is marketq keeping up? Queue age against target, backlog, success, replicas.",
    panels=(
        Panel(
            "Oldest message age vs target",
            (
                q(f"max by (queue) (marketq_queue_oldest_age_seconds{{{NS}}})", "{{queue}} age"),
                q(f"max by (queue) (marketq_queue_target_age_seconds{{{NS}}})", "{{queue}} target"),
            ),
            unit="s",
            description="Alert MarketqQueueAgeAboveTarget fires when age stays above target.",
        ),
        Panel(
            "Backlog (messages waiting)",
            (q(f"max by (queue) (marketq_queue_length{{{NS}}})", "{{queue}}"),),
        ),
        Panel(
            "Run success ratio (last hour)",
            (q(SUCCESS_RATIO_1H, "success", instant=True),),
            unit="percentunit",
            kind="stat",
            thresholds=RATIO_STEPS,
            width=6,
            max=1,
        ),
        Panel(
            "Queues over target age",
            (
                q(
                    f"""count(max by (queue) (marketq_queue_oldest_age_seconds{{{NS}}})
                    > on (queue) max by (queue) (marketq_queue_target_age_seconds{{{NS}}}))
                    or vector(0)""",
                    "queues",
                    instant=True,
                ),
            ),
            kind="stat",
            thresholds=(("green", None), ("red", 1)),
            width=6,
        ),
        Panel(
            "Targets up",
            (q(f'sum by (job) (up{{{NS}, job=~"marketq-.*"}})', "{{job}}", instant=True),),
            kind="stat",
            thresholds=(("red", None), ("green", 1)),
            width=12,
        ),
        Panel(
            "Runs finished per second by outcome",
            (
                q(
                    f"sum by (outcome) (rate(marketq_task_outcomes_total{{{NS}}}[{RI}]))",
                    "{{outcome}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Replicas (kube-state-metrics) and consuming workers",
            (
                q(
                    f"sum by (deployment) (kube_deployment_status_replicas{{{DEPLOYMENTS}}})",
                    "{{deployment}} replicas",
                ),
                q(
                    f"sum by (queue) (marketq_worker_consuming{{{NS}}})",
                    "{{queue}} consuming workers",
                ),
            ),
            description="Replicas need kube-state-metrics (KEDA/HPA scale the Deployments); "
            "consuming workers come from the workers' own metrics.",
        ),
    ),
)

QUEUES = Dashboard(
    uid="marketq-queues",
    title="marketq / Queues",
    description="Per queue: length, oldest message age, reserved, inflow and drain.",
    variables=("namespace", "queue"),
    panels=(
        Panel(
            "Messages waiting",
            (q(f"max by (queue) (marketq_queue_length{{{NSQ}}})", "{{queue}}"),),
        ),
        Panel(
            "Oldest message age vs target",
            (
                q(f"max by (queue) (marketq_queue_oldest_age_seconds{{{NSQ}}})", "{{queue}} age"),
                q(
                    f"max by (queue) (marketq_queue_target_age_seconds{{{NSQ}}})",
                    "{{queue}} target",
                ),
            ),
            unit="s",
        ),
        Panel(
            "Oldest age / target",
            (
                q(
                    f"""max by (queue) (marketq_queue_oldest_age_seconds{{{NSQ}}})
                    / on (queue) max by (queue) (marketq_queue_target_age_seconds{{{NSQ}}})""",
                    "{{queue}}",
                    instant=True,
                ),
            ),
            unit="percentunit",
            kind="bargauge",
            thresholds=(("green", None), ("orange", 0.8), ("red", 1)),
        ),
        Panel(
            "Reserved by workers (prefetched or running)",
            (q(f"max by (queue) (marketq_queue_reserved{{{NSQ}}})", "{{queue}}"),),
        ),
        Panel(
            "Inflow: runs published per second",
            (
                q(
                    f"sum by (queue) (rate(marketq_tasks_published_total{{{NSQ}}}[{RI}]))",
                    "{{queue}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Drain: runs finished per second",
            (
                q(
                    f"sum by (queue) (rate(marketq_task_outcomes_total{{{NSQ}}}[{RI}]))",
                    "{{queue}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Queue stats readable (API reads Redis)",
            (q(f"min(marketq_queue_stats_up{{{NS}}})", "stats up"),),
            thresholds=(("red", None), ("green", 1)),
            max=1,
        ),
    ),
)

TASKS = Dashboard(
    uid="marketq-tasks",
    title="marketq / Tasks",
    description="Runs by outcome, failures by exception, runtime and queue wait percentiles.",
    variables=("namespace", "queue", "job_name"),
    panels=(
        Panel(
            "Runs per second by outcome",
            (
                q(
                    f"sum by (outcome) (rate(marketq_task_outcomes_total{{{NSQJ}}}[{RI}]))",
                    "{{outcome}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Failure ratio by job",
            (
                q(
                    f"""sum by (job_name) (rate(
                    marketq_task_outcomes_total{{{NSQJ}, outcome="failed"}}[{RI}]))
                    / sum by (job_name) (rate(
                    marketq_task_outcomes_total{{{NSQJ}, outcome=~"succeeded|failed"}}[{RI}]))""",
                    "{{job_name}}",
                ),
            ),
            unit="percentunit",
            thresholds=(("green", None), ("red", 0.25)),
            max=1,
        ),
        Panel(
            "Failures by exception (last hour)",
            (
                q(
                    # A series new within the hour (the first failure of its kind) counts
                    # whole: increase() cannot see the step from "absent" to its value.
                    f"""(sum by (job_name, exception) (marketq_task_failures_total{{{NSQJ}}})
                    unless sum by (job_name, exception)
                    (marketq_task_failures_total{{{NSQJ}}} offset 1h))
                    or sum by (job_name, exception)
                    (increase(marketq_task_failures_total{{{NSQJ}}}[1h])) > 0""",
                    "{{job_name}} {{exception}}",
                    instant=True,
                ),
            ),
            kind="table",
        ),
        Panel(
            "Failures per second by exception",
            (
                q(
                    f"sum by (exception) (rate(marketq_task_failures_total{{{NSQJ}}}[{RI}]))",
                    "{{exception}}",
                ),
            ),
            unit="ops",
        ),
        *(
            Panel(
                f"{title} p50 / p95 / p99",
                tuple(
                    q(
                        f"""histogram_quantile({quantile}, sum by (job_name, le)
                        (rate({metric}_bucket{{{NSQJ}}}[{RI}])))""",
                        f"{{{{job_name}}}} p{int(quantile * 100)}",
                    )
                    for quantile in (0.5, 0.95, 0.99)
                ),
                unit="s",
            )
            for title, metric in (
                ("Runtime", "marketq_task_runtime_seconds"),
                ("Queue wait", "marketq_task_queue_wait_seconds"),
            )
        ),
        Panel(
            "Runtime p95 / soft time limit (last hour)",
            (
                q(
                    f"""histogram_quantile(0.95, sum by (job_name, le)
                    (rate(marketq_task_runtime_seconds_bucket{{{NSQJ}}}[1h])))
                    / on (job_name) max by (job_name)
                    (marketq_task_soft_time_limit_seconds{{{NSQJ}}})""",
                    "{{job_name}}",
                    instant=True,
                ),
            ),
            unit="percentunit",
            kind="bargauge",
            thresholds=(("green", None), ("orange", 0.6), ("red", 0.8)),
            description="Alert MarketqTaskRuntimeNearSoftLimit fires above 80%.",
        ),
        Panel(
            "Runs published per second by source",
            (
                q(
                    f"sum by (source) (rate(marketq_tasks_published_total{{{NSQJ}}}[{RI}]))",
                    "{{source}}",
                ),
                q(
                    f"sum by (source) (rate(marketq_task_publish_errors_total{{{NSQJ}}}[{RI}]))",
                    "{{source}} errors",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Vendor calls and errors per second",
            (
                q(
                    f"sum by (vendor) (rate(marketq_vendor_calls_total{{{NSQ}}}[{RI}]))",
                    "{{vendor}} calls",
                ),
                q(
                    f"""sum by (vendor, reason) (
                    rate(marketq_vendor_errors_total{{{NSQ}}}[{RI}]))""",
                    "{{vendor}} {{reason}}",
                ),
            ),
            unit="ops",
            description="Errors by failure class reason; alert MarketqVendorErrorRatioHigh "
            "fires above 20% of calls.",
        ),
        Panel(
            "Vendor quota: mean wait per call and tokens left",
            (
                q(
                    f"""sum by (vendor) (rate(
                    marketq_vendor_throttle_wait_seconds_sum{{{NSQ}}}[{RI}]))
                    / sum by (vendor) (rate(
                    marketq_vendor_throttle_wait_seconds_count{{{NSQ}}}[{RI}]))""",
                    "{{vendor}} wait (s)",
                ),
                q(
                    f"min by (vendor) (marketq_vendor_tokens{{{NSQ}}})",
                    "{{vendor}} tokens left",
                ),
                q(
                    f"""sum by (vendor) (
                    rate(marketq_vendor_quota_deferred_total{{{NSQ}}}[{RI}]))""",
                    "{{vendor}} deferred runs/s",
                ),
            ),
            min=None,
            description="Shared Redis token bucket per vendor and key. Alert "
            "MarketqVendorThrottleWaitHigh fires when the mean wait stays above 5 s; tokens "
            "below 0 are calls already queued for their turn.",
        ),
    ),
)

WORKERS = Dashboard(
    uid="marketq-workers",
    title="marketq / Workers and scaling",
    description="Pool size, busy processes, consuming workers and Deployment replicas.",
    variables=("namespace", "queue"),
    panels=(
        Panel(
            "Busy pool processes / pool size",
            (
                q(
                    f"""sum by (queue) (marketq_worker_active_tasks{{{NSQ}}})
                    / sum by (queue) (marketq_worker_pool_processes{{{NSQ}}})""",
                    "{{queue}}",
                ),
            ),
            unit="percentunit",
            thresholds=(("green", None), ("orange", 0.8), ("red", 0.95)),
            max=1,
        ),
        Panel(
            "Pool processes and active tasks",
            (
                q(f"sum by (queue) (marketq_worker_pool_processes{{{NSQ}}})", "{{queue}} pool"),
                q(f"sum by (queue) (marketq_worker_active_tasks{{{NSQ}}})", "{{queue}} active"),
            ),
        ),
        Panel(
            "Consuming workers per queue",
            (q(f"sum by (queue) (marketq_worker_consuming{{{NSQ}}})", "{{queue}}"),),
            description="Workers whose consumer is connected (= /readyz). Zero while "
            "messages wait fires MarketqQueueNoConsumer.",
        ),
        Panel(
            "Worker targets up",
            (q(f'sum by (queue) (up{{{NSQ}, job="marketq-worker"}})', "{{queue}}"),),
        ),
        Panel(
            "Deployment replicas: desired vs available (kube-state-metrics)",
            (
                q(
                    f"sum by (deployment) (kube_deployment_spec_replicas{{{DEPLOYMENTS}}})",
                    "{{deployment}} desired",
                ),
                q(
                    f"""sum by (deployment)
                    (kube_deployment_status_replicas_available{{{DEPLOYMENTS}}})""",
                    "{{deployment}} available",
                ),
            ),
            description="Needs kube-state-metrics. KEDA and the HPA set the desired count.",
        ),
        Panel(
            "Backlog per consuming worker",
            (
                q(
                    f"""max by (queue) (marketq_queue_length{{{NSQ}}})
                    / on (queue)
                    clamp_min(sum by (queue) (marketq_worker_consuming{{{NSQ}}}), 1)""",
                    "{{queue}}",
                ),
            ),
            description="What a backlog-based scaler sees per replica.",
        ),
        Panel(
            "Run ledger lag, p99 (event to row in task_runs)",
            (
                q(
                    f"""histogram_quantile(0.99, sum by (le)
                    (rate(marketq_ledger_lag_seconds_bucket{{{NS}}}[{RI}])))""",
                    "p99",
                ),
            ),
            unit="s",
            thresholds=(("green", None), ("orange", 2), ("red", 10)),
            description="The writers in the workers' main processes. Target 2 s; above "
            "10 s for 10 minutes fires MarketqLedgerLagging.",
        ),
        Panel(
            "Run ledger events per second: written, batch errors, refused",
            (
                q(f"sum (rate(marketq_ledger_events_written_total{{{NS}}}[{RI}]))", "written"),
                q(
                    f"sum (rate(marketq_ledger_write_errors_total{{{NS}}}[{RI}]))",
                    "batches failed (retried)",
                ),
                q(
                    f"sum (rate(marketq_ledger_events_refused_total{{{NS}}}[{RI}]))",
                    "events refused (dropped)",
                ),
            ),
            description="Failed batches are retried (the database is away); refused events "
            "are dropped (MarketqLedgerEventsRefused, docs/runbooks.md).",
        ),
    ),
)

SCHEDULE = Dashboard(
    uid="marketq-schedule",
    title="marketq / Schedule",
    description="Beat health, fires and skips, per-job last success, data freshness and pipelines.",
    panels=(
        Panel(
            "Beat tick age",
            (q(f"time() - max(marketq_beat_last_tick_timestamp_seconds{{{NS}}})", "tick age"),),
            unit="s",
            thresholds=(("green", None), ("orange", 30), ("red", 120)),
            description="Alert MarketqBeatStalled fires above 120 s.",
        ),
        Panel(
            "Beats holding the lock",
            (q(f"sum(marketq_beat_lock_held{{{NS}}})", "holders", instant=True),),
            kind="stat",
            thresholds=(("red", None), ("green", 1), ("red", 2)),
            width=6,
        ),
        Panel(
            "Market open",
            (q(f"max by (exchange) (marketq_market_open{{{NS}}})", "{{exchange}}", instant=True),),
            kind="stat",
            thresholds=(("blue", None), ("green", 1)),
            width=6,
        ),
        Panel(
            "Time since last success per job",
            (
                q(
                    f"""time() - max by (job_name)
                    (marketq_job_last_success_timestamp_seconds{{{NS}}})""",
                    "{{job_name}}",
                    instant=True,
                ),
            ),
            unit="s",
            kind="table",
        ),
        Panel(
            "Latest due instant minus last success",
            (
                q(
                    f"""max by (job_name) (marketq_schedule_last_due_timestamp_seconds{{{NS}}})
                    - on (job_name) max by (job_name)
                    (marketq_job_last_success_timestamp_seconds{{{NS}}})""",
                    "{{job_name}}",
                    instant=True,
                ),
            ),
            unit="s",
            kind="table",
            thresholds=(("green", None), ("orange", 1)),
            min=None,
            description="Positive: the job was due and has not succeeded since. "
            "Alert MarketqScheduledJobMissed fires when it stays positive for 30 minutes.",
        ),
        Panel(
            "Fires and skips per job (last hour)",
            (
                q(
                    f"sum by (job_name) (increase(marketq_beat_fires_total{{{NS}}}[1h]))",
                    "{{job_name}} fired",
                ),
                q(
                    f"sum by (job_name, reason) (increase(marketq_beat_skipped_total{{{NS}}}[1h]))",
                    "{{job_name}} skipped {{reason}}",
                ),
            ),
        ),
        Panel(
            "Newest data age per dataset",
            (
                q(
                    f"time() - max by (dataset) (marketq_dataset_newest_timestamp_seconds{{{NS}}})",
                    "{{dataset}}",
                ),
            ),
            unit="s",
        ),
        Panel(
            "Beat publish and Redis errors per second",
            (
                q(
                    f"""sum by (job_name) (rate(
                    marketq_task_publish_errors_total{{{NS}, source="beat"}}[{RI}]))""",
                    "{{job_name}} publish errors",
                ),
                q(f"sum(rate(marketq_beat_redis_errors_total{{{NS}}}[{RI}]))", "redis errors"),
            ),
            unit="ops",
        ),
        # --- pipelines (docs/pipelines.md) ---
        Panel(
            "Overdue scheduled pipelines",
            (
                q(
                    f"max by (pipeline) (marketq_pipeline_overdue_runs{{{NS}}})",
                    "{{pipeline}}",
                    instant=True,
                ),
            ),
            kind="table",
            thresholds=(("green", None), ("red", 1)),
            description="1: the newest scheduled run is past its deadline without success. "
            "Alert MarketqPipelineOverdue.",
        ),
        Panel(
            "Pipeline runs ended per pipeline and outcome (last day)",
            (
                q(
                    f"""sum by (pipeline, outcome)
                    (increase(marketq_pipeline_runs_total{{{NS}}}[1d]))""",
                    "{{pipeline}} {{outcome}}",
                ),
            ),
        ),
        Panel(
            "Pipeline duration p95 (successful runs)",
            (
                q(
                    f"""histogram_quantile(0.95, sum by (pipeline, le) (rate(
                    marketq_pipeline_duration_seconds_bucket{{{NS}, outcome="SUCCESS"}}[1d])))""",
                    "{{pipeline}}",
                ),
            ),
            unit="s",
        ),
    ),
)

API = Dashboard(
    uid="marketq-api",
    title="marketq / API",
    description="Requests by route and status, errors and latency of the HTTP API.",
    panels=(
        Panel(
            "Requests per second by route",
            (
                q(
                    f"sum by (route) (rate(marketq_api_requests_total{{{NS}}}[{RI}]))",
                    "{{route}}",
                ),
            ),
            unit="reqps",
        ),
        Panel(
            "Requests per second by status",
            (
                q(
                    f"sum by (status) (rate(marketq_api_requests_total{{{NS}}}[{RI}]))",
                    "{{status}}",
                ),
            ),
            unit="reqps",
        ),
        Panel(
            "5xx ratio",
            (
                q(
                    f"""(sum(rate(marketq_api_requests_total{{{NS}, status=~"5.."}}[{RI}]))
                    or vector(0)) / sum(rate(marketq_api_requests_total{{{NS}}}[{RI}]))""",
                    "5xx",
                ),
            ),
            unit="percentunit",
            thresholds=(("green", None), ("red", 0.05)),
            max=1,
        ),
        *(
            Panel(
                f"Latency p{int(quantile * 100)} by route",
                (
                    q(
                        f"""histogram_quantile({quantile}, sum by (route, le)
                        (rate(marketq_api_request_duration_seconds_bucket{{{NS}}}[{RI}])))""",
                        "{{route}}",
                    ),
                ),
                unit="s",
            )
            for quantile in (0.5, 0.95, 0.99)
        ),
        Panel(
            "Runs published by the API per second",
            (
                q(
                    f"""sum by (job_name)
                    (rate(marketq_tasks_published_total{{{NS}, source="api"}}[{RI}]))""",
                    "{{job_name}}",
                ),
            ),
            unit="ops",
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, QUEUES, TASKS, WORKERS, SCHEDULE, API)


def file_name(dashboard: Dashboard) -> str:
    return f"{dashboard.uid}.json"


def rendered_files() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {
        file_name(d): json.dumps(render(d), indent=2, sort_keys=True) + "\n" for d in DASHBOARDS
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    files = rendered_files()
    stale = sorted(
        name
        for name, text in files.items()
        if not (OUT_DIR / name).exists() or (OUT_DIR / name).read_text() != text
    )
    extra = sorted(p.name for p in OUT_DIR.glob("*.json") if p.name not in files)
    if args.check:
        for name in stale + extra:
            print(f"out of date: {OUT_DIR / name} (run scripts/dashboards.py)", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (OUT_DIR / name).unlink()
    for name, text in files.items():
        (OUT_DIR / name).write_text(text)
    print(f"wrote {len(files)} dashboards to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
