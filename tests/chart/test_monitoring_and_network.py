"""Scrape objects with the contract's job names, the alert rules and dashboards shipped by
the chart, and the NetworkPolicies."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.chart.helm import CHART, Rendered, name, render, render_error

DEFAULT_RUNBOOKS = "https://github.com/marketq/marketq/blob/main/docs/runbooks.md"


def relabel_targets(endpoint: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {
        r["targetLabel"]: r.get("replacement", r.get("sourceLabels"))
        for r in endpoint["relabelings"]
    }


def test_service_monitor_scrapes_the_api_as_marketq_api(max_render: Rendered) -> None:
    monitor = max_render.get("ServiceMonitor", name("api"))
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert relabel_targets(endpoint) == {"job": "marketq-api", "component": "api", "release": "mq"}
    service = max_render.get("Service", name("api"))
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_pod_monitors_scrape_workers_with_their_queue_and_beat(max_render: Rendered) -> None:
    worker = max_render.get("PodMonitor", name("worker"))
    targets = relabel_targets(worker["spec"]["podMetricsEndpoints"][0])
    assert targets == {"job": "marketq-worker", "component": "worker", "release": "mq",
                       "queue": ["__meta_kubernetes_pod_label_marketq_io_queue"]}  # fmt: skip
    # Worker series carry `queue` themselves: honoured, or Prometheus renames it exported_queue.
    assert worker["spec"]["podMetricsEndpoints"][0]["honorLabels"] is True
    for deployment in max_render.workers().values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert worker["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert "marketq.io/queue" in labels
    beat = max_render.get("PodMonitor", name("beat"))
    assert relabel_targets(beat["spec"]["podMetricsEndpoints"][0]) == {
        "job": "marketq-beat",
        "component": "beat",
        "release": "mq",
    }
    assert beat["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_prometheus_rule_embeds_the_rules_file_with_the_runbook_base(max_render: Rendered) -> None:
    rule = max_render.get("PrometheusRule", name("alerts"))
    source = (CHART / "rules" / "marketq-alerts.yaml").read_text(encoding="utf-8")
    expected = yaml.safe_load(
        source.replace(DEFAULT_RUNBOOKS, "https://wiki.example/marketq/runbooks")
    )
    assert rule["spec"]["groups"] == expected["groups"]
    text = json.dumps(rule)
    assert DEFAULT_RUNBOOKS not in text and "https://wiki.example/marketq/runbooks#" in text


def test_prometheus_rule_keeps_the_default_runbooks() -> None:
    rendered = render(values={"monitoring.prometheusRule.enabled": True, "monitoring.force": True})
    rule = rendered.get("PrometheusRule", name("alerts"))
    source = yaml.safe_load((CHART / "rules" / "marketq-alerts.yaml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == source["groups"]


def test_one_labelled_configmap_per_dashboard(max_render: Rendered) -> None:
    files = sorted((CHART / "dashboards").glob("*.json"))
    assert files, "the chart ships dashboards"
    maps = [
        c for c in max_render.kinds("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert len(maps) == len(files)
    by_file = {next(iter(c["data"])): c for c in maps}
    for path in files:
        cm = by_file[path.name]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "marketq"
        assert json.loads(cm["data"][path.name]) == json.loads(path.read_text(encoding="utf-8"))
        assert len(json.dumps(cm).encode()) < 1024 * 1024  # the API server's object limit


def test_dashboard_label_and_folder_are_configurable() -> None:
    rendered = render(
        values={"monitoring.dashboards.enabled": True, "monitoring.dashboards.label": "dashboards",
                "monitoring.dashboards.labelValue": "marketq",
                "monitoring.dashboards.folder": "Trading",
                "monitoring.dashboards.folderAnnotation": "k8s-sidecar-target-directory"}
    )  # fmt: skip
    maps = [c for c in rendered.kinds("ConfigMap") if "dashboards" in c["metadata"]["labels"]]
    assert len(maps) == len(list((CHART / "dashboards").glob("*.json")))
    assert {c["metadata"]["labels"]["dashboards"] for c in maps} == {"marketq"}
    assert {c["metadata"]["annotations"]["k8s-sidecar-target-directory"] for c in maps} == {
        "Trading"
    }


def test_monitoring_objects_are_each_behind_their_flag(default_render: Rendered) -> None:
    assert not [
        c
        for c in default_render.kinds("ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    only_rules = render(
        values={"monitoring.prometheusRule.enabled": True, "monitoring.force": True}
    )
    assert {
        o["kind"] for o in only_rules.objects if o["apiVersion"] == "monitoring.coreos.com/v1"
    } == {"PrometheusRule"}


def test_network_policies(max_render: Rendered) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in max_render.kinds("NetworkPolicy")}
    assert set(policies) == {name("api"), name("worker"), name("beat"), name("flower")}
    api = policies[name("api")]
    test_pod = max_render.get("Pod", name("test-health-check"))["metadata"]["labels"]
    ingress_nginx, monitoring, helm_test = api["ingress"][0]["from"]
    assert ingress_nginx == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    assert monitoring == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert helm_test["podSelector"]["matchLabels"].items() <= test_pod.items()
    for component in ("worker", "beat"):
        spec = policies[name(component)]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        # Only scrapes come in.
        assert [i["from"] for i in spec["ingress"]] == [
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
        ]
        ports = sorted(p["port"] for rule in spec["egress"] for p in rule["ports"])
        assert ports == [53, 53, 4317, 5432, 6380]  # DNS, OTLP, database, Redis


def test_bundled_redis_policy_admits_the_release_and_keda() -> None:
    rendered = render(values={"networkPolicy.enabled": True, "keda.force": True})
    redis = rendered.get("NetworkPolicy", name("redis"))["spec"]
    peers = redis["ingress"][0]["from"]
    assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "mq"
    assert peers[1] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}
    }
    worker = rendered.get("NetworkPolicy", name("worker"))["spec"]
    ports = sorted(p["port"] for rule in worker["egress"] for p in rule["ports"])
    assert ports == [53, 53, 5432, 6379]  # DNS, the bundled PostgreSQL and Redis
    db = rendered.get("NetworkPolicy", name("postgresql"))["spec"]
    assert (
        db["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"]
        == "mq"
    )
    assert len(db["ingress"][0]["from"]) == 1  # KEDA reads Redis, never the database


# Pods as kube-prometheus-stack and ingress-nginx install them: (namespace labels, pod labels).
PROMETHEUS = (
    {"kubernetes.io/metadata.name": "monitoring"},
    {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
)
INGRESS_NGINX = (
    {"kubernetes.io/metadata.name": "ingress-nginx"},
    {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
)
OTHER_POD_IN_NAMESPACE = ({"kubernetes.io/metadata.name": "marketq"}, {"app": "debug"})


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # the chart's peers use matchLabels
    return selector.get("matchLabels", {}).items() <= labels.items()


def _admits(policy: dict[str, Any], peer: tuple[dict[str, str], dict[str, str]]) -> bool:
    """Whether any ingress rule of a policy in namespace `marketq` admits the peer (the
    NetworkPolicy peer semantics: a podSelector alone means the policy's namespace)."""
    namespace, pod = peer
    for rule in policy["ingress"]:
        for source in rule.get("from", [{}]):
            in_namespace = (
                _selects(source["namespaceSelector"], namespace)
                if "namespaceSelector" in source
                else namespace["kubernetes.io/metadata.name"] == "marketq"
            )
            if in_namespace and _selects(source.get("podSelector", {}), pod):
                return True
    return False


def test_default_network_policies_admit_prometheus_and_ingress_nginx() -> None:
    rendered = render(values={"networkPolicy.enabled": True})
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.kinds("NetworkPolicy")}
    for component in ("api", "worker", "beat"):
        assert _admits(policies[name(component)], PROMETHEUS), component
    assert _admits(policies[name("api")], INGRESS_NGINX)
    # Scrape ports are for Prometheus, not for any pod that happens to share the namespace.
    for component in ("worker", "beat"):
        assert not _admits(policies[name(component)], OTHER_POD_IN_NAMESPACE), component
        assert not _admits(policies[name(component)], INGRESS_NGINX), component


def test_external_stores_need_their_egress_rules() -> None:
    error = render_error(
        values={
            "networkPolicy.enabled": True,
            "database.bundled.enabled": False,
            "database.url": "postgresql+psycopg://marketq:pw@db.example/marketq",
        }
    )
    assert "networkPolicy.databaseEgress is empty" in error
    error = render_error(
        values={
            "networkPolicy.enabled": True,
            "redis.bundled.enabled": False,
            "redis.url": "redis://redis.example:6379/0",
        }
    )
    assert "networkPolicy.redisEgress is empty" in error
