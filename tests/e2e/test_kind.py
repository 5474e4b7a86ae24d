"""The same checks against a real cluster (the `kind` backend).

Runs where a cluster with the release installed is reachable: the e2e-kind workflow sets
MARKETQ_E2E_KIND=1 after `helm install` (KUBECONFIG from kind). Elsewhere every test here
is skipped with the reason. It checks, through kubectl: every Deployment is available; a
health_check sent through the API to each queue runs on a pod of the Deployment that
consumes that queue (Celery's node name is <queue>@<pod name>); every ScaledObject
targets a worker Deployment whose pods run `--queue` for the lists it watches; and a
backlog of slow runs makes KEDA scale a worker Deployment up.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

RELEASE = os.environ.get("MARKETQ_E2E_RELEASE", "marketq")
NAMESPACE = os.environ.get("MARKETQ_E2E_NAMESPACE", "marketq")
QUEUES = ["market_hours", "daily", "periodic", "default"]


def _cluster_reason() -> str | None:
    if os.environ.get("MARKETQ_E2E_KIND") != "1":
        return (
            "no Kubernetes cluster: the kind backend runs in .github/workflows/e2e-kind.yml "
            "(set MARKETQ_E2E_KIND=1 with KUBECONFIG pointing at a cluster where the chart "
            "is installed); this machine has no container engine"
        )
    if shutil.which("kubectl") is None:
        return "MARKETQ_E2E_KIND=1 but kubectl is not on PATH"
    return None


pytestmark = pytest.mark.skipif(_cluster_reason() is not None, reason=_cluster_reason() or "")


def kubectl(*args: str) -> str:
    return subprocess.run(
        ["kubectl", "--namespace", NAMESPACE, *args], capture_output=True, text=True, check=True
    ).stdout


def kube_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def release_objects(kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube_json(
        "get", kind, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )["items"]
    return items


def worker_deployments() -> dict[str, str]:
    """Deployment name -> the queue its container's args name (--queue)."""
    out = {}
    for deployment in release_objects("deployments"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        argv = [*container.get("command", []), *container.get("args", [])]
        if "--queue" in argv:
            out[deployment["metadata"]["name"]] = argv[argv.index("--queue") + 1]
    return out


def pod_owner(pod: dict[str, Any]) -> str:
    """The Deployment a pod belongs to (pod -> ReplicaSet -> Deployment)."""
    (owner,) = pod["metadata"]["ownerReferences"]
    replica_set = kube_json("get", "replicaset", owner["name"])
    return str(replica_set["metadata"]["ownerReferences"][0]["name"])


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    (service,) = [
        s
        for s in release_objects("services")
        if s["metadata"]["labels"].get("app.kubernetes.io/component") == "api"
    ]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
    port = service["spec"]["ports"][0]["port"]
    forward = subprocess.Popen(
        [
            "kubectl",
            "-n",
            NAMESPACE,
            "port-forward",
            f"svc/{service['metadata']['name']}",
            f"{local}:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    key = api_key()
    try:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{local}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not answer through port-forward"
            time.sleep(0.5)
        yield client
    finally:
        forward.terminate()
        forward.wait(10)


def api_key() -> str:
    """The plain key the chart generated for `helm test` (trigger + read scopes)."""
    import base64

    for secret in release_objects("secrets"):
        for key, value in (secret.get("data") or {}).items():
            if key == "api-key":
                return base64.b64decode(value).decode()
    raise AssertionError("no Secret with the helm-test API key (key `api-key`) in the release")


def test_every_deployment_is_available() -> None:
    for deployment in release_objects("deployments"):
        status = deployment.get("status", {})
        assert status.get("availableReplicas", 0) >= 1, deployment["metadata"]["name"]


def test_each_queue_runs_on_its_own_deployment(api: httpx.Client) -> None:
    consumers = {queue: name for name, queue in worker_deployments().items()}
    assert sorted(consumers) == sorted(QUEUES)
    for queue in QUEUES:
        answer = api.post("/api/v1/jobs/health_check/runs", json={"params": {}, "queue": queue})
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        deadline = time.monotonic() + 120
        while (run := api.get(f"/api/v1/runs/{run_id}").json())["state"] != "SUCCESS":
            assert run["state"] not in {"FAILURE", "REVOKED"}, run
            assert time.monotonic() < deadline, run
            time.sleep(1)
        node_queue, _, pod_name = run["worker"].partition("@")
        assert node_queue == queue, run
        pod = kube_json("get", "pod", pod_name)
        assert pod_owner(pod) == consumers[queue], (run, consumers)


def test_scaled_objects_target_the_deployment_of_their_queue() -> None:
    queues = worker_deployments()
    prefix_lists: dict[str, set[str]] = {}
    for scaled in kube_json("get", "scaledobjects")["items"]:
        target = scaled["spec"]["scaleTargetRef"]["name"]
        assert target in queues, target
        lists = {
            t["metadata"]["listName"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"
        }
        assert lists, scaled["metadata"]["name"]
        for name in lists:
            # <prefix><queue> or <prefix><queue>\x06\x16<priority>: this queue's lists only.
            base = name.split("\x06\x16")[0]
            assert base.endswith(queues[target]), (name, queues[target])
        prefix_lists[target] = lists
    assert set(prefix_lists) == set(queues)


def test_a_backlog_makes_keda_scale_a_worker_deployment_up(api: httpx.Client) -> None:
    queue = "default"
    consumers = {q: name for name, q in worker_deployments().items()}
    deployment = consumers[queue]
    before = kube_json("get", "deployment", deployment)["spec"].get("replicas", 1)
    runs = [
        {
            "job": "health_check",
            "params": {"sleep_seconds": 20, "check_database": False},
            "queue": queue,
        }
        for _ in range(60)
    ]
    answer = api.post("/api/v1/runs:batch", json={"runs": runs})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(runs), answer.text
    run_ids = [item["run"]["run_id"] for item in answer.json()["results"]]
    try:
        deadline = time.monotonic() + 240
        while True:
            replicas = kube_json("get", "deployment", deployment)["spec"].get("replicas", 1)
            if replicas > before:
                break
            assert time.monotonic() < deadline, (
                f"KEDA did not scale {deployment} above {before} replicas in 240 s\n"
                + kubectl("describe", "scaledobject")
            )
            time.sleep(5)
    finally:
        # Leave no backlog behind for the upgrade and the second `helm test`.
        for run_id in run_ids:
            api.post(f"/api/v1/runs/{run_id}/cancel")
    hpa = [
        h
        for h in kube_json("get", "hpa")["items"]
        if h["spec"]["scaleTargetRef"]["name"] == deployment
    ]
    assert hpa and hpa[0]["metadata"]["name"].startswith("keda-hpa-"), "KEDA's HPA scaled it"
