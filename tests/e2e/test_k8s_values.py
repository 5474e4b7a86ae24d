"""k8s/values-production.yaml and k8s/kind/values-kind.yaml: accepted by the chart as shipped.

The example an operator copies must pass `helm lint --strict` (the values schema included)
and render what it promises: external Redis with TLS and a password from Secrets, the
database from a Secret, KEDA on every worker queue, the monitoring objects. The kind values
must render the images the workflow loads, never pulled.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helm import CHART, ROOT, helm_binary

PRODUCTION = ROOT / "k8s" / "values-production.yaml"
KIND = ROOT / "k8s" / "kind" / "values-kind.yaml"
CLUSTER_APIS = ["--api-versions", "keda.sh/v1alpha1", "--api-versions", "monitoring.coreos.com/v1"]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)


def template(values: Path, *extra: str) -> list[dict[str, Any]]:
    result = helm("template", "marketq", str(CHART), "-n", "marketq", "-f", str(values), *extra)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("values", [PRODUCTION, KIND], ids=["production", "kind"])
def test_helm_lint_strict_accepts_the_values(values: Path) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_values_use_external_redis_with_tls_and_secrets() -> None:
    objects = template(PRODUCTION, *CLUSTER_APIS)
    kinds = [o["kind"] for o in objects]
    assert "StatefulSet" not in kinds, "the bundled Redis must be off"
    workloads = [o for o in objects if o["kind"] in ("Deployment", "Job")]
    images = {c["image"] for o in workloads for c in o["spec"]["template"]["spec"]["containers"]}
    assert all(i.startswith("ghcr.io/marketq/marketq-") for i in images), images
    # The URLs come from the operator's Secrets, not from Secrets the chart writes.
    referenced = set()
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
    assert {"marketq-redis", "marketq-redis-ca", "marketq-database"} <= referenced, referenced
    scaled = [o for o in objects if o["kind"] == "ScaledObject"]
    workers = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]
    assert len(scaled) == len(workers) == 4
    for so in scaled:
        for trigger in so["spec"]["triggers"]:
            if trigger["type"] == "redis":
                assert trigger["metadata"]["address"] == "redis.example.internal:6380"
                assert str(trigger["metadata"]["enableTLS"]).lower() == "true"
    (auth,) = [o for o in objects if o["kind"] == "TriggerAuthentication"]
    assert {p["name"] for p in auth["spec"]["secretTargetRef"]} == {
        "marketq-redis",
        "marketq-redis-ca",
    }
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        monitors = [o for o in objects if o["kind"] == kind]
        assert monitors, kind
        for monitor in monitors:
            assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


WORKFLOW = ROOT / ".github" / "workflows" / "e2e-kind.yml"


def _workflow_step(name_start: str) -> str:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    (step,) = [
        s for s in workflow["jobs"]["kind"]["steps"] if s.get("name", "").startswith(name_start)
    ]
    run: str = step["run"]
    return run


def test_kind_values_run_the_loaded_images_and_keda() -> None:
    tag = "e2e-test"
    objects = template(
        KIND,
        "--set-string",
        f"images.api.tag={tag},images.worker.tag={tag},images.beat.tag={tag}",
    )
    pods = [
        o["spec"]["template"]["spec"]
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
        else o["spec"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "Job", "Pod")
    ]
    assert any(o["kind"] == "StatefulSet" for o in objects), "the kind values bundle Redis"
    for spec in pods:
        for container in spec["containers"] + spec.get("initContainers", []):
            image, policy = container["image"], container["imagePullPolicy"]
            if "marketq-" in image:
                assert image.split("/")[-1].endswith(f":{tag}"), image
                assert policy == "Never"
            else:
                # Not built by the workflow: it must be pullable (the workflow also pre-loads
                # every rendered image, below).
                assert policy != "Never", image
    assert len([o for o in objects if o["kind"] == "ScaledObject"]) == 4


def test_the_workflow_loads_every_image_the_kind_values_render() -> None:
    load = _workflow_step("Load the images")
    # The list comes from the chart itself, so a new bundled image cannot be forgotten.
    assert "helm template" in load and "k8s/kind/values-kind.yaml" in load
    assert "kind load docker-image" in load and "docker pull" in load


def test_the_workflow_upgrade_step_asserts_the_replica_counts() -> None:
    upgrade = _workflow_step("helm upgrade")
    assert "exit 1" in upgrade
    assert "desiredReplicas" in upgrade  # compared with what KEDA's HPA wants
