"""Flower as an optional add-on: authenticated, from the worker image, on the Ingress or a
port-forward, under the NetworkPolicies; task events switched on per queue."""

from __future__ import annotations

from typing import Any

from tests.chart.helm import Rendered, name, render, render_error

FLOWER = {"flower.enabled": True, "flower.auth.basicAuth": "ops:s3cret"}


def _container(rendered: Rendered) -> dict[str, Any]:
    spec = rendered.get("Deployment", name("flower"))["spec"]["template"]["spec"]
    c: dict[str, Any] = spec["containers"][0]
    return c


def test_flower_is_off_by_default(default_render: Rendered) -> None:
    assert not [o for o in default_render.objects if "flower" in o["metadata"]["name"]]


def test_flower_runs_celery_flower_from_the_worker_image_with_basic_auth() -> None:
    rendered = render(values=FLOWER)
    c = _container(rendered)
    assert c["image"].startswith("ghcr.io/marketq/marketq-worker:")
    assert c["command"] == ["celery", "-A", "marketq.worker.app:app", "flower"]
    env = {e["name"]: e for e in c["env"]}
    assert env["FLOWER_PORT"]["value"] == "5555"
    # Flower must not switch task events on in every worker: taskEvents decides per queue.
    assert env["FLOWER_ENABLE_EVENTS"]["value"] == "False"
    ref = env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]
    assert rendered.get("Secret", ref["name"])["stringData"][ref["key"]] == "ops:s3cret"
    # The same broker as the workers: the Redis URL file and the shared ConfigMap.
    assert env["MARKETQ_REDIS_URL_FILE"]["value"] == "/etc/marketq/secrets/redis/url"
    service = rendered.get("Service", name("flower"))
    assert service["spec"]["ports"][0]["port"] == 5555
    assert rendered.has("ServiceAccount", name("flower"))


def test_flower_with_oauth_from_a_secret() -> None:
    rendered = render(values={"flower.enabled": True, "flower.auth.oauthSecret": "flower-oauth"})
    c = _container(rendered)
    assert {"secretRef": {"name": "flower-oauth"}} in c["envFrom"]
    assert "FLOWER_BASIC_AUTH" not in {e["name"] for e in c["env"]}


def test_flower_without_authentication_is_refused() -> None:
    error = render_error(values={"flower.enabled": True})
    assert "flower.enabled needs authentication" in error


def test_flower_on_the_ingress_under_its_prefix() -> None:
    rendered = render(
        values={**FLOWER, "flower.ingress.enabled": True, "api.ingress.enabled": True}
    )
    ingress = rendered.get("Ingress", name("api"))
    paths = {p["path"]: p for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths["/flower"]["backend"]["service"]["name"] == name("flower")
    env = {e["name"]: e.get("value") for e in _container(rendered)["env"]}
    assert env["FLOWER_URL_PREFIX"] == "flower"
    assert "flower.ingress.enabled routes a path" in render_error(
        values={**FLOWER, "flower.ingress.enabled": True}
    )


def test_flower_under_the_network_policies() -> None:
    rendered = render(values={**FLOWER, "networkPolicy.enabled": True})
    policy = rendered.get("NetworkPolicy", name("flower"))["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert (
        policy["ingress"][0]["from"]
        == rendered.get("NetworkPolicy", name("api"))["spec"]["ingress"][0]["from"][:2]
    )  # the API's clients (the default apiIngressFrom), not the scrapers
    ports = sorted(p["port"] for rule in policy["egress"] for p in rule["ports"])
    assert 6379 in ports  # the broker


def test_task_events_are_switched_on_per_queue() -> None:
    rendered = render(values={"workers.queues.daily.taskEvents": True})
    for queue, deployment in rendered.workers().items():
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"][
            "containers"][0]["env"]}  # fmt: skip
        key = f"MARKETQ_QUEUES__{queue.upper()}__TASK_EVENTS"
        assert (env.get(key) == "true") is (queue == "daily"), queue
