"""Every dashboard query and every alert expression, evaluated by a real Prometheus that
scrapes the real running stack.

The stack: redis-server, the API (uvicorn), one ``marketq-worker`` per queue and
``marketq-beat``, as the other integration tests start them. Prometheus (Debian's binary)
scrapes them every second under the scrape job names the chart uses, and loads the
chart's rule file. The test runs jobs (some fail), then stops the ``periodic`` worker and
queues 1001 runs on ``periodic`` — a backlog with no consumer, older than the queue's
(lowered) target, and a worker target down. Then, through ``/api/v1/query``:

- every panel query of every dashboard must parse and return series (only the
  kube-state-metrics panels may be empty: no Kubernetes here);
- every alert expression must parse and return series, except the alerts listed in
  ``EMPTY_HERE`` with the reason this stack cannot produce their condition — each of
  those must have a firing case in the promtool tests (``rules_test.yaml``);
- every metric name used by a panel or an alert exists (so an empty alert is empty
  because its condition is false, not because a name is wrong);
- the rule file loads and every rule evaluates with health ``ok`` (``/api/v1/rules``).

One test function: the stack takes most of the runtime, so it is started once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketq.common.queues import Queue
from tests.fixtures.api import ApiProcess, start_api
from tests.fixtures.beat import BeatFleet, write_schedule
from tests.fixtures.prometheus import PrometheusServer, ScrapeTarget, prometheus_config
from tests.fixtures.workers import Stack, WorkerProcess
from tests.observability.promtool import DASHBOARDS, RULES, alert_rules
from tests.observability.test_alert_rules import alerts_with_firing_tests

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Alerts whose condition this stack cannot create in a test of a minute; promtool shows
# each one firing (checked below), and their metric names are checked to exist here.
EMPTY_HERE: dict[str, str] = {
    "MarketqQueueStatsUnavailable": "needs Redis unreadable by every API replica",
    "MarketqTaskRuntimeNearSoftLimit": "needs runs lasting 80% of a soft limit (minutes)",
    "MarketqBeatStalled": "the beat here ticks every second",
    "MarketqBeatNoLockHolder": "the one beat here holds the lock",
    "MarketqBeatCalendarOutOfRange": "needs a clock past the exchange calendar's end",
    "MarketqScheduledJobMissed": "true only while a due instant is newer than the last "
    "success; the probe entry here succeeds within seconds",
    "MarketqFreshnessUnavailable": "needs the database unreadable by the API",
    "MarketqMarketDataStale": "needs the exchange open for 15 minutes with stale quotes",
    "MarketqApiErrorRatioHigh": "needs 20 5xx answers (a Redis or database outage)",
    "MarketqApiMetricsAbsent": "the API is scraped here",
    "MarketqVendorErrorRatioHigh": "the synthetic provider calls no vendor",
    "MarketqVendorThrottleWaitHigh": "the synthetic provider calls no vendor",
    "MarketqRunExecutedAfterEnd": "needs a run executed again after its end (a duplicate "
    "delivery the ledger refuses)",
    "MarketqPipelineOverdue": "needs a scheduled pipeline not done by its deadline (hours "
    "after its cron instant)",
    "MarketqLedgerLagging": "needs the ledger writer 10 s behind the run events for minutes",
    "MarketqRunsLost": "needs a run lost with the broker's data (a Redis flush)",
    "MarketqLedgerEventsRefused": "needs an event the database refuses for its data",
}
# Alerts that must fire here for exactly these label values and no others: the other
# queues have consumers, small targets are not crossed, health checks do not fail.
ONLY_THESE: dict[str, tuple[str, set[str | None]]] = {
    "MarketqQueueAgeAboveTarget": ("queue", {"periodic"}),
    "MarketqQueueAgeFarAboveTarget": ("queue", {"periodic"}),
    "MarketqQueueBacklogGrowing": ("queue", {"periodic"}),
    "MarketqQueueNoConsumer": ("queue", {"periodic"}),
    "MarketqMetricsTargetDown": ("queue", {"periodic"}),
    "MarketqTaskFailureRatioHigh": ("job_name", {"data_import"}),
}
# Panels that read kube-state-metrics series: they must parse, and may be empty here.
KUBE_STATE_METRICS = re.compile(r"\bkube_\w+")
# Panel queries (dashboard uid / panel title / refId) that must parse but may be empty
# here, with the reason. Their metric names are not required to exist either.
PANELS_EMPTY_HERE: dict[str, str] = {
    "marketq-schedule / Fires and skips per job (last hour) / B": "beat counts a skip only "
    "when a due fire is not published (market closed at a fire instant, missed, duplicate); "
    "the probe entry here always fires",
    "marketq-tasks / Vendor quota: mean wait per call and tokens left / B": "a vendor's "
    "tokens are known after its first call; the synthetic provider calls no vendor",
}
# Grafana's variables, as Grafana substitutes them when "All" is selected.
VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "15s",
    "$__range": "1h",
    "$namespace": ".*",
    "$queue": ".*",
    "$job_name": ".*",
}
METRIC_NAME = re.compile(r"\b(marketq_[a-z0-9_]+|up(?=\{))")

PROBE_ENTRY = "obs_probe"


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard uid / panel title / refId, PromQL with the variables substituted)."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                where = f"{board['uid']} / {panel['title']} / {target['refId']}"
                queries.append((where, substitute(target["expr"])))
    return queries


def test_every_alert_is_either_expected_here_or_allowed_empty() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert set(ONLY_THESE) <= names - set(EMPTY_HERE)


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid / variable, series selector, label) of every label_values variable."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            selector, label = match.groups()
            found.append((f"{board['uid']} / {variable['name']}", substitute(selector), label))
    return found


def test_every_dashboard_variable_is_a_label_values_query() -> None:
    assert {where.split(" / ")[1] for where, _, _ in variable_queries()} == {
        "namespace",
        "queue",
        "job_name",
    }


def test_panels_allowed_empty_here_exist() -> None:
    assert set(PANELS_EMPTY_HERE) <= {where for where, _ in panel_queries()}


def test_alerts_allowed_empty_here_have_promtool_firing_cases() -> None:
    missing = set(EMPTY_HERE) - alerts_with_firing_tests()
    assert not missing, f"no promtool firing case for {missing}: they would be unproven"
    assert set(EMPTY_HERE) <= {rule["alert"] for rule in alert_rules()}


def test_metric_name_pattern_finds_selectors() -> None:
    expr = 'rate(marketq_a_total{job="marketq-api"}[5m]) / up{x="1"} > marketq_b and upper'
    assert set(METRIC_NAME.findall(expr)) == {"marketq_a_total", "up", "marketq_b"}


def _result(prometheus: PrometheusServer, expr: str) -> tuple[str, list[Any]]:
    body = prometheus.query(expr)
    if body.get("status") != "success":
        return f"error: {body.get('errorType')}: {body.get('error')}", []
    return "ok", body["data"]["result"]


@pytest.fixture
def observed_stack(stack: Stack, beats: BeatFleet, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The running stack, with runs done, and Prometheus scraping it."""
    schedule = write_schedule(
        tmp_path / "schedule.yaml",
        {PROBE_ENTRY: {"job": "health_check", "every_seconds": 5, "params": {}}},
    )
    stack.set_env(
        MARKETQ_SCHEDULE_FILE=str(schedule),
        # One pool process per worker: four workers share two cores with other tests.
        **{f"MARKETQ_QUEUES__{q.name}__CONCURRENCY": "1" for q in Queue},
        # So that the backlog created below is "above target" within seconds.
        MARKETQ_QUEUES__PERIODIC__TARGET_AGE_SECONDS="1",
        # The API's freshness reads are cached 15 s by default; this test waits for them.
        MARKETQ_METRICS_FRESHNESS_CACHE_SECONDS="1",
    )
    # The API and beat fixtures wait 60 s for their process; on a busy machine that holds
    # only while they do not share the CPU with four importing workers.
    api = start_api(stack)
    prometheus: PrometheusServer | None = None
    try:
        workers = {
            q.value: stack.start_worker(q.value, name=f"{q.value}@obs", wait_ready=False)
            for q in Queue
        }
        for worker in workers.values():
            worker.wait_ready(timeout=180)
        beat = beats.start("beat-obs")
        targets = [
            ScrapeTarget("marketq-api", api.url.removeprefix("http://"), {"component": "api"}),
            ScrapeTarget("marketq-beat", f"127.0.0.1:{beat.port}", {"component": "beat"}),
            *(
                ScrapeTarget(
                    "marketq-worker",
                    f"127.0.0.1:{worker.http_port}",
                    {"component": "worker", "queue": queue},
                )
                for queue, worker in workers.items()
            ),
        ]
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        prometheus = PrometheusServer(workdir, prometheus_config(targets, [RULES])).start()
        yield {"api": api, "workers": workers, "prometheus": prometheus, "stack": stack}
    finally:  # workers and beat are stopped by their own fixtures
        if prometheus is not None:
            prometheus.stop()
        api.stop()


