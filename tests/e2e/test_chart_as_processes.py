"""charts/marketq, rendered by helm, run as processes on loopback (the `process` backend).

Every Deployment's container runs with its rendered command, args and environment against
a real redis-server and a real PostgreSQL (see tests/e2e/pods.py for the few recorded
host overrides). The tests then check what a cluster would show: the migration hook
migrates, every probe the chart declares passes, jobs submitted through the API run on
the Deployment that consumes their queue, every KEDA trigger watches lists that its
target's workers really pop, every declared metrics endpoint serves Prometheus text, and
the `helm test` hook passes against the running API.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from marketq.common.db import migrate
from marketq.common.queues import Queue
from tests.e2e.conftest import FLOWER_AUTH
from tests.e2e.helm import dump
from tests.e2e.pods import Objects, Pod
from tests.e2e.stack import ChartStack, Process
from tests.fixtures.api import KEYS
from tests.fixtures.redis import RedisServer

# One chart stack per session: every test here runs on the same xdist worker.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.xdist_group("chart-e2e"),
]

QUEUES = [q.value for q in Queue]
TERMINAL = {"SUCCESS", "FAILURE", "REVOKED"}
# Catalog examples that fail on the empty database by design, and what they say.
NEEDS_DATA = {
    "portfolio_report": "no portfolio with id",
    "portfolio_performance": "no portfolio with id",
}


# --- helpers ------------------------------------------------------------------------------


def processes_of(stack: ChartStack, service: str) -> dict[str, Process]:
    return {name: p for name, p in stack.processes.items() if p.pod.service == service}


def celery_option(process: Process, option: str) -> str:
    """An option of the running Celery command line (marketq-worker execs celery)."""
    argv = psutil.Process(process.pid).cmdline()
    assert "celery" in " ".join(argv), f"{process.pod.owner} is not running celery: {argv}"
    for index, arg in enumerate(argv):
        if arg == option:
            return argv[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{option} not in {argv}")


def worker_queues(stack: ChartStack) -> dict[str, str]:
    """Deployment name -> the queue its running Celery worker consumes."""
    return {
        name: celery_option(process, "--queues")
        for name, process in processes_of(stack, "worker").items()
    }


def api_url(stack: ChartStack) -> str:
    (process,) = processes_of(stack, "api").values()
    (port,) = process.pod.ports.values()
    return f"http://127.0.0.1:{port}"


def client(stack: ChartStack, scope: str = "admin") -> httpx.Client:
    return httpx.Client(
        base_url=api_url(stack), headers={"Authorization": f"Bearer {KEYS[scope]}"}, timeout=10
    )


def wait_run(http: httpx.Client, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = http.get(f"/api/v1/runs/{run_id}").json()
        if run.get("state") in TERMINAL or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


# --- the tests ----------------------------------------------------------------------------


def test_the_migration_hook_migrates_the_database(
    chart_stack: ChartStack, e2e_database_url: str
) -> None:
    assert chart_stack.migration is not None
    pod, result = chart_stack.migration
    assert Path(pod.argv[0]).name == "marketq-migrate" and pod.argv[1:] == [], pod.argv
    assert "upgraded" in result.stdout, result.stdout
    assert migrate.current(e2e_database_url) == migrate.head()


def test_every_deployment_runs_and_passes_its_declared_probes(
    chart_stack: ChartStack, rendered: Objects
) -> None:
    names = {d["metadata"]["name"] for d in rendered.deployments()}
    assert names == set(chart_stack.processes)
    services = sorted(p.pod.service for p in chart_stack.processes.values())
    assert services.count("api") == 1 and services.count("beat") == 1
    assert services.count("flower") == 1
    assert sorted(worker_queues(chart_stack).values()) == sorted(QUEUES)
    execs = {"api": "uvicorn", "worker": "celery", "beat": "celery", "flower": "celery"}
    for name, process in chart_stack.processes.items():
        assert process.alive(), f"{name} exited:\n{process.log_text()[-3000:]}"
        # The rendered command execs the server: the process Kubernetes starts (PID 1 in
        # the container) is the one that gets SIGTERM, with no shell in between.
        running = psutil.Process(process.pid).cmdline()
        assert execs[process.pod.service] in " ".join(running[:4]), (name, running)
        probes = chart_stack.probes[name]
        assert any(p.startswith(("livenessProbe", "startupProbe")) for p in probes), probes
        if process.pod.service != "beat":
            assert any(p.startswith("readinessProbe") for p in probes), (name, probes)
        print(f"{name}: {' '.join(process.pod.argv)}\n  probes: {probes}")
        print("  overrides: " + "; ".join(process.pod.overrides))


def test_jobs_on_every_queue_run_on_the_deployment_that_consumes_it(
    chart_stack: ChartStack,
) -> None:
    consumers = {queue: name for name, queue in worker_queues(chart_stack).items()}
    nodes = {
        name: celery_option(process, "--hostname")
        for name, process in processes_of(chart_stack, "worker").items()
    }
    assert len(set(nodes.values())) == len(nodes), f"worker node names collide: {nodes}"
    with client(chart_stack, "trigger") as http:
        jobs = http.get("/api/v1/jobs").json()
        submitted: list[tuple[str, str, str]] = []  # (queue, job, run_id)
        for queue in QUEUES:
            # health_check may be sent to any queue; the others go where the catalog says.
            answer = http.post(
                "/api/v1/jobs/health_check/runs",
                json={"params": {"check_database": True}, "queue": queue},
            )
            assert answer.status_code == 202, answer.text
            submitted.append((queue, "health_check", answer.json()["run_id"]))
        for job in jobs:
            # Every other catalog job, with its example params, routed by the catalog.
            if job["name"] == "health_check":
                continue
            answer = http.post(f"/api/v1/jobs/{job['name']}/runs", json={"params": job["example"]})
            assert answer.status_code == 202, answer.text
            assert answer.json()["queue"] == job["queue"]
            submitted.append((job["queue"], job["name"], answer.json()["run_id"]))
        for queue, job, run_id in submitted:
            run = wait_run(http, run_id)
            if job in NEEDS_DATA:
                assert run["state"] == "FAILURE", run
                assert NEEDS_DATA[job] in (run.get("error") or ""), run
            else:
                assert run["state"] == "SUCCESS", (job, queue, run)
            expected = nodes[consumers[queue]]
            print(f"{job} -> {queue}: {run['state']} on {run['worker']}")
            assert run["worker"] == expected, (
                f"{job} on {queue} ran on {run['worker']!r}, not on {expected!r} "
                f"(Deployment {consumers[queue]})"
            )
    assert {q for q, _, _ in submitted} == set(QUEUES)


def brpop_keys_by_client(server: RedisServer, seconds: float) -> dict[int, set[str]]:
    """Keys each client connection BRPOPs on, watched with Redis MONITOR for a while."""
    seen: dict[int, set[str]] = {}
    monitor_client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=seconds + 5)
    done = threading.Event()

    def stop_later() -> None:
        time.sleep(seconds)
        done.set()
        server.client().ping()  # one more command, so listen() returns

    threading.Thread(target=stop_later, daemon=True).start()
    with monitor_client.monitor() as monitor:
        for event in monitor.listen():
            if done.is_set():
                break
            command = event["command"]
            if command.upper().startswith("BRPOP "):
                keys = parse_monitor_args(command)[1:-1]  # BRPOP key... timeout
                seen.setdefault(int(event["client_port"]), set()).update(keys)
    return seen


def parse_monitor_args(command: str) -> list[str]:
    """redis-py hands MONITOR lines over unquoted, bytes as C-style escapes (\\x06)."""
    return [arg.encode("latin-1").decode("unicode_escape") for arg in command.split(" ")]


def test_every_keda_trigger_names_a_list_its_target_deployment_consumes(
    chart_stack: ChartStack, rendered: Objects, e2e_redis: RedisServer
) -> None:
    workers = processes_of(chart_stack, "worker")
    consumed_by_port = brpop_keys_by_client(e2e_redis, seconds=4)
    consumed: dict[str, set[str]] = {}
    for name, process in workers.items():
        ports = process.local_ports(e2e_redis.port)
        consumed[name] = set().union(*(k for p, k in consumed_by_port.items() if p in ports))
        assert consumed[name], f"{name} popped no list in 4 s (is it consuming?)"
    scaled_objects = rendered.of_kind("ScaledObject")
    targets = {so["spec"]["scaleTargetRef"]["name"] for so in scaled_objects}
    assert targets == set(workers), "one ScaledObject per worker Deployment"
    for scaled in scaled_objects:
        target = scaled["spec"]["scaleTargetRef"]["name"]
        assert "replicas" not in rendered.get("Deployment", target)["spec"], (
            f"{target} renders spec.replicas while KEDA scales it (Helm 4 server-side apply)"
        )
        lists = set()
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] != "redis":
                continue
            meta = trigger["metadata"]
            assert meta["address"] == f"127.0.0.1:{e2e_redis.port}", meta
            assert str(meta.get("databaseIndex", "0")) == "0", meta
            lists.add(meta["listName"])
        assert lists, f"{scaled['metadata']['name']} has no Redis list trigger"
        stray = lists - consumed[target]
        assert not stray, f"{target}'s triggers watch lists its workers never pop: {stray}"
        # And the other way round: KEDA sees every list the workers take work from.
        assert consumed[target] <= lists, (
            f"{target} pops {sorted(consumed[target])} but KEDA watches {sorted(lists)}"
        )


def metrics_targets(chart_stack: ChartStack, rendered: Objects) -> list[tuple[str, str, int]]:
    """(monitor, path, host port) for every endpoint a ServiceMonitor/PodMonitor declares."""
    targets = []
    for monitor in rendered.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in rendered.of_kind("Service")
            if selector.items() <= s["metadata"].get("labels", {}).items()
        ]
        assert services, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            for service in services:
                port = next(
                    p for p in service["spec"]["ports"] if p.get("name") == endpoint["port"]
                )
                for process in pods_behind(chart_stack, rendered, service["spec"]["selector"]):
                    host = process.pod.host_port(port.get("targetPort", port["port"]))
                    targets.append(
                        (monitor["metadata"]["name"], endpoint.get("path", "/metrics"), host)
                    )
    for monitor in rendered.of_kind("PodMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        processes = pods_behind(chart_stack, rendered, selector)
        assert processes, f"PodMonitor {monitor['metadata']['name']} selects no pod"
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for process in processes:
                host = process.pod.host_port(endpoint["port"])
                targets.append(
                    (monitor["metadata"]["name"], endpoint.get("path", "/metrics"), host)
                )
    return targets


def pods_behind(
    chart_stack: ChartStack, rendered: Objects, selector: dict[str, str]
) -> list[Process]:
    chosen = []
    for deployment in rendered.deployments():
        labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        if selector.items() <= labels.items():
            chosen.append(chart_stack.processes[deployment["metadata"]["name"]])
    return chosen


def test_every_declared_metrics_endpoint_serves_prometheus_text(
    chart_stack: ChartStack, rendered: Objects
) -> None:
    targets = metrics_targets(chart_stack, rendered)
    scraped = {port for _, _, port in targets}
    # Every running marketq process is scraped by some monitor (Flower, a UI behind auth
    # whose task counts come from the same events, is not).
    for name, process in chart_stack.processes.items():
        if process.pod.service == "flower":
            continue
        assert set(process.pod.ports.values()) & scraped, f"no monitor scrapes {name}"
    for monitor, path, port in targets:
        response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert response.status_code == 200, (monitor, path, response.text[:500])
        assert response.headers["content-type"].startswith("text/plain"), response.headers
        families = {f.name for f in text_string_to_metric_families(response.text)}
        assert any(n.startswith("marketq_") for n in families), (monitor, sorted(families))


def service_url_map(chart_stack: ChartStack, rendered: Objects) -> dict[tuple[str, int], str]:
    """(Service name, port) -> the loopback URL of the process behind it."""
    urls = {}
    for service in rendered.of_kind("Service"):
        for port in service["spec"]["ports"]:
            for process in pods_behind(chart_stack, rendered, service["spec"].get("selector", {})):
                host = process.pod.host_port(port.get("targetPort", port["port"]))
                urls[(service["metadata"]["name"], int(port["port"]))] = f"http://127.0.0.1:{host}"
    return urls


def point_at_processes(pod: Pod, urls: dict[tuple[str, int], str]) -> None:
    """Rewrite in-cluster Service URLs (http://svc[.ns.svc...]:port) to the processes."""

    def swap(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            key = (match.group(1), int(match.group(3) or 80))
            return urls.get(key, match.group(0))

        return re.sub(r"http://([a-z0-9-]+)((?:\.[a-z0-9-]+)*)(?::(\d+))?", one, text)

    for key, value in list(pod.env.items()):
        if swap(value) != value:
            pod.overrides.append(f"env {key}: {value} -> {swap(value)} (Service)")
            pod.env[key] = swap(value)
    for index, arg in enumerate(pod.argv):
        if swap(arg) != arg:
            pod.overrides.append(f"arg {arg} -> {swap(arg)} (Service)")
            pod.argv[index] = swap(arg)


def test_the_helm_test_hook_passes_against_the_running_api(
    chart_stack: ChartStack, rendered: Objects
) -> None:
    tests = [p for p in rendered.of_kind("Pod") if rendered.is_hook(p, "test")]
    assert tests, "the chart renders no `helm test` hook Pod"
    urls = service_url_map(chart_stack, rendered)
    for test_pod in tests:
        name = test_pod["metadata"]["name"]
        pod = chart_stack.builder.pod(name, test_pod["spec"])
        point_at_processes(pod, urls)
        assert any("Service" in o for o in pod.overrides), (
            f"the test pod names no rendered Service: {pod.argv} {dump(pod.env)}"
        )
        result = chart_stack.run_to_completion(pod, timeout=300)
        assert result.returncode == 0, (
            f"{name}: {pod.argv} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        print(
            f"{name}: {' '.join(pod.argv)}\n  overrides: {pod.overrides}\n{result.stdout[-2000:]}"
        )


def test_flower_from_the_chart_sees_the_tasks_of_queues_with_task_events(
    chart_stack: ChartStack,
) -> None:
    (flower,) = processes_of(chart_stack, "flower").values()
    (port,) = flower.pod.ports.values()
    user, password = FLOWER_AUTH.split(":")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        assert http.get("/api/tasks").status_code == 401  # never open
        http.auth = (user, password)
        with client(chart_stack, "trigger") as api:
            runs = {}
            for queue in ("daily", "default"):  # task events on daily only
                answer = api.post(
                    "/api/v1/jobs/health_check/runs",
                    json={"params": {"check_database": False}, "queue": queue},
                )
                assert answer.status_code == 202, answer.text
                runs[queue] = answer.json()["run_id"]
            for run_id in runs.values():
                assert wait_run(api, run_id)["state"] == "SUCCESS"
        deadline = time.monotonic() + 30
        tasks: dict[str, Any] = {}
        while runs["daily"] not in tasks and time.monotonic() < deadline:
            tasks = http.get("/api/tasks").json()
            time.sleep(0.5)
        print(f"Flower on {port}: {len(tasks)} task(s); overrides: {flower.pod.overrides}")
        assert tasks[runs["daily"]]["state"] == "SUCCESS", tasks.get(runs["daily"])
        assert tasks[runs["daily"]]["name"] == "health_check"
        assert runs["default"] not in tasks  # its worker sends no events


def wait_pipeline_run(http: httpx.Client, run_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = http.get(f"/api/v1/pipeline-runs/{run_id}").json()
        if run.get("state") in {"SUCCESS", "FAILED", "REVOKED"} or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


def test_end_of_day_and_research_daily_run_as_pipelines(chart_stack: ChartStack) -> None:
    """The two shipped pipelines on the chart's Deployments, each tracked as one run:
    end_of_day's steps on the daily worker, research_daily started when it succeeds."""
    with client(chart_stack, "trigger") as http:
        started = http.post(
            "/api/v1/pipelines/end_of_day/runs",
            json={"params": {"symbols": ["AAPL", "MSFT", "JPM"], "lookback_days": 300}},
        )
        assert started.status_code == 202, started.text
        eod = wait_pipeline_run(http, started.json()["pipeline_run_id"], 300)
        assert eod["state"] == "SUCCESS", eod
        assert eod["progress"] == {"current": 3, "total": 3}
        [research] = http.get(
            "/api/v1/pipeline-runs", params={"pipeline": "research_daily", "limit": 1}
        ).json()
        assert research["trigger"] == "pipeline"
        research = wait_pipeline_run(http, research["pipeline_run_id"], 600)
        assert research["state"] == "SUCCESS", research
        assert research["progress"] == {"current": 7, "total": 7}
        for step in research["steps"]:
            # A step's run record follows the ledger, which trails the pipeline's own view
            # by the writer's batch interval (docs/pipelines.md).
            deadline = time.monotonic() + 30
            while (run := http.get(f"/api/v1/runs/{step['run_id']}").json())["state"] != (
                "SUCCESS"
            ) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert run["queue"] == "daily" and run["state"] == "SUCCESS", run
