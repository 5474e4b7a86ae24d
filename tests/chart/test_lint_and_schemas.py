"""helm lint, and every rendered object against the schemas of what will receive it:
Kubernetes' own (pinned versions, strict: unknown fields fail) and the KEDA and Prometheus
Operator CRDs (models generated from the published CRDs, checked by a lossless round trip:
a field the CRD does not know is dropped by the model and the comparison fails)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pydantic
import pytest
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator

from tests.chart.helm import CHART, OPTIONAL_APIS, VALUES_MAX, Rendered, helm, render

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBERNETES_VERSIONS = ("1.27.0", "1.33.0")
CRD_MODELS = {"keda.sh/v1alpha1": keda, "monitoring.coreos.com/v1": prometheus_operator}


def test_lint_strict_default_values() -> None:
    out = helm("lint", "--strict", str(CHART), check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lint_strict_maximal_values() -> None:
    # helm lint cannot declare APIs; the force flags render the KEDA and Operator objects.
    out = helm(
        "lint", "--strict", str(CHART), "-f", str(VALUES_MAX),
        "--set", "keda.force=true,monitoring.force=true", check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_forcing_capabilities_renders_what_declaring_them_does(max_render: Rendered) -> None:
    forced = render([VALUES_MAX], values={"keda.force": True, "monitoring.force": True})
    assert sorted(o["kind"] for o in forced.objects) == sorted(
        o["kind"] for o in max_render.objects
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_core_object_is_valid_kubernetes(each_render: Rendered, version: str) -> None:
    core = [o for o in each_render.objects if o["apiVersion"] not in CRD_MODELS]
    assert core
    for obj in core:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {version}: {exc.message}")


def _round_trip(obj: dict[str, Any]) -> dict[str, Any]:
    model = getattr(CRD_MODELS[obj["apiVersion"]], obj["kind"])
    dumped: dict[str, Any] = model.model_validate(obj).model_dump(
        by_alias=True, exclude_unset=True, mode="json"
    )
    return dumped


def test_every_crd_object_matches_its_crd_schema(max_render: Rendered) -> None:
    custom = [o for o in max_render.objects if o["apiVersion"] in CRD_MODELS]
    assert {o["kind"] for o in custom} == {
        "ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PodMonitor",
        "PrometheusRule",
    }  # fmt: skip
    for obj in custom:
        assert _round_trip(obj) == obj, f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_crd_check_catches_an_unknown_field(max_render: Rendered) -> None:
    scaled = max_render.kinds("ScaledObject")[0]
    broken = {**scaled, "spec": {**scaled["spec"], "maxReplicas": 3}}
    assert _round_trip(broken) != broken
    mistyped = {**scaled, "spec": {**scaled["spec"], "minReplicaCount": "one"}}
    with pytest.raises(pydantic.ValidationError, match="minReplicaCount"):
        _round_trip(mistyped)


def test_no_crd_objects_without_the_apis(default_render: Rendered) -> None:
    everything_on = render(
        values={
            "workers.defaults.autoscaling.keda.enabled": True,
            "monitoring.serviceMonitor.enabled": True,
            "monitoring.podMonitor.enabled": True,
            "monitoring.prometheusRule.enabled": True,
        }
    )
    assert not [o for o in everything_on.objects if o["apiVersion"] in CRD_MODELS]
    assert not [o for o in default_render.objects if o["apiVersion"] in CRD_MODELS]


def test_optional_apis_alone_render_nothing_extra(default_render: Rendered) -> None:
    declared = render(api_versions=OPTIONAL_APIS)
    assert len(declared.objects) == len(default_render.objects)


def test_every_template_renders_in_the_default_or_maximal_set(
    default_render: Rendered, max_render: Rendered
) -> None:
    templates = {
        str(path.relative_to(CHART))
        for path in (CHART / "templates").rglob("*.yaml")
        if path.name != "validate.yaml"  # guards only: renders no object
    }
    assert templates - (default_render.sources | max_render.sources) == set()