def _run_jobs(api: ApiProcess, stack: Stack) -> None:
    """Runs on every queue, six data imports of a missing file (they fail), quotes, and a
    pipeline run."""
    runs: list[dict[str, Any]] = [
        {"job": "health_check", "params": {}, "queue": q.value} for q in Queue for _ in (1, 2)
    ]
    runs += [
        {"job": "data_import", "params": {"dataset": "daily_bars", "path": "missing.csv"}}
        for _ in range(6)
    ]
    runs.append({"job": "stock_quotes", "params": {"symbols": ["AAPL"]}})  # writes quotes
    with api.client("trigger") as client:
        response = client.post("/api/v1/runs:batch", json={"runs": runs})
    assert response.status_code == 200, response.text
    ids = [item["run"]["run_id"] for item in response.json()["results"]]
    assert len(ids) == len(runs)
    stack.wait_for_states(ids, {"SUCCESS", "FAILURE"}, timeout=90)
    _run_pipeline(api, stack)


def _run_pipeline(api: ApiProcess, stack: Stack) -> None:
    """One end_of_day pipeline run to its end: the pipeline outcome and duration series."""
    with api.client("trigger") as client:
        started = client.post(
            "/api/v1/pipelines/end_of_day/runs",
            json={"params": {"symbols": ["AAPL"], "lookback_days": 60}},
        )
        assert started.status_code == 202, started.text
        url = f"/api/v1/pipeline-runs/{started.json()['pipeline_run_id']}"

        def ended() -> bool:
            state = client.get(url).json()["state"]
            return state in ("SUCCESS", "FAILED", "REVOKED")

        stack.wait_for(ended, 120, "the end_of_day pipeline run to end")


