"""KEDA: the triggers see every list Celery writes, scale-from-zero, the age and cron
triggers, conservative scale-down, authentication from the Redis Secret."""

from __future__ import annotations

from typing import Any

from marketq.api.queue_stats import list_key
from marketq.common.routing import PRIORITY_STEPS
from tests.chart.helm import Rendered, name, render, render_error


def scaled_objects(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["labels"]["marketq.io/queue"]: o for o in rendered.kinds("ScaledObject")}


def test_a_scaled_object_per_keda_queue_targeting_its_deployment(max_render: Rendered) -> None:
    objects = scaled_objects(max_render)
    assert sorted(objects) == ["daily", "default", "market_hours"]  # periodic uses the HPA
    workers = max_render.workers()
    for queue, scaled in objects.items():
        assert scaled["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "name": workers[queue]["metadata"]["name"],
        }  # fmt: skip
        # The Deployment it scales consumes the queue its triggers count.
        assert workers[queue]["spec"]["template"]["spec"]["containers"][0]["args"] == [
            "--queue", queue,
        ]  # fmt: skip


def test_list_triggers_cover_every_priority_list_with_the_prefix(max_render: Rendered) -> None:
    for queue, scaled in scaled_objects(max_render).items():
        lists = [
            t["metadata"]["listName"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"
        ]
        # The keys the API's queue statistics read: what kombu writes for each step.
        assert lists == [list_key("marketq:", queue, step) for step in PRIORITY_STEPS]
        assert lists[1] == f"marketq:{queue}\x06\x163"


def test_a_custom_key_prefix_reaches_the_triggers() -> None:
    rendered = render(
        values={"config.redisKeyPrefix": "prod:",
                "workers.queues.daily.autoscaling.keda.enabled": True,
                "keda.force": True}
    )  # fmt: skip
    scaled = scaled_objects(rendered)["daily"]
    lists = [t["metadata"]["listName"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"]
    assert lists == [list_key("prod:", "daily", step) for step in PRIORITY_STEPS]


def test_list_trigger_settings_and_scale_from_zero(max_render: Rendered) -> None:
    scaled = scaled_objects(max_render)["daily"]
    assert scaled["spec"]["minReplicaCount"] == 0
    for trigger in (t for t in scaled["spec"]["triggers"] if t["type"] == "redis"):
        assert trigger["metricType"] == "AverageValue"
        assert trigger["metadata"]["activationListLength"] == "1"
        assert trigger["metadata"]["listLength"] == "20"
        assert trigger["metadata"]["address"] == "redis.example:6380"
        assert trigger["metadata"]["enableTLS"] == "true"
        assert trigger["authenticationRef"] == {"name": name("redis")}


def test_prometheus_age_trigger(max_render: Rendered) -> None:
    objects = scaled_objects(max_render)
    assert all(t["type"] != "prometheus" for t in objects["market_hours"]["spec"]["triggers"])
    for queue in ("daily", "default"):
        scaled = objects[queue]
        age = next(t for t in scaled["spec"]["triggers"] if t["name"] == "oldest-age")
        assert age["metricType"] == "Value"
        assert age["metadata"]["ignoreNullValues"] == "false"
        # Only this release's series: two releases under one Prometheus must not scale
        # each other (the namespace label and the release label the chart's scrape
        # configs add).
        assert age["metadata"]["query"] == (
            f'max(marketq_queue_oldest_age_seconds{{queue="{queue}",namespace="marketq",'
            f'release="mq"}})'
        )
        assert age["metadata"]["threshold"] == {"daily": "900", "default": "300"}[queue]


def test_fallback_only_where_every_trigger_is_average_value(max_render: Rendered) -> None:
    # KEDA rejects a fallback next to a Value trigger (CheckFallbackValid).
    for scaled in scaled_objects(max_render).values():
        types = {t.get("metricType") for t in scaled["spec"]["triggers"]}
        if types == {"AverageValue"}:
            assert scaled["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 2}
        else:
            assert "fallback" not in scaled["spec"]
    assert "fallback" in scaled_objects(max_render)["market_hours"]["spec"]


def test_cron_prewarms_market_hours_before_the_open_in_new_york(max_render: Rendered) -> None:
    objects = scaled_objects(max_render)
    cron = [t for t in objects["market_hours"]["spec"]["triggers"] if t["type"] == "cron"]
    assert len(cron) == 1
    meta = cron[0]["metadata"]
    assert meta["timezone"] == "America/New_York"
    minute, hour, *_ = meta["start"].split()
    assert (int(hour), int(minute)) < (9, 30)  # the NYSE opens at 09:30
    assert all(
        t["type"] != "cron" for q in ("daily", "default") for t in objects[q]["spec"]["triggers"]
    )


def test_scale_down_is_conservative(max_render: Rendered) -> None:
    for scaled in scaled_objects(max_render).values():
        behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        down = behavior["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= 300
        assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


def test_trigger_authentication_reads_the_redis_secret(max_render: Rendered) -> None:
    auth = max_render.get("TriggerAuthentication", name("redis"))
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        "password": ("marketq-redis", "password"),
        "username": ("marketq-redis", "username"),
        "ca": ("marketq-redis", "ca.crt"),
    }


def test_bundled_redis_defaults_for_keda() -> None:
    rendered = render(
        values={"workers.defaults.autoscaling.keda.enabled": True, "keda.force": True}
    )
    auth = rendered.get("TriggerAuthentication", name("redis"))
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": name("redis"), "key": "password"}
    ]
    for scaled in rendered.kinds("ScaledObject"):
        assert {
            t["metadata"]["address"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"
        } == {f"{name('redis')}.marketq.svc.cluster.local:6379"}
    # KEDA's operator resolves the name from its own namespace: a fully qualified one.
    other = render(
        values={
            "workers.defaults.autoscaling.keda.enabled": True,
            "keda.force": True,
            "clusterDomain": "corp.example",
        }
    )
    for scaled in other.kinds("ScaledObject"):
        assert {
            t["metadata"]["address"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"
        } == {f"{name('redis')}.marketq.svc.corp.example:6379"}


def test_hpa_fallback_when_keda_is_off(max_render: Rendered) -> None:
    hpa = max_render.get("HorizontalPodAutoscaler", name("worker-periodic"))
    assert hpa["spec"]["scaleTargetRef"]["name"] == name("worker-periodic")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_keda_asked_for_without_keda_installed_falls_back_to_the_hpa() -> None:
    rendered = render(values={"workers.defaults.autoscaling.keda.enabled": True})
    assert not rendered.kinds("ScaledObject")
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in rendered.kinds("HorizontalPodAutoscaler")}
    assert hpas == {d["metadata"]["name"] for d in rendered.workers().values()}
    assert all("replicas" not in d["spec"] for d in rendered.workers().values())


def test_a_redis_without_password_or_ca_needs_no_authentication() -> None:
    rendered = render(
        values={
            "redis.bundled.enabled": False,
            "redis.url": "redis://redis.example:6379/0",
            "redis.keda.address": "redis.example:6379",
            "workers.defaults.autoscaling.keda.enabled": True,
            "keda.force": True,
        }
    )
    assert not rendered.kinds("TriggerAuthentication")
    assert len(rendered.kinds("ScaledObject")) == 4
    for scaled in rendered.kinds("ScaledObject"):
        assert all("authenticationRef" not in t for t in scaled["spec"]["triggers"])


def test_running_tasks_keep_their_workers(max_render: Rendered) -> None:
    # A message a worker took sits in `unacked`, not in the lists: a trigger on the
    # workers' active-task gauge keeps ceil(running / concurrency) replicas.
    for queue, scaled in scaled_objects(max_render).items():
        running = [t for t in scaled["spec"]["triggers"] if t["name"] == "running-tasks"]
        if queue == "market_hours":
            assert not running  # Prometheus triggers off for this queue
            continue
        (trigger,) = running
        assert trigger["type"] == "prometheus"
        assert trigger["metricType"] == "AverageValue"
        meta = trigger["metadata"]
        assert meta["query"] == (
            f'sum(marketq_worker_active_tasks{{queue="{queue}",namespace="marketq",release="mq"}})'
        )
        assert meta["threshold"] == "2"  # the queue's concurrency
        assert meta["activationThreshold"] == "0"  # one running task keeps it awake
        assert meta["ignoreNullValues"] == "false"


def test_the_release_label_the_triggers_select_is_set_by_the_scrape_configs(
    max_render: Rendered,
) -> None:
    monitors = max_render.kinds("ServiceMonitor") + max_render.kinds("PodMonitor")
    assert monitors
    for monitor in monitors:
        endpoints = monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]
        for endpoint in endpoints:
            assert {"targetLabel": "release", "replacement": "mq"} in endpoint["relabelings"]


def test_scale_to_zero_needs_the_running_tasks_trigger() -> None:
    error = render_error(
        values={
            "workers.queues.daily.autoscaling.keda.enabled": True,
            "workers.queues.daily.autoscaling.keda.minReplicaCount": 0,
            "keda.force": True,
        }
    )
    assert "workers.queues.daily: autoscaling.keda.minReplicaCount 0 needs" in error


def test_prometheus_triggers_need_the_chart_scrape_configs() -> None:
    error = render_error(
        values={
            "workers.queues.daily.autoscaling.keda.enabled": True,
            "workers.queues.daily.autoscaling.keda.prometheus.enabled": True,
            "keda.force": True,
        }
    )
    assert "workers.queues.daily: autoscaling.keda.prometheus needs monitoring" in error
