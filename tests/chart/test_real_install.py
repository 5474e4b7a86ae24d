"""What a first real install needs beyond a clean lint: the chart as a subchart, object
names and labels Kubernetes accepts, the API's Ingress and PDB, the migration deadline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, Rendered, helm, name, render

LONG_RELEASE = "a-release-name-that-is-exactly-fifty-three-chars-long"


def test_the_chart_works_as_a_subchart(tmp_path: Path) -> None:
    # Helm always hands a subchart the parent's `global` values.
    parent = tmp_path / "platform"
    (parent / "charts").mkdir(parents=True)
    shutil.copytree(CHART, parent / "charts" / "marketq")
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: platform\nversion: 1.0.0\n"
        "dependencies:\n  - name: marketq\n    version: 0.1.0\n",
        encoding="utf-8",
    )
    (parent / "values.yaml").write_text(
        "global:\n  imageRegistry: registry.example\n", encoding="utf-8"
    )
    out = helm("template", "platform", str(parent), "--namespace", "marketq", check=False)
    assert out.returncode == 0, out.stderr
    assert "kind: Deployment" in out.stdout


def test_statefulset_names_stay_valid_for_long_release_names() -> None:
    assert len(LONG_RELEASE) == 53
    out = helm("template", LONG_RELEASE, str(CHART), "--namespace", "marketq")
    objects = [o for o in yaml.safe_load_all(out.stdout) if o]
    statefulsets = [o for o in objects if o["kind"] == "StatefulSet"]
    assert len(statefulsets) == 2
    for sts in statefulsets:
        # The controller-revision-hash label is "<name>-<10 chars>" and must fit in 63.
        assert len(sts["metadata"]["name"]) <= 52, sts["metadata"]["name"]
        assert sts["spec"]["serviceName"] == sts["metadata"]["name"]
    for obj in objects:
        assert len(obj["metadata"]["name"]) <= 63
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"])


def test_common_labels_never_duplicate_a_chart_label() -> None:
    common = {
        "app.kubernetes.io/name": "other",
        "app.kubernetes.io/component": "other",
        "team": "market-data",
    }
    pod = {"labels": {"app.kubernetes.io/instance": "other", "tier": "web"}}
    out = helm(
        "template", "mq", str(CHART), "--namespace", "marketq",
        "--set-json", f"commonLabels={json.dumps(common)}",
        "--set-json", f"api.pod={json.dumps(pod)}",
    )  # fmt: skip
    # A duplicate mapping key is invalid YAML for the API server (and for a strict parser).
    for document in out.stdout.split("\n---"):
        _no_duplicate_keys(document)
    objects = [o for o in yaml.safe_load_all(out.stdout) if o]
    api = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name("api")
    )
    labels = api["spec"]["template"]["metadata"]["labels"]
    # The chart's own labels win (selectors depend on them); the rest are added.
    assert labels["app.kubernetes.io/name"] == "marketq"
    assert labels["app.kubernetes.io/component"] == "api"
    assert labels["app.kubernetes.io/instance"] == "mq"
    assert labels["team"] == "market-data" and labels["tier"] == "web"


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"duplicate keys {duplicates} at line {node.start_mark.line}"
    return dict(loader.construct_pairs(node))


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def _no_duplicate_keys(document: str) -> None:
    yaml.load(document, Loader=_StrictLoader)


def test_api_pdb_lets_unhealthy_pods_be_evicted(default_render: Rendered) -> None:
    pdb = default_render.get("PodDisruptionBudget", name("api"))
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_shared_dashboard_namespace_keeps_names_apart() -> None:
    def names(namespace: str) -> set[str]:
        out = helm(
            "template", "mq", str(CHART), "--namespace", namespace,
            "--set", "monitoring.dashboards.enabled=true",
            "--set", "monitoring.dashboards.namespace=monitoring",
        )  # fmt: skip
        return {
            o["metadata"]["name"]
            for o in yaml.safe_load_all(out.stdout)
            if o and o["kind"] == "ConfigMap" and o["metadata"].get("namespace") == "monitoring"
        }

    staging, production = names("staging"), names("production")
    assert staging and production and not staging & production


def _ingress_paths(rendered: Rendered) -> list[tuple[str, str]]:
    ingress = rendered.get("Ingress", name("api"))
    (rule,) = ingress["spec"]["rules"]
    return [(p["path"], p["pathType"]) for p in rule["http"]["paths"]]


def _matches(path: str, rule: tuple[str, str]) -> bool:
    prefix, kind = rule
    if kind == "Exact":
        return path == prefix
    # Prefix matches whole path elements (Kubernetes' Ingress semantics).
    prefix = prefix.rstrip("/")
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def test_metrics_are_not_exposed_through_the_ingress() -> None:
    from marketq.api.app import create_app
    from marketq.common.settings import Settings

    rendered = render(values={"api.ingress.enabled": True})
    rules = _ingress_paths(rendered)
    assert not any(_matches("/metrics", rule) for rule in rules), rules
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    internal = {"/metrics", "/livez", "/readyz"}
    for route in app.routes:
        path = getattr(route, "path", "")
        if path and path not in internal:
            assert any(_matches(path, rule) for rule in rules), f"{path} not routed"


def test_several_uvicorn_workers_share_one_metrics_directory() -> None:
    single = render()
    multi = render(values={"api.uvicornWorkers": 3})

    def api_container(rendered: Rendered) -> dict[str, Any]:
        spec = rendered.get("Deployment", name("api"))["spec"]["template"]["spec"]
        c: dict[str, Any] = spec["containers"][0]
        return {"c": c, "volumes": {v["name"]: v for v in spec["volumes"]}}

    assert "PROMETHEUS_MULTIPROC_DIR" not in {e["name"] for e in api_container(single)["c"]["env"]}
    found = api_container(multi)
    env = {e["name"]: e.get("value") for e in found["c"]["env"]}
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    # prometheus-client needs the directory to exist: it is a mount point of an emptyDir.
    mount = next(m for m in found["c"]["volumeMounts"] if m["mountPath"] == directory)
    assert "emptyDir" in found["volumes"][mount["name"]]


HELM_DEFAULT_TIMEOUT_SECONDS = 300


def test_the_migration_deadline_fits_helms_default_timeout(default_render: Rendered) -> None:
    job = default_render.get("Job", name("migrations"))
    assert job["spec"]["activeDeadlineSeconds"] < HELM_DEFAULT_TIMEOUT_SECONDS


def test_a_longer_migration_deadline_is_announced_in_the_notes() -> None:
    out = helm(
        "install", "mq", str(CHART), "--dry-run=client", "--namespace", "marketq",
        "--set", "database.migrations.activeDeadlineSeconds=900",
    )  # fmt: skip
    assert "--timeout 16m" in out.stdout


@pytest.mark.parametrize("store", ["redis", "postgresql"])
def test_bundled_stores_use_their_own_pull_policy_and_the_pull_secrets(store: str) -> None:
    key = "redis" if store == "redis" else "database"
    rendered = render(
        values={
            "images.pullPolicy": "Never",
            "images.pullSecrets": ["registry-credentials"],
            f"{key}.bundled.image.pullPolicy": "Always",
        }
    )
    spec = rendered.get("StatefulSet", name(store))["spec"]["template"]["spec"]
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    default = render().get("StatefulSet", name(store))["spec"]["template"]["spec"]
    assert default["containers"][0]["imagePullPolicy"] == "IfNotPresent"