def _backlog_without_consumer(api: ApiProcess, periodic: WorkerProcess) -> None:
    periodic.stop()
    runs = [{"job": "health_check", "params": {}, "queue": "periodic"}] * 1001
    with api.client("trigger") as client:
        for chunk in (runs[:1000], runs[1000:]):
            response = client.post("/api/v1/runs:batch", json={"runs": chunk}, timeout=60)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == len(chunk)


def _wait_until(prometheus: PrometheusServer, exprs: list[str], timeout: float) -> list[str]:
    """Poll until every expression returns series; the ones that never did."""
    pending = list(exprs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [e for e in pending if not _result(prometheus, e)[1]]
        if pending:
            time.sleep(0.5)
    return pending


def test_every_panel_and_alert_expression_against_the_real_stack(
    observed_stack: dict[str, Any],
) -> None:
    api: ApiProcess = observed_stack["api"]
    prometheus: PrometheusServer = observed_stack["prometheus"]
    stack: Stack = observed_stack["stack"]
    workers: dict[str, WorkerProcess] = observed_stack["workers"]

    # Every target up before anything happens (names and ports right).
    up = 'up{job=~"marketq-api|marketq-worker|marketq-beat"} == 1'
    assert not _wait_until(prometheus, [f"count({up}) == 6"], timeout=30), prometheus.api("targets")

    _run_jobs(api, stack)
    _backlog_without_consumer(api, workers["periodic"])

    alerts = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    expected = [expr for name, expr in alerts.items() if name not in EMPTY_HERE]
    never = _wait_until(prometheus, expected, timeout=60)
    problems = [
        f"alert {name} returned no series: {alerts[name]}"
        for name in alerts
        if alerts[name] in never
    ]
    for name, expr in alerts.items():
        status, series = _result(prometheus, expr)
        if status != "ok":
            problems.append(f"alert {name}: {status}")
        elif name in ONLY_THESE:
            label, values = ONLY_THESE[name]
            got = {s["metric"].get(label) for s in series}
            if got != values:
                problems.append(f"alert {name}: {label} {got}, expected exactly {values}")

    for where, expr in panel_queries():
        status, series = _result(prometheus, expr)
        if status != "ok":
            problems.append(f"panel {where}: {status}\n    {expr}")
        elif not series and not KUBE_STATE_METRICS.search(expr) and where not in PANELS_EMPTY_HERE:
            problems.append(f"panel {where}: no series\n    {expr}")

    # Template variables: Grafana asks /api/v1/label/<label>/values for their choices.
    for where, selector, label in variable_queries():
        body = prometheus.api(f"label/{label}/values", **{"match[]": selector})
        if body.get("status") != "success":
            problems.append(f"variable {where}: {body.get('error')}")
        elif not body["data"] and label != "namespace":  # no namespaces outside Kubernetes
            problems.append(f"variable {where}: no values for {label} in {selector}")

    names = {
        n
        for where, e in panel_queries()
        if where not in PANELS_EMPTY_HERE
        for n in METRIC_NAME.findall(e)
    }
    names |= {n for e in alerts.values() for n in METRIC_NAME.findall(e)}
    for name in sorted(names):
        if not _result(prometheus, f'count({{__name__="{name}"}})')[1]:
            problems.append(f"metric {name} is not exposed by any marketq process")

    # No label of ours collides with a target label (Prometheus would rename it exported_*).
    clashes = _result(
        prometheus, 'count by (__name__) ({__name__=~"marketq_.+", exported_queue!=""})'
    )
    if clashes[1]:
        problems.append(f"series with exported_queue: {clashes[1]}")

    # The rule file as Prometheus loaded it: every alert there, every one evaluated.
    loaded = _loaded_rules(prometheus)
    if {rule["name"] for rule in loaded} != set(alerts):
        problems.append(f"rules loaded: {sorted(r['name'] for r in loaded)}")
    problems += [
        f"rule {r['name']}: health {r['health']} {r.get('lastError', '')}"
        for r in loaded
        if r["health"] != "ok"
    ]

    assert not problems, "\n".join(problems)


def _loaded_rules(prometheus: PrometheusServer) -> list[dict[str, Any]]:
    def rules() -> list[dict[str, Any]]:
        body = prometheus.api("rules")
        assert body["status"] == "success", body
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(r["health"] == "unknown" for r in rules()):
        time.sleep(0.5)
    return rules()
