"""Per-component pod options users expect from Airflow's and bitnami's charts: extra env
(with valueFrom), envFrom, volumes and mounts, sidecars, init containers, host aliases,
annotations, labels and scheduling, on the API, every queue's workers and beat."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.chart.helm import Rendered, name, render, render_error

RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
SIDECAR = {
    "name": "proxy",
    "image": "registry.example/proxy:1.0",
    "securityContext": RESTRICTED,
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
}
INIT = {
    "name": "wait-for-vendor",
    "image": "registry.example/wait:1.0",
    "command": ["true"],
    "securityContext": RESTRICTED,
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
}
POD_OPTIONS: dict[str, Any] = {
    "annotations": {"example.com/owner": "data"},
    "labels": {"cost-centre": "market-data"},
    "nodeSelector": {"pool": "general"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    "topologySpreadConstraints": [
        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname",
         "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"a": "b"}}}
    ],
    "priorityClassName": "market-data",
    "hostAliases": [{"ip": "10.0.0.10", "hostnames": ["vendor.internal"]}],
    "extraEnv": [
        {"name": "VENDOR_TOKEN", "valueFrom": {"secretKeyRef": {"name": "vendor", "key": "token"}}}
    ],
    "extraEnvFrom": [{"secretRef": {"name": "vendor-env"}}],
    "extraVolumes": [{"name": "vendor-ca", "secret": {"secretName": "vendor-ca"}}],
    "extraVolumeMounts": [{"name": "vendor-ca", "mountPath": "/etc/vendor-ca", "readOnly": True}],
    "extraContainers": [SIDECAR],
    "initContainers": [INIT],
}  # fmt: skip
COMPONENTS = {"api": "api.pod", "beat": "beat.pod", "worker-daily": "workers.defaults.pod"}


@pytest.fixture(scope="module")
def extended() -> Rendered:
    return render(values={key: POD_OPTIONS for key in COMPONENTS.values()})


@pytest.mark.parametrize("deployment", sorted(COMPONENTS))
def test_every_pod_option_lands_where_kubernetes_reads_it(
    extended: Rendered, deployment: str
) -> None:
    obj = extended.get("Deployment", name(deployment))
    template = obj["spec"]["template"]
    spec = template["spec"]
    assert template["metadata"]["annotations"]["example.com/owner"] == "data"
    assert template["metadata"]["labels"]["cost-centre"] == "market-data"
    for key in ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
                "priorityClassName", "hostAliases", "initContainers"):  # fmt: skip
        assert spec[key] == POD_OPTIONS[key], key
    main, sidecar = spec["containers"]
    assert sidecar == SIDECAR
    assert POD_OPTIONS["extraEnv"][0] in main["env"]
    assert POD_OPTIONS["extraEnvFrom"][0] in main["envFrom"]
    assert len(main["envFrom"]) == 2  # the chart's ConfigMap stays
    assert POD_OPTIONS["extraVolumeMounts"][0] in main["volumeMounts"]
    assert POD_OPTIONS["extraVolumes"][0] in spec["volumes"]
    # The chart's own mounts stay.
    assert {"tmp", "redis-url", "database-url"} <= {m["name"] for m in main["volumeMounts"]}


def test_the_extended_pods_are_valid_kubernetes(extended: Rendered) -> None:
    for obj in extended.kinds("Deployment"):
        kubernetes_validate.validate(obj, "1.33.0", strict=True)


def test_a_queue_can_override_the_defaults_pod_options() -> None:
    rendered = render(
        values={
            "workers.defaults.pod": {"hostAliases": POD_OPTIONS["hostAliases"]},
            "workers.queues.daily.pod": {"hostAliases": []},
        }
    )
    workers = rendered.workers()
    assert "hostAliases" not in workers["daily"]["spec"]["template"]["spec"]
    assert (
        workers["periodic"]["spec"]["template"]["spec"]["hostAliases"]
        == (POD_OPTIONS["hostAliases"])
    )


def test_the_schema_checks_the_pod_options() -> None:
    # A map where Kubernetes wants a list of EnvVar objects.
    assert "/api/pod/extraEnv" in render_error(values={"api.pod.extraEnv": {"A": "b"}})
    assert "extraContainers" in render_error(
        values={"beat.pod.extraContainers": [{"name": "no-image"}]}
    )
